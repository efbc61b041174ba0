import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { expect } from 'vitest'
import type { TestEnv } from './app'
import { request } from './server'

// Signing up and in as a browser does (the form's CSRF token, the session cookie), against the
// app in process (inject) or a child server (its port). Each test file signs up its users once
// (a password hash costs ~0.5 s of CPU) and sends as them with `as`.

export type Target = FastifyInstance | number

export interface Account {
  email: string
  password: string
  displayName: string
  /** The session cookie as a Cookie header value. */
  cookie: string
  /** The session's CSRF token, for the `_csrf` field of a form. */
  csrf: string
}

export interface Sent {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request to the app or server; `cookie` is sent as the Cookie header. */
export async function send(target: Target, method: string, path: string, opts: { cookie?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Sent> {
  const headers: Record<string, string> = { ...opts.headers, ...(opts.cookie ? { cookie: opts.cookie } : {}) }
  if (typeof target === 'number') {
    const res = await request(target, { method, path, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) })
    return { status: res.status, headers: res.headers, body: res.body }
  }
  const res = await target.inject({ method: method as 'GET', url: path, headers, ...(opts.body !== undefined ? { payload: opts.body } : {}) })
  return { status: res.statusCode, headers: res.headers as Sent['headers'], body: res.body }
}

/** The value of a cookie a response sets ('' when it clears it), or undefined. */
export function setCookie(res: Sent, name: string): string | undefined {
  const raw = res.headers['set-cookie']
  for (const line of Array.isArray(raw) ? raw : raw ? [raw] : []) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(line)
    if (m) return m[1]
  }
  return undefined
}

/** The Set-Cookie line of a cookie, with its attributes. */
export function setCookieLine(res: Sent, name: string): string | undefined {
  const raw = res.headers['set-cookie']
  return (Array.isArray(raw) ? raw : raw ? [raw] : []).find((l) => l.startsWith(`${name}=`))
}

/** The CSRF token a page's forms carry. */
export function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]*)"/.exec(html)
  expect(m, 'the page should have a form with a CSRF token').not.toBeNull()
  return m![1]!
}

export const urlencoded = (fields: Record<string, string>) => new URLSearchParams(fields).toString()
export const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' }

/**
 * The form cookie and its signed CSRF token, as the sign-in or sign-up page gives them to a
 * browser that is not signed in (no session: nothing is stored server-side).
 */
export async function anonymousForm(target: Target, page: 'signin' | 'signup' = 'signin'): Promise<{ cookie: string; csrf: string }> {
  const res = await send(target, 'GET', `/account/${page}`)
  expect(res.status, res.body).toBe(200)
  // Every cookie the page set, as a browser would send them back (test/app/accounts/identity
  // asserts that it is the form cookie alone).
  const raw = res.headers['set-cookie']
  const cookie = (Array.isArray(raw) ? raw : raw ? [raw] : []).map((line) => line.split(';')[0]!).join('; ')
  expect(cookie, 'the sign-in page should set a cookie for its form').not.toBe('')
  return { cookie, csrf: csrfOf(res.body) }
}

/** The CSRF token of a signed-in session (read from a page with a form). */
export async function csrfFor(target: Target, cookie: string): Promise<string> {
  const res = await send(target, 'GET', '/account', { cookie })
  expect(res.status, res.body).toBe(200)
  return csrfOf(res.body)
}

export const newPassword = () => `pw-${randomBytes(9).toString('base64url')}`

/** Signs up a new user through the form and returns their signed-in session. */
export async function signUp(target: Target, fields: Partial<Pick<Account, 'email' | 'password' | 'displayName'>> = {}): Promise<Account> {
  const tag = randomBytes(5).toString('hex')
  const email = fields.email ?? `user-${tag}@example.test`
  const password = fields.password ?? newPassword()
  const displayName = fields.displayName ?? `Writer ${tag}`
  const anon = await anonymousForm(target, 'signup')
  const res = await send(target, 'POST', '/account/signup', {
    cookie: anon.cookie,
    headers: FORM_HEADERS,
    body: urlencoded({ _csrf: anon.csrf, email, display_name: displayName, password })
  })
  expect(res.status, res.body).toBe(303)
  const token = setCookie(res, 'blog_session')
  expect(token, 'signing up should start a new session').toBeTruthy()
  const cookie = `blog_session=${token}`
  return { email, password, displayName, cookie, csrf: await csrfFor(target, cookie) }
}

/** Signs in through the form; returns the response and, on success, the new session. */
export async function signIn(target: Target, email: string, password: string, from?: { cookie: string; csrf: string }): Promise<{ res: Sent; cookie?: string }> {
  const anon = from ?? (await anonymousForm(target))
  const res = await send(target, 'POST', '/account/signin', { cookie: anon.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: anon.csrf, email, password }) })
  const token = setCookie(res, 'blog_session')
  return { res, ...(res.status === 303 && token ? { cookie: `blog_session=${token}` } : {}) }
}

/** Makes an account an admin, as `npm run user:admin` does. */
export async function makeAdmin(env: TestEnv, account: Account): Promise<void> {
  await env.query('UPDATE `user` SET `is_admin` = 1 WHERE `email` = ?', [account.email])
}

// One signed-up author per app, made on first use: most tests only need "someone allowed to
// write". (Child servers come and go on reused ports: their tests sign up explicitly.)
const authors = new WeakMap<FastifyInstance, Promise<Account>>()

/** The default author of a test's posts on this app (signed up once). */
export function defaultAuthor(app: FastifyInstance): Promise<Account> {
  let a = authors.get(app)
  if (!a) authors.set(app, (a = signUp(app)))
  return a
}

/**
 * Makes an API token on the account page as a browser does: the form's POST answers 303, and the
 * page it leads to shows the token once (the sealed cookie it is carried in, sent back once).
 */
export async function makeApiToken(target: Target, account: Pick<Account, 'cookie' | 'csrf'>, name = 'script'): Promise<{ token: string; made: Sent; page: Sent; carried: string }> {
  const made = await send(target, 'POST', '/account/tokens', { cookie: account.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: account.csrf, name }) })
  expect(made.status, made.body).toBe(303)
  expect(made.headers.location).toBe('/account#new-token')
  const carried = setCookie(made, 'blog_new_token')
  expect(carried, 'the POST should carry the token to the next page in a cookie').toBeTruthy()
  const page = await send(target, 'GET', '/account', { cookie: `${account.cookie}; blog_new_token=${carried}` })
  expect(page.status, page.body).toBe(200)
  expect(page.headers['cache-control']).toBe('no-store')
  const m = /<code id="new-token">([^<]+)<\/code>/.exec(page.body)
  expect(m, 'the account page should show the new token').not.toBeNull()
  return { token: m![1]!, made, page, carried: carried! }
}
