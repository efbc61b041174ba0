import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../errors'

const kBadUrl = Symbol('blog.badUrl')
type MarkedMessage = IncomingMessage & { [kBadUrl]?: true }

/**
 * Fastify's own answer to a path it cannot decode (`/%ff`) is a bare JSON 400 that skips every
 * hook: no security headers, timings, span or log line. Instead the request is routed again
 * with its `%` signs escaped (so it decodes, and the log shows what was sent) and marked; the
 * guard below then turns it into the app's 400 with everything a response carries.
 * A server option: server.ts and the test kit both pass it to Fastify().
 */
export const serverOptions: Pick<FastifyServerOptions, 'frameworkErrors'> = {
  frameworkErrors(err: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply) {
    const raw = request.raw as MarkedMessage
    if (err.code !== 'FST_ERR_BAD_URL' || raw[kBadUrl]) {
      // Not reachable with this app's routes (no async constraints); answer plainly, never loop.
      reply.code(400).send({ message: 'The request could not be understood.', code: 'BAD_REQUEST' })
      return
    }
    raw[kBadUrl] = true
    const url = raw.url ?? '/'
    const q = url.indexOf('?')
    const pathPart = q === -1 ? url : url.slice(0, q)
    raw.url = pathPart.replaceAll('%', '%25') + (q === -1 ? '' : url.slice(q))
    request.server.routing(raw, reply.raw)
  }
}

/**
 * Refuses, before any route runs, what the app must not answer: a URL it could not decode
 * (400). Registered after the security headers, so the refusals carry them like any other
 * error page.
 */
export default fp(
  async (fastify) => {
    // Callback style: this runs on every request.
    fastify.addHook('onRequest', (request, _reply, done) => {
      if ((request.raw as MarkedMessage)[kBadUrl]) {
        return done(new AppError(400, 'BAD_URL', 'The address is not valid (it has a broken %-escape).'))
      }
      done()
    })
  },
  { name: 'request-guard', dependencies: ['errors', 'security'] }
)
