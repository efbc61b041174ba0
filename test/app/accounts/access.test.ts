import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { useTestApp, type TestEnv } from '../../kit/app'
import { csrfFor, FORM_HEADERS, makeAdmin, makeApiToken, send, setCookieLine, signUp, urlencoded, type Account } from '../../kit/accounts'
import { postForm } from '../../kit/form'
import { createPost, rowById, unique } from '../../kit/posts'
import { assertBuilt } from '../../kit/server'

// Who may do what, route by route: anonymous, the post's author, another user, an admin (marked
// as `npm run user:admin` does: the only way to become one).

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

let author: Account
let other: Account
let admin: Account
let marked: Account
beforeAll(async () => {
  author = await signUp(app)
  other = await signUp(app)
  admin = await signUp(app)
  await makeAdmin(env, admin)
  marked = await signUp(app)
  await makeAdmin(env, marked)
})

type Who = 'anonymous' | 'author' | 'other' | 'admin' | 'marked admin'
const as = (who: Who): Account | undefined => ({ anonymous: undefined, author, other, admin, 'marked admin': marked })[who]
const cookieOf = (who: Who) => as(who)?.cookie

const newPost = () => createPost(app, env, { title: unique('Owned') }, undefined, author)

describe('reading', () => {
  for (const who of ['anonymous', 'author', 'other', 'admin'] as const) {
    it(`lets ${who} read the list and a post; the edit and delete buttons show only to the author and admins`, async () => {
      const post = await newPost()
      expect((await send(app, 'GET', '/blogs/', { cookie: cookieOf(who) })).status).toBe(200)
      const res = await send(app, 'GET', `/blogs/show/${post.id}`, { cookie: cookieOf(who) })
      expect(res.status).toBe(200)
      const buttons = res.body.includes(`href="/blogs/modify/${post.id}"`) && res.body.includes(`href="/blogs/delete/${post.id}"`)
      expect(buttons).toBe(who === 'author' || who === 'admin')
    })
  }

  it('shows who is signed in, and a sign-in link to anonymous visitors', async () => {
    expect((await send(app, 'GET', '/blogs/')).body).toContain('href="/account/signin"')
    const res = await send(app, 'GET', '/blogs/', { cookie: author.cookie })
    expect(res.body).toContain(`Signed in as ${author.displayName}`)
    expect(res.body).toContain('action="/account/signout"')
  })
})

describe('writing a post', () => {
  it('sends anonymous visitors of the form to the sign-in page, and refuses their post with 401', async () => {
    const page = await send(app, 'GET', '/blogs/new')
    expect(page.status).toBe(303)
    expect(page.headers.location).toBe('/account/signin?next=%2Fblogs%2Fnew')
    const title = unique('Anonymous')
    const res = await postForm(app, '/blogs/new', { title, content: 'Nobody wrote this.' }, {}, { as: null })
    expect(res.statusCode).toBe(401)
    expect(await env.query('SELECT `id` FROM `blog` WHERE `title` = ?', [title])).toEqual([])
  })

  it('makes the signed-in user the author (the author field is gone, and ignored if sent)', async () => {
    expect((await send(app, 'GET', '/blogs/new', { cookie: other.cookie })).body).not.toContain('name="author"')
    const title = unique('Mine')
    const res = await postForm(app, '/blogs/new', { title, author: 'Somebody Else', content: 'Written by me.' }, {}, { as: other })
    expect(res.statusCode, res.body).toBe(303)
    const [row] = await env.query<{ author: string; user_id: number }>('SELECT `author`, `user_id` FROM `blog` WHERE `title` = ?', [title])
    const [user] = await env.query<{ id: number }>('SELECT `id` FROM `user` WHERE `email` = ?', [other.email])
    expect(row).toEqual({ author: other.displayName, user_id: user!.id })
  })
})

