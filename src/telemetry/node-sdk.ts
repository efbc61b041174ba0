import { context, diag, DiagConsoleLogger, logs, metrics, propagation, trace, type TextMapPropagator } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  CompositePropagator, diagLogLevelFromString, getBooleanFromEnv, getNumberFromEnv, getStringFromEnv, getStringListFromEnv,
  W3CBaggagePropagator, W3CTraceContextPropagator, type InstrumentationScope
} from '@opentelemetry/core'
import { registerInstrumentations, type Instrumentation } from '@opentelemetry/instrumentation'
import {
  defaultResource, detectResources, envDetector, hostDetector, osDetector, processDetector, serviceInstanceIdDetector,
  type Resource, type ResourceDetector
} from '@opentelemetry/resources'
import {
  AggregationTemporality, ConsoleMetricExporter, InstrumentType, MeterProvider, PeriodicExportingMetricReader, type MetricReader, type PushMetricExporter
} from '@opentelemetry/sdk-metrics'
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs'
import { appHistograms } from './histograms'
import type { SpanOrigin } from './kept-spans'
import { TracerProvider, type IdGenerator, type Sampler, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace'

/* eslint-disable @typescript-eslint/no-require-imports -- each exporter or propagator package is loaded only when the environment chooses it */

export interface NodeSdkOptions {
  sampler: Sampler
  spanProcessors: SpanProcessor[]
  idGenerator: IdGenerator
  instrumentations: Instrumentation[]
}

/**
 * What NodeSDK (@opentelemetry/sdk-node 0.301, dist/sdk.cjs and utils.cjs) sets up from the
 * OTEL_* environment, for what this app gives it (its own sampler, span processors and id
 * generator), with each exporter and propagator package loaded only when the environment names
 * it. sdk-node requires every one it could build when it is imported (gRPC, Zipkin, Prometheus,
 * B3, the logs SDK and its three exporters, the declarative configuration's YAML parser): that
 * was ~23 MB of the traced app's resident set at rest (measured, Node 24). sdk-node is not a
 * dependency: when the OTel packages are upgraded, compare with the sdk-node release of the same
 * series (`npm pack @opentelemetry/sdk-node@<version>`): resource detectors, metric readers,
 * propagators, span limits, logs.
 */
export class NodeSdk {
  private tracerProvider: TracerProvider | undefined
  private meterProvider: MeterProvider | undefined
  private loggerProvider: { shutdown(): Promise<void> } | undefined
  private resource: Resource | undefined
  private spanLimits: SpanLimits = {}

  constructor(private readonly opts: NodeSdkOptions) {
    const level = getStringFromEnv('OTEL_LOG_LEVEL')
    if (level !== undefined) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(level) })
  }

  start(): void {
    const { instrumentations } = this.opts
    registerInstrumentations({ instrumentations })
    const contextManager = new AsyncLocalStorageContextManager()
    contextManager.enable()
    context.setGlobalContextManager(contextManager)
    const propagator = propagatorFromEnv()
    if (propagator) propagation.setGlobalPropagator(propagator)

    const resource = defaultResource().merge(detectResources({ detectors: resourceDetectorsFromEnv() }))
    const selfMetrics = getBooleanFromEnv('OTEL_NODE_EXPERIMENTAL_SDK_METRICS')
    const readers = metricReadersFromEnv()
    if (readers.length > 0) {
      this.meterProvider = new MeterProvider({ resource, readers, views: [], sdkMetricsEnabled: selfMetrics })
      metrics.setGlobalMeterProvider(this.meterProvider)
      for (const instrumentation of instrumentations) instrumentation.setMeterProvider(metrics.getMeterProvider())
    }
    this.resource = resource
    this.spanLimits = spanLimitsFromEnv()
    this.tracerProvider = new TracerProvider({
      sampler: this.opts.sampler,
      spanLimits: this.spanLimits,
      resource,
      ...(selfMetrics && this.meterProvider ? { meterProvider: this.meterProvider } : {}),
      idGenerator: this.opts.idGenerator,
      spanProcessors: this.opts.spanProcessors
    })
    trace.setGlobalTracerProvider(this.tracerProvider)
    this.loggerProvider = loggerProviderFromEnv(resource)
  }

  /**
   * What a span made outside the SDK's tracer (./kept-spans.ts) shares with the spans of the
   * tracer `scopeName`: the same resource and scope objects (exports group spans by them) and the
   * span limits the environment set. After start().
   */
  spanOrigin(scopeName: string): SpanOrigin {
    const tracer = this.tracerProvider!.getTracer(scopeName) as unknown as { instrumentationScope: InstrumentationScope }
    return { resource: this.resource!, scope: tracer.instrumentationScope, limits: this.spanLimits }
  }

  async shutdown(): Promise<void> {
    await Promise.all([this.tracerProvider?.shutdown(), this.loggerProvider?.shutdown(), this.meterProvider?.shutdown()])
  }
}

