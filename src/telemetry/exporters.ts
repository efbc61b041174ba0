import { diag } from '@opentelemetry/api'
import { getNumberFromEnv, getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core'
import { OTLPTraceExporter as OTLPGrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc'
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin'
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace'
import type { AppConfig } from '../config'
import { OtlpProtoTraceExporter } from './otlp-proto'

/**
 * The span processors NodeSDK would build from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and
 * OTEL_BSP_*. NodeSDK only builds them when `spanProcessors` is not given, and does not export
 * the function (sdk-node 0.301 dist/utils.cjs getSpanProcessorsFromEnv): to add a processor of
 * our own alongside, we build the same list here. Keep in step with that function on upgrades.
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
    else processors.push(batchFromEnv(exporter))
  }
  return processors
}

function exporterFor(name: string, protobufEncoder: AppConfig['otlpProtobufEncoder']): SpanExporter | undefined {
  if (name === 'zipkin') return new ZipkinExporter()
  if (name === 'console') return new ConsoleSpanExporter()
  if (name !== 'otlp') return undefined
  const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf'
  if (protocol === 'grpc') return new OTLPGrpcTraceExporter()
  if (protocol === 'http/json') return new OTLPJsonTraceExporter()
  if (protocol !== 'http/protobuf') diag.warn(`Unsupported OTLP traces protocol: ${protocol}. Using http/protobuf.`)
  // The same exporter either way; the app's encoder writes the same bytes for less CPU (./otlp-proto.ts).
  return protobufEncoder === 'app' ? new OtlpProtoTraceExporter() : new OTLPProtoTraceExporter()
}

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
