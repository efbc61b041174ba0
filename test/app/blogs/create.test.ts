import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { useTestApp, type TestEnv } from '../../kit/app'
import { defaultAuthor, FORM_HEADERS, signUp } from '../../kit/accounts'
import { postForm, type UploadFile, pngFile } from '../../kit/form'
import { createPost, ejsEscape, rowsByTitle, unique, expectNothingWritten } from '../../kit/posts'

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

const png = pngFile
const postNew = (fields: Record<string, string | string[]>, files: Record<string, UploadFile> = {}) => postForm(app, '/blogs/new', fields, files)

describe('POST /blogs/new: success', () => {
  it('redirects with 303 to the list and stores exactly what was sent, by the signed-in user', async () => {
    const fields = { title: unique('Created'), content: 'Line one\r\nLine two\r\n\r\n  indented & <tagged>' }
    const res = await postNew(fields)
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/blogs/')
    const rows = await rowsByTitle(env, fields.title)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ title: fields.title, author: (await defaultAuthor(app)).displayName, content: fields.content, image_loc: null })
    expect(Math.abs(rows[0]!.modified_dt.getTime() - Date.now())).toBeLessThan(60_000)
  })

  it('round-trips a unicode title and author byte for byte', async () => {
    const title = `Café ☕ 日本 ${unique('u')} 😀`
    const author = unique('Zoë Ünïcødé')
    const res = await postForm(app, '/blogs/new', { title, content: 'Ça marche — 大丈夫' }, {}, { as: await signUp(app, { displayName: author }) })
    expect(res.statusCode).toBe(303)
    const [row] = await env.query<{ id: number; t: string; a: string; c: string }>(
      'SELECT `id`, HEX(`title`) AS t, HEX(`author`) AS a, HEX(`content`) AS c FROM `blog` WHERE `title` = ?',
      [title]
    )
    expect(row?.t).toBe(Buffer.from(title, 'utf8').toString('hex').toUpperCase())
    expect(row?.a).toBe(Buffer.from(author, 'utf8').toString('hex').toUpperCase())
    expect(row?.c).toBe(Buffer.from('Ça marche — 大丈夫', 'utf8').toString('hex').toUpperCase())
    const show = await app.inject(`/blogs/show/${row?.id}`)
    expect(show.body).toContain(`<h1>${title}</h1>`)
  })

  it('accepts every field at its exact minimum and maximum length', async () => {
    const tag = unique('m').replace(' ', '')
    const longest = { title: (tag + 't'.repeat(200)).slice(0, 200), content: 'c'.repeat(4000) }
    const shortest = { title: 'ab', content: 'cc' }
    expect(longest.title).toHaveLength(200)

    expect((await postNew(longest)).statusCode).toBe(303)
    expect(await rowsByTitle(env, longest.title)).toMatchObject([longest])

    const [{ m } = { m: 0 }] = await env.query<{ m: number }>('SELECT MAX(`id`) AS m FROM `blog`')
    expect((await postNew(shortest)).statusCode).toBe(303)
    const created = await env.query('SELECT `title`, `content` FROM `blog` WHERE `id` > ?', [m])
    expect(created).toEqual([shortest])
  })

  it('counts length limits in characters: 200 emoji fit a title, 201 do not', async () => {
    const tag = unique('e').replace(' ', '')
    const fits = tag + '😀'.repeat(200 - tag.length)
    expect(Array.from(fits)).toHaveLength(200)
    expect((await postNew({ title: fits, content: '😀😀' })).statusCode).toBe(303)
    expect(await rowsByTitle(env, fits)).toMatchObject([{ title: fits, content: '😀😀' }])

    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: fits + '😀', content: 'cc' })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('<p class="field-error" id="title-error">Title must be between 2 and 200 characters.</p>')
    })
  })

  it('creates a post from an urlencoded body (no image)', async () => {
    const title = unique('Urlencoded & co')
    const author = await defaultAuthor(app)
    const res = await app.inject({
      method: 'POST',
      url: '/blogs/new',
      headers: { ...FORM_HEADERS, cookie: author.cookie },
      payload: new URLSearchParams({ _csrf: author.csrf, title, content: 'Sent without multipart' }).toString()
    })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/blogs/')
    expect(await rowsByTitle(env, title)).toMatchObject([{ title, author: author.displayName, content: 'Sent without multipart', image_loc: null }])
  })
})

