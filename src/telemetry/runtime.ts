import type { TraceSource } from '../inspector/trace-buffer'
import type { DbServerTimings } from './db-server'

/**
 * What the SDK bootstrap (loaded with --require before the app) hands to the app: which side
 * makes the server spans, and the inspector's trace buffer. server.ts reads it once and passes it
 * to the app as an option; nothing else imports this module's state.
 */
export interface TelemetryRuntime {
  /** 'app': the app's Fastify hooks make server spans; 'http': the http instrumentation does. */
  serverSpans: 'app' | 'http'
  /** The inspector's buffer when INSPECTOR_ENABLED=true, else null. */
  traces: TraceSource | null
  /** The performance_schema reader when DB_SERVER_TIMINGS=true; the app starts it on its database. */
  serverTimings: DbServerTimings | null
}

// Module state is the handoff: bootstrap.js and server.js load this same compiled file.
let started: TelemetryRuntime | null = null

export function setTelemetryRuntime(runtime: TelemetryRuntime | null): void {
  started = runtime
}

/** null when the SDK was not loaded (no --require) or OTEL_SDK_DISABLED=true. */
export function telemetryRuntime(): TelemetryRuntime | null {
  return started
}
