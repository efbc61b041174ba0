import type { FastifyInstance } from 'fastify'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultAuthor, FORM_HEADERS, signUp, type Account } from '../../kit/accounts'
import { useTestApp, type TestEnv } from '../../kit/app'
import { postForm, type UploadFile } from '../../kit/form'
import {
  countRows,
  createPost,
  ejsEscape,
  fileState,
  GENERATED_NAME,
  readStored,
  rowById,
  unique,
  unusedId
} from '../../kit/posts'
import { GIF_1x1, PNG_1x1 } from '../../fixtures/images'
import { expectSameImage } from '../../kit/images'

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

// Every change here is made by the posts' author (the access rules are in test/app/accounts).
let author: Account
beforeAll(async () => {
  author = await defaultAuthor(app)
})
const signedIn = () => ({ cookie: author.cookie })
const deleteForm = () => ({ headers: { ...FORM_HEADERS, cookie: author.cookie }, payload: `_csrf=${author.csrf}` })

const png: UploadFile = { data: PNG_1x1, filename: 'old.png', type: 'image/png' }
const gif: UploadFile = { data: GIF_1x1, filename: 'new.gif', type: 'image/gif' }

const sendModify = (method: 'POST' | 'PUT', id: number | string, fields: Record<string, string | string[]>, image?: UploadFile) =>
  postForm(app, `/blogs/modify/${id}`, fields, image ? { image_file: image } : {}, { method })

describe('GET /blogs/modify/:id', () => {
  it('shows the edit form pre-filled with the post, escaped', async () => {
    const post = await createPost(app, env, {
      title: unique('Edit "me" <now> &'),
      content: 'Body with </textarea><script>alert(1)</script> & "quotes"'
    })
    const res = await app.inject({ url: `/blogs/modify/${post.id}`, headers: signedIn() })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain(`<form class="post-form" method="post" action="/blogs/modify/${post.id}" enctype="multipart/form-data">`)
    expect(res.body).toContain(`value="${ejsEscape(post.title)}"`)
    expect(res.body).not.toContain('name="author"')
    expect(res.body).toContain(`>${ejsEscape(post.content)}</textarea>`)
    expect(res.body).not.toContain('<script>alert(1)')
    expect(res.body).not.toContain('class="field-error"')
    expect(res.body).not.toContain('class="current-image"')
  })

  it('shows the current image of a post that has one', async () => {
    const post = await createPost(app, env, {}, png)
    const res = await app.inject({ url: `/blogs/modify/${post.id}`, headers: signedIn() })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain(`<img class="current-image" src="/static/uploads/${post.image_loc}"`)
    expect(res.body).toContain('Replace the image')
  })

  it('answers an unknown id with 404', async () => {
    const res = await app.inject({ url: `/blogs/modify/${await unusedId(env)}`, headers: signedIn() })
    expect(res.statusCode).toBe(404)
    expect(res.body).toContain('<p class="status">404</p>')
  })

  it.each(['abc', '0', '-5', '99999999999'])('answers the id %s with 404', async (id) => {
    const res = await app.inject({ url: `/blogs/modify/${id}`, headers: signedIn() })
    expect(res.statusCode).toBe(404)
  })
})

