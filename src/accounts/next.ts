/** Where the sign-in and sign-up forms send you afterwards, as a `next` field or query parameter. */
export const NEXT_FIELD = 'next'

const BASE = 'http://app.invalid'
// One leading slash, then no slash or backslash (`//host`, `/\host` are other sites to a browser),
// and no white space or controls (a URL parser drops tabs and newlines: `/\t/host` is `//host`).
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const SHAPE = /^\/(?![/\\])[^\\\s\u0000-\u001f\u007f]*$/

/**
 * `value` when it is a path of this site to return to after signing in; otherwise undefined
 * (another origin, a scheme, a protocol-relative `//host`, or the account forms themselves).
 */
export function localPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048 || !SHAPE.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value, BASE)
  } catch {
    return undefined
  }
  if (url.origin !== BASE || url.pathname.startsWith('/account/sign')) return undefined
  return value
}

/** The sign-in page, sending the user back to `path` afterwards (when it is one of ours). */
export function signInPath(path: string | undefined): string {
  const back = localPath(path)
  return back && back !== '/blogs/' ? `/account/signin?${NEXT_FIELD}=${encodeURIComponent(back)}` : '/account/signin'
}
