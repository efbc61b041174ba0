// @ts-check
// The only module that sends requests: each one is built from the REQUESTS table in app.js,
// tagged with its route name and checked against the status the app answers.
import { check, fail } from 'k6'
import http from 'k6/http'
import { Rate } from 'k6/metrics'
import { REQUESTS, SESSION_COOKIE, createForm, csrfOf, headerValue, keptOf, listPath, listedIds, nextPage, showPath, signupFields, slowLine, traceIdOf } from './app.js'
import { BASE_URL, SLOW_LOG_PER_VU, SLOW_MS, runBaggage } from './options.js'

/** @typedef {import('k6/http').RefinedResponse<import('k6/http').ResponseType | undefined>} Response */
/** @typedef {import('./app.js').User} User */

/**
 * Share of responses whose `traceresponse` carries the trace id k6 sent in `traceparent`:
 * 1 means the server joined k6's trace (and the trace_id in the sample metadata finds it).
 */
export const traceJoined = new Rate('trace_joined')

/** Headers of every request: the run's baggage (the app labels its server span with the run id). */
const headers = () => ({ baggage: runBaggage() })

/** Slow requests this VU has logged (SLOW_LOG_PER_VU at most). */
let slowLogged = 0

/**
 * Whether the app joined k6's trace, and for a request slower than SLOW_MS one log line with its
 * trace id: at stress scale this, not the full `--out json` (gigabytes), finds the slow traces.
 * @param {Response} res
 * @param {string} name the request's name tag
 */
function recordTrace(res, name) {
  const sent = traceIdOf(headerValue(res.request.headers, 'traceparent'))
  const answer = headerValue(res.headers, 'traceresponse')
  if (sent !== undefined) traceJoined.add(traceIdOf(answer) === sent)
  if (res.timings.duration < SLOW_MS || slowLogged > SLOW_LOG_PER_VU) return
  slowLogged += 1
  if (slowLogged > SLOW_LOG_PER_VU) {
    console.warn(`slow_request log limit (SLOW_LOG_PER_VU=${SLOW_LOG_PER_VU}) reached for VU ${__VU}: later slow requests are not logged`)
    return
  }
  const testid = decodeURIComponent(runBaggage().slice(runBaggage().indexOf('=') + 1))
  console.warn(slowLine({ name, ms: res.timings.duration, status: res.status, traceId: traceIdOf(answer) ?? sent, kept: keptOf(answer), testid }))
}

/**
 * GET /blogs/ (page 1 unless told).
 * @param {{ page?: number, keepBody?: boolean }} [opts] keepBody: read the HTML even when the
 *   script sets `discardResponseBodies`.
 */
export function listPosts(opts = {}) {
  const res = http.get(BASE_URL + listPath(opts.page ?? 1), {
    headers: headers(),
    tags: { name: REQUESTS.list.name },
    ...(opts.keepBody ? { responseType: 'text' } : {})
  })
  check(res, { 'list: status is 200': (r) => r.status === REQUESTS.list.expect.status })
  recordTrace(res, REQUESTS.list.name)
  return res
}

/** @param {number} id GET /blogs/show/:id */
export function showPost(id) {
  const res = http.get(BASE_URL + showPath(id), { headers: headers(), tags: { name: REQUESTS.show.name } })
  check(res, { 'show: status is 200': (r) => r.status === REQUESTS.show.expect.status })
  recordTrace(res, REQUESTS.show.name)
  return res
}

/**
 * POST /blogs/new as the browser form does, signed in as `user`: the CSRF token, title,
 * content and a 1x1 PNG.
 * @param {string} tag makes the title unique (VU and iteration)
 * @param {User} user
 */
export function createPost(tag, user) {
  const body = createForm(tag, user.csrf, (bytes, filename, contentType) => http.file(bytes.buffer, filename, contentType))
  // redirects: 0, or k6 would follow the 303 and report the list page instead.
  const res = http.post(BASE_URL + REQUESTS.create.path, body, {
    redirects: 0,
    headers: headers(),
    cookies: { [SESSION_COOKIE]: user.session },
    tags: { name: REQUESTS.create.name }
  })
  check(res, {
    'create: status is 303': (r) => r.status === REQUESTS.create.expect.status,
    'create: Location is /blogs/': (r) => headerValue(r.headers, 'location') === REQUESTS.create.expect.location
  })
  recordTrace(res, REQUESTS.create.name)
  return res
}

/**
 * Post ids from the first list pages, following the "older posts" link (for setup()).
 * @param {number} maxPages
 * @returns {number[]}
 */
export function discoverIds(maxPages) {
  /** @type {number[]} */
  const ids = []
  for (let page = 1, n = 0; n < maxPages; n++) {
    const res = listPosts({ page, keepBody: true })
    const html = typeof res.body === 'string' ? res.body : ''
    for (const id of listedIds(html)) if (!ids.includes(id)) ids.push(id)
    const next = nextPage(html)
    if (next === null) break
    page = next
  }
  return ids
}

/**
 * Signs up one user as a browser does (for setup()): the form's CSRF token, the form sent, then
 * the account page for the new session's token. Its own cookie jar, so users do not mix.
 * @param {string} tag unique per run and user
 * @returns {User}
 */
export function signUp(tag) {
  const jar = new http.CookieJar()
  const page = http.get(BASE_URL + REQUESTS.signupPage.path, { jar, headers: headers(), responseType: 'text', tags: { name: REQUESTS.signupPage.name } })
  const formCsrf = csrfOf(typeof page.body === 'string' ? page.body : '')
  if (page.status !== REQUESTS.signupPage.expect.status || !formCsrf) fail(`sign-up page: status ${page.status}, no CSRF token`)
  const res = http.post(BASE_URL + REQUESTS.signup.path, signupFields(tag, formCsrf), { jar, redirects: 0, headers: headers(), tags: { name: REQUESTS.signup.name } })
  const session = res.cookies[SESSION_COOKIE]?.[0]?.value
  if (res.status !== REQUESTS.signup.expect.status || !session) fail(`sign-up: status ${res.status}`)
  const account = http.get(BASE_URL + REQUESTS.account.path, { jar, headers: headers(), responseType: 'text', tags: { name: REQUESTS.account.name } })
  const csrf = csrfOf(typeof account.body === 'string' ? account.body : '')
  if (account.status !== REQUESTS.account.expect.status || !csrf) fail(`account page: status ${account.status}, no CSRF token`)
  return { session, csrf }
}

/**
 * `count` users for the writers (one per VU at the peak), signed up in setup().
 * @param {number} count
 * @param {string} testid
 * @returns {User[]}
 */
export function signUpUsers(count, testid) {
  /** @type {User[]} */
  const users = []
  for (let i = 0; i < count; i++) users.push(signUp(`${testid} u${i}`))
  return users
}