describe('changing a post', () => {
  const allowed = { anonymous: false, author: true, other: false, admin: true, 'marked admin': true } as const
  const denied = (who: Who) => (who === 'anonymous' ? 401 : 403)

  for (const who of Object.keys(allowed) as Who[]) {
    it(`GET /blogs/modify/:id as ${who}: ${allowed[who] ? '200' : who === 'anonymous' ? '303 to sign in' : '403'}`, async () => {
      const post = await newPost()
      const res = await send(app, 'GET', `/blogs/modify/${post.id}`, { cookie: cookieOf(who) })
      expect(res.status).toBe(allowed[who] ? 200 : who === 'anonymous' ? 303 : 403)
    })

    for (const method of ['POST', 'PUT'] as const) {
      it(`${method} /blogs/modify/:id as ${who}: ${allowed[who] ? '303, saved (the author stays)' : `${denied(who)}, unchanged`}`, async () => {
        const post = await newPost()
        const title = unique('Changed')
        const account = as(who)
        const res = await postForm(app, `/blogs/modify/${post.id}`, { title, content: 'New content' }, {}, { method, as: account ?? null })
        expect(res.statusCode, res.body).toBe(allowed[who] ? 303 : denied(who))
        const row = await rowById(env, post.id)
        expect(row?.title).toBe(allowed[who] ? title : post.title)
        expect(row?.author).toBe(author.displayName)
      })
    }

    it(`POST /blogs/delete/:id as ${who}: ${allowed[who] ? '303, deleted' : `${denied(who)}, kept`}`, async () => {
      const post = await newPost()
      const account = as(who)
      const res = await send(app, 'POST', `/blogs/delete/${post.id}`, { cookie: account?.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: account?.csrf ?? '' }) })
      expect(res.status, res.body).toBe(allowed[who] ? 303 : denied(who))
      expect(await rowById(env, post.id)).toEqual(allowed[who] ? undefined : expect.objectContaining({ id: post.id }))
    })

    it(`DELETE /blogs/delete/:id (JSON) with the session of ${who}: ${allowed[who] ? '200' : denied(who)}`, async () => {
      const post = await newPost()
      const res = await send(app, 'DELETE', `/blogs/delete/${post.id}`, { cookie: cookieOf(who) })
      expect(res.status, res.body).toBe(allowed[who] ? 200 : denied(who))
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      const body = JSON.parse(res.body) as { code?: string }
      if (!allowed[who]) expect(body.code).toBe(who === 'anonymous' ? 'SIGN_IN_REQUIRED' : 'FORBIDDEN')
      if (who === 'anonymous') expect(res.headers['www-authenticate']).toBe('Bearer realm="blog_app"')
      expect((await rowById(env, post.id)) === undefined).toBe(allowed[who])
    })
  }

  it('a form with errors from another user gets 403, not the form back', async () => {
    const post = await newPost()
    const res = await postForm(app, `/blogs/modify/${post.id}`, { title: '', content: '' }, {}, { as: other })
    expect(res.statusCode).toBe(403)
    expect(res.body).not.toContain(post.content)
  })

  it('posts of authors adopted by the migration can be changed by admins only', async () => {
    const [seeded] = await env.query<{ id: number; user_id: number }>('SELECT `id`, `user_id` FROM `blog` WHERE `id` = 1')
    expect(seeded?.user_id).toBeTypeOf('number')
    expect((await send(app, 'GET', '/blogs/modify/1', { cookie: other.cookie })).status).toBe(403)
    expect((await send(app, 'GET', '/blogs/modify/1', { cookie: admin.cookie })).status).toBe(200)
  })
})

