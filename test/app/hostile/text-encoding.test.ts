import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { anonymousForm, defaultAuthor, FORM_HEADERS, send, urlencoded } from '../../kit/accounts'
import { useTestApp, type TestEnv } from '../../kit/app'
import { postForm } from '../../kit/form'
import { countRows, expectNothingWritten, unique } from '../../kit/posts'

// Text the form cannot store as sent. Before: bytes that are not UTF-8 were stored as U+FFFD
// without a word, and a U+202E in a title reversed the text after it on the list page.

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

/** A multipart body whose title is the given raw bytes, sent by the test's signed-in author. */
async function bytesInTitle(title: Buffer): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const as = await defaultAuthor(app)
  const b = `----enc${randomBytes(6).toString('hex')}`
  const field = (name: string, value: Buffer | string) =>
    Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`), Buffer.from(value), Buffer.from('\r\n')])
  return {
    payload: Buffer.concat([field('_csrf', as.csrf), field('title', title), field('content', 'Some valid content.'), Buffer.from(`--${b}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${b}`, cookie: as.cookie }
  }
}

describe('bytes that are not valid UTF-8', () => {
  it.each([
    ['a lone continuation byte', Buffer.from([0x4f, 0x6b, 0x80, 0x21])],
    ['a truncated sequence', Buffer.from([0x43, 0x61, 0x66, 0xc3])],
    ['an overlong encoding', Buffer.from([0x41, 0xc0, 0xaf, 0x42])]
  ])('in a multipart field (%s) get a 400 naming the field, and nothing is stored', async (_what, bytes) => {
    await expectNothingWritten(env, async () => {
      const res = await app.inject({ method: 'POST', url: '/blogs/new', ...(await bytesInTitle(bytes)) })
      expect(res.statusCode).toBe(400)
      expect(res.body).toContain('Title is not valid UTF-8 text')
    })
  })

  it('in a urlencoded field (%FF) get the same 400', async () => {
    const before = await countRows(env)
    const as = await defaultAuthor(app)
    const res = await app.inject({
      method: 'POST', url: '/blogs/new',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: as.cookie },
      payload: `_csrf=${encodeURIComponent(as.csrf)}&title=Bad%FFbyte&content=Valid%20content`
    })
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain('Title is not valid UTF-8 text')
    expect(await countRows(env)).toBe(before)
  })

  it('while valid multibyte text is stored as sent (the check above can pass)', async () => {
    const title = unique('Grüße ✓')
    const res = await app.inject({ method: 'POST', url: '/blogs/new', ...(await bytesInTitle(Buffer.from(title))) })
    expect(res.statusCode).toBe(303)
  })
})

describe('text-direction overrides', () => {
  it.each(['\u202E', '\u202D', '\u2066', '\u2069'])('U+%s in a title gets a 400, nothing stored', async (ch) => {
    await expectNothingWritten(env, async () => {
      const t = await postForm(app, '/blogs/new', { title: `invoice${ch}fdp.exe`, content: 'Valid content.' })
      expect(t.statusCode).toBe(400)
      expect(t.body).toContain('Title cannot contain text-direction override characters')
    })
  })

  it('in a display name (the author shown beside titles) gets the sign-up form back with the reason', async () => {
    const anon = await anonymousForm(app, 'signup')
    const res = await send(app, 'POST', '/account/signup', {
      cookie: anon.cookie,
      headers: FORM_HEADERS,
      body: urlencoded({ _csrf: anon.csrf, email: `bidi-${randomBytes(4).toString('hex')}@example.test`, display_name: 'Eve\u202Egnp.exe', password: 'a-long-enough-password-1' })
    })
    expect(res.status).toBe(400)
    expect(res.body).toContain('cannot contain text-direction override characters')
  })

  it('right-to-left text itself (and the marks U+200F/U+200E) is fine', async () => {
    const res = await postForm(app, '/blogs/new', { title: unique('שלום עולם \u200F'), content: 'Bidi content \u202E in a paragraph.' })
    expect(res.statusCode).toBe(303)
  })
})
