import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  canonicalEmail, cleanDisplayName, DELETED_AUTHOR, DISPLAY_NAME_RULE, displayNameProblem, PASSWORD_MAX, PASSWORD_MIN, passwordProblem, TOKEN_NAME_RULE
} from '../../accounts/fields'
import { localPath, NEXT_FIELD, signInPath } from '../../accounts/next'
import { cookieOptions, signInRequired } from '../../accounts/plugin'
import { NEW_TOKEN_SHOWN_FOR_S, TOKENS_PER_HOUR, type Throttled } from '../../accounts/service'
import { AppError } from '../../errors'
import { CSRF_FIELD } from '../../validation/forms'
import { textProblem } from '../../validation/text'

// Lengths a browser form never exceeds; the handler gives the friendly messages. A password's
// longest is counted in characters (code points) by the schema and by passwordProblem alike.
const text = (maxLength: number) => Type.String({ maxLength, default: '' })
const password = text(PASSWORD_MAX)
const next = text(2048)
const SignUpBody = Type.Object({ [CSRF_FIELD]: text(100), email: text(254), display_name: text(400), password, [NEXT_FIELD]: next })
const SignInBody = Type.Object({ [CSRF_FIELD]: text(100), email: text(254), password, [NEXT_FIELD]: next })
const FormQuery = Type.Object({ [NEXT_FIELD]: next })
const CsrfBody = Type.Object({ [CSRF_FIELD]: text(100) })
const TokenBody = Type.Object({ [CSRF_FIELD]: text(100), name: text(400) })
const TokenParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
const NameBody = Type.Object({ [CSRF_FIELD]: text(100), display_name: text(400) })
const PasswordBody = Type.Object({ [CSRF_FIELD]: text(100), current_password: password, new_password: password })
const DeleteBody = Type.Object({ [CSRF_FIELD]: text(100), password })

type Field = 'email' | 'display_name' | 'password' | 'name' | 'current_password' | 'new_password' | 'delete_password' | 'form'
type Errors = Partial<Record<Field, string>>

/** The problems of each field that has one (src/accounts/fields.ts). */
function problems(checks: Partial<Record<Field, string | undefined>>): Errors {
  return Object.fromEntries(Object.entries(checks).filter(([, problem]) => problem !== undefined)) as Errors
}

const tooManyTokens = () =>
  new AppError(429, 'TOKEN_LIMIT', `You made ${TOKENS_PER_HOUR} API tokens in the last hour, the most allowed. Try again later, or revoke tokens you do not use.`, {
    expected: true,
    reason: 'API token creation limit'
  })

/** Carries a new API token, sealed, across the redirect to the one page that shows it. */
const NEW_TOKEN_COOKIE = 'blog_new_token'

const throttleMessage = (t: Throttled) => {
  const minutes = Math.ceil(t.retryAfterS / 60)
  return `Too many wrong passwords. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`
}

/**
 * Sign-up, sign-in, sign-out and the account page (API tokens, display name, password, deleting
 * the account). Every form carries a CSRF token: the session's, or before sign-in the signed
 * token of the form cookie (no session row for anonymous visitors).
 */
const accountRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts } = fastify
  fastify.addHook('preHandler', fastify.loadViewer)

  const signUpPage = (reply: FastifyReply, status: number, values: { email: string; display_name: string; next: string }, errors: Errors) =>
    reply.code(status).render('account/signup', {
      pageTitle: 'Sign up', values, errors, passwordMin: PASSWORD_MIN, displayName: DISPLAY_NAME_RULE, csrfToken: reply.formToken(), nextQuery: nextQuery(values.next)
    })
  const signInPage = (reply: FastifyReply, status: number, values: { email: string; next: string }, errors: Errors) =>
    reply.code(status).render('account/signin', { pageTitle: 'Sign in', values, errors, csrfToken: reply.formToken(), nextQuery: nextQuery(values.next) })
  const accountPage = async (request: FastifyRequest, reply: FastifyReply, status: number, extra: { newToken?: string; errors?: Errors; name?: string; displayName?: string } = {}) => {
    const viewer = request.viewer!
    const tokens = await accounts.listApiTokens(viewer.id)
    return reply.code(status).render('account/index', {
      pageTitle: 'Your account',
      tokens,
      newToken: extra.newToken ?? null,
      errors: extra.errors ?? {},
      name: extra.name ?? '',
      values: { display_name: extra.displayName ?? viewer.displayName },
      displayName: DISPLAY_NAME_RULE,
      passwordMin: PASSWORD_MIN,
      deletedAuthor: DELETED_AUTHOR,
      flash: reply.takeFlash()
    })
  }
  /** Where to go after signing in: the page that sent the user there, when it is one of ours. */
  const destination = (value: string) => localPath(value) ?? '/blogs/'
  const nextQuery = (value: string) => (localPath(value) ? `?${NEXT_FIELD}=${encodeURIComponent(value)}` : '')
  const signedIn = (request: FastifyRequest) => {
    if (!request.viewer) throw signInRequired()
    return request.viewer
  }

  fastify.get('/signup', { schema: { querystring: FormQuery } }, async (request, reply) => {
    const nextPath = localPath(request.query.next) ?? ''
    if (request.viewer) return reply.redirect(destination(nextPath), 303)
    return signUpPage(reply, 200, { email: '', display_name: '', next: nextPath }, {})
  })

  // Each costs a scrypt hash (64 MiB, a good part of a core-second): in the per-client budget.
  fastify.post('/signup', { schema: { body: SignUpBody }, ...fastify.writeLimit }, async (request, reply) => {
    const body = request.body
    request.checkCsrf(body[CSRF_FIELD])
    const email = canonicalEmail(body.email)
    const displayName = cleanDisplayName(body.display_name)
    const nextPath = localPath(body.next) ?? ''
    const errors = problems({ email: email.problem, display_name: displayNameProblem(displayName), password: passwordProblem(body.password) })
    const values = { email: email.email, display_name: displayName, next: nextPath }
    if (Object.keys(errors).length > 0) return signUpPage(reply, 400, values, errors)

    const result = await accounts.signUp(email.email, displayName, body.password)
    if ('taken' in result) {
      const taken: Errors =
        result.taken === 'email'
          ? { email: 'An account with this email exists. Sign in instead.' }
          : { display_name: 'This name, or one that looks the same, is taken. Choose another.' }
      return signUpPage(reply, 409, values, taken)
    }
    await reply.startSession(result.viewer)
    return reply.flash('signedUp').redirect(destination(nextPath), 303)
  })

  fastify.get('/signin', { schema: { querystring: FormQuery } }, async (request, reply) => {
    const nextPath = localPath(request.query.next) ?? ''
    if (request.viewer) return reply.redirect(destination(nextPath), 303)
    return signInPage(reply, 200, { email: '', next: nextPath }, {})
  })

  fastify.post('/signin', { schema: { body: SignInBody }, ...fastify.writeLimit }, async (request, reply) => {
    const body = request.body
    request.checkCsrf(body[CSRF_FIELD])
    // Looked up in its canonical form only: a refused spelling matches no account.
    const { email } = canonicalEmail(body.email)
    const nextPath = localPath(body.next) ?? ''
    const outcome = await accounts.signIn(email, body.password, request.ip)
    if (outcome.status === 'throttled') {
      reply.header('Retry-After', String(outcome.retryAfterS))
      request.log.info({ code: 'LOGIN_THROTTLED', retryAfterS: outcome.retryAfterS }, 'sign-in throttled')
      const minutes = Math.ceil(outcome.retryAfterS / 60)
      return signInPage(reply, 429, { email, next: nextPath }, { form: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` })
    }
    if (outcome.status === 'wrong') return signInPage(reply, 401, { email, next: nextPath }, { form: 'The email or the password is wrong.' })
    await reply.startSession(outcome.viewer)
    return reply.flash('signedIn').redirect(destination(nextPath), 303)
  })

  fastify.post('/signout', { schema: { body: CsrfBody } }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    await reply.endSession()
    return reply.flash('signedOut').redirect('/blogs/', 303)
  })

  fastify.get('/', async (request, reply) => {
    if (!request.viewer) return reply.redirect(signInPath('/account'), 303)
    const sealed = request.cookies[NEW_TOKEN_COOKIE]
    if (sealed === undefined || !request.session) return accountPage(request, reply, 200)
    // Read once: a reload of this page finds the cookie gone and makes nothing.
    reply.clearCookie(NEW_TOKEN_COOKIE, { path: '/account' })
    const newToken = accounts.openNewToken(request.session, sealed)
    if (newToken === null) return accountPage(request, reply, 200)
    reply.header('Cache-Control', 'no-store')
    return accountPage(request, reply, 200, { newToken })
  })

  // In the per-client write budget, and at most TOKENS_PER_HOUR per user.
  fastify.post('/tokens', { schema: { body: TokenBody }, ...fastify.writeLimit }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    const viewer = signedIn(request)
    // Forms are signed in by a session cookie only (an API token does not reach this route).
    const session = request.session
    if (!session) throw signInRequired()
    const name = request.body.name.trim()
    const problem = textProblem(TOKEN_NAME_RULE, name)
    if (problem) return accountPage(request, reply, 400, { errors: { name: problem }, name })
    const token = await accounts.createApiToken(viewer.id, name)
    if (token === null) {
      reply.header('Retry-After', '3600')
      throw tooManyTokens()
    }
    // Post-redirect-get: the account page shows it once, and reloading that page makes no second token.
    reply.setCookie(NEW_TOKEN_COOKIE, accounts.sealNewToken(session, token), {
      ...cookieOptions(request, NEW_TOKEN_SHOWN_FOR_S),
      path: '/account',
      sameSite: 'strict'
    })
    return reply.redirect('/account#new-token', 303)
  })

  fastify.post('/tokens/:id/delete', { schema: { params: TokenParams, body: CsrfBody } }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    const viewer = signedIn(request)
    if (!(await accounts.revokeApiToken(viewer.id, request.params.id))) return reply.notFound('There is no such token.')
    return reply.flash('tokenRevoked').redirect('/account', 303)
  })

  // A new display name; the user's posts show it too.
  fastify.post('/name', { schema: { body: NameBody }, ...fastify.writeLimit }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    const viewer = signedIn(request)
    const displayName = cleanDisplayName(request.body.display_name)
    const problem = displayNameProblem(displayName)
    if (problem) return accountPage(request, reply, 400, { errors: { display_name: problem }, displayName })
    if ((await accounts.rename(viewer.id, displayName)) === 'taken') {
      return accountPage(request, reply, 409, { errors: { display_name: 'This name, or one that looks the same, is taken. Choose another.' }, displayName })
    }
    return reply.flash('renamed').redirect('/account', 303)
  })

  // The current password again (a session left open must not be enough), in the sign-in throttle.
  fastify.post('/password', { schema: { body: PasswordBody }, ...fastify.writeLimit }, async (request, reply) => {
    const body = request.body
    request.checkCsrf(body[CSRF_FIELD])
    const viewer = signedIn(request)
    const problem = passwordProblem(body.new_password)
    if (problem) return accountPage(request, reply, 400, { errors: { new_password: problem } })
    const check = await accounts.checkPassword(viewer.id, body.current_password, request.ip)
    if (check.status === 'throttled') reply.header('Retry-After', String(check.retryAfterS))
    if (check.status !== 'ok') {
      const message = check.status === 'throttled' ? throttleMessage(check) : 'This is not your current password.'
      return accountPage(request, reply, check.status === 'throttled' ? 429 : 401, { errors: { current_password: message } })
    }
    // Every session of the user ends (other browsers are signed out); this one continues with a new cookie.
    await accounts.changePassword(viewer.id, body.new_password)
    await reply.startSession(viewer)
    return reply.flash('passwordChanged').redirect('/account', 303)
  })

  // Deleting the account: the password again; the posts stay, by "deleted user" (admins may change them).
  fastify.post('/delete', { schema: { body: DeleteBody }, ...fastify.writeLimit }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    const viewer = signedIn(request)
    const check = await accounts.checkPassword(viewer.id, request.body.password, request.ip)
    if (check.status === 'throttled') reply.header('Retry-After', String(check.retryAfterS))
    if (check.status !== 'ok') {
      const message = check.status === 'throttled' ? throttleMessage(check) : 'This is not your password: the account was not deleted.'
      return accountPage(request, reply, check.status === 'throttled' ? 429 : 401, { errors: { delete_password: message } })
    }
    await accounts.deleteAccount(viewer.id)
    await reply.endSession()
    return reply.flash('accountDeleted').redirect('/blogs/', 303)
  })
}

export default accountRoutes