describe('npm run user:admin -- <email>', () => {
  const userCli = (...args: string[]) =>
    promisify(execFile)(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'user.js'), ...args], { cwd: ROOT, env: { ...env.env, LOG_LEVEL: 'silent' } })

  it('makes a signed-up user an admin, who may then change any post', async () => {
    assertBuilt()
    const promoted = await signUp(app)
    const post = await newPost()
    expect((await send(app, 'GET', `/blogs/modify/${post.id}`, { cookie: promoted.cookie })).status).toBe(403)
    const { stdout } = await userCli('admin', promoted.email.toUpperCase())
    expect(stdout).toContain(`${promoted.email} is now an admin`)
    expect((await send(app, 'GET', `/blogs/modify/${post.id}`, { cookie: promoted.cookie })).status).toBe(200)
  })

  it('fails with a message for an email nobody signed up with', async () => {
    assertBuilt()
    const failed = await userCli('admin', 'nobody@example.test').then(() => null, (err: { code?: number; stderr?: string }) => err)
    expect(failed?.code).toBe(1)
    expect(failed?.stderr).toContain('no user has the email nobody@example.test')
  })
})

describe('API tokens for DELETE /blogs/delete/:id', () => {
  const makeToken = async (account: Account, name = 'script') => (await makeApiToken(app, account, name)).token
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  it('lets the author delete with a token made on the account page; stores only its hash', async () => {
    const token = await makeToken(author)
    expect(token).toMatch(/^blogtok_[A-Za-z0-9_-]{43}$/)
    const stored = await env.query<{ token_hash: string }>('SELECT `token_hash` FROM `api_token`')
    expect(stored.length).toBeGreaterThan(0)
    for (const r of stored) expect(r.token_hash).not.toContain(token.slice(8))
    const post = await newPost()
    const res = await send(app, 'DELETE', `/blogs/delete/${post.id}`, { headers: bearer(token) })
    expect(res.status, res.body).toBe(200)
    expect(await rowById(env, post.id)).toBeUndefined()
    // The account page lists it as used, never shows it again.
    const page = await send(app, 'GET', '/account', { cookie: author.cookie })
    expect(page.body).toContain('last used')
    expect(page.body).not.toContain(token)
  })

  it('shows a new token once, after a redirect: reloading the page makes no second token and shows none', async () => {
    const account = await signUp(app)
    const count = async () => (await env.query('SELECT `id` FROM `api_token` WHERE `user_id` = (SELECT `id` FROM `user` WHERE `email` = ?)', [account.email])).length
    const { token, page, carried } = await makeApiToken(app, account, 'once')
    expect(await count()).toBe(1)
    // The page cleared the cookie it read; a browser's reload sends neither it nor a form.
    expect(setCookieLine(page, 'blog_new_token')).toMatch(/^blog_new_token=;.*Expires=Thu, 01 Jan 1970/)
    const reload = await send(app, 'GET', '/account', { cookie: account.cookie })
    expect(reload.status).toBe(200)
    expect(reload.body).not.toContain(token)
    expect(reload.body).not.toContain('id="new-token"')
    expect(await count()).toBe(1)
    // The sealed cookie is not the token, and opens for no other session, nor altered.
    expect(carried).not.toContain(token.slice(8))
    const other = await signUp(app)
    const stolen = await send(app, 'GET', '/account', { cookie: `${other.cookie}; blog_new_token=${carried}` })
    expect(stolen.status).toBe(200)
    expect(stolen.body).not.toContain(token)
    const flipped = carried.slice(0, -2) + (carried.endsWith('AA') ? 'BA' : 'AA')
    const altered = await send(app, 'GET', '/account', { cookie: `${account.cookie}; blog_new_token=${flipped}` })
    expect(altered.status).toBe(200)
    expect(altered.body).not.toContain('id="new-token"')
    const junk = await send(app, 'GET', '/account', { cookie: `${account.cookie}; blog_new_token=%%%not-base64` })
    expect(junk.status).toBe(200)
  })

  it("refuses another user's token with 403, a wrong or revoked one with 401", async () => {
    const post = await newPost()
    const otherToken = await makeToken(other)
    expect((await send(app, 'DELETE', `/blogs/delete/${post.id}`, { headers: bearer(otherToken) })).status).toBe(403)
    expect((await send(app, 'DELETE', `/blogs/delete/${post.id}`, { headers: bearer('blogtok_' + 'x'.repeat(43)) })).status).toBe(401)

    const mine = await makeToken(author, 'to revoke')
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `api_token` WHERE `name` = ? ORDER BY `id` DESC', ['to revoke'])
    const revoke = await send(app, 'POST', `/account/tokens/${row!.id}/delete`, { cookie: author.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: author.csrf }) })
    expect(revoke.status).toBe(303)
    expect((await send(app, 'DELETE', `/blogs/delete/${post.id}`, { headers: bearer(mine) })).status).toBe(401)
    expect(await rowById(env, post.id)).toBeDefined()
  })

  it("cannot revoke another user's token", async () => {
    await makeToken(author, 'keep me')
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `api_token` WHERE `name` = ?', ['keep me'])
    const res = await send(app, 'POST', `/account/tokens/${row!.id}/delete`, { cookie: other.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: other.csrf }) })
    expect(res.status).toBe(404)
    expect(await env.query('SELECT `id` FROM `api_token` WHERE `id` = ?', [row!.id])).toHaveLength(1)
  })

  it('does not accept a token on the HTML forms (they need the session and its CSRF token)', async () => {
    const token = await makeToken(author)
    const res = await postForm(app, '/blogs/new', { title: unique('By token'), content: 'Should not be written.' }, {}, { headers: bearer(token), as: null })
    expect(res.statusCode).toBe(401)
  })

  it('sends anonymous visitors of the account page to sign in', async () => {
    const res = await send(app, 'GET', '/account')
    expect(res.status).toBe(303)
    expect(res.headers.location).toBe('/account/signin?next=%2Faccount')
  })
})

