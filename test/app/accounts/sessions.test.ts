import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import app_, { appServerOptions } from '../../../src/app'
import { useTestApp, type TestEnv } from '../../kit/app'
import {
  anonymousForm, FORM_HEADERS, newPassword, send, setCookie, setCookieLine, signIn, signUp, urlencoded
} from '../../kit/accounts'

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t), { LOGIN_MAX_FAILURES: '3', SESSION_TTL_HOURS: '2' })

const sessionCount = async () => Number((await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `session`'))[0]!.n)

describe('sign-up', () => {
  it('re-renders the form with messages for a bad email, a blank name and a short password (400), creating nobody', async () => {
    const anon = await anonymousForm(app, 'signup')
    const res = await send(app, 'POST', '/account/signup', { cookie: anon.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: anon.csrf, email: 'not-an-email', display_name: '   ', password: 'short' }) })
    expect(res.status).toBe(400)
    expect(res.body).toContain('Enter an email address')
    expect(res.body).toContain('Display name is required')
    expect(res.body).toContain('Use at least 10 characters')
    expect(await env.query('SELECT `id` FROM `user` WHERE `email` = ?', ['not-an-email'])).toEqual([])
  })

  it('refuses an email or a display name already taken (409), including the authors adopted from existing posts', async () => {
    const first = await signUp(app)
    const again = async (email: string, display_name: string) => {
      const anon = await anonymousForm(app, 'signup')
      return send(app, 'POST', '/account/signup', { cookie: anon.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: anon.csrf, email, display_name, password: newPassword() }) })
    }
    const sameEmail = await again(first.email.toUpperCase(), 'Someone New')
    expect(sameEmail.status).toBe(409)
    expect(sameEmail.body).toContain('An account with this email exists')
    const sameName = await again('fresh@example.test', first.displayName)
    expect(sameName.status).toBe(409)
    expect((await again('maya@example.test', 'maya lindqvist')).status).toBe(409)
  })

  it('stores no password in clear: only an scrypt hash, in no column of any table', async () => {
    const password = `Correct horse ${Date.now()}`
    const account = await signUp(app, { password })
    const [row] = await env.query<{ password_hash: string }>('SELECT `password_hash` FROM `user` WHERE `email` = ?', [account.email])
    expect(row!.password_hash).toMatch(/^scrypt\$16\$8\$2\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    const tables = await env.query<{ t: string }>('SELECT `TABLE_NAME` AS t FROM information_schema.`TABLES` WHERE `TABLE_SCHEMA` = ?', [env.database])
    for (const { t } of tables) {
      const rows = await env.query(`SELECT * FROM \`${t}\``)
      expect(JSON.stringify(rows), t).not.toContain(password)
    }
    // Two users with the same password get different hashes (salted).
    const twin = await signUp(app, { password })
    const [twinRow] = await env.query<{ password_hash: string }>('SELECT `password_hash` FROM `user` WHERE `email` = ?', [twin.email])
    expect(twinRow!.password_hash).not.toBe(row!.password_hash)
  })

  it('migrated authors have no password: nobody can sign in as them', async () => {
    const [adopted] = await env.query<{ email: string | null; password_hash: string | null }>("SELECT `email`, `password_hash` FROM `user` WHERE `display_name` = 'Maya Lindqvist'")
    expect(adopted).toEqual({ email: null, password_hash: null })
  })
})

