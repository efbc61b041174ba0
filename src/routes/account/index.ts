import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { DISPLAY_NAME_RULE, emailProblem, normalEmail, PASSWORD_MIN, passwordProblem, TOKEN_NAME_RULE } from '../../accounts/fields'
import { signInRequired } from '../../accounts/plugin'
import { CSRF_FIELD } from '../../validation/forms'
import { textProblem } from '../../validation/text'

// Lengths a browser form never exceeds; the handler gives the friendly messages. 1024 characters
// bounds the work one password costs the server.
const text = (maxLength: number) => Type.String({ maxLength, default: '' })
const SignUpBody = Type.Object({ [CSRF_FIELD]: text(100), email: text(254), display_name: text(400), password: text(1024) })
const SignInBody = Type.Object({ [CSRF_FIELD]: text(100), email: text(254), password: text(1024) })
const CsrfBody = Type.Object({ [CSRF_FIELD]: text(100) })
const TokenBody = Type.Object({ [CSRF_FIELD]: text(100), name: text(400) })
const TokenParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })

type Errors = Partial<Record<'email' | 'display_name' | 'password' | 'name' | 'form', string>>

/** The problems of each field that has one (src/accounts/fields.ts). */
function problems(checks: Record<string, string | undefined>): Errors {
  return Object.fromEntries(Object.entries(checks).filter(([, problem]) => problem !== undefined)) as Errors
}

/** Sign-up, sign-in, sign-out and the account page (API tokens). Every form carries the CSRF token. */
const accountRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts } = fastify
  fastify.addHook('preHandler', fastify.loadViewer)

  /** The forms need a session for their CSRF token, even before anyone signs in. */
  const ensureSession = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.session) await reply.startSession(null)
  }

  const signUpPage = (reply: FastifyReply, status: number, values: { email: string; display_name: string }, errors: Errors) =>
    reply.code(status).render('account/signup', { pageTitle: 'Sign up', values, errors, passwordMin: PASSWORD_MIN, displayName: DISPLAY_NAME_RULE })
  const signInPage = (reply: FastifyReply, status: number, values: { email: string }, errors: Errors) =>
    reply.code(status).render('account/signin', { pageTitle: 'Sign in', values, errors })
  const accountPage = async (request: FastifyRequest, reply: FastifyReply, status: number, extra: { newToken?: string; errors?: Errors; name?: string } = {}) => {
    const viewer = request.viewer!
    const tokens = await accounts.listApiTokens(viewer.id)
    return reply.code(status).render('account/index', {
      pageTitle: 'Your account', tokens, newToken: extra.newToken ?? null, errors: extra.errors ?? {}, name: extra.name ?? '', flash: reply.takeFlash()
    })
  }

  fastify.get('/signup', async (request, reply) => {
    if (request.viewer) return reply.redirect('/blogs/', 303)
    await ensureSession(request, reply)
    return signUpPage(reply, 200, { email: '', display_name: '' }, {})
  })

  // Each costs a scrypt hash (64 MiB, a good part of a core-second): in the per-client budget.
  fastify.post('/signup', { schema: { body: SignUpBody }, ...fastify.writeLimit }, async (request, reply) => {
    const body = request.body
    request.checkCsrf(body[CSRF_FIELD])
    const email = normalEmail(body.email)
    const displayName = body.display_name.trim()
    const errors = problems({ email: emailProblem(email), display_name: textProblem(DISPLAY_NAME_RULE, displayName), password: passwordProblem(body.password) })
    const values = { email, display_name: displayName }
    if (Object.keys(errors).length > 0) return signUpPage(reply, 400, values, errors)

    const result = await accounts.signUp(email, displayName, body.password)
    if ('taken' in result) {
      const taken: Errors = result.taken === 'email' ? { email: 'An account with this email exists. Sign in instead.' } : { display_name: 'This name is taken. Choose another.' }
      return signUpPage(reply, 409, values, taken)
    }
    await reply.startSession(result.viewer)
    return reply.flash('signedUp').redirect('/blogs/', 303)
  })

  fastify.get('/signin', async (request, reply) => {
    if (request.viewer) return reply.redirect('/blogs/', 303)
    await ensureSession(request, reply)
    return signInPage(reply, 200, { email: '' }, {})
  })

  fastify.post('/signin', { schema: { body: SignInBody }, ...fastify.writeLimit }, async (request, reply) => {
    const body = request.body
    request.checkCsrf(body[CSRF_FIELD])
    const email = normalEmail(body.email)
    const outcome = await accounts.signIn(email, body.password, request.ip)
    if (outcome.status === 'throttled') {
      const minutes = Math.ceil(outcome.retryAfterS / 60)
      reply.header('Retry-After', String(outcome.retryAfterS))
      request.log.info({ code: 'LOGIN_THROTTLED', retryAfterS: outcome.retryAfterS }, 'sign-in throttled')
      return signInPage(reply, 429, { email }, { form: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` })
    }
    if (outcome.status === 'wrong') return signInPage(reply, 401, { email }, { form: 'The email or the password is wrong.' })
    await reply.startSession(outcome.viewer)
    return reply.flash('signedIn').redirect('/blogs/', 303)
  })

  fastify.post('/signout', { schema: { body: CsrfBody } }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    await reply.endSession()
    return reply.flash('signedOut').redirect('/blogs/', 303)
  })

  fastify.get('/', async (request, reply) => {
    if (!request.viewer) return reply.redirect('/account/signin', 303)
    return accountPage(request, reply, 200)
  })

  fastify.post('/tokens', { schema: { body: TokenBody } }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    if (!request.viewer) throw signInRequired()
    const name = request.body.name.trim()
    const problem = textProblem(TOKEN_NAME_RULE, name)
    if (problem) return accountPage(request, reply, 400, { errors: { name: problem }, name })
    const token = await accounts.createApiToken(request.viewer.id, name)
    // Shown once, in this response only; never cached.
    reply.header('Cache-Control', 'no-store')
    return accountPage(request, reply, 201, { newToken: token })
  })

  fastify.post('/tokens/:id/delete', { schema: { params: TokenParams, body: CsrfBody } }, async (request, reply) => {
    request.checkCsrf(request.body[CSRF_FIELD])
    if (!request.viewer) throw signInRequired()
    if (!(await accounts.revokeApiToken(request.viewer.id, request.params.id))) return reply.notFound('There is no such token.')
    return reply.flash('tokenRevoked').redirect('/account', 303)
  })
}

export default accountRoutes
