import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

export const COOKIE_NAME = 'blog_inspector'
export const COOKIE_PATH = '/_inspect'
const COOKIE_MAX_AGE_S = 12 * 3600

export type AuthResult = 'ok' | 'redirect' | 'denied'

/** Equal-length digests, so neither the length nor a common prefix shows in the timing. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/**
 * Guards /_inspect/* with INSPECTOR_TOKEN: an `Authorization: Bearer` header, or `?token=` once,
 * which sets a cookie and redirects to the same URL without the token (so it does not stay in
 * the address bar or the history). The cookie holds an HMAC of the token, not the token.
 */
export function tokenGuard(token: string) {
  const cookieValue = createHmac('sha256', token).update('blog_app inspector session v1').digest('hex')

  return function check(request: FastifyRequest, reply: FastifyReply): AuthResult {
    const auth = request.headers.authorization
    if (auth !== undefined && /^bearer /i.test(auth)) return sameSecret(auth.slice(7).trim(), token) ? 'ok' : 'denied'

    const query = request.query as Record<string, unknown> | undefined
    const given = query?.token
    if (typeof given === 'string') {
      if (!sameSecret(given, token)) return 'denied'
      reply.setCookie(COOKIE_NAME, cookieValue, {
        path: COOKIE_PATH,
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        maxAge: COOKIE_MAX_AGE_S
      })
      const url = new URL(request.url, 'http://localhost')
      url.searchParams.delete('token')
      reply.redirect(url.pathname + url.search, 303)
      return 'redirect'
    }

    const cookie = request.cookies?.[COOKIE_NAME]
    return typeof cookie === 'string' && sameSecret(cookie, cookieValue) ? 'ok' : 'denied'
  }
}