describe.each(['POST', 'PUT'] as const)('%s /blogs/modify/:id', (method) => {
  it('updates the post and redirects with 303 to it', async () => {
    const post = await createPost(app, env, { title: unique('Before'), content: 'Old content' })
    await env.query('UPDATE `blog` SET `modified_dt` = ?, `published_dt` = ? WHERE `id` = ?', ['2020-01-01 00:00:00', '2020-01-01 00:00:00', post.id])
    const fields = { title: unique(`After ${method} ☕`), content: 'New content\r\nsecond line' }
    const res = await sendModify(method, post.id, fields)
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(`/blogs/show/${post.id}`)
    expect(res.cookies.find((c) => c.name === 'flash')?.value).toBe('updated')
    const row = await rowById(env, post.id)
    expect(row).toMatchObject({ ...fields, author: post.author, image_loc: null })
    expect(row!.modified_dt.getTime()).toBeGreaterThan(new Date('2020-01-02T00:00:00Z').getTime())
    // Published when it was published: the list keeps its place.
    const [dates] = await env.query<{ published: string }>("SELECT DATE_FORMAT(`published_dt`, '%Y-%m-%d %H:%i:%s') AS `published` FROM `blog` WHERE `id` = ?", [post.id])
    expect(dates!.published).toBe('2020-01-01 00:00:00')

    const show = await app.inject({ url: `/blogs/show/${post.id}`, cookies: { flash: 'updated' } })
    expect(show.body).toContain('<p class="flash" role="status">Your changes were saved.</p>')
    expect(show.body).toContain(`<h1>${ejsEscape(fields.title)}</h1>`)
  })

  it('replaces the image with a new one and deletes the old file', async () => {
    const post = await createPost(app, env, {}, png)
    const oldName = post.image_loc!
    const before = await fileState(env)
    expect(before.stored).toContain(oldName)

    const res = await sendModify(method, post.id, { title: post.title, content: post.content }, gif)
    expect(res.statusCode).toBe(303)
    const row = await rowById(env, post.id)
    expect(row?.image_loc).toMatch(GENERATED_NAME)
    expect(row?.image_loc).toMatch(/\.gif$/)
    expect(row?.image_loc).not.toBe(oldName)
    await expectSameImage(await readStored(env, row!.image_loc!), GIF_1x1)
    const after = await fileState(env)
    expect(after.stored).toEqual([...before.stored.filter((n) => n !== oldName), row!.image_loc!].sort())
    expect(after.incoming).toEqual([])
  })

  it("changes the image's description, and clears it when sent blank", async () => {
    const post = await createPost(app, env, {}, png)
    expect((await sendModify(method, post.id, { title: post.title, content: post.content, image_alt: 'A red square' })).statusCode).toBe(303)
    expect((await env.query<{ image_alt: string | null }>('SELECT `image_alt` FROM `blog` WHERE `id` = ?', [post.id]))[0]!.image_alt).toBe('A red square')
    expect((await app.inject({ url: `/blogs/modify/${post.id}`, headers: signedIn() })).body).toContain('name="image_alt" type="text" maxlength="250" value="A red square"')
    expect((await sendModify(method, post.id, { title: post.title, content: post.content, image_alt: '   ' })).statusCode).toBe(303)
    expect((await env.query<{ image_alt: string | null }>('SELECT `image_alt` FROM `blog` WHERE `id` = ?', [post.id]))[0]!.image_alt).toBeNull()
    const tooLong = await sendModify(method, post.id, { title: post.title, content: post.content, image_alt: 'x'.repeat(251) })
    expect(tooLong.statusCode).toBe(400)
    expect(tooLong.body).toContain('<p class="field-error" id="image_alt-error">Image description must be at most 250 characters.</p>')
  })

  it('keeps the old image when no new one is sent', async () => {
    const post = await createPost(app, env, {}, png)
    const before = await fileState(env)
    const res = await sendModify(method, post.id, { title: unique('Text only'), content: post.content })
    expect(res.statusCode).toBe(303)
    expect((await rowById(env, post.id))?.image_loc).toBe(post.image_loc)
    expect(await fileState(env)).toEqual(before)
    await expectSameImage(await readStored(env, post.image_loc!), PNG_1x1)
  })

  it('re-renders the form with 400 on invalid input and changes nothing', async () => {
    const post = await createPost(app, env, {}, png)
    const before = await fileState(env)
    const res = await sendModify(method, post.id, { title: 'x', content: 'Changed <content>' }, gif)
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain(`action="/blogs/modify/${post.id}"`)
    expect(res.body).toContain('<p class="field-error" id="title-error">Title must be between 2 and 200 characters.</p>')
    expect(res.body).toContain('>Changed &lt;content&gt;</textarea>')
    expect(await rowById(env, post.id)).toEqual(post)
    expect(await fileState(env)).toEqual(before)
  })

  it('rejects a non-image upload with 415 and changes nothing', async () => {
    const post = await createPost(app, env, {}, png)
    const before = await fileState(env)
    const res = await sendModify(method, post.id, { title: unique('Never saved'), content: 'cc' }, { data: 'not an image at all', filename: 'x.png', type: 'image/png' })
    expect(res.statusCode).toBe(415)
    expect(res.body).toContain('<p class="field-error" id="image_file-error">')
    expect(await rowById(env, post.id)).toEqual(post)
    expect(await fileState(env)).toEqual(before)
  })

  it('answers an unknown id with 404 and discards the uploaded file', async () => {
    const id = await unusedId(env)
    const rows = await countRows(env)
    const before = await fileState(env)
    const res = await sendModify(method, id, { title: unique('Ghost'), content: 'Ghost content' }, gif)
    expect(res.statusCode).toBe(404)
    expect(res.body).toContain('<p class="status">404</p>')
    expect(res.cookies.find((c) => c.name === 'flash')).toBeUndefined()
    expect(await rowById(env, id)).toBeUndefined()
    expect(await countRows(env)).toBe(rows)
    expect(await fileState(env)).toEqual(before)
  })

  it('answers an unknown id with invalid input with 404 and discards the uploaded file', async () => {
    const before = await fileState(env)
    const res = await sendModify(method, await unusedId(env), { title: 'x', content: 'cc' }, gif)
    expect(res.statusCode).toBe(404)
    expect(await fileState(env)).toEqual(before)
  })
})

