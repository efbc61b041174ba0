import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, notFound, toAppError } from '../errors'

declare module 'fastify' {
  interface FastifyReply {
    /** Answers with an error page (HTML) or `{ message, code }` (JSON routes and clients). */
    sendError(err: AppError): Promise<FastifyReply>
    /** The 404 answer, with a message for this case. */
    notFound(message?: string): Promise<FastifyReply>
  }
  interface FastifyContextConfig {
    /** Routes that answer JSON, errors included. */
    json?: boolean
  }
}

// (A bodyless GET is not yet `complete` while its first hooks run: look at the headers too.)
const unreadBody = ({ raw }: FastifyRequest) =>
  !raw.complete && (raw.headers['transfer-encoding'] !== undefined || (raw.headers['content-length'] ?? '0') !== '0')

const wantsJson = (request: FastifyRequest) =>
  request.routeOptions.config?.json === true || (request.headers.accept ?? '').startsWith('application/json')

/**
 * Every error answer in one place: thrown errors (the error handler), unknown URLs (the 404
 * handler) and expected outcomes a route returns (`reply.notFound()`), as HTML or JSON.
 */
export default fp<{ maxUploadBytes: number }>(
  async (fastify, { maxUploadBytes }) => {
    const limits = { maxUploadBytes, bodyLimit: fastify.initialConfig.bodyLimit }
    fastify.decorateReply('sendError', async function (this: FastifyReply, err: AppError) {
      if (err.statusCode === 503 && !this.hasHeader('Retry-After')) this.header('Retry-After', '5')
      // An answer given before the body was read (413, 429, a refused write): reading the rest
      // only to reach the next request on the connection is the waste a limit is there to stop.
      if (unreadBody(this.request)) this.header('Connection', 'close')
      this.code(err.statusCode)
      if (wantsJson(this.request)) {
        // A JSON client may authenticate with an API token (RFC 9110: a 401 names the scheme).
        if (err.statusCode === 401) this.header('WWW-Authenticate', 'Bearer realm="blog_app"')
        return this.send({ message: err.message, code: err.code })
      }
      const status = err.statusCode
      // A page answered before the route's hooks ran (an unknown URL, a body refused unread) has
      // not looked at the session: its header would say "Sign in" to someone signed in. Not when
      // shedding load (429, 5xx): the database may be the trouble, and this would add a query.
      const request = this.request
      if (status < 500 && status !== 429 && !request.viewer && !request.session && typeof this.server.loadViewer === 'function') {
        await this.server.loadViewer(request, this).catch(() => undefined)
      }
      const pageTitle = status === 404 ? 'Not found' : status >= 500 ? 'Error' : 'Request not accepted'
      return this.type('text/html; charset=utf-8').send(await this.render('errors/error', { pageTitle, status, message: err.message }))
    })
    fastify.decorateReply('notFound', function (this: FastifyReply, message?: string) {
      return this.sendError(notFound(message))
    })

    fastify.setErrorHandler(async (err, request, reply) => {
      const e = toAppError(err, limits)
      // Shed requests (overload, database known down) come in bursts: one short line each, no stack.
      if (e.expected) request.log.warn({ code: e.code, reason: e.reason }, 'request shed')
      else if (e.statusCode >= 500) request.log.error({ err }, 'request failed')
      else request.log.info({ status: e.statusCode, code: e.code, reason: e.reason ?? (err as Error).message }, 'request rejected')
      return reply.sendError(e)
    })

    fastify.setNotFoundHandler(async (_request, reply) => reply.notFound())
  },
  { name: 'errors', dependencies: ['view'] }
)
