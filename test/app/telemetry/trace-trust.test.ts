import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { request } from '../../kit/server'
import { useTracedServer } from '../../kit/traced-server'

// Whose traceparent may decide sampling. Before TRUSTED_TRACE_SOURCES any client could send
// `...-01` and force full tracing of its requests (and flush the inspector's buffer) whatever
// the sampler said. Here the app samples nothing of its own (ratio 0), so a sampled trace can
// only come from an obeyed traceparent.

// No rule of the app's own keeps a trace either: nothing is slow or failed enough (the slow rule off).
const NEVER = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0', TRACE_KEEP_SLOWEST_PERCENT: '0' }
const traceparent = (traceId: string, flags: '00' | '01') => `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`

async function get(port: number, tp: string, headers: Record<string, string> = {}) {
  const res = await request(port, { path: '/blogs/', headers: { traceparent: tp, ...headers } })
  expect(res.status).toBe(200)
  return { res, ...parseTraceHeader(res.headers.traceresponse) }
}

describe('a client outside TRUSTED_TRACE_SOURCES (loopback not listed)', () => {
  const t = useTracedServer({ ...NEVER, TRUSTED_TRACE_SOURCES: '10.0.0.0/8' })

  it('keeps its trace id but cannot force sampling: the sampler says no and no span is exported', async () => {
    const traceId = randomBytes(16).toString('hex')
    const r = await get(t.child.port, traceparent(traceId, '01'))
    expect(r.traceId).toBe(traceId)
    expect(r.res.headers.traceresponse).toMatch(/-00$/)
    await sleep(1500) // longer than the batch delay of the test env
    expect(t.receiver.trace(traceId)).toEqual([])
  })
})

describe('a client naming a trusted address in X-Forwarded-For, itself not a trusted proxy', () => {
  const t = useTracedServer({ ...NEVER, TRUSTED_TRACE_SOURCES: '203.0.113.0/24', TRUST_PROXY: '10.9.9.9' })

  it('is judged by its own address: the sampled flag is not obeyed', async () => {
    const traceId = randomBytes(16).toString('hex')
    const r = await get(t.child.port, traceparent(traceId, '01'), { 'x-forwarded-for': '203.0.113.5' })
    expect(r.traceId).toBe(traceId)
    expect(r.res.headers.traceresponse).toMatch(/-00$/)
  })
})

describe('a trusted client (loopback, by default)', () => {
  const t = useTracedServer(NEVER)

  it('has its sampled flag obeyed: the load test joins its trace', async () => {
    const traceId = randomBytes(16).toString('hex')
    const r = await get(t.child.port, traceparent(traceId, '01'))
    expect(r.traceId).toBe(traceId)
    expect(r.res.headers.traceresponse).toMatch(/-01$/)
    const spans = await t.receiver.waitForTrace(traceId, (s) => s.some((x) => x.name === 'GET /blogs/'))
    expect(spans.find((s) => s.name === 'GET /blogs/')?.parentSpanId).toBeTruthy()
  })

  it('names the load test of its baggage on the server span (blog.load_test.id), as the k6 scripts send it', async () => {
    const traceId = randomBytes(16).toString('hex')
    await get(t.child.port, traceparent(traceId, '01'), { baggage: 'other=1,testid=arrival-20261206T101500Z;p=1' })
    const spans = await t.receiver.waitForTrace(traceId, (s) => s.some((x) => x.name === 'GET /blogs/'))
    expect(spans.find((s) => s.name === 'GET /blogs/')!.attributes['blog.load_test.id']).toBe('arrival-20261206T101500Z')
    // Without the member, no attribute.
    const plain = randomBytes(16).toString('hex')
    await get(t.child.port, traceparent(plain, '01'), { baggage: 'other=1' })
    const server = (await t.receiver.waitForTrace(plain, (s) => s.some((x) => x.name === 'GET /blogs/'))).find((s) => s.name === 'GET /blogs/')!
    expect(server.attributes).not.toHaveProperty('blog.load_test.id')
  })
})

describe('an untrusted client under the default sampler (always on)', () => {
  const t = useTracedServer({ TRUSTED_TRACE_SOURCES: '' })

  it('cannot switch tracing off either: its unsampled flag is overruled, same trace id', async () => {
    const traceId = randomBytes(16).toString('hex')
    const r = await get(t.child.port, traceparent(traceId, '00'))
    expect(r.traceId).toBe(traceId)
    expect(r.res.headers.traceresponse).toMatch(/-01$/)
    await t.receiver.waitForTrace(traceId, (s) => s.some((x) => x.name === 'GET /blogs/'))
  })

  it('cannot label its requests as a load test either: its baggage stays off the span', async () => {
    const traceId = randomBytes(16).toString('hex')
    await get(t.child.port, traceparent(traceId, '00'), { baggage: 'testid=forged' })
    const server = (await t.receiver.waitForTrace(traceId, (s) => s.some((x) => x.name === 'GET /blogs/'))).find((s) => s.name === 'GET /blogs/')!
    expect(server.attributes).not.toHaveProperty('blog.load_test.id')
  })
})
