// @ts-check
// What the load scripts send to the blog, as plain data: no k6 imports, so the vitest suite
// (test/app/k6/k6-scripts.test.ts) imports this same module and replays every request against the
// real app. Change a route or a form field here, never inline in a script.

import { DISPLAY_NAME_LIMITS, FIELD_LIMITS, IMAGE_FIELD } from './fields.js'

/** The blog's field limits, generated from src/posts/fields.ts (`npm run gen:k6`). */
export { FIELD_LIMITS }

/** The image part of the post form. */
export const UPLOAD = { field: IMAGE_FIELD, filename: 'pixel.png', contentType: 'image/png' }

/**
 * The member of the W3C `baggage` header that carries the run id; the app copies it onto its
 * server span as blog.load_test.id (src/telemetry/names.ts LOAD_TEST_BAGGAGE, held equal by a test).
 */
export const TESTID_BAGGAGE = 'testid'

/** The session cookie; writes need a signed-in user's session and its CSRF token. */
export const SESSION_COOKIE = 'blog_session'

/** The hidden field of every form that carries the session's CSRF token. */
export const CSRF_FIELD = '_csrf'

/**
 * Every request the scripts make. `name` is the k6 `name` tag: one series per route, not per
 * post id (a show URL per id would explode Prometheus cardinality).
 */
export const REQUESTS = {
  list: { method: 'GET', path: '/blogs/', name: 'GET /blogs/', expect: { status: 200 } },
  show: { method: 'GET', path: '/blogs/show/:id', name: 'GET /blogs/show/:id', expect: { status: 200 } },
  create: {
    method: 'POST',
    path: '/blogs/new',
    name: 'POST /blogs/new',
    fields: [CSRF_FIELD, 'title', 'content'],
    file: UPLOAD,
    // k6 follows redirects by default; the scripts send with `redirects: 0` to see the 303.
    expect: { status: 303, location: '/blogs/' }
  },
  // setup() signs up the users the writers post as: the form (for its CSRF token), the form
  // sent, and the account page (for the new session's token).
  signupPage: { method: 'GET', path: '/account/signup', name: 'GET /account/signup', expect: { status: 200 } },
  signup: {
    method: 'POST',
    path: '/account/signup',
    name: 'POST /account/signup',
    fields: [CSRF_FIELD, 'email', 'display_name', 'password'],
    expect: { status: 303, location: '/blogs/' }
  },
  account: { method: 'GET', path: '/account', name: 'GET /account', expect: { status: 200 } }
}

/** @typedef {{ session: string, csrf: string }} User A signed-in user: the session cookie's value and its CSRF token. */

/**
 * The CSRF token of a page's forms, or undefined.
 * @param {string} html
 * @returns {string | undefined}
 */
export function csrfOf(html) {
  const m = new RegExp(`name="${CSRF_FIELD}" value="([^"]+)"`).exec(html)
  return m ? m[1] : undefined
}

/**
 * The sign-up form of the load user `tag` (unique per run and user: emails and names are unique).
 * @param {string} tag
 * @param {string} csrf
 * @returns {Record<string, string>}
 */
export function signupFields(tag, csrf) {
  const slug = tag.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120)
  const random = () => Math.random().toString(36).slice(2, 10)
  return {
    [CSRF_FIELD]: csrf,
    email: `k6-${slug}-${random()}@load.test`,
    display_name: `k6 ${tag} ${random()}`.slice(-DISPLAY_NAME_LIMITS.max),
    password: `k6-${random()}-${random()}`
  }
}

/**
 * The user a VU posts as: one per VU while there are as many users as VUs.
 * @param {User[]} users
 * @param {number} vu __VU (from 1)
 * @returns {User}
 */
export function userOf(users, vu) {
  const user = users[(vu - 1) % users.length]
  if (!user) throw new Error('no users: setup() signs them up')
  return user
}

/** @param {number | string} id */
export function showPath(id) {
  return REQUESTS.show.path.replace(':id', String(id))
}

/** @param {number} page */
export function listPath(page = 1) {
  return page > 1 ? `${REQUESTS.list.path}?page=${page}` : REQUESTS.list.path
}

