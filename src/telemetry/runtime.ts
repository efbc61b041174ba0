import type { DbServerTimings } from './db-server'

/** What the SDK start hands to the app (through the composition root, src/observability.ts). */
export interface TelemetryRuntime {
  /** 'app': the app's Fastify hooks make server spans; 'http': the http instrumentation does. */
  serverSpans: 'app' | 'http'
  /** The performance_schema reader when DB_SERVER_TIMINGS=true; the app starts it on its database. */
  serverTimings: DbServerTimings | null
}