type Field = 'title' | 'content'
const validationCases: [string, Field, string | undefined, string][] = [
  ['missing', 'title', undefined, 'Title is required.'],
  ['empty', 'title', '', 'Title is required.'],
  ['too short', 'title', 'x', 'Title must be between 2 and 200 characters.'],
  ['too long', 'title', 't'.repeat(201), 'Title must be between 2 and 200 characters.'],
  ['only spaces', 'title', '     ', 'Title cannot be only spaces.'],
  ['one letter in spaces', 'title', '   a   ', 'Title must be between 2 and 200 characters (spaces at either end do not count).'],
  ['missing', 'content', undefined, 'Content is required.'],
  ['too short', 'content', 'c', 'Content must be between 2 and 4000 characters.'],
  ['too long', 'content', 'c'.repeat(4001), 'Content must be between 2 and 4000 characters.'],
  ['only spaces', 'content', '\n   \n', 'Content cannot be only spaces.']
]

describe('POST /blogs/new: validation', () => {
  it.each(validationCases)('rejects a %s %s with 400, the error next to the field and the other input kept', async (_case, field, bad, message) => {
    const good: Record<Field, string> = {
      title: unique('Kept "title" <i>&'),
      content: 'Kept content </textarea><script>alert(1)</script>'
    }
    const fields: Record<string, string> = { ...good }
    if (bad === undefined) delete fields[field]
    else fields[field] = bad

    await expectNothingWritten(env, async () => {
      // An image goes along: it must be discarded with the rejected form.
      const res = await postNew(fields, { image_file: png() })
      expect(res.statusCode).toBe(400)
      expect(res.headers['content-type']).toMatch(/^text\/html/)
      expect(res.body).toContain('<form class="post-form" method="post" action="/blogs/new"')
      expect(res.body).toContain(`<p class="field-error" id="${field}-error">${message}</p>`)
      expect(res.body).toContain(`aria-invalid="true" aria-describedby="${field}-error"`)
      expect(res.body.match(/class="field-error"/g)).toHaveLength(1)
      if (field === 'title') expect(res.body).toContain(`>${ejsEscape(good.content)}</textarea>`)
      else expect(res.body).toContain(`name="title" type="text" required minlength="2" maxlength="200" value="${ejsEscape(good.title)}"`)
      expect(res.body).not.toContain('<script>alert(1)')
      expect(await rowsByTitle(env, fields.title ?? '')).toEqual([])
    })
  })

  it('keeps the rejected value in its input, escaped', async () => {
    const tooLong = '"><x '.repeat(50)
    const res = await postNew({ title: tooLong, content: 'cc' })
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain(`value="${'&#34;&gt;&lt;x '.repeat(50)}"`)
    expect(res.body).toContain('<p class="field-error" id="title-error">')
  })

  it('shows an error for every invalid field at once', async () => {
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: 'x', content: ' ' })
      expect(res.statusCode).toBe(400)
      // The summary takes focus and links each message to its field.
      expect(res.body).toContain('<div class="form-summary" role="alert" tabindex="-1" autofocus>')
      for (const f of ['title', 'content']) {
        expect(res.body).toContain(`<p class="field-error" id="${f}-error">`)
        expect(res.body).toMatch(new RegExp(`<li><a href="#${f}">[^<]+</a></li>`))
      }
    })
  })

  it('rejects a field sent twice with 400', async () => {
    const title = unique('Twice')
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: [title, `${title} again`], content: 'Twice content' }, { image_file: png() })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('<p class="field-error" id="title-error">Send this field only once.</p>')
    })
  })

  it('rejects a field sent twice in an urlencoded body with 400', async () => {
    const title = unique('Twice urlencoded')
    await expectNothingWritten(env, async () => {
      const author = await defaultAuthor(app)
      const payload = new URLSearchParams([['_csrf', author.csrf], ['title', title], ['content', 'A'], ['content', 'B']]).toString()
      const res = await app.inject({ method: 'POST', url: '/blogs/new', headers: { ...FORM_HEADERS, cookie: author.cookie }, payload })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('<p class="field-error" id="content-error">Send this field only once.</p>')
    })
  })

  it('rejects a file sent in another field than image_file with 400', async () => {
    await expectNothingWritten(env, async () => {
      const res = await postNew({ title: unique('Wrong field'), content: 'Content' }, { attachment: png() })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('<p class="field-error" id="image_file-error">')
    })
  })
})

describe('escaping user input on every page', () => {
  it('never echoes a <script> title raw on the list, show and modify pages', async () => {
    const title = `<script>alert(1)</script> ${unique('xss')}`
    const post = await createPost(app, env, { title })
    const { cookie } = await defaultAuthor(app)
    for (const url of ['/blogs/', `/blogs/show/${post.id}`, `/blogs/modify/${post.id}`]) {
      const res = await app.inject({ url, headers: { cookie } })
      expect(res.statusCode, url).toBe(200)
      expect(res.body, url).not.toContain('<script>')
      expect(res.body, url).toContain(ejsEscape(title))
      expect(res.body, url).toContain('&lt;script&gt;')
    }
  })
})
