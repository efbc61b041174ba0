import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type AttributeValue } from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeSpanEntry, encodeSpans } from '../../src/telemetry/otlp-proto'

// The app's OTLP/protobuf span encoder must write exactly the bytes of the SDK's own
// (@opentelemetry/otlp-transformer's ProtobufTraceSerializer, which Jaeger, Tempo and the
// Collector decode): same fields, same order, same presence rules, for spans made by the real SDK.

function recorder(resource = resourceFromAttributes({ 'service.name': 'blog-app', 'process.command_args': ['node', '--require', 'x.js'], 'process.pid': 4242 }), spanLimits = {}) {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ resource, spanLimits, spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  return { provider, spans: () => exporter.getFinishedSpans() }
}

const sdkBytes = (spans: ReadableSpan[]) => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!)
const ourBytes = (spans: ReadableSpan[]) => Buffer.from(encodeSpans(spans))

/**
 * Both encoders on the same spans (at least one): true when the bytes are the same, from the
 * spans themselves, from each span encoded when it ended (as the batch holds them), and from a
 * mix of the two.
 */
function sameBytes(spans: ReadableSpan[]): boolean {
  if (spans.length === 0) throw new Error('no spans were recorded: nothing would be compared')
  const sdk = sdkBytes(spans)
  const early = Buffer.from(encodeSpans(spans.map(encodeSpanEntry)))
  const mixed = Buffer.from(encodeSpans(spans.map((s, i) => (i % 2 === 0 ? encodeSpanEntry(s) : s))))
  return ourBytes(spans).equals(sdk) && early.equals(sdk) && mixed.equals(sdk)
}

const remoteParent = trace.setSpanContext(context.active(), {
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('vendor=a1,other=b2')
})

