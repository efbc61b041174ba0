import { AsyncLocalStorage } from 'node:async_hooks'
import { performance } from 'node:perf_hooks'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import fp from 'fastify-plugin'

/** Where one request's time went; filled by the DB hooks and the render helper. */
export interface RequestTimings {
  dbMs: number
  queries: number
  poolWaitMs: number
  renderMs: number
}

/**
 * The current request's timings, reachable from code that does not see the request (Sequelize
 * hooks). Independent of OpenTelemetry, so Server-Timing works with the SDK disabled too.
 */
export const timingStore = new AsyncLocalStorage<RequestTimings>()

export const tracer = trace.getTracer('blog_app')

declare module 'fastify' {
  interface FastifyRequest {
    timings: RequestTimings
  }
  interface FastifyReply {
    /** Renders a view (timed, and traced as `view.render`); return its result from the handler. */
    render(view: string, data: Record<string, unknown>): Promise<string>
  }
}

const ms = (n: number) => n.toFixed(2)

export default fp(
  async (fastify) => {
    fastify.decorateRequest('timings', null as unknown as RequestTimings)

    fastify.addHook('onRequest', (request, _reply, done) => {
      request.timings = { dbMs: 0, queries: 0, poolWaitMs: 0, renderMs: 0 }
      done()
    })

    // Run every handler inside the request's timing store.
    fastify.addHook('onRoute', (route) => {
      const handler = route.handler
      route.handler = function (request, reply) {
        return timingStore.run(request.timings, () => handler.call(this, request, reply))
      }
    })

    fastify.addHook('onSend', (request, reply, payload, done) => {
      const t = request.timings
      if (t) {
        reply.header(
          'Server-Timing',
          `db;dur=${ms(t.dbMs)};desc="${t.queries} queries", pool;dur=${ms(t.poolWaitMs)}, render;dur=${ms(t.renderMs)}, total;dur=${ms(reply.elapsedTime)}`
        )
      }
      done(null, payload)
    })

    fastify.decorateReply('render', async function (view: string, data: Record<string, unknown>) {
      const span = tracer.startSpan('view.render', { attributes: { 'blog.view.name': view } })
      const start = performance.now()
      try {
        return (await this.viewAsync(view, data)) as string
      } catch (err) {
        span.recordException(err as Error)
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
        span.setAttribute('error.type', (err as Error).name)
        throw err
      } finally {
        const took = performance.now() - start
        if (this.request.timings) this.request.timings.renderMs += took
        span.end()
      }
    })
  },
  { name: 'request-timing' }
)
