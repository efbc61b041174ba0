import os from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { defaultAuthor } from '../../kit/accounts'
import { useTestApp, type TestEnv } from '../../kit/app'
import { multipart, postForm, rawMultipart, type UploadFile, pngFile } from '../../kit/form'
import { createPost, ejsEscape, exists, fileState, GENERATED_NAME, readStored, rowsByTitle, unique, expectNothingWritten } from '../../kit/posts'
import { GIF_1x1, JPEG_1x1, PNG_1x1, WEBP_1x1 } from '../../fixtures/images'
import { expectSameImage } from '../../kit/images'

// Images on create: accepted by content and extension, stored under generated names, or refused
// with nothing left behind.

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

const png = pngFile
const postNew = (fields: Record<string, string | string[]>, files: Record<string, UploadFile> = {}) => postForm(app, '/blogs/new', fields, files)

describe('POST /blogs/new: uploads', () => {
  it.each([
    ['PNG', PNG_1x1, 'holiday.png', 'image/png', 'png'],
    ['JPEG', JPEG_1x1, 'holiday.jpeg', 'image/jpeg', 'jpg'],
    ['GIF', GIF_1x1, 'holiday.gif', 'image/gif', 'gif'],
    ['WebP', WEBP_1x1, 'holiday.webp', 'image/webp', 'webp']
  ])('stores a %s under a generated name with its extension', async (_kind, data, filename, type, ext) => {
    const before = await fileState(env)
    const post = await createPost(app, env, {}, { data, filename, type })
    expect(post.image_loc).toMatch(GENERATED_NAME)
    expect(post.image_loc?.endsWith(`.${ext}`)).toBe(true)
    expect(post.image_loc).not.toContain('holiday')
    const after = await fileState(env)
    expect(after.stored).toEqual([...before.stored, post.image_loc].sort())
    expect(after.incoming).toEqual([])
    // Stored as the server re-encoded it: the same image, not the same bytes (the JPEG is lossy).
    await expectSameImage(await readStored(env, post.image_loc!), data, ext === 'jpg' ? 8 : 0)
  })

  it('decides the type from the content, not from the client filename or MIME type', async () => {
    const post = await createPost(app, env, {}, { data: PNG_1x1, filename: 'looks-like.gif', type: 'image/gif' })
    expect(post.image_loc).toMatch(/\.png$/)
  })

  it('rejects a text file posted as image_file with 415', async () => {
    const title = unique('Text as image')
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title, content: 'Content' }, { image_file: { data: 'just some text, not an image at all', filename: 'x.png', type: 'image/png' } })
      expect(res.statusCode).toBe(415)
      // Said of the content: the name (x.png) looks right to the person who chose the file.
      expect(res.body).toContain('<p class="field-error" id="image_file-error">This file is not a readable image: its content is not PNG, JPEG, GIF or WebP, whatever its name says.</p>')
      // The form comes back with what the user typed.
      expect(res.body).toContain(`value="${ejsEscape(title)}"`)
    })
  })

  it('rejects a tiny non-image file (shorter than a signature) with 415', async () => {
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: unique('Tiny'), content: 'Content' }, { image_file: { data: 'GIF8', filename: 'x.gif', type: 'image/gif' } })
      expect(res.statusCode).toBe(415)
    })
  })

  it('rejects a real PNG named evil.exe with 415', async () => {
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: unique('Exe'), content: 'Content' }, { image_file: png('evil.exe') })
      expect(res.statusCode).toBe(415)
      // Its content is an image: the name is what is wrong.
      expect(res.body).toContain('<p class="field-error" id="image_file-error">The file name must end in .png, .jpg, .jpeg, .gif or .webp.</p>')
    })
  })

  it('treats an empty file part (no file chosen) as "no image"', async () => {
    const title = unique('Empty file part')
    const before = await fileState(env)
    const author = await defaultAuthor(app)
    const body = rawMultipart([
      { name: '_csrf', value: author.csrf },
      { name: 'title', value: title },
      { name: 'content', value: 'No image chosen' },
      { name: 'image_file', filename: '', type: 'application/octet-stream', data: Buffer.alloc(0) }
    ])
    const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: body.payload, headers: { ...body.headers, cookie: author.cookie } })
    expect(res.statusCode).toBe(303)
    expect(await rowsByTitle(env, title)).toMatchObject([{ title, image_loc: null }])
    expect(await fileState(env)).toEqual(before)
  })

  // Over the limit by its declared length (read up to the file only), or within the body's
  // limit but over the file's (read to the multipart limit): the form comes back either way.
  it.each([
    ['a 6 MiB file (the body declared too large)', 6 * 1024 * 1024],
    ['a 5.5 MiB file (cut at the multipart limit)', 5.5 * 1024 * 1024]
  ])('rejects %s with 413: the form again with its text kept and the limit named, the header signed in, nothing written', async (_case, size) => {
    const big = Buffer.concat([PNG_1x1, Buffer.alloc(size)])
    const title = unique('Too big <kept>')
    const author = await defaultAuthor(app)
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title, content: 'Content kept & shown', image_alt: 'A described picture' }, { image_file: { data: big, filename: 'big.png', type: 'image/png' } })
      expect(res.statusCode).toBe(413)
      expect(res.headers.connection).toBe('close')
      expect(res.body).toContain('<form class="post-form" method="post" action="/blogs/new"')
      expect(res.body).toContain(`value="${ejsEscape(title)}"`)
      expect(res.body).toContain('>Content kept &amp; shown</textarea>')
      expect(res.body).toContain('value="A described picture"')
      expect(res.body).toContain('<p class="field-error" id="image_file-error">The image is too large: the limit is 5.0 MiB.')
      expect(res.body).toContain(`Signed in as ${ejsEscape(author.displayName)}`)
    })
  })

  it('answers a multipart body cut short in the middle of the file with 400, not 500', async () => {
    const file = Buffer.concat([PNG_1x1, Buffer.alloc(64 * 1024, 1)])
    const author = await defaultAuthor(app)
    const { payload, headers } = await multipart({ _csrf: author.csrf, title: unique('Cut short'), content: 'Content' }, { image_file: { data: file, filename: 'a.png', type: 'image/png' } })
    const fileStart = payload.indexOf(PNG_1x1)
    expect(fileStart).toBeGreaterThan(0)
    await expectNothingWritten(env, async () => {
      const res = await app.inject({ method: 'POST', url: '/blogs/new', headers: { ...headers, cookie: author.cookie }, payload: payload.subarray(0, fileStart + 32 * 1024) })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('<p class="status">400</p>')
    })
  })

  it('keeps an upload named ../../x.png inside the upload dir under a generated name', async () => {
    const { payload } = await multipart({}, { image_file: png('../../x.png') })
    expect(payload.toString('latin1')).toContain('filename="../../x.png"')
    const candidates = [
      path.join(env.uploadDir, 'x.png'),
      path.join(env.uploadDir, '..', 'x.png'),
      path.join(env.uploadDir, '..', '..', 'x.png'),
      path.join(env.uploadDir, '.incoming', '..', '..', 'x.png'),
      path.resolve('x.png'),
      path.resolve('..', 'x.png'),
      path.join(os.tmpdir(), 'x.png')
    ]
    const existedBefore = await Promise.all(candidates.map(exists))
    const post = await createPost(app, env, {}, png('../../x.png'))
    expect(post.image_loc).toMatch(GENERATED_NAME)
    expect(await exists(path.join(env.uploadDir, post.image_loc!))).toBe(true)
    expect(await Promise.all(candidates.map(exists))).toEqual(existedBefore)
  })
})