/** OTEL_PROPAGATORS; unset: W3C trace context and baggage. null: none. */
function propagatorFromEnv(): TextMapPropagator | null {
  const names = getStringListFromEnv('OTEL_PROPAGATORS')
  if (names === undefined) return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] })
  if (names.includes('none')) return null
  const make: Record<string, () => TextMapPropagator> = {
    tracecontext: () => new W3CTraceContextPropagator(),
    baggage: () => new W3CBaggagePropagator(),
    b3: () => new (require('@opentelemetry/propagator-b3') as typeof import('@opentelemetry/propagator-b3')).B3Propagator(),
    b3multi: () => {
      const b3 = require('@opentelemetry/propagator-b3') as typeof import('@opentelemetry/propagator-b3')
      return new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.MULTI_HEADER })
    }
  }
  const unique = [...new Set(names)]
  const found = unique.flatMap((name) => {
    if (make[name]) return [make[name]()]
    diag.warn(`Propagator "${name}" requested through environment variable is unavailable.`)
    return []
  })
  if (found.length === 0) return null
  return unique.length === 1 ? found[0]! : new CompositePropagator({ propagators: found })
}

/** OTEL_NODE_RESOURCE_DETECTORS (env, host, os, process, serviceinstance, all, none); unset: all of them. */
function resourceDetectorsFromEnv(): ResourceDetector[] {
  const all: Record<string, ResourceDetector> = { env: envDetector, host: hostDetector, os: osDetector, process: processDetector, serviceinstance: serviceInstanceIdDetector }
  const names = getStringListFromEnv('OTEL_NODE_RESOURCE_DETECTORS')
  if (names === undefined || names.length === 0 || names.includes('all')) return [serviceInstanceIdDetector, processDetector, hostDetector, osDetector, envDetector]
  if (names.includes('none')) return []
  return names.flatMap((name) => {
    if (all[name]) return [all[name]]
    diag.warn(`Invalid resource detector "${name}" specified in the environment variable OTEL_NODE_RESOURCE_DETECTORS`)
    return []
  })
}

