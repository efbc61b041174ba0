import { context } from '@opentelemetry/api'
import { suppressTracing } from '@opentelemetry/core'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AccountsConfig } from '../config'
import { AppError } from '../errors'
import { ATTR, SPAN } from '../telemetry/names'
import { withSpan } from '../telemetry/tracer'
import { AccountRepository } from '../repositories/account-repository'
import { newSecret, sameSecret } from './secrets'
import { AccountService, type SessionState, type Viewer } from './service'

export const SESSION_COOKIE = 'blog_session'
/** Before sign-in: a random value whose HMAC is the forms' CSRF token (signed double-submit, no server-side row). */
export const FORM_COOKIE = 'blog_form'
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/

declare module 'fastify' {
  interface FastifyInstance {
    accounts: AccountService
    /** preHandler hook for routes that need to know who is asking (the session cookie, or an API token where allowed). */
    loadViewer(request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
  interface FastifyRequest {
    /** The session the cookie names, once loadViewer ran; null: none (or expired). */
    session: SessionState | null
    /** Who is signed in (by session or API token); null: anonymous. */
    viewer: Viewer | null
    /** Throws 403 unless `given` is this session's CSRF token (before sign-in: the token of the form cookie). */
    checkCsrf(given: unknown): void
  }
  interface FastifyReply {
    /** The CSRF token for this page's forms: the session's, or before sign-in the form cookie's (set when missing). */
    formToken(): string
    /** Starts a new session (new cookie) for `viewer`, ending the one the request came with. */
    startSession(viewer: Viewer): Promise<SessionState>
    /** Ends the request's session and clears the cookie. */
    endSession(): Promise<void>
  }
  interface FastifyContextConfig {
    /** The route also accepts `Authorization: Bearer <API token>` (JSON routes only). */
    apiToken?: boolean
  }
}

export const signInRequired = (json = false) =>
  new AppError(401, 'SIGN_IN_REQUIRED', json ? 'Sign in, or send an API token (Authorization: Bearer ...).' : 'Please sign in first.')
export const forbidden = () => new AppError(403, 'FORBIDDEN', 'Only the author of this post or an admin can change it.')
const csrfRejected = () =>
  new AppError(403, 'CSRF', 'This form has expired or did not come from this site. Go back, reload the page and try again.')

/** The app's cookie attributes; `secure` follows the request's protocol. */
export const cookieOptions = (request: FastifyRequest, maxAge?: number) => ({
  path: '/',
  httpOnly: true,
  sameSite: 'lax' as const,
  // Decided per request: behind a TLS proxy this is true once Fastify trusts the proxy.
  secure: request.protocol === 'https',
  ...(maxAge === undefined ? {} : { maxAge })
})

/** `fastify.accounts`, the request's viewer and session, and the hook that loads them. */
export default fp<{ config: AccountsConfig }>(
  async (fastify, { config }) => {
    const accounts = new AccountService(new AccountRepository(fastify.sequelize), config)
    fastify.decorate('accounts', accounts)
    fastify.decorateRequest('session', null)
    fastify.decorateRequest('viewer', null)

    await accounts.start()

    fastify.decorateRequest('checkCsrf', function (this: FastifyRequest, given: unknown) {
      if (typeof given !== 'string') throw csrfRejected()
      if (this.session) {
        if (!sameSecret(given, this.session.csrfToken)) throw csrfRejected()
        return
      }
      const cookie = this.cookies[FORM_COOKIE]
      if (cookie === undefined || !SECRET_SHAPE.test(cookie) || !accounts.formTokenMatches(cookie, given)) throw csrfRejected()
    })

    fastify.decorateReply('formToken', function (this: FastifyReply) {
      if (this.request.session) return this.request.session.csrfToken
      let cookie = this.request.cookies[FORM_COOKIE]
      if (cookie === undefined || !SECRET_SHAPE.test(cookie)) {
        cookie = newSecret()
        // A browser-session cookie: it only pairs with the token of a form this browser was shown.
        this.setCookie(FORM_COOKIE, cookie, cookieOptions(this.request))
      }
      return accounts.formToken(cookie)
    })

    fastify.decorate('loadViewer', async (request: FastifyRequest, reply: FastifyReply) => {
      const auth = request.headers.authorization
      if (request.routeOptions.config?.apiToken && auth !== undefined && /^bearer /i.test(auth)) {
        const viewer = await withSpan(SPAN.session, { [ATTR.sessionSource]: 'api_token' }, async (span) => {
          const found = await accounts.viewerForApiToken(auth.slice(7).trim())
          span?.setAttribute(ATTR.sessionState, found ? 'user' : 'none')
          return found
        })
        // A wrong token is an error, not anonymity: the client meant to authenticate.
        if (!viewer) throw new AppError(401, 'BAD_TOKEN', 'The API token is not valid (it may have been revoked).')
        request.viewer = viewer
        return
      }
      const token = request.cookies[SESSION_COOKIE]
      if (token === undefined) return
      const session = await withSpan(SPAN.session, { [ATTR.sessionSource]: 'cookie' }, async (span) => {
        // A malformed cookie is not worth a query.
        const found = /^[A-Za-z0-9_-]{43}$/.test(token) ? await accounts.findSession(token) : null
        span?.setAttribute(ATTR.sessionState, found ? 'user' : 'none')
        return found
      })
      if (!session) {
        reply.clearCookie(SESSION_COOKIE, cookieOptions(request))
        return
      }
      request.session = session
      request.viewer = session.viewer
    })

    fastify.decorateReply('startSession', async function (this: FastifyReply, viewer: Viewer) {
      const old = this.request.session
      const session = await accounts.startSession(viewer)
      if (old) await accounts.endSession(old.token)
      this.request.session = session
      this.request.viewer = viewer
      this.setCookie(SESSION_COOKIE, session.token, cookieOptions(this.request, accounts.sessionTtlSeconds))
      if (this.request.cookies[FORM_COOKIE] !== undefined) this.clearCookie(FORM_COOKIE, cookieOptions(this.request))
      return session
    })

    fastify.decorateReply('endSession', async function (this: FastifyReply) {
      const old = this.request.session
      if (old) await accounts.endSession(old.token)
      this.request.session = null
      this.request.viewer = null
      this.clearCookie(SESSION_COOKIE, cookieOptions(this.request))
    })

    // Expired sessions and throttle windows are never read again; every replica may sweep.
    const sweep = async () => {
      try {
        const removed = await context.with(suppressTracing(context.active()), () => accounts.sweep())
        if (removed > 0) fastify.log.debug({ removed }, 'removed expired sessions')
      } catch (err) {
        fastify.log.warn({ err }, 'session sweep failed; will retry')
      }
    }
    const timer = setInterval(sweep, 10 * 60_000)
    timer.unref()
    fastify.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'accounts', dependencies: ['db', '@fastify/cookie'] }
)
