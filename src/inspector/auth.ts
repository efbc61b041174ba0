import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { INSPECTOR_PREFIX } from './prefix'

export const COOKIE_NAME = 'blog_inspector'
export const COOKIE_PATH = INSPECTOR_PREFIX
/** Sessions kept at most; the oldest goes first (each token use makes one). */
const MAX_SESSIONS = 1000

export type AuthResult = 'ok' | 'redirect' | 'denied'

/** Equal-length digests, so neither the length nor a common prefix shows in the timing. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/**
 * Where to send the browser after `?token=`: the same inspector page without the token, and
 * never anywhere else. `/_inspect/..//evil.example/x` resolves to `//evil.example/x`, which a
 * browser reads as another site: anything that does not stay under the prefix goes to its root.
 */
export function sameInspectorPage(rawUrl: string): string {
  const url = new URL(rawUrl, 'http://localhost')
  url.searchParams.delete('token')
  const target = url.pathname + url.search
  const inside = url.pathname === INSPECTOR_PREFIX || url.pathname.startsWith(`${INSPECTOR_PREFIX}/`)
  return inside && !target.startsWith('//') ? target : `${INSPECTOR_PREFIX}/`
}

/**
 * Guards /_inspect/* with INSPECTOR_TOKEN: an `Authorization: Bearer` header, or `?token=` once,
 * which starts a session and redirects to the same page without the token (so it does not stay
 * in the address bar or the history). The session is a random id kept in this process for
 * `ttlMs` from sign-in, whatever the cookie says; the inspector is a single-process tool, so
 * each process (replica) has its own sessions. Secure behind TLS (request.protocol, which
 * follows TRUST_PROXY).
 */
export function tokenGuard(token: string, ttlMs: number, now: () => number = Date.now) {
  const sessions = new Map<string, number>() // digest of the id -> expiry

  const digest = (id: string) => createHash('sha256').update(id).digest('hex')

  return function check(request: FastifyRequest, reply: FastifyReply): AuthResult {
    const auth = request.headers.authorization
    if (auth !== undefined && /^bearer /i.test(auth)) return sameSecret(auth.slice(7).trim(), token) ? 'ok' : 'denied'

    const query = request.query as Record<string, unknown> | undefined
    const given = query?.token
    if (typeof given === 'string') {
      if (!sameSecret(given, token)) return 'denied'
      const id = randomBytes(32).toString('base64url')
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!)
      sessions.set(digest(id), now() + ttlMs)
      reply.setCookie(COOKIE_NAME, id, {
        path: COOKIE_PATH,
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        maxAge: Math.floor(ttlMs / 1000)
      })
      reply.redirect(sameInspectorPage(request.url), 303)
      return 'redirect'
    }

    const cookie = request.cookies?.[COOKIE_NAME]
    if (typeof cookie !== 'string') return 'denied'
    const key = digest(cookie)
    const expires = sessions.get(key)
    if (expires === undefined) return 'denied'
    if (expires <= now()) {
      sessions.delete(key)
      return 'denied'
    }
    return 'ok'
  }
}
