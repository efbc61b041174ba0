import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { InspectorConfig } from '../config'
import { traceIdsOf } from '../telemetry/plugin'
import { elapsedMs } from '../telemetry/timing'
import inspectorRoutes from './routes'
import { INSPECTOR_PREFIX, isInspectorPath } from './prefix'
import { formatMs } from './format'
import type { TraceSource } from './trace-buffer'
import { UnkeptTraces } from './unkept'

/**
 * The request timing badge at the foot of a page. Read by the layout when it renders, after the
 * handler's queries, so its numbers are the request's so far (the Server-Timing header has the
 * final ones).
 */
export class Badge {
  constructor(
    private readonly request: FastifyRequest,
    _reply?: FastifyReply
  ) {}

  get total(): string {
    return formatMs(elapsedMs(this.request.timings))
  }

  get db(): string {
    return formatMs(this.request.timings?.dbMs ?? 0)
  }

  get queries(): number {
    return this.request.timings?.queries ?? 0
  }

  /**
   * The trace page, when this request is traced. The page renders before its request ends, so
   * before the keep decision: a trace that was not kept shows as such there.
   */
  get href(): string | undefined {
    const ids = traceIdsOf(this.request)
    return ids ? `${INSPECTOR_PREFIX}/traces/${ids.traceId}` : undefined
  }
}

export interface InspectorOptions {
  config: InspectorConfig
  /** The buffer the OTel bootstrap fills (null without it: the pages say so). */
  traces: TraceSource | null
  /** The performance_schema reader, to say why a trace has no DB server time (null: DB_SERVER_TIMINGS off or no SDK). */
  serverTimings?: { readonly enabled: boolean } | null
}

/**
 * The request inspector: /_inspect/ pages over the traces kept by the span processor that the
 * OTel bootstrap installs (./processor.ts), and the optional badge. Registers
 * nothing when disabled, so /_inspect/* is the app's ordinary 404.
 */
export default fp<InspectorOptions>(
  async (fastify, { config, traces, serverTimings = null }) => {
    if (!config.enabled) return
    // After the telemetry plugin's hooks, which decide at onSend whether a trace is kept.
    const unkept = traces ? new UnkeptTraces() : null
    if (unkept) {
      fastify.addHook('onResponse', (request, _reply, done) => {
        const ids = traceIdsOf(request)
        if (ids && !ids.sampled && !isInspectorPath(request.url)) unkept.add(ids.traceId)
        done()
      })
    }
    if (config.badge) {
      fastify.addHook('onRequest', (request, reply, done) => {
        if (!isInspectorPath(request.url)) {
          const r = reply as unknown as { locals?: Record<string, unknown> }
          r.locals ??= {}
          r.locals.inspectorCss = true
          r.locals.inspectorBadge = new Badge(request, reply)
        }
        done()
      })
    }
    // No per-request log line for these pages: the URL can carry ?token= (denials are logged).
    await fastify.register(inspectorRoutes, { prefix: INSPECTOR_PREFIX, config, traces, unkept, serverTimings, logLevel: 'warn' })
  },
  { name: 'inspector', dependencies: ['telemetry'] }
)