// A 1x1 RGBA PNG that decodes (the app decodes and re-encodes every upload; the one used before
// had a PNG signature but broken data, and is refused now).
const PIXEL_PNG_HEX =
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000970485973000003e8000003e801b57b526b0000000d494441540899636060606000000005000187a14ed40000000049454e44ae426082'

/**
 * A fresh copy of the 1x1 PNG's bytes.
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function pixelPng() {
  const bytes = new Uint8Array(PIXEL_PNG_HEX.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(PIXEL_PNG_HEX.slice(i * 2, i * 2 + 2), 16)
  return bytes
}

/**
 * The text fields of one new post (the author is the signed-in user); `tag` makes titles
 * unique per VU and iteration.
 * @param {string} tag
 * @returns {{ title: string, content: string }}
 */
export function postFields(tag) {
  return {
    title: `k6 load post ${tag}`.slice(0, FIELD_LIMITS.title.max),
    content: `Written by a k6 load test (${tag}). `.repeat(8).slice(0, FIELD_LIMITS.content.max)
  }
}

/**
 * The multipart body of POST /blogs/new, with the user's CSRF token. `file` wraps the bytes:
 * k6's `http.file` in the scripts, a plain descriptor in the test, so both send the same parts.
 * @template F
 * @param {string} tag
 * @param {string} csrf
 * @param {(bytes: Uint8Array<ArrayBuffer>, filename: string, contentType: string) => F} file
 * @returns {Record<string, string | F>}
 */
export function createForm(tag, csrf, file) {
  return { [CSRF_FIELD]: csrf, ...postFields(tag), [UPLOAD.field]: file(pixelPng(), UPLOAD.filename, UPLOAD.contentType) }
}

/**
 * Post ids linked from a list page, in page order, without duplicates (a card with an image
 * links the post twice).
 * @param {string} html
 * @returns {number[]}
 */
export function listedIds(html) {
  /** @type {number[]} */
  const ids = []
  const re = /href="\/blogs\/show\/(\d+)"/g
  for (let m = re.exec(html); m !== null; m = re.exec(html)) {
    const id = Number(m[1])
    if (!ids.includes(id)) ids.push(id)
  }
  return ids
}

/**
 * The page number of the list page's "older posts" link, or null on the last page.
 * @param {string} html
 * @returns {number | null}
 */
export function nextPage(html) {
  const m = /<a rel="next" href="\/blogs\/\?page=(\d+)"/.exec(html)
  return m ? Number(m[1]) : null
}

/**
 * A header's value, whatever its case (k6 canonicalizes names: `Location`, `Traceresponse`).
 * @param {Record<string, string | string[]> | undefined} headers
 * @param {string} name
 * @returns {string | undefined}
 */
export function headerValue(headers, name) {
  if (!headers) return undefined
  const wanted = name.toLowerCase()
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== wanted) continue
    const v = headers[key]
    return Array.isArray(v) ? v[0] : v
  }
  return undefined
}

/**
 * The trace id of a W3C `traceparent` / `traceresponse` value (`00-<trace>-<span>-<flags>`).
 * @param {string | undefined} value
 * @returns {string | undefined}
 */
export function traceIdOf(value) {
  const m = value ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(value.trim()) : null
  return m ? m[1] : undefined
}

/**
 * Whether the app kept the trace of a response: the sampled flag of its `traceresponse`
 * (`00-<trace>-<span>-01`); undefined without a valid header.
 * @param {string | undefined} value
 * @returns {boolean | undefined}
 */
export function keptOf(value) {
  const m = value ? /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(value.trim()) : null
  return m ? (parseInt(m[1] ?? '0', 16) & 1) === 1 : undefined
}

/**
 * The log line of one slow request: words a `grep` finds whatever k6's log format wraps around
 * them (`slow_request ... trace_id=<32 hex> kept=true`). Only kept traces are in Tempo and Jaeger.
 * @param {{ name: string, ms: number, status: number, traceId: string | undefined, kept: boolean | undefined, testid: string }} r
 * @returns {string}
 */
export function slowLine(r) {
  return `slow_request name="${r.name}" ms=${Math.round(r.ms)} status=${r.status} trace_id=${r.traceId ?? 'none'} kept=${r.kept ?? 'unknown'} testid=${r.testid}`
}
