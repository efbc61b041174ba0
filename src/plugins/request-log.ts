import { trace } from '@opentelemetry/api'
import fp from 'fastify-plugin'
import { routeOf } from '../telemetry/plugin'

/**
 * One log line per request, at the end, with the route, status, time and trace ids (Fastify's
 * own pair of lines is turned off in server.ts: half the logging, and the first line came
 * before the server span existed).
 */
export default fp(
  async (fastify) => {
    fastify.addHook('onResponse', (request, reply, done) => {
      // req and res go through Fastify's serializers, which keep method/url and statusCode only:
      // the route is its own field (inside req it was dropped). No headers are logged, so no
      // cookie or token can reach the log (test/app/lifecycle/logging.test.ts).
      const entry: Record<string, unknown> = {
        req: { method: request.method, url: request.url },
        // As the server span and the duration metric name it.
        route: routeOf(request),
        res: { statusCode: reply.statusCode },
        responseTime: reply.elapsedTime
      }
      // The pino instrumentation adds ids from the active context; add them here when the
      // server span is not the active one at this point.
      const sc = request.otelSpan?.spanContext()
      if (sc && !trace.getActiveSpan()) {
        entry.trace_id = sc.traceId
        entry.span_id = sc.spanId
        entry.trace_flags = `0${sc.traceFlags.toString(16)}`
      }
      request.log.info(entry, 'request completed')
      done()
    })
  },
  { name: 'request-log', dependencies: ['telemetry'] }
)
