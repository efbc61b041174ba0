import rateLimit from '@fastify/rate-limit'
import type { onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../errors'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Route options (spread them in) that put a route in the per-client write budget: post
     * writes, sign-up and sign-in. Empty when WRITE_RATE_LIMIT=0.
     */
    writeLimit: { onRequest?: onRequestHookHandler[] }
  }
}

/**
 * Writes per client (request.ip: behind a proxy, set TRUST_PROXY or every user shares the
 * proxy's budget) per minute, shared by create, edit, delete, sign-up and sign-in (each of the
 * last two costs a scrypt hash). Checked in onRequest, before a
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
    // One limiter (one counter per client) shared by every write route. Route-level `config.rateLimit`
    // would give each route a store of its own, even with a shared groupId (measured: three
    // routes, three budgets).
    const limiter = writesPerMinute > 0 ? (fastify.rateLimit({ max: writesPerMinute, timeWindow: 60_000 }) as onRequestHookHandler) : null
    fastify.decorate('writeLimit', limiter ? { onRequest: [limiter] } : {})
  },
  { name: 'rate-limit', dependencies: ['errors'] }
)
