import type { Attributes, AttributeValue, Link, SpanContext } from '@opentelemetry/api'
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base'
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base/node-http'
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer'
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace'
import { measured } from './self-cost'
import { FIXED32, FIXED64, VARINT, Writer } from './protobuf-writer'

type Resource = ReadableSpan['resource']
/** Newer SDKs give a scope attributes of its own; the SDK's serializer writes them when present. */
type Scope = ReadableSpan['instrumentationScope'] & { attributes?: Attributes; droppedAttributesCount?: number }

/*
 * OTLP/protobuf encoding of spans (opentelemetry/proto trace/v1, collector/trace/v1), the same
 * bytes as @opentelemetry/otlp-transformer's ProtobufTraceSerializer (test/unit/otlp-proto.test.ts
 * compares them), at a fraction of the cost. Counted with
 * `npm run bench:instructions` (README "Performance"), the SDK's serializer was the largest
 * single item of a traced page: it copies every string into its buffer one character at a time
 * in JavaScript, twice (a size pass and a write pass), and decodes each hex id into a new
 * Uint8Array. Here strings and ids go through Buffer's native UTF-8 and hex writers, in one pass
 * over one reused buffer (./protobuf-writer.ts).
 */

// SpanFlags (trace.proto): the low 8 bits are the W3C trace flags.
const HAS_IS_REMOTE = 0x100
const IS_REMOTE = 0x200

function writeValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      return w.string(1, value)
    case 'boolean':
      w.tag(2, VARINT)
      return w.varint(value ? 1 : 0)
    case 'number':
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
        w.tag(3, VARINT)
        return w.int64(value)
      }
      w.tag(4, FIXED64)
      return w.double(value)
  }
  if (value instanceof Uint8Array) return w.bytes(7, value)
  if (Array.isArray(value)) {
    const array = w.begin(5)
    for (const item of value) {
      const at = w.begin(1)
      writeValue(w, item)
      w.end(at)
    }
    return w.end(array)
  }
  if (typeof value === 'object' && value !== null) {
    const list = w.begin(6)
    writeAttributes(w, value as Record<string, unknown>, 1)
    w.end(list)
  }
  // null, undefined: an empty AnyValue, as the SDK's serializer writes it.
}

function writeAttributes(w: Writer, attributes: Attributes | Record<string, unknown>, field: number): void {
  for (const key in attributes) {
    if (!Object.hasOwn(attributes, key)) continue
    const kv = w.begin(field)
    w.cached(1, key)
    const value = w.begin(2)
    writeValue(w, (attributes as Record<string, AttributeValue | undefined>)[key])
    w.end(value)
    w.end(kv)
  }
}

function flags(context: SpanContext, isRemote: boolean | undefined): number {
  return (context.traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote ? IS_REMOTE : 0)
}

function writeEvent(w: Writer, event: TimedEvent): void {
  const at = w.begin(11)
  w.tag(1, FIXED64)
  w.time(event.time)
  w.string(2, event.name)
  if (event.attributes) writeAttributes(w, event.attributes, 3)
  w.tag(4, VARINT)
  w.varint(event.droppedAttributesCount ?? 0)
  w.end(at)
}

function writeLink(w: Writer, link: Link): void {
  const at = w.begin(13)
  const ctx = link.context
  w.hexId(1, ctx.traceId, 16)
  w.hexId(2, ctx.spanId, 8)
  const state = ctx.traceState?.serialize()
  if (state) w.string(3, state)
  if (link.attributes) writeAttributes(w, link.attributes, 4)
  w.tag(5, VARINT)
  w.varint(link.droppedAttributesCount ?? 0)
  w.tag(6, FIXED32)
  w.fixed32(flags(ctx, ctx.isRemote))
  w.end(at)
}

function writeSpan(w: Writer, span: ReadableSpan): void {
  const at = w.begin(2)
  const ctx = span.spanContext()
  w.hexId(1, ctx.traceId, 16)
  w.hexId(2, ctx.spanId, 8)
  const state = ctx.traceState?.serialize()
  if (state) w.string(3, state)
  const parent = span.parentSpanContext
  if (parent?.spanId) w.hexId(4, parent.spanId, 8)
  w.cached(5, span.name)
  // OTLP's SpanKind is the API's plus one (0 is UNSPECIFIED).
  if (span.kind != null) {
    w.tag(6, VARINT)
    w.varint(span.kind + 1)
  }
  w.tag(7, FIXED64)
  w.time(span.startTime)
  w.tag(8, FIXED64)
  w.time(span.endTime)
  if (span.attributes) writeAttributes(w, span.attributes, 9)
  w.tag(10, VARINT)
  w.varint(span.droppedAttributesCount)
  for (const event of span.events) writeEvent(w, event)
  w.tag(12, VARINT)
  w.varint(span.droppedEventsCount)
  for (const link of span.links) writeLink(w, link)
  w.tag(14, VARINT)
  w.varint(span.droppedLinksCount)
  const status = w.begin(15)
  if (span.status.message) w.string(2, span.status.message)
  w.tag(3, VARINT)
  w.varint(span.status.code)
  w.end(status)
  w.tag(16, FIXED32)
  w.fixed32(flags(ctx, parent?.isRemote))
  w.end(at)
}