describe('DELETE /blogs/delete/:id', () => {
  it('deletes the post and its image and answers 200 JSON', async () => {
    const post = await createPost(app, env, {}, png)
    const other = await createPost(app, env, {}, gif)
    const before = await fileState(env)
    const res = await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers: signedIn() })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ message: `Post ${post.id} deleted` })
    expect(await rowById(env, post.id)).toBeUndefined()
    expect(await fileState(env)).toEqual({ stored: before.stored.filter((n) => n !== post.image_loc), incoming: [] })
    // Other posts and their images are untouched.
    expect(await rowById(env, other.id)).toEqual(other)
    expect((await fileState(env)).stored).toContain(other.image_loc)
  })

  it('deletes a post without an image and leaves every file alone', async () => {
    const post = await createPost(app, env)
    const before = await fileState(env)
    const res = await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers: signedIn() })
    expect(res.statusCode).toBe(200)
    expect(await rowById(env, post.id)).toBeUndefined()
    expect(await fileState(env)).toEqual(before)
  })

  it('answers an unknown id with 404 JSON {message, code}', async () => {
    const rows = await countRows(env)
    const id = await unusedId(env)
    const res = await app.inject({ method: 'DELETE', url: `/blogs/delete/${id}`, headers: signedIn() })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ message: `Post ${id} not found`, code: 'NOT_FOUND' })
    expect(await countRows(env)).toBe(rows)
  })

  it('answers a second delete of the same post with 404', async () => {
    const post = await createPost(app, env)
    expect((await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers: signedIn() })).statusCode).toBe(200)
    expect((await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers: signedIn() })).statusCode).toBe(404)
  })

  it.each(['abc', '0', '-1', '1.5', '99999999999'])('answers the id %s with 404 JSON', async (id) => {
    const rows = await countRows(env)
    const res = await app.inject({ method: 'DELETE', url: `/blogs/delete/${id}`, headers: signedIn() })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toMatchObject({ code: 'NOT_FOUND', message: expect.any(String) })
    expect(await countRows(env)).toBe(rows)
  })
})

describe('GET /blogs/delete/:id (the confirmation)', () => {
  it('asks first: a page naming the post, whose form posts the delete; nothing is deleted yet', async () => {
    const post = await createPost(app, env, { title: unique('Delete <me>?') }, png)
    const show = await app.inject({ url: `/blogs/show/${post.id}`, headers: signedIn() })
    expect(show.body).toContain(`<a class="button danger" href="/blogs/delete/${post.id}">Delete</a>`)
    expect(show.body).not.toContain(`action="/blogs/delete/${post.id}"`)
    const res = await app.inject({ url: `/blogs/delete/${post.id}`, headers: signedIn() })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('<h1 class="page-title">Delete this post?</h1>')
    expect(res.body).toContain(`&ldquo;${ejsEscape(post.title)}&rdquo;`)
    expect(res.body).toContain('with its image')
    expect(res.body).toContain(`<form method="post" action="/blogs/delete/${post.id}" class="actions">`)
    expect(res.body).toContain(`name="_csrf" value="${author.csrf}"`)
    expect(await rowById(env, post.id)).toBeDefined()
  })

  it("sends a signed-out visitor to sign in, refuses someone else's post with 403, and answers 404 for an unknown post", async () => {
    const post = await createPost(app, env)
    const other = await signUp(app)
    expect((await app.inject({ url: `/blogs/delete/${post.id}`, headers: { cookie: other.cookie } })).statusCode).toBe(403)
    const anonymous = await app.inject({ url: `/blogs/delete/${post.id}` })
    expect(anonymous.statusCode).toBe(303)
    expect(anonymous.headers.location).toMatch(/^\/account\/signin/)
    expect((await app.inject({ url: `/blogs/delete/${await unusedId(env)}`, headers: signedIn() })).statusCode).toBe(404)
  })
})

describe('POST /blogs/delete/:id (the no-JavaScript form)', () => {
  it('deletes the post and its image and redirects with 303 and a "deleted" flash', async () => {
    const post = await createPost(app, env, {}, png)
    const before = await fileState(env)
    const res = await app.inject({ method: 'POST', url: `/blogs/delete/${post.id}`, ...deleteForm() })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/blogs/')
    expect(res.cookies.find((c) => c.name === 'flash')?.value).toBe('deleted')
    expect(await rowById(env, post.id)).toBeUndefined()
    expect((await fileState(env)).stored).toEqual(before.stored.filter((n) => n !== post.image_loc))

    const list = await app.inject({ url: '/blogs/', cookies: { flash: 'deleted' } })
    expect(list.body).toContain('<p class="flash" role="status">The post was deleted.</p>')
    expect(list.body).not.toContain(`href="/blogs/show/${post.id}"`)
  })

  it('answers an unknown id with a 404 page', async () => {
    const rows = await countRows(env)
    const res = await app.inject({ method: 'POST', url: `/blogs/delete/${await unusedId(env)}`, ...deleteForm() })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.cookies.find((c) => c.name === 'flash')).toBeUndefined()
    expect(await countRows(env)).toBe(rows)
  })
})
