import { LogController, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import pino from 'pino'
import { processTimeMs, routeOf, traceIdsOf } from '../telemetry/plugin'

/** The logger options on the Fastify() call that go with this plugin (server.ts, bench/floor). */
export function requestLogOptions(
  level: string,
  flushMs: number,
  correlation?: { mixin: (line: object) => object; mixinMergeStrategy: (line: object, fields: object) => object }
): Pick<FastifyServerOptions, 'logger' | 'logController'> {
  return {
    logger: {
      level,
      // Trace ids on every line (src/telemetry/log-correlation.ts), when telemetry is on.
      ...correlation,
      // One write(2) per log line cost ~0.04 ms of kernel time per list page (a quarter of the
      // process's, `npm run bench` log=sync); buffered lines go out every LOG_FLUSH_MS or 4 KiB,
      // and pino writes what is left at exit (a SIGKILL loses at most LOG_FLUSH_MS of lines).
      ...(flushMs > 0 ? { stream: pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: flushMs }) } : {})
      // No `redact`: it ran on every line (~4 µs, `perf` profile at 400 req/s) and could never
      // match, since Fastify's req/res serializers drop headers before it sees them. That no
      // cookie or token reaches the log is tested (test/app/lifecycle/logging.test.ts).
    },
    // This plugin writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true })
  }
}

/**
 * One log line per request, at the end, with the route, status, time and trace ids (Fastify's
 * own pair of lines is turned off by requestLogOptions: half the logging, and the first line came
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
        // The X-Process-Time header's number (the server span has it too: one clock).
        responseTime: processTimeMs(request.timings)
      }
      // The trace as traceresponse named it, with the final keep decision in its flags (these
      // override what the logger's mixin takes from the active context).
      const ids = traceIdsOf(request)
      if (ids) {
        entry.trace_id = ids.traceId
        entry.span_id = ids.spanId
        entry.trace_flags = ids.sampled ? '01' : '00'
      }
      request.log.info(entry, 'request completed')
      done()
    })
  },
  { name: 'request-log', dependencies: ['telemetry'] }
)
