import http from 'node:http'
import type net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipSync } from 'node:zlib'
import { attributes, idToHex, ns, num, SpanKind, type KeyValueJson, type ReceivedMetric, type ReceivedRequest, type ReceivedSpan } from './otlp'

export * from './otlp'

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
