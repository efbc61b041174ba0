import http from 'node:http'
import type net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipSync } from 'node:zlib'

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

type AnyValueJson = {
  stringValue?: string
  boolValue?: boolean
  intValue?: number | string
  doubleValue?: number | string
  bytesValue?: string
  arrayValue?: { values?: AnyValueJson[] }
  kvlistValue?: { values?: KeyValueJson[] }
}
type KeyValueJson = { key: string; value?: AnyValueJson }

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

const ns = (v: string | number | undefined): bigint => BigInt(v ?? 0)
const num = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : Number(v))

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

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = []
  /** One entry per metric per export (cumulative temporality: the last one has the totals). */
  readonly metrics: ReceivedMetric[] = []
  readonly requests: ReceivedRequest[] = []
  private server: http.Server
  private sockets = new Set<net.Socket>()
  port = 0

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res))
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s)
      s.once('close', () => this.sockets.delete(s))
    })
  }

  static async start(): Promise<OtlpReceiver> {
    const r = new OtlpReceiver()
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject)
      r.server.listen(0, '127.0.0.1', () => resolve())
    })
    r.port = (r.server.address() as net.AddressInfo).port
    return r
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Environment for a child that should export here quickly (spans within ~200 ms, metrics every 500 ms). */
  env(): Record<string, string> {
    return otlpEnv(this.url)
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let raw = Buffer.concat(chunks)
      const contentType = String(req.headers['content-type'] ?? '')
      const entry: ReceivedRequest = { path: req.url ?? '', contentType, bytes: raw.length, body: '' }
      this.requests.push(entry)
      if (req.method !== 'POST' || (req.url !== '/v1/traces' && req.url !== '/v1/metrics' && req.url !== '/v1/logs')) {
        res.writeHead(404).end()
        return
      }
      if (!contentType.startsWith('application/json')) {
        // Protobuf is not decoded here: make the mismatch loud rather than silently empty.
        res.writeHead(415, { 'content-type': 'text/plain' }).end('this test receiver takes OTLP/JSON only')
        return
      }
      try {
        if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw)
        entry.body = raw.toString('utf8')
        const body = JSON.parse(entry.body) as Record<string, unknown>
        if (req.url === '/v1/traces') this.addTraces(body)
        else if (req.url === '/v1/metrics') this.addMetrics(body)
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  }

  private addTraces(body: Record<string, unknown>): void {
    type SpanJson = {
      traceId: string
      spanId: string
      parentSpanId?: string
      name: string
      kind?: number
      startTimeUnixNano?: string
      endTimeUnixNano?: string
      attributes?: KeyValueJson[]
      status?: { code?: number; message?: string }
      events?: { name: string; timeUnixNano?: string; attributes?: KeyValueJson[] }[]
    }
    const resourceSpans = (body.resourceSpans ?? []) as {
      resource?: { attributes?: KeyValueJson[] }
      scopeSpans?: { scope?: { name?: string }; spans?: SpanJson[] }[]
    }[]
    for (const rs of resourceSpans) {
      const resource = attributes(rs.resource?.attributes)
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: idToHex(s.traceId, 16)!,
            spanId: idToHex(s.spanId, 8)!,
            parentSpanId: idToHex(s.parentSpanId, 8),
            name: s.name,
            kind: s.kind ?? 0,
            scope: ss.scope?.name ?? '',
            resource,
            attributes: attributes(s.attributes),
            status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
            events: (s.events ?? []).map((e) => ({ name: e.name, timeNs: ns(e.timeUnixNano), attributes: attributes(e.attributes) })),
            startNs: ns(s.startTimeUnixNano),
            endNs: ns(s.endTimeUnixNano),
            seq: this.spans.length
          })
        }
      }
    }
  }

  private addMetrics(body: Record<string, unknown>): void {
    type PointJson = {
      attributes?: KeyValueJson[]
      asDouble?: number | string
      asInt?: number | string
      count?: number | string
      sum?: number
      min?: number
      max?: number
      timeUnixNano?: string
    }
    type MetricJson = {
      name: string
      unit?: string
      description?: string
      sum?: { dataPoints?: PointJson[] }
      gauge?: { dataPoints?: PointJson[] }
      histogram?: { dataPoints?: PointJson[] }
      exponentialHistogram?: { dataPoints?: PointJson[] }
      summary?: { dataPoints?: PointJson[] }
    }
    const resourceMetrics = (body.resourceMetrics ?? []) as { scopeMetrics?: { scope?: { name?: string }; metrics?: MetricJson[] }[] }[]
    for (const rm of resourceMetrics) {
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const type = (['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'] as const).find((t) => m[t] !== undefined) ?? 'unknown'
          const points = type === 'unknown' ? [] : (m[type]?.dataPoints ?? [])
          this.metrics.push({
            name: m.name,
            unit: m.unit ?? '',
            description: m.description ?? '',
            scope: sm.scope?.name ?? '',
            type,
            points: points.map((p) => ({
              attributes: attributes(p.attributes),
              value: num(p.asDouble ?? p.asInt),
              count: num(p.count),
              sum: p.sum,
              min: p.min,
              max: p.max,
              timeNs: ns(p.timeUnixNano)
            }))
          })
        }
      }
    }
  }

  /** Spans of one trace received so far. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId)
  }

  /**
   * Waits until the spans of `traceId` satisfy `ready` (default: the trace's SERVER span has
   * arrived; it ends after its children, so they were queued before it).
   */
  async waitForTrace(
    traceId: string,
    ready: (spans: ReceivedSpan[]) => boolean = (spans) => spans.some((s) => s.kind === SpanKind.SERVER),
    timeoutMs = 10_000
  ): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const spans = this.trace(traceId)
      if (ready(spans)) return spans
      if (Date.now() > deadline) {
        throw new Error(
          `trace ${traceId} not complete after ${timeoutMs} ms; got ${spans.length} spans: ${spans.map((s) => s.name).join(', ') || '(none)'}` +
            ` (receiver has ${this.spans.length} spans in all, ${this.requests.length} requests)`
        )
      }
      await sleep(50)
    }
  }

  /** Every export of metric `name` so far, oldest first. */
  metric(name: string): ReceivedMetric[] {
    return this.metrics.filter((m) => m.name === name)
  }

  /** The most recent export of metric `name`. */
  latestMetric(name: string): ReceivedMetric | undefined {
    return this.metric(name).at(-1)
  }

  metricNames(): string[] {
    return [...new Set(this.metrics.map((m) => m.name))].sort()
  }

  /** Waits for an export of `name` whose data satisfies `ready` (default: has a data point). */
  async waitForMetric(
    name: string,
    ready: (m: ReceivedMetric) => boolean = (m) => m.points.length > 0,
    timeoutMs = 10_000
  ): Promise<ReceivedMetric> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.metric(name).findLast(ready)
      if (found) return found
      if (Date.now() > deadline) {
        throw new Error(`no export of metric ${name} matched within ${timeoutMs} ms; metrics seen: ${this.metricNames().join(', ') || '(none)'}`)
      }
      await sleep(50)
    }
  }

  /** Forgets everything received so far. */
  reset(): void {
    this.spans.length = 0
    this.metrics.length = 0
    this.requests.length = 0
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** OTEL_* variables that make a child export OTLP/JSON to `endpoint`, quickly. */
export function otlpEnv(endpoint: string): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_METRIC_EXPORT_TIMEOUT: '400'
  }
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
