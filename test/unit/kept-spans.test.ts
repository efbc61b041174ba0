import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context } from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { TracerProvider, type IdGenerator, type ReadableSpan, type Span, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace'
import { describe, expect, it } from 'vitest'
import { hrTime, now } from '../../src/telemetry/clock'
import { CONNECTION_ID } from '../../src/telemetry/db-server'
import { KeptSpans, type SpanOrigin } from '../../src/telemetry/kept-spans'
import { ATTR, SCOPE, SPAN } from '../../src/telemetry/names'
import { RequestTrace, type ServerSpanData } from '../../src/telemetry/request-trace'
import { maskSql } from '../../src/telemetry/sql'

// A kept request's spans are written from its record without the SDK's tracer
// (src/telemetry/kept-spans.ts). What leaves the process must be what the SDK's own spans of the
// same record would be: the same OTLP bytes from the SDK's serializer, the same calls on the
// span processors, in the same order.

const resource = resourceFromAttributes({ 'service.name': 'blog-app', 'process.pid': 4242 })
const remote = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: new TraceState('vendor=abc') }
const SERVER_ID = '1111111111111111'
const CHILD_IDS = ['2222222222222222', '3333333333333333', '4444444444444444', '5555555555555555']

/** What a processor saw, in order. */
function recording(): SpanProcessor & { calls: string[]; ended: ReadableSpan[]; contexts: Context[] } {
  const calls: string[] = []
  const ended: ReadableSpan[] = []
  const contexts: Context[] = []
  return {
    calls, ended, contexts,
    onStart: (span: Span, ctx: Context) => { calls.push(`start ${span.name}`); contexts.push(ctx) },
    onEnding: (span: Span) => { calls.push(`ending ${span.name}`) },
    onEnd: (span: ReadableSpan) => { calls.push(`end ${span.name}`); ended.push(span) },
    forceFlush: async () => undefined,
    shutdown: async () => undefined
  }
}

/** A request's record: a pool wait, a statement on a known connection, a failed render, and work still open at the end. */
function record(parent: Context): { rt: RequestTrace; server: ServerSpanData } {
  const t0 = now() - 20
  const rt = new RequestTrace(remote.traceId, SERVER_ID, parent, true)
  const pool = rt.begin(SPAN.poolAcquire, SpanKind.INTERNAL, t0 + 1, { [ATTR.dbPoolName]: 'blog' }, true)!
  rt.finish(pool, t0 + 1.25)
  const sql = rt.begin('SELECT', SpanKind.CLIENT, t0 + 2, { [ATTR.dbSystemName]: 'mysql', [ATTR.dbNamespace]: 'blog' }, true)!
  sql.sql = "SELECT * FROM `blog` WHERE `title` = 'secret' AND `id` = 7"
  sql.connectionId = 42
  rt.finish(sql, t0 + 5.5)
  const render = rt.begin(SPAN.viewRender, SpanKind.INTERNAL, t0 + 6, { [ATTR.viewName]: 'blogs/index' }, false)!
  render.setAttribute(ATTR.viewName, 'blogs/show')
  const boom = Object.assign(new Error('template failed'), { code: 'ETEMPLATE' })
  rt.finish(render, t0 + 8, 'ETEMPLATE', boom)
  rt.begin(SPAN.imageWrite, SpanKind.INTERNAL, t0 + 9, {}, false)
  rt.kept = 'slow'
  rt.loopMs = 3.25
  rt.exception = new TypeError('handler failed')
  const server: ServerSpanData = {
    name: 'GET /blogs/:id',
    start: t0,
    end: t0 + 12,
    attributes: { [ATTR.httpRequestMethod]: 'GET', [ATTR.httpRoute]: '/blogs/:id', [ATTR.httpResponseStatusCode]: 500, [ATTR.errorType]: '500' },
    error: true
  }
  return { rt, server }
}

/** The same record made into spans by the SDK's own tracer, as the app did before. */
function sdkSpans(rt: RequestTrace, server: ServerSpanData, limits: SpanLimits = {}): ReadableSpan[] {
  const ids = [SERVER_ID, ...CHILD_IDS]
  const idGenerator: IdGenerator = { generateTraceId: () => remote.traceId, generateSpanId: () => ids.shift()! }
  const out = recording()
  const tracer = new TracerProvider({ resource, idGenerator, spanLimits: limits, spanProcessors: [out] }).getTracer(SCOPE)
  const root = tracer.startSpan(server.name, {
    kind: SpanKind.SERVER, startTime: hrTime(server.start),
    attributes: { ...server.attributes, [ATTR.loopActiveMs]: rt.loopMs, [ATTR.traceKept]: rt.kept! }
  }, rt.parent)
  root.recordException(rt.exception!, hrTime(server.end))
  root.setStatus({ code: SpanStatusCode.ERROR })
  const parent = trace.setSpan(rt.parent, root)
  for (const w of rt.work) {
    const attributes = { ...w.attributes }
    if (w.sql !== undefined) attributes[ATTR.dbQueryText] = maskSql(w.sql)
    if (w.loopMs !== undefined) attributes[ATTR.loopActiveMs] = Math.round(w.loopMs * 1000) / 1000
    if (w.errorType !== undefined) attributes[ATTR.errorType] = w.errorType
    const child = tracer.startSpan(w.name, { kind: w.kind, startTime: hrTime(w.start), attributes }, parent)
    const end = Number.isNaN(w.end) ? server.end : w.end
    if (w.exception) child.recordException(w.exception, hrTime(end))
    if (w.errorType !== undefined) child.setStatus({ code: SpanStatusCode.ERROR })
    child.end(hrTime(end))
  }
  root.end(hrTime(server.end))
  return out.ended
}