function spanLimitsFromEnv(): SpanLimits {
  return {
    attributeCountLimit: getNumberFromEnv('OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT') ?? getNumberFromEnv('OTEL_ATTRIBUTE_COUNT_LIMIT'),
    attributeValueLengthLimit: getNumberFromEnv('OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? getNumberFromEnv('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'),
    eventCountLimit: getNumberFromEnv('OTEL_SPAN_EVENT_COUNT_LIMIT'),
    linkCountLimit: getNumberFromEnv('OTEL_SPAN_LINK_COUNT_LIMIT'),
    attributePerEventCountLimit: getNumberFromEnv('OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT') ?? getNumberFromEnv('OTEL_SPAN_ATTRIBUTE_PER_EVENT_COUNT_LIMIT'),
    attributePerLinkCountLimit: getNumberFromEnv('OTEL_LINK_ATTRIBUTE_COUNT_LIMIT') ?? getNumberFromEnv('OTEL_SPAN_ATTRIBUTE_PER_LINK_COUNT_LIMIT')
  }
}

/** A number variable that must be above 0; anything else means the default. */
function positive(name: string): number | undefined {
  const n = getNumberFromEnv(name)
  if (n !== undefined && n <= 0) {
    diag.warn(`${name} (${n}) is invalid, expected number greater than 0, using default.`)
    return undefined
  }
  return n
}

/** The OTLP protocol of a signal: its own variable, then OTEL_EXPORTER_OTLP_PROTOCOL, then http/protobuf. */
function otlpProtocol(signal: 'METRICS' | 'LOGS'): string {
  return (getStringFromEnv(`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`) ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL'))?.trim() || 'http/protobuf'
}

function otlpMetricExporter(): PushMetricExporter {
  const protocol = otlpProtocol('METRICS')
  if (protocol === 'grpc') return new (require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter()
  if (protocol === 'http/json') return new (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter()
  if (protocol !== 'http/protobuf') diag.warn(`Unsupported OTLP metrics protocol: "${protocol}". Using http/protobuf.`)
  return new (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter()
}

/** OTEL_METRICS_EXPORTER (otlp, console, prometheus, none), with OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT. */
function metricReadersFromEnv(): MetricReader[] {
  const names = [...new Set(getStringListFromEnv('OTEL_METRICS_EXPORTER') ?? [])]
  if (names.length === 0) names.push('otlp')
  if (names.includes('none')) return []
  // The app's own histograms (./histograms.ts) go to every reader, in its exporter's temporality.
  const periodic = (exporter: PushMetricExporter, interval?: number, timeout?: number) =>
    new PeriodicExportingMetricReader({
      exporter,
      ...(interval !== undefined ? { exportIntervalMillis: interval, exportTimeoutMillis: Math.min(timeout ?? interval, interval) } : {}),
      metricProducers: [appHistograms.producer(exporter.selectAggregationTemporality?.(InstrumentType.HISTOGRAM) ?? AggregationTemporality.CUMULATIVE)]
    })
  const readers = names.flatMap((name): MetricReader[] => {
    if (name === 'otlp') {
      const interval = positive('OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000
      const timeout = positive('OTEL_METRIC_EXPORT_TIMEOUT') ?? 30_000
      return [periodic(otlpMetricExporter(), interval, timeout)]
    }
    if (name === 'console') return [periodic(new ConsoleMetricExporter())]
    if (name === 'prometheus') {
      const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus')
      return [
        new PrometheusExporter({
          host: getStringFromEnv('OTEL_EXPORTER_PROMETHEUS_HOST'),
          port: getNumberFromEnv('OTEL_EXPORTER_PROMETHEUS_PORT'),
          metricProducers: [appHistograms.producer(AggregationTemporality.CUMULATIVE)]
        })
      ]
    }
    diag.warn(`Unsupported OTEL_METRICS_EXPORTER value: "${name}". Supported values are: otlp, console, prometheus, none.`)
    return []
  })
  appHistograms.enabled = readers.length > 0
  return readers
}

/** OTEL_LOGS_EXPORTER (otlp, console, none; the app defaults it to none): the logs SDK only when asked for. */
function loggerProviderFromEnv(resource: Resource): { shutdown(): Promise<void> } | undefined {
  const names = [...new Set(getStringListFromEnv('OTEL_LOGS_EXPORTER') ?? [])]
  if (names.length === 0) names.push('otlp')
  if (names.includes('none')) return undefined
  const sdkLogs = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs')
  const processors = names.flatMap((name): LogRecordProcessor[] => {
    if (name === 'console') return [new sdkLogs.SimpleLogRecordProcessor({ exporter: new sdkLogs.ConsoleLogRecordExporter() })]
    if (name !== 'otlp') {
      diag.warn(`Unsupported OTEL_LOGS_EXPORTER value: "${name}". Supported values are: otlp, console, none.`)
      return []
    }
    const protocol = otlpProtocol('LOGS')
    const exporter =
      protocol === 'grpc' ? new (require('@opentelemetry/exporter-logs-otlp-grpc') as typeof import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter()
        : protocol === 'http/json' ? new (require('@opentelemetry/exporter-logs-otlp-http') as typeof import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter()
          : new (require('@opentelemetry/exporter-logs-otlp-proto') as typeof import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter()
    return [new sdkLogs.BatchLogRecordProcessor({
      exporter,
      maxQueueSize: positive('OTEL_BLRP_MAX_QUEUE_SIZE'),
      scheduledDelayMillis: positive('OTEL_BLRP_SCHEDULE_DELAY'),
      exportTimeoutMillis: positive('OTEL_BLRP_EXPORT_TIMEOUT'),
      maxExportBatchSize: positive('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE')
    })]
  })
  if (processors.length === 0) return undefined
  const provider = new sdkLogs.LoggerProvider({
    resource,
    processors,
    logRecordLimits: {
      attributeCountLimit: positive('OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT') ?? positive('OTEL_ATTRIBUTE_COUNT_LIMIT'),
      attributeValueLengthLimit: positive('OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? positive('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT')
    }
  })
  logs.setGlobalLoggerProvider(provider)
  return provider
}
/* eslint-enable @typescript-eslint/no-require-imports */
