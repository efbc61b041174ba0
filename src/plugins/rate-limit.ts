import rateLimit from '@fastify/rate-limit'
import type { RouteShorthandOptions } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../errors'

declare module 'fastify' {
  interface FastifyInstance {
    /** Route config that puts a route in the per-client write budget (empty when WRITE_RATE_LIMIT=0). */
    writeLimit: RouteShorthandOptions['config']
  }
}

/**
 * Writes per client (request.ip: behind a proxy, set TRUST_PROXY or every user shares the
 * proxy's budget) per minute, shared by create, edit and delete. Checked in onRequest, before a
 * byte of an upload is read; the 429 carries Retry-After. Counters live in this process: each
 * replica counts for itself.
 */
export default fp<{ writesPerMinute: number }>(
  async (fastify, { writesPerMinute }) => {
    await fastify.register(rateLimit, {
      global: false,
      // Headers only on the refusal: they would be noise on every page.
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
      addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
      errorResponseBuilder: (request, ctx) =>
        new AppError(429, 'RATE_LIMITED', `Too many changes from your address (at most ${ctx.max} a minute). Please try again in ${ctx.after}.`, {
          expected: true,
          reason: `write rate limit, client ${request.ip}`
        })
    })
    fastify.decorate('writeLimit', writesPerMinute > 0 ? { rateLimit: { max: writesPerMinute, timeWindow: 60_000, groupId: 'writes' } } : {})
  },
  { name: 'rate-limit', dependencies: ['errors'] }
)
