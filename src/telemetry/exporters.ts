import { diag } from '@opentelemetry/api'
import { getNumberFromEnv, getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core'
import type { Context } from '@opentelemetry/api'
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace'
import type { AppConfig } from '../config'
import { encodeSpanEntry, OtlpProtoTraceExporter } from './otlp-proto'

/**
 * The span processors NodeSDK would build from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and
 * OTEL_BSP_* (sdk-node 0.301 dist/utils.cjs getSpanProcessorsFromEnv), built here so that a
 * processor of our own runs first (./sdk.ts). sdk-node is not installed: compare with that
 * function of the same release series on upgrades (./node-sdk.ts says how).
 */
export function spanProcessorsFromEnv(protobufEncoder: AppConfig['otlpProtobufEncoder']): SpanProcessor[] {
  let names = [...new Set(getStringListFromEnv('OTEL_TRACES_EXPORTER') ?? [])].filter((n) => n !== 'null')
  if (names[0] === 'none') return []
  if (names.length === 0 || names.includes('none')) names = ['otlp']

  const processors: SpanProcessor[] = []
  for (const name of names) {
    const exporter = exporterFor(name, protobufEncoder)
    if (!exporter) diag.warn(`Unrecognized OTEL_TRACES_EXPORTER value: ${name}.`)
    else if (exporter instanceof ConsoleSpanExporter) processors.push(new SimpleSpanProcessor({ exporter }))
    else if (exporter instanceof OtlpProtoTraceExporter) processors.push(new EncodeAtEnd(batchFromEnv(exporter)))
    else processors.push(batchFromEnv(exporter))
  }
  return processors
}

/* eslint-disable @typescript-eslint/no-require-imports -- an exporter package is loaded only when chosen (the gRPC one alone is ~66 modules) */
function exporterFor(name: string, protobufEncoder: AppConfig['otlpProtobufEncoder']): SpanExporter | undefined {
  if (name === 'zipkin') return new (require('@opentelemetry/exporter-zipkin') as typeof import('@opentelemetry/exporter-zipkin')).ZipkinExporter()
  if (name === 'console') return new ConsoleSpanExporter()
  if (name !== 'otlp') return undefined
  const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf'
  if (protocol === 'grpc') return new (require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter()
  if (protocol === 'http/json') return new (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
  if (protocol !== 'http/protobuf') diag.warn(`Unsupported OTLP traces protocol: ${protocol}. Using http/protobuf.`)
  // The same exporter either way; the app's encoder writes the same bytes for less CPU (./otlp-proto.ts).
  if (protobufEncoder === 'app') return new OtlpProtoTraceExporter()
  return new (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter()
}
/* eslint-enable @typescript-eslint/no-require-imports */

function batchFromEnv(exporter: SpanExporter): BatchSpanProcessor {
  // Zero or less means "use the default", as in sdk-node.
  const num = (key: string) => {
    const n = getNumberFromEnv(key)
    return n !== undefined && n > 0 ? n : undefined
  }
  return new BatchSpanProcessor({
    exporter,
    maxQueueSize: num('OTEL_BSP_MAX_QUEUE_SIZE'),
    scheduledDelayMillis: num('OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: num('OTEL_BSP_EXPORT_TIMEOUT'),
    maxExportBatchSize: num('OTEL_BSP_MAX_EXPORT_BATCH_SIZE')
  })
}

/**
 * In front of the batch of the app's OTLP/protobuf exporter: each span is encoded when it ends
 * and the batch holds its bytes (./otlp-proto.ts EncodedSpan), not the span object graph, until
 * it is sent. The batch's own rules (queue size, batch size, delay, timeout) are unchanged.
 */
export class EncodeAtEnd implements SpanProcessor {
  constructor(private readonly batch: BatchSpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    this.batch.onStart(span, parentContext)
  }

  onEnd(span: ReadableSpan): void {
    // The batch drops unsampled spans: no need to encode them. A kept request's spans end inside
    // KeptSpans.write (./kept-spans.ts), whose self-cost ('spans') then covers their encoding too.
    if ((span.spanContext().traceFlags & 1) === 0) return
    this.batch.onEnd(encodeSpanEntry(span) as unknown as ReadableSpan)
  }

  forceFlush(): Promise<void> {
    return this.batch.forceFlush()
  }

  shutdown(): Promise<void> {
    return this.batch.shutdown()
  }
}
