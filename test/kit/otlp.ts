// OTLP/JSON as the JS exporters send it, decoded for assertions; trace helpers for messages.

/**
 * A minimal OTLP/HTTP receiver for tests: accepts JSON on POST /v1/traces and /v1/metrics
 * (the child must use OTEL_EXPORTER_OTLP_PROTOCOL=http/json, see `otlpEnv`) and keeps every
 * span and metric it was sent, decoded into plain values.
 *
 * What the JS exporter sends (checked against @opentelemetry/otlp-transformer 0.301): ids as
 * lowercase hex (the OTLP/JSON rule), times as decimal strings of nanoseconds, intValue as a
 * number or a decimal string. Base64 ids (older exporters) are converted to hex as well.
 */

export type AttrValue = string | number | boolean | bigint | null | AttrValue[] | { [key: string]: AttrValue }
export type Attributes = Record<string, AttrValue>

export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const

export interface SpanEvent {
  name: string
  timeNs: bigint
  attributes: Attributes
}

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** undefined for a root span. */
  parentSpanId: string | undefined
  name: string
  kind: number
  /** Instrumentation scope name, e.g. '@opentelemetry/instrumentation-mysql2' or 'blog_app'. */
  scope: string
  resource: Attributes
  attributes: Attributes
  status: { code: number; message?: string }
  events: SpanEvent[]
  startNs: bigint
  endNs: bigint
  /**
   * Arrival order. The SDK's batch processor queues spans as they end and exports in order, so
   * for spans of one scope this is their end order, exactly; the timestamps are not enough for
   * that (a span's start is Date.now(), millisecond-rounded, and back-to-back queries take less).
   */
  seq: number
}

export interface DataPoint {
  attributes: Attributes
  /** Sum and gauge points. */
  value?: number
  /** Histogram points. */
  count?: number
  sum?: number
  min?: number
  max?: number
  timeNs: bigint
}

export interface ReceivedMetric {
  name: string
  unit: string
  description: string
  scope: string
  type: 'sum' | 'gauge' | 'histogram' | 'exponentialHistogram' | 'summary' | 'unknown'
  points: DataPoint[]
}

export interface ReceivedRequest {
  path: string
  contentType: string
  bytes: number
  /** The decoded JSON text (empty when it was not JSON). */
  body: string
}

export type AnyValueJson = {
  stringValue?: string
  boolValue?: boolean
  intValue?: number | string
  doubleValue?: number | string
  bytesValue?: string
  arrayValue?: { values?: AnyValueJson[] }
  kvlistValue?: { values?: KeyValueJson[] }
}
export type KeyValueJson = { key: string; value?: AnyValueJson }

/** OTLP ids as lowercase hex, whether the JSON carried hex (spec) or base64 (some old exporters). */
export function idToHex(id: string | undefined, bytes: number): string | undefined {
  if (!id) return undefined
  if (new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(id)) return id.toLowerCase()
  const raw = Buffer.from(id, 'base64')
  if (raw.length === bytes) return raw.toString('hex')
  throw new Error(`not a ${bytes}-byte OTLP id: ${id}`)
}

function toInt(v: number | string): number | bigint {
  if (typeof v === 'number') return v
  const big = BigInt(v)
  return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big
}

export function anyValue(v: AnyValueJson | undefined): AttrValue {
  if (!v) return null
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) return toInt(v.intValue)
  if (v.doubleValue !== undefined) return Number(v.doubleValue)
  if (v.bytesValue !== undefined) return v.bytesValue
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue)
  if (v.kvlistValue) return attributes(v.kvlistValue.values)
  return null
}

export function attributes(kvs: KeyValueJson[] | undefined): Attributes {
  const out: Attributes = {}
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value)
  return out
}

export const ns = (v: string | number | undefined): bigint => BigInt(v ?? 0)
export const num = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : Number(v))

/** Every string an attribute value holds (arrays and maps included). */
export function attributeStrings(v: AttrValue): string[] {
  if (v === null) return []
  if (Array.isArray(v)) return v.flatMap(attributeStrings)
  if (typeof v === 'object') return Object.values(v).flatMap(attributeStrings)
  return [String(v)]
}

/** Every string a span carries besides its ids: name, attributes, status message, events. */
export function spanStrings(s: ReceivedSpan): string[] {
  return [
    s.name,
    ...Object.values(s.attributes).flatMap(attributeStrings),
    s.status.message ?? '',
    ...s.events.flatMap((e) => [e.name, ...Object.values(e.attributes).flatMap(attributeStrings)])
  ]
}

/** The parts of a W3C `traceparent`/`traceresponse` value. */
export function parseTraceHeader(value: string | string[] | undefined): { traceId: string; spanId: string; flags: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(value ?? ''))
  if (!m) throw new Error(`not a version-00 trace context header: ${String(value)}`)
  return { traceId: m[1]!, spanId: m[2]!, flags: m[3]! }
}

/** Which spans of a trace are direct children of `parent`. */
export function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId)
}

/** The spans of a trace as an indented tree, for assertion messages. */
export function formatTree(spans: ReceivedSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanId))
  const lines: string[] = []
  const walk = (s: ReceivedSpan, depth: number) => {
    const attrs = Object.entries(s.attributes)
      .map(([k, v]) => `${k}=${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)}`)
      .join(' ')
    lines.push(`${'  '.repeat(depth)}${s.name} [${s.spanId} kind=${s.kind} status=${s.status.code}] ${attrs}`)
    for (const c of spans.filter((x) => x.parentSpanId === s.spanId).sort((a, b) => Number(a.startNs - b.startNs))) walk(c, depth + 1)
  }
  for (const root of spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId))) walk(root, 0)
  return lines.join('\n')
}
