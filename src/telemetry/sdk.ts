import type { IncomingMessage } from 'node:http'
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api'
import type { Instrumentation } from '@opentelemetry/instrumentation'
import { AlwaysOffSampler, type Sampler, type SpanProcessor } from '@opentelemetry/sdk-trace'
import type { AppConfig, DbConfig } from '../config'
import { DEFAULT_INSTRUMENTATIONS } from './constants'
import { DbServerTimings } from './db-server'
import { PooledIdGenerator } from './ids'
import { NodeSdk } from './node-sdk'
import { spanProcessorsFromEnv } from './exporters'
import type { TelemetryRuntime } from './runtime'
import { TimingSpanProcessor } from './timing-processor'
import { KeepPolicy } from './keep'
import { KeptSpans } from './kept-spans'
import { SCOPE } from './names'
import { TailSpanProcessor } from './tail'
import { samplerFromEnv, TrustAwareSampler } from './trust'

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

/**
 * The instrumentations the app can load, each required only when enabled: the
 * auto-instrumentations bundle loaded ~40 packages (~36 MB RSS) for the few used. SQL spans are
 * the app's own (./sql.ts), server spans too unless `http` is enabled (./plugin.ts).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- each package is loaded only when enabled */
const INSTRUMENTATIONS: Record<string, (o: { isUntraced: (url: string) => boolean }) => Instrumentation | undefined> = {
  http: ({ isUntraced }) => {
    const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http')
    return new HttpInstrumentation({
      ignoreIncomingRequestHook: (req: IncomingMessage) => isUntraced(req.url ?? ''),
      // The app makes no outgoing HTTP calls of its own; exporters' calls are not traced.
      disableOutgoingRequestInstrumentation: true
    })
  },
  pino: () => {
    // Trace ids go into log lines through the app's own pino mixin (./log-correlation.ts); the
    // instrumentation only sends log records, and is loaded only when logs are exported.
    if ((process.env.OTEL_LOGS_EXPORTER ?? 'none') === 'none') return undefined
    const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino') as typeof import('@opentelemetry/instrumentation-pino')
    return new PinoInstrumentation({ disableLogCorrelation: true })
  },
  'runtime-node': () => {
    const { RuntimeNodeInstrumentation } = require('@opentelemetry/instrumentation-runtime-node') as typeof import('@opentelemetry/instrumentation-runtime-node')
    return new RuntimeNodeInstrumentation()
  },
  'aws-sdk': () => {
    const { AwsInstrumentation } = require('@opentelemetry/instrumentation-aws-sdk') as typeof import('@opentelemetry/instrumentation-aws-sdk')
    return new AwsInstrumentation()
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * OTEL_NODE_ENABLED_INSTRUMENTATIONS less OTEL_NODE_DISABLED_INSTRUMENTATIONS, as the standard
 * short names (`http`, `pino`, ...); a name the app does not offer is ignored with a warning.
 */
export function enabledInstrumentations(env: NodeJS.ProcessEnv): string[] {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const disabled = new Set(list(env.OTEL_NODE_DISABLED_INSTRUMENTATIONS))
  const out: string[] = []
  for (const name of list(env.OTEL_NODE_ENABLED_INSTRUMENTATIONS)) {
    if (disabled.has(name) || out.includes(name)) continue
    if (INSTRUMENTATIONS[name]) out.push(name)
    else if (name === 'mysql2') diag.warn('OTEL_NODE_ENABLED_INSTRUMENTATIONS: mysql2 is ignored, the app makes the SQL spans itself (src/telemetry/sql.ts)')
    else diag.warn(`OTEL_NODE_ENABLED_INSTRUMENTATIONS: ${name} is not available (the app offers ${Object.keys(INSTRUMENTATIONS).join(', ')})`)
  }
  return out
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

/** What a test may set in place of the environment's choice. */
export interface SdkOverrides {
  sampler?: Sampler
}

export interface TelemetryOptions {
  serverTimings: DbConfig['serverTimings']
  /** Span consumers besides the exporters (the inspector's buffer): they see spans after the timing processor. */
  processors?: SpanProcessor[]
  /** Requests that get no server span (the http instrumentation's ignore hook; the app's hooks get the same from app.ts). */
  isUntraced?: (url: string) => boolean
  /** Whose encoder writes OTLP/protobuf span exports (./otlp-proto.ts); the app's by default. */
  otlpProtobufEncoder?: AppConfig['otlpProtobufEncoder']
  /** Which requests' traces are kept besides the sampler's (./keep.ts); defaults: the slowest 1% per route. */
  keep?: { slowestPercent: number; slowerThanMs: number }
  /** Tests pass their own sampler. */
  sdk?: SdkOverrides
}

/**
 * Starts the SDK (unless OTEL_SDK_DISABLED=true) and returns what the app needs from it
 * (./runtime.ts); the composition root (otel/bootstrap.ts) hands that on. Exporters, sampler and
 * batching come from the standard OTEL_* variables.
 */
export function startTelemetry(opts: TelemetryOptions): (TelemetryRuntime & { sdk: NodeSdk }) | null {
  if ((process.env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return null
  applyEnvDefaults()
  diag.setLogger(rateLimitedDiagLogger(), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  const enabled = enabledInstrumentations(process.env)

  // No endpoint and no exporter chosen: still trace (traceresponse, logs with trace ids), but
  // send spans nowhere rather than to a localhost:4318 that is probably not there.
  const env = process.env
  const exportTraces = Boolean(env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  // Every span passes the timing processor first (loop-busy time, the database's own time), so
  // `spanProcessors` replaces the env-configured exporters, which are built here (./exporters.ts).
  const serverTimings = opts.serverTimings.enabled ? new DbServerTimings(opts.serverTimings.pollMs) : null
  const next: SpanProcessor[] = [...(exportTraces ? spanProcessorsFromEnv(opts.otlpProtobufEncoder ?? 'app') : []), ...(opts.processors ?? [])]
  const isUntraced = opts.isUntraced ?? (() => false)
  const inner = opts.sdk?.sampler ?? samplerFromEnv()
  // The app marks parents sent by untrusted clients (TRUSTED_TRACE_SOURCES); see ./trust.ts.
  const trustAware = new TrustAwareSampler(inner)
  const keep = new KeepPolicy({
    slowestPercent: opts.keep?.slowestPercent ?? 1,
    slowerThanMs: opts.keep?.slowerThanMs ?? 0,
    sampler: trustAware,
    off: inner instanceof AlwaysOffSampler
  })
  // Spans of other instrumentations wait for their request's keep decision (./tail.ts); a kept
  // request's own spans are written after it (./kept-spans.ts) and go straight to the timing join.
  const timing = new TimingSpanProcessor(next, serverTimings)
  const tail = new TailSpanProcessor(timing)
  const ids = new PooledIdGenerator()
  const sdk = new NodeSdk({
    sampler: trustAware,
    spanProcessors: [tail],
    idGenerator: ids,
    instrumentations: enabled.map((name) => INSTRUMENTATIONS[name]!({ isUntraced })).filter((i) => i !== undefined)
  })
  sdk.start()
  const kept = new KeptSpans(sdk.spanOrigin(SCOPE), timing, () => ids.generateSpanId())

  // Flush spans on the way out; the app's own SIGTERM handler closes the server first.
  process.once('beforeExit', () => {
    sdk.shutdown().catch((err: unknown) => diag.warn('shutdown failed', err))
  })
  return { sdk, serverSpans: enabled.includes('http') ? 'http' : 'app', logCorrelation: enabled.includes('pino'), serverTimings, keep, tail, ids, kept }
}
