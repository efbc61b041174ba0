import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api'
import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node'
import type { IncomingMessage } from 'node:http'
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node'
import type { SpanProcessor } from '@opentelemetry/sdk-trace'
import { spanProcessorsFromEnv } from './env-span-processors'
import { inspectorProcessorFromEnv } from './inspector-processor'

// Only what the app uses: mysql2 (one span per statement), pino (trace ids in logs),
// runtime-node (event loop, heap). fs, dns and net spans are noise. Server spans, traceparent
// and http.server.request.duration come from the app's Fastify hooks (src/plugins/telemetry.ts),
// measured cheaper than the http instrumentation; add `http` to use that instead.
export const DEFAULT_INSTRUMENTATIONS = 'mysql2,pino,runtime-node'

/** Health probes are not worth a trace each. */
const UNTRACED_PATHS = new Set(['/health', '/ready'])

/** Export errors arrive as a whole serialised error, stack and all: keep its message. */
function shortMessage(message: string): string {
  if (!message.startsWith('{')) return message
  try {
    const parsed = JSON.parse(message) as { message?: string; code?: string }
    return parsed.message ? `${parsed.message}${parsed.code ? ` (${parsed.code})` : ''}` : message
  } catch {
    return message
  }
}

/**
 * A diag logger that prints each distinct problem once a minute: an unreachable collector
 * gives one warning line, not one per export attempt.
 */
export function rateLimitedDiagLogger(write: (line: string) => void = (l) => process.stderr.write(l + '\n'), everyMs = 60_000): DiagLogger {
  const last = new Map<string, number>()
  const emit = (level: string) => (message: string, ...args: unknown[]) => {
    const key = level + message
    const now = Date.now()
    if (now - (last.get(key) ?? -Infinity) < everyMs) return
    last.set(key, now)
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ')
    write(JSON.stringify({ level, msg: `opentelemetry: ${shortMessage(message)}`, detail, repeatsSuppressedForMs: everyMs }))
  }
  const ignore = () => undefined
  return { error: emit('error'), warn: emit('warn'), info: ignore, debug: ignore, verbose: ignore }
}

// The SDK registers no tracer provider without a processor; this one keeps spans nowhere.
const discardSpans: SpanProcessor = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: async () => undefined,
  shutdown: async () => undefined
}

/** Fills in this project's defaults for OTEL_* variables the user did not set. */
export function applyEnvDefaults(env: NodeJS.ProcessEnv = process.env): void {
  env.OTEL_SERVICE_NAME ??= 'blog-app'
  env.OTEL_NODE_ENABLED_INSTRUMENTATIONS ??= DEFAULT_INSTRUMENTATIONS
  // Stable HTTP semantic conventions: http.server.request.duration in seconds, http.route.
  env.OTEL_SEMCONV_STABILITY_OPT_IN ??= 'http'
  // The SDK would otherwise push metrics to localhost:4318 every 60 s even with no collector.
  const endpointSet = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
  env.OTEL_METRICS_EXPORTER ??= endpointSet ? 'otlp' : 'none'
  env.OTEL_LOGS_EXPORTER ??= 'none'
}

/**
 * Starts the SDK (unless OTEL_SDK_DISABLED=true). Tests pass their own span processors and
 * metric readers; otherwise exporters come from the environment.
 */
export function startTelemetry(overrides: Partial<NodeSDKConfiguration> = {}): NodeSDK | null {
  if ((process.env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return null
  applyEnvDefaults()
  // Without the http instrumentation, the app's Fastify plugin makes the server spans.
  const enabled = (process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS ?? '').split(',').map((s) => s.trim())
  ;(globalThis as Record<symbol, unknown>)[Symbol.for('blog_app.otel.serverSpansByFastify')] = !enabled.includes('http')
  diag.setLogger(rateLimitedDiagLogger(), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })

  // No endpoint and no exporter chosen: still trace (traceresponse, logs with trace ids), but
  // send spans nowhere rather than to a localhost:4318 that is probably not there.
  const env = process.env
  const exportTraces = Boolean(env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  // The request inspector (INSPECTOR_ENABLED=true) keeps recent traces in memory alongside the
  // exporter: `spanProcessors` replaces the env-configured ones, so they are built here too.
  const inspector = inspectorProcessorFromEnv()
  const sdk = new NodeSDK({
    ...(inspector
      ? { spanProcessors: [...(exportTraces ? spanProcessorsFromEnv() : []), inspector] }
      : exportTraces ? {} : { spanProcessors: [discardSpans] }),
    instrumentations: [
      getNodeAutoInstrumentations({
        '@opentelemetry/instrumentation-http': {
          // The request inspector's own pages are not traced either (src/inspector).
          ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_PATHS.has(req.url ?? '') || (req.url ?? '').startsWith('/_inspect'),
          // The app makes no outgoing HTTP calls of its own; exporters' calls are not traced.
          disableOutgoingRequestInstrumentation: true
        },
        '@opentelemetry/instrumentation-mysql2': {
          // Never put parameter values (user content) into spans.
          maskStatement: true
        }
      })
    ],
    ...overrides
  })
  sdk.start()

  // Flush spans on the way out; the app's own SIGTERM handler closes the server first.
  const shutdown = () => {
    sdk.shutdown().catch((err: unknown) => diag.warn('shutdown failed', err))
  }
  process.once('beforeExit', shutdown)
  return sdk
}
