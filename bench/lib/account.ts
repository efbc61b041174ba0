import { randomBytes } from 'node:crypto'

// The write scenario posts as a signed-in user: one signed up per app before the load, as a
// browser does (the sign-up form's CSRF token, the form, then the account page for the new
// session's token).

export interface BenchUser {
  /** The Cookie header value. */
  cookie: string
  /** The session's CSRF token, for the `_csrf` field. */
  csrf: string
}

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1]
const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => new RegExp(`^${name}=([^;]+)`).exec(c)?.[1]).find(Boolean)
const sessionOf = (res: Response) => cookieOf(res, 'blog_session')

export async function signUp(url: string): Promise<BenchUser> {
  // Before sign-in the form's token pairs with the form cookie (no session yet).
  const page = await fetch(`${url}/account/signup`)
  const anon = cookieOf(page, 'blog_form')
  const formCsrf = csrfOf(await page.text())
  if (!page.ok || !anon || !formCsrf) throw new Error(`bench sign-up page: status ${page.status}`)
  const tag = randomBytes(6).toString('hex')
  const res = await fetch(`${url}/account/signup`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `blog_form=${anon}` },
    body: new URLSearchParams({ _csrf: formCsrf, email: `bench-${tag}@bench.test`, display_name: `bench ${tag}`, password: `bench-${randomBytes(12).toString('hex')}` })
  })
  const session = sessionOf(res)
  if (res.status !== 303 || !session) throw new Error(`bench sign-up: status ${res.status}`)
  const cookie = `blog_session=${session}`
  const account = await fetch(`${url}/account`, { headers: { cookie } })
  const csrf = csrfOf(await account.text())
  if (!account.ok || !csrf) throw new Error(`bench account page: status ${account.status}`)
  return { cookie, csrf }
}
