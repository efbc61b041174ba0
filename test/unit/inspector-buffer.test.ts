import { randomBytes } from 'node:crypto'
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace'
import { describe, expect, it } from 'vitest'
import { InspectorSpanProcessor } from '../../src/inspector/processor'

// The processor on its own, fed fabricated spans: the bounds, what it keeps and what it drops.

const hex = (bytes: number) => randomBytes(bytes).toString('hex')

interface Fake {
  traceId?: string
  spanId?: string
  parentSpanId?: string
  remoteParent?: boolean
  name?: string
  kind?: SpanKind
  startMs?: number
  durationMs?: number
  error?: string
  attributes?: Attributes
}

function span(f: Fake = {}): ReadableSpan {
  const traceId = f.traceId ?? hex(16)
  const spanId = f.spanId ?? hex(8)
  const start = f.startMs ?? 1_760_000_000_000
  const dur = f.durationMs ?? 1.5
  const hr = (ms: number): [number, number] => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)]
  return {
    name: f.name ?? 'GET /blogs/',
    kind: f.kind ?? SpanKind.SERVER,
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    parentSpanContext: f.parentSpanId ? { traceId, spanId: f.parentSpanId, traceFlags: 1, isRemote: f.remoteParent ?? false } : undefined,
    startTime: hr(start),
    endTime: hr(start + dur),
    duration: hr(dur),
    status: f.error ? { code: SpanStatusCode.ERROR, message: f.error } : { code: SpanStatusCode.UNSET },
    attributes: f.attributes ?? { 'http.route': '/blogs/', 'url.path': '/blogs/', 'http.request.method': 'GET', 'http.response.status_code': 200 },
    links: [],
    events: [],
    ended: true,
    resource: {} as ReadableSpan['resource'],
    instrumentationScope: { name: 'test' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0
  } as ReadableSpan
}

/** A request: a SELECT child then the server span, the order in which they end. */
function request(p: InspectorSpanProcessor, route = '/blogs/', sql = 'SELECT * FROM `blog` WHERE `id` = ?'): string {
  const traceId = hex(16)
  const serverId = hex(8)
  p.onEnd(span({ traceId, parentSpanId: serverId, name: 'SELECT', kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'mysql', 'db.query.text': sql } }))
  p.onEnd(span({ traceId, spanId: serverId, attributes: { 'http.route': route, 'url.path': route, 'http.request.method': 'GET', 'http.response.status_code': 200 } }))
  return traceId
}