/**
 * A span already written as its ScopeSpans `spans` entry, with only what batching and grouping
 * read: its context, resource and scope (shared objects). A batch processor holds spans until the
 * batch is sent, long enough for V8 to move them to the old generation: every request kept, the
 * collection of held SDK spans was ~45% of a kept trace's instructions (major GCs). Held as bytes,
 * a span is one small Buffer.
 */
export class EncodedSpan {
  constructor(
    readonly encoded: Uint8Array,
    private readonly context: SpanContext,
    readonly resource: Resource,
    readonly instrumentationScope: Scope
  ) {}

  spanContext(): SpanContext {
    return this.context
  }
}

const entryWriter = new Writer()

/** The span's bytes, now (after every processor before the batch has set its attributes). */
export function encodeSpanEntry(span: ReadableSpan): EncodedSpan {
  entryWriter.pos = 0
  writeSpan(entryWriter, span)
  return new EncodedSpan(entryWriter.take(), span.spanContext(), span.resource, span.instrumentationScope)
}

type AnySpan = ReadableSpan | EncodedSpan

function writeResourceSpans(w: Writer, resource: Resource, byScope: Map<Scope, AnySpan[]>): void {
  const at = w.begin(1)
  const res = w.begin(1)
  if (resource.attributes) writeAttributes(w, resource.attributes, 1)
  w.tag(2, VARINT)
  w.varint(0)
  w.end(res)
  for (const [scope, spans] of byScope) {
    const scopeSpans = w.begin(2)
    const s = w.begin(1)
    w.string(1, scope.name)
    if (scope.version) w.string(2, scope.version)
    if (scope.attributes) writeAttributes(w, scope.attributes, 3)
    if (scope.droppedAttributesCount) {
      w.tag(4, VARINT)
      w.varint(scope.droppedAttributesCount)
    }
    w.end(s)
    for (const span of spans) {
      if (span instanceof EncodedSpan) w.raw(span.encoded)
      else writeSpan(w, span)
    }
    if (scope.schemaUrl) w.string(3, scope.schemaUrl)
    w.end(scopeSpans)
  }
  if (resource.schemaUrl) w.string(3, resource.schemaUrl)
  w.end(at)
}

const writer = new Writer()

/** An ExportTraceServiceRequest of these spans, grouped by resource and scope in order of appearance. */
export function encodeSpans(spans: readonly AnySpan[]): Uint8Array {
  const byResource = new Map<Resource, Map<Scope, AnySpan[]>>()
  for (const span of spans) {
    let byScope = byResource.get(span.resource)
    if (!byScope) byResource.set(span.resource, (byScope = new Map()))
    const list = byScope.get(span.instrumentationScope)
    if (list) list.push(span)
    else byScope.set(span.instrumentationScope, [span])
  }
  // From the start: a call that threw may have left bytes behind.
  writer.pos = 0
  for (const [resource, byScope] of byResource) writeResourceSpans(writer, resource, byScope)
  return writer.take()
}

export const FastProtobufTraceSerializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
  serializeRequest: (spans) => measured('encode', () => encodeSpans(spans)),
  deserializeResponse: ProtobufTraceSerializer.deserializeResponse
}

/**
 * The OTLP/HTTP protobuf span exporter of @opentelemetry/exporter-trace-otlp-proto (the same
 * endpoint, headers, compression, timeout and retry settings from OTEL_EXPORTER_OTLP_*), with
 * the serializer above.
 */
export class OtlpProtoTraceExporter extends OTLPExporterBase<ReadableSpan[]> {
  constructor(config: OTLPExporterNodeConfigBase = {}) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        FastProtobufTraceSerializer,
        'otlp_http_span_exporter',
        TraceExporterMetricsHelper,
        config.selfObsMeterProvider
      )
    )
  }
}