function keptSpans(rt: RequestTrace, server: ServerSpanData, limits: SpanLimits = {}) {
  const ids = [...CHILD_IDS]
  const scope = new TracerProvider({ resource }).getTracer(SCOPE) as unknown as { instrumentationScope: SpanOrigin['scope'] }
  const out = recording()
  new KeptSpans({ resource, scope: scope.instrumentationScope, limits }, out, () => ids.shift()!).write(rt, server)
  return out
}

const bytes = (spans: ReadableSpan[]) => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!)

describe('a kept request written from its record', () => {
  const parent = trace.setSpanContext(ROOT_CONTEXT, remote)

  it('exports the bytes the SDK would for the same record (ids, parent, trace state, instants, attributes, masked SQL, events, status)', () => {
    const { rt, server } = record(parent)
    const ours = keptSpans(rt, server).ended
    const sdk = sdkSpans(rt, server)
    expect(ours.map((s) => s.name)).toEqual(['pool.acquire', 'SELECT', 'view.render', 'blog.image.write', 'GET /blogs/:id'])
    expect(ours).toHaveLength(sdk.length)
    expect(bytes(ours).equals(bytes(sdk))).toBe(true)
    // And what the bytes say, so a change on both sides is still seen.
    const [, select, render, open, root] = ours as [ReadableSpan, ReadableSpan, ReadableSpan, ReadableSpan, ReadableSpan]
    expect(root.spanContext()).toMatchObject({ traceId: remote.traceId, spanId: SERVER_ID, traceFlags: TraceFlags.SAMPLED })
    expect(root.spanContext().traceState?.serialize()).toBe('vendor=abc')
    expect(root.parentSpanContext?.spanId).toBe(remote.spanId)
    expect(select.parentSpanContext?.spanId).toBe(SERVER_ID)
    expect(select.attributes[ATTR.dbQueryText]).toBe('SELECT * FROM `blog` WHERE `title` = ? AND `id` = ?')
    expect(render.attributes[ATTR.viewName]).toBe('blogs/show')
    expect(render.status.code).toBe(SpanStatusCode.ERROR)
    expect(render.events[0]?.attributes).toMatchObject({ 'exception.type': 'ETEMPLATE', 'exception.message': 'template failed' })
    expect(open.endTime).toEqual(root.endTime)
    expect(root.attributes[ATTR.traceKept]).toBe('slow')
    expect(root.events[0]?.attributes).toMatchObject({ 'exception.type': 'TypeError' })
  })

  it('calls the processors as the SDK does: the server span starts first and ends last, each child starts, ends and is done', () => {
    const { rt, server } = record(parent)
    const { calls, contexts } = keptSpans(rt, server)
    const sdk = recording()
    const tracer = new TracerProvider({ resource, spanProcessors: [sdk] }).getTracer(SCOPE)
    const root = tracer.startSpan(server.name, {}, parent)
    for (const w of rt.work) tracer.startSpan(w.name, {}, trace.setSpan(parent, root)).end()
    root.end()
    expect(calls).toEqual(sdk.calls)
    // The statement's connection reaches the timing join (performance_schema) through its context.
    expect(contexts.map((c) => c.getValue(CONNECTION_ID))).toEqual([undefined, undefined, 42, undefined, undefined])
  })

  it('applies the attribute limits the environment sets, as the SDK does', () => {
    const limits = { attributeValueLengthLimit: 12, attributeCountLimit: 4 }
    const { rt, server } = record(parent)
    const ours = keptSpans(rt, server, limits).ended
    const sdk = sdkSpans(rt, server, limits)
    expect(bytes(ours).equals(bytes(sdk))).toBe(true)
    const select = ours[1]!
    expect(Object.keys(select.attributes)).toHaveLength(4)
    expect(String(select.attributes[ATTR.dbQueryText])).toHaveLength(12)
    expect(ours.at(-1)!.droppedAttributesCount).toBeGreaterThan(0)
  })

  it('starts a new trace when the request had no parent', () => {
    const rt = new RequestTrace('0af7651916cd43dd8448eb211c80319c', SERVER_ID, context.active(), false)
    rt.kept = 'sampler'
    const t = now()
    const [root] = keptSpans(rt, { name: 'GET /', start: t, end: t + 1, attributes: {}, error: false }).ended
    expect(root!.parentSpanContext).toBeUndefined()
    expect(root!.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(root!.status.code).toBe(SpanStatusCode.UNSET)
  })
})