describe('the inspector span processor', () => {
  it('keeps at most INSPECTOR_MAX_TRACES traces under a burst, dropping the oldest first', () => {
    const p = new InspectorSpanProcessor(50, 64 * 1024 * 1024)
    const ids = Array.from({ length: 5000 }, () => request(p))
    const kept = p.buffer.requests()
    expect(kept).toHaveLength(50)
    expect(p.buffer.stats()).toMatchObject({ traces: 50, evicted: 4950 })
    // Newest first, and exactly the last 50 of the burst.
    expect(kept.map((t) => t.traceId)).toEqual(ids.slice(-50).reverse())
    expect(p.buffer.get(ids[0]!)).toBeUndefined()
  })

  it('keeps its estimated size within INSPECTOR_MAX_BYTES under a burst of large statements', () => {
    const maxBytes = 256 * 1024
    const p = new InspectorSpanProcessor(100_000, maxBytes)
    const long = 'SELECT ' + '`column`, '.repeat(150) + '1 FROM `blog` WHERE `id` IN (?)'
    let ids: string[] = []
    for (let i = 0; i < 3000; i++) {
      ids.push(request(p, '/blogs/', long))
      expect(p.buffer.stats().bytes).toBeLessThanOrEqual(maxBytes)
    }
    const stats = p.buffer.stats()
    expect(stats.traces).toBeGreaterThan(10)
    expect(stats.traces).toBeLessThan(3000)
    // The byte count is the sum of what is kept (nothing leaks on eviction).
    const kept = p.buffer.requests()
    ids = ids.slice(-kept.length).reverse()
    expect(kept.map((t) => t.traceId)).toEqual(ids)
    expect(kept.reduce((n, t) => n + t.bytes, 0)).toBe(stats.bytes)
  })

  it('groups spans by trace, children first, with the server span as root', () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    const traceId = request(p)
    const entry = p.buffer.get(traceId)!
    expect(entry.spans.map((s) => s.name)).toEqual(['SELECT', 'GET /blogs/'])
    expect(entry.root?.name).toBe('GET /blogs/')
    expect(entry.spans[0]!.parentId).toBe(entry.root!.spanId)
    expect(entry.root!.duration).toBeCloseTo(1.5, 3)
  })

  it("takes a span's start from the span itself (the app stamps both ends on one monotonic clock)", () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    const s = span({ startMs: 1_000_000.25 })
    p.onEnd(s)
    const root = p.buffer.get(s.spanContext().traceId)!.root!
    expect(root.start).toBeCloseTo(1_000_000.25, 6)
  })

  it('treats a server span with a remote parent (traceparent from the caller) as the root', () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    const traceId = hex(16)
    p.onEnd(span({ traceId, parentSpanId: hex(8), remoteParent: true }))
    expect(p.buffer.get(traceId)?.root).toBeDefined()
  })

  it("drops the inspector's own requests, children included", () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    const traceId = hex(16)
    const serverId = hex(8)
    p.onEnd(span({ traceId, parentSpanId: serverId, name: 'view.render', kind: SpanKind.INTERNAL, attributes: { 'blog.view.name': 'inspector/requests' } }))
    p.onEnd(span({ traceId, spanId: serverId, name: 'GET /_inspect/', attributes: { 'http.route': '/_inspect/', 'url.path': '/_inspect/' } }))
    expect(p.buffer.get(traceId)).toBeUndefined()
    expect(p.buffer.stats()).toMatchObject({ traces: 0, bytes: 0 })
  })

  it('drops spans outside any request (start-up migrations, timers)', () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    p.onEnd(span({ name: 'CREATE', kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'mysql', 'db.query.text': 'CREATE TABLE ...' } }))
    expect(p.buffer.stats().traces).toBe(0)
  })

  it('keeps only allow-listed attributes, no query string and no status message', () => {
    const p = new InspectorSpanProcessor(10, 1024 * 1024)
    const traceId = hex(16)
    p.onEnd(
      span({
        traceId,
        error: "Duplicate entry 'secret-value' for key 'PRIMARY'",
        attributes: {
          'http.route': '/blogs/show/:id',
          'url.path': '/blogs/show/1?token=query-secret',
          'url.query': 'token=query-secret',
          'http.request.method': 'GET',
          'http.response.status_code': 500,
          'user_agent.original': 'agent-secret',
          'client.address': '10.1.2.3',
          'http.request.header.authorization': ['Bearer header-secret'],
          'blog.image.bytes': 1234
        }
      })
    )
    const root = p.buffer.get(traceId)!.root!
    expect(root.attrs).toEqual({
      'http.route': '/blogs/show/:id',
      'url.path': '/blogs/show/1',
      'http.request.method': 'GET',
      'http.response.status_code': 500,
      'blog.image.bytes': 1234
    })
    expect(root.error).toBe(true)
    expect(JSON.stringify(root)).not.toMatch(/secret|10\.1\.2\.3/)
  })

  it('handles a span in a few microseconds (onEnd runs for every span)', () => {
    const p = new InspectorSpanProcessor(500, 8 * 1024 * 1024)
    const spans = Array.from({ length: 2000 }, () => span({ parentSpanId: hex(8), name: 'SELECT', kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'mysql', 'db.query.text': 'SELECT 1' } }))
    for (const s of spans) p.onEnd(s) // warm up
    const start = process.hrtime.bigint()
    for (let round = 0; round < 10; round++) for (const s of spans) p.onEnd(s)
    const perSpanUs = Number(process.hrtime.bigint() - start) / 1000 / 20_000
    console.log(`inspector onEnd: ${perSpanUs.toFixed(2)} µs per span`)
    // Generous (CI machines vary); the point is "microseconds, not milliseconds".
    expect(perSpanUs).toBeLessThan(50)
  })
})