describe('CSRF', () => {
  it('refuses a new post without the token, or with another session\'s token, with 403 and writes nothing', async () => {
    for (const csrf of ['', other.csrf, 'x'.repeat(43)]) {
      const title = unique('Forged')
      const res = await postForm(app, '/blogs/new', { title, content: 'Forged content' }, {}, { as: { cookie: author.cookie, csrf } })
      expect(res.statusCode, csrf).toBe(403)
      expect(JSON.stringify(res.body)).toContain('did not come from this site')
      expect(await env.query('SELECT `id` FROM `blog` WHERE `title` = ?', [title])).toEqual([])
    }
  })

  it('refuses a change, a delete, a sign-out and a new token without the token', async () => {
    const post = await newPost()
    const modify = await postForm(app, `/blogs/modify/${post.id}`, { title: unique('Forged'), content: 'x y' }, {}, { as: { cookie: author.cookie, csrf: 'nope' } })
    expect(modify.statusCode).toBe(403)
    const form = (path: string) => send(app, 'POST', path, { cookie: author.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: 'nope', name: 'n' }) })
    expect((await form(`/blogs/delete/${post.id}`)).status).toBe(403)
    expect((await form('/account/tokens')).status).toBe(403)
    expect((await form('/account/signout')).status).toBe(403)
    expect(await rowById(env, post.id)).toMatchObject({ title: post.title })
    // Still signed in.
    expect((await send(app, 'GET', '/blogs/new', { cookie: author.cookie })).status).toBe(200)
  })

  it('refuses sign-in and sign-up forms without the token of the page they came from', async () => {
    const signin = await send(app, 'POST', '/account/signin', { headers: FORM_HEADERS, body: urlencoded({ email: author.email, password: author.password }) })
    expect(signin.status).toBe(403)
    const signup = await send(app, 'POST', '/account/signup', { headers: FORM_HEADERS, body: urlencoded({ email: 'forged@example.test', display_name: 'Forged', password: 'long enough password' }) })
    expect(signup.status).toBe(403)
    expect(await env.query('SELECT `id` FROM `user` WHERE `email` = ?', ['forged@example.test'])).toEqual([])
  })

  it('gives every page of a signed-in session the same token, and a new session a new one', async () => {
    expect(await csrfFor(app, author.cookie)).toBe(author.csrf)
    expect(author.csrf).not.toBe(other.csrf)
  })
})