describe('encodeSpans (OTLP/protobuf)', () => {
  it('writes the bytes of the SDK serializer for a page of the app: server, SQL and render spans', () => {
    const { provider, spans } = recorder()
    const app = provider.getTracer('blog_app')
    const mysql = provider.getTracer('@opentelemetry/instrumentation-mysql2', '0.70.0', { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' })
    const server = app.startSpan('GET /blogs/', { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'url.path': '/blogs/', 'server.port': 3000, 'user_agent.original': 'k6/1.0 (https://k6.io/)' } }, remoteParent)
    const inside = trace.setSpan(context.active(), server)
    const sql = mysql.startSpan('SELECT', { kind: SpanKind.CLIENT }, inside)
    sql.setAttributes({ 'db.query.text': 'SELECT `id`, `title`, `author`, LEFT(`content`, ?) AS `excerpt` FROM `blog` ORDER BY `modified_dt` DESC, `id` DESC LIMIT ? OFFSET ?', 'blog.db.server_ms': 0.241, 'blog.db.rows_sent': 21 })
    sql.end()
    app.startSpan('view.render', { attributes: { 'blog.view.name': 'blogs/index' } }, inside).end()
    server.setAttribute('http.response.status_code', 200)
    server.end()
    expect(spans()).toHaveLength(3)
    expect(sameBytes(spans())).toBe(true)
    // Again, with the keys and names now copied from the writer's cache: the same bytes.
    expect(sameBytes(spans())).toBe(true)
    // A key of many bytes (its length takes two), cached and then copied.
    const long = app.startSpan('x'.repeat(200), { attributes: { ['k'.repeat(300)]: 'é'.repeat(70) } })
    long.end()
    expect(sameBytes([spans().at(-1)!])).toBe(true)
    expect(sameBytes([spans().at(-1)!])).toBe(true)
  })

  it('and for events, links, trace state, an error status, every kind, and dropped counts', () => {
    const { provider, spans } = recorder(undefined, { attributeCountLimit: 3, eventCountLimit: 2, linkCountLimit: 1 })
    const tracer = provider.getTracer('scope-a', '1.2.3')
    for (const kind of [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]) {
      const span = tracer.startSpan(`kind ${kind}`, {
        kind,
        attributes: { a: 1, b: 'two', c: true, d: 'dropped', e: 'dropped too' },
        links: [
          { context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true, traceState: new TraceState('k=v') }, attributes: { 'link.n': 7 } },
          { context: { traceId: '0af7651916cd43dd8448eb211c80319d', spanId: 'b7ad6b7169203332', traceFlags: 0 } }
        ]
      }, remoteParent)
      span.addEvent('first', { 'event.count': 3, 'event.where': 'ü → 🚀' })
      span.addEvent('second')
      span.addEvent('third (dropped)')
      span.recordException(new Error('boom'))
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'the database went away' })
      span.end()
    }
    const ok = tracer.startSpan('ok')
    ok.setStatus({ code: SpanStatusCode.OK })
    ok.end()
    expect(spans().every((s) => s.links.length <= 1)).toBe(true)
    expect(sameBytes(spans())).toBe(true)
  })

  it('groups spans by resource and scope in order of appearance, as the SDK does', () => {
    const one = recorder(resourceFromAttributes({ 'service.name': 'one' }))
    const two = recorder(resourceFromAttributes({ 'service.name': 'two', 'deployment.environment.name': 'test' }))
    const mixed: ReadableSpan[] = []
    for (let i = 0; i < 6; i++) {
      const rec = i % 2 ? one : two
      rec.provider.getTracer(i % 3 ? 'x' : 'y', i % 3 === 2 ? '2.0' : undefined).startSpan(`s${i}`).end()
      mixed.push(rec.spans().at(-1)!)
    }
    expect(sameBytes(mixed)).toBe(true)
  })

  it('moves a length that needs more than one byte, at every nesting level, and grows its buffer past 64 KB', () => {
    const { provider, spans } = recorder()
    const tracer = provider.getTracer('big')
    for (let i = 0; i < 300; i++) {
      const size = [0, 1, 31, 32, 33, 42, 43, 127, 128, 129, 300, 16_383, 16_384, 70_000][i % 14]!
      tracer.startSpan('x'.repeat(size % 200), { attributes: { text: 'é'.repeat(size), ascii: 'a'.repeat(size), list: Array.from({ length: i % 40 }, (_, j) => `item ${j}`) } }).end()
    }
    expect(ourBytes(spans()).length).toBeGreaterThan(1 << 20)
    expect(sameBytes(spans())).toBe(true)
    // The buffer is reused: a small request after a big one is not padded with the big one's bytes.
    const small = spans().slice(0, 1)
    expect(sameBytes(small)).toBe(true)
  })

  it('encodes attribute values of every type and size as the SDK does (property test)', () => {
    const scalar = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ maxLength: 40 }),
      fc.boolean(),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      fc.maxSafeInteger(),
      fc.constantFrom(0, -1, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 62, -(2 ** 62), 1e20, -0),
      fc.double()
    )
    const value: fc.Arbitrary<AttributeValue> = fc.oneof(
      scalar as fc.Arbitrary<AttributeValue>,
      fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constant(null), fc.constant(undefined)), { maxLength: 5 }) as fc.Arbitrary<AttributeValue>,
      fc.array(fc.double(), { maxLength: 5 }),
      fc.array(fc.boolean(), { maxLength: 5 })
    )
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 50 }), value, { maxKeys: 12 }), fc.string({ unit: 'binary', maxLength: 60 }), (attributes: Attributes, name) => {
        const { provider, spans } = recorder()
        const span = provider.getTracer('prop').startSpan(name)
        // setAttribute, not the constructor: keys such as '__proto__' become own properties the same way for both.
        for (const [k, v] of Object.entries(attributes)) span.setAttribute(k, v)
        span.addEvent(name, attributes)
        span.end()
        return sameBytes(spans())
      }),
      { numRuns: 300 }
    )
  })

  it('writes ends and starts past 2^53 nanoseconds exactly (fixed64 without BigInt)', () => {
    const { provider, spans } = recorder()
    const tracer = provider.getTracer('time')
    for (const seconds of [0, 1, 65_535, 65_536, 1_796_179_357, 4_294_967_295]) {
      for (const nanos of [0, 1, 999_999_999]) {
        tracer.startSpan('t', { startTime: [seconds, nanos] }).end([seconds, nanos])
      }
    }
    expect(sameBytes(spans())).toBe(true)
  })
})
