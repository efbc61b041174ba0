import type { AppConfig } from './config'
import { InspectorSpanProcessor } from './inspector/processor'
import type { TraceSource } from './inspector/trace-buffer'
import { startTelemetry, type SdkOverrides } from './telemetry/sdk'
import type { TelemetryRuntime } from './telemetry/runtime'
import { isUntraced } from './untraced'

/**
 * The composition root of the observability side: starts the SDK with the inspector's span
 * processor as one more consumer, and hands both to the app. Telemetry knows nothing of the
 * inspector (eslint forbids the import); the inspector reads telemetry's names.
 */
export interface Observability {
  /** null when OTEL_SDK_DISABLED=true, or nothing was started (no --require). */
  telemetry: (TelemetryRuntime & { shutdown(): Promise<void> }) | null
  /** The inspector's buffer when INSPECTOR_ENABLED=true and the SDK runs, else null. */
  traces: TraceSource | null
}

const NOTHING: Observability = { telemetry: null, traces: null }

export function startObservability(
  config: Pick<AppConfig, 'inspector' | 'otlpProtobufEncoder' | 'traceKeep'> & { db: Pick<AppConfig['db'], 'serverTimings'> },
  sdk?: SdkOverrides
): Observability {
  const inspector = config.inspector.enabled ? new InspectorSpanProcessor(config.inspector.maxTraces, config.inspector.maxBytes) : null
  const started = startTelemetry({
    serverTimings: config.db.serverTimings,
    otlpProtobufEncoder: config.otlpProtobufEncoder,
    processors: inspector ? [inspector] : [],
    isUntraced,
    keep: config.traceKeep,
    sdk
  })
  if (!started) return NOTHING
  const { sdk: running, ...runtime } = started
  return { telemetry: { ...runtime, shutdown: () => running.shutdown() }, traces: inspector?.buffer ?? null }
}

// Module state is the handoff: otel/bootstrap.js (node --require) and server.js load this same
// compiled file; nothing else reads it.
let published: Observability = NOTHING

export function publishObservability(o: Observability): void {
  published = o
}

/** What the bootstrap started, for server.ts. */
export function startedObservability(): Observability {
  return published
}
