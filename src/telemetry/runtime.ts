import type { DbServerTimings } from './db-server'
import type { PooledIdGenerator } from './ids'
import type { KeepPolicy } from './keep'
import type { KeptSpans } from './kept-spans'
import type { TailSpanProcessor } from './tail'

/** What the SDK start hands to the app (through the composition root, src/observability.ts). */
export interface TelemetryRuntime {
  /** 'app': the app's Fastify hooks make server spans; 'http': the http instrumentation does. */
  serverSpans: 'app' | 'http'
  /** Trace ids on every log line (the `pino` instrumentation enabled): the logger's mixin, ./log-correlation.ts. */
  logCorrelation: boolean
  /** The performance_schema reader when DB_SERVER_TIMINGS=true; the app starts it on its database. */
  serverTimings: DbServerTimings | null
  /** Decides at each request's end whether its trace is kept (app server spans only). */
  keep: KeepPolicy
  /** Holds other instrumentations' spans until that decision. */
  tail: TailSpanProcessor
  /** The SDK's id generator: a request's ids are given out at its start. */
  ids: PooledIdGenerator
  /** Writes a kept request's spans from its record. */
  kept: KeptSpans
}