describe('sessions', () => {
  it('sets an HttpOnly, SameSite=Lax, expiring cookie (not Secure over plain HTTP), and rotates it on sign-in', async () => {
    const account = await signUp(app)
    const anon = await anonymousForm(app)
    const { res, cookie } = await signIn(app, account.email, account.password, anon)
    expect(res.status).toBe(303)
    const line = setCookieLine(res, 'blog_session')!
    expect(line).toMatch(/; HttpOnly/i)
    expect(line).toMatch(/; SameSite=Lax/i)
    expect(line).toMatch(/; Max-Age=7200/)
    expect(line).not.toMatch(/; Secure/i)
    expect(cookie).not.toBe(anon.cookie)
    // The session from before sign-in is gone: it cannot be used to act as the user.
    expect((await send(app, 'GET', '/blogs/new', { cookie: anon.cookie })).status).toBe(303)
    expect((await send(app, 'GET', '/blogs/new', { cookie })).status).toBe(200)
    // Only a hash of the cookie's token is stored.
    const token = cookie!.split('=')[1]!
    expect(await env.query('SELECT `id` FROM `session` WHERE `id` = ?', [token])).toEqual([])
  })

  it('marks the cookie Secure when the request came over TLS (as a trusted proxy says)', async () => {
    const behindProxy = Fastify({ ...appServerOptions, logger: false, trustProxy: true })
    await behindProxy.register(app_, { config: env.config })
    try {
      const res = await send(behindProxy, 'GET', '/account/signin', { headers: { 'x-forwarded-proto': 'https' } })
      expect(setCookieLine(res, 'blog_form')).toMatch(/; Secure/i)
    } finally {
      await behindProxy.close()
    }
  })

  it('expires: a session past its time is anonymous, and its cookie is cleared', async () => {
    const account = await signUp(app)
    expect((await send(app, 'GET', '/blogs/new', { cookie: account.cookie })).status).toBe(200)
    const [user] = await env.query<{ id: number }>('SELECT `id` FROM `user` WHERE `email` = ?', [account.email])
    await env.query('UPDATE `session` SET `expires_dt` = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE `user_id` = ?', [user!.id])
    const res = await send(app, 'GET', '/blogs/new', { cookie: account.cookie })
    expect(res.status).toBe(303)
    expect(res.headers.location).toBe('/account/signin?next=%2Fblogs%2Fnew')
    expect(setCookie(res, 'blog_session')).toBe('')
    expect((await send(app, 'DELETE', '/blogs/delete/1', { cookie: account.cookie })).status).toBe(401)
  })

  it('signing out deletes the session row and clears the cookie', async () => {
    const account = await signUp(app)
    const before = await sessionCount()
    const res = await send(app, 'POST', '/account/signout', { cookie: account.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: account.csrf }) })
    expect(res.status).toBe(303)
    expect(setCookie(res, 'blog_session')).toBe('')
    expect(await sessionCount()).toBe(before - 1)
    expect((await send(app, 'GET', '/blogs/new', { cookie: account.cookie })).status).toBe(303)
  })

  it('treats a malformed or unknown cookie as no session', async () => {
    for (const value of ['garbage', 'x'.repeat(43), "'; DROP TABLE session; --"]) {
      const res = await send(app, 'GET', '/blogs/new', { cookie: `blog_session=${encodeURIComponent(value)}` })
      expect(res.status).toBe(303)
    }
  })
})

describe('sign-in throttling', () => {
  it('answers 429 with Retry-After after LOGIN_MAX_FAILURES failures, even to the right password, for that email and client only', async () => {
    const account = await signUp(app)
    const anon = await anonymousForm(app)
    for (let i = 1; i <= 2; i++) {
      const { res } = await signIn(app, account.email, 'wrong password!', anon)
      expect(res.status, `failure ${i}`).toBe(401)
      expect(res.body).toContain('The email or the password is wrong.')
    }
    const third = await signIn(app, account.email, 'wrong password!', anon)
    expect(third.res.status).toBe(429)
    const right = await signIn(app, account.email, account.password, anon)
    expect(right.res.status).toBe(429)
    const retryAfter = Number(right.res.headers['retry-after'])
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(15 * 60)
    expect(right.res.body).toContain('Too many failed sign-ins')
    expect(right.cookie).toBeUndefined()

    // Another client (another address) is not locked out of the same account.
    const fromElsewhere = await app.inject({ method: 'GET', url: '/account/signin', remoteAddress: '10.9.8.7' })
    const cookie = `blog_form=${setCookie({ status: 200, headers: fromElsewhere.headers as Record<string, string>, body: '' }, 'blog_form')}`
    const csrf = /name="_csrf" value="([^"]*)"/.exec(fromElsewhere.body)![1]!
    const ok = await app.inject({ method: 'POST', url: '/account/signin', remoteAddress: '10.9.8.7', headers: { ...FORM_HEADERS, cookie }, payload: urlencoded({ _csrf: csrf, email: account.email, password: account.password }) })
    expect(ok.statusCode).toBe(303)

    // The count is in the database (every replica sees it), keyed by a hash, not the email.
    const rows = await env.query<{ key_hash: string; failures: number }>('SELECT `key_hash`, `failures` FROM `login_throttle`')
    expect(rows.some((r) => r.failures >= 3)).toBe(true)
    expect(JSON.stringify(rows)).not.toContain(account.email)
  })

  it('a success clears the failures', async () => {
    const account = await signUp(app)
    const anon = await anonymousForm(app)
    await signIn(app, account.email, 'wrong password!', anon)
    await signIn(app, account.email, 'wrong password!', anon)
    const { res, cookie } = await signIn(app, account.email, account.password, anon)
    expect(res.status).toBe(303)
    const again = await anonymousForm(app)
    expect((await signIn(app, account.email, 'wrong password!', again)).res.status).toBe(401)
    expect(cookie).toBeDefined()
  })

  it('an unknown email is refused like a wrong password', async () => {
    const { res } = await signIn(app, 'nobody@example.test', 'whatever password')
    expect(res.status).toBe(401)
    expect(res.body).toContain('The email or the password is wrong.')
  })
})

