import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { processTimeOf, request, type HttpResponse } from '../../kit/server'
import { useTracedServer } from '../../kit/traced-server'

// Keep what matters, decided when each request ends: with a sampler that keeps nothing (ratio 0),
// the failed and the slow requests' traces are still exported whole, and traceresponse says which
// were kept. What is not kept is never exported.

const NEVER = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }
const keptFlag = (res: HttpResponse) => parseTraceHeader(res.headers.traceresponse).flags

describe('with an absolute threshold (TRACE_KEEP_SLOWER_THAN_MS)', () => {
  const s = useTracedServer({ ...NEVER, TRACE_KEEP_SLOWEST_PERCENT: '0', TRACE_KEEP_SLOWER_THAN_MS: '250' })

  it('drops a fast request: traceresponse 00 and nothing exported', async () => {
    const res = await request(s.child.port, '/blogs/')
    expect(res.status).toBe(200)
    expect(keptFlag(res)).toBe('00')
    await sleep(1500) // longer than the batch delay of the test env
    expect(s.receiver.trace(parseTraceHeader(res.headers.traceresponse).traceId)).toEqual([])
  })

  it('keeps a slow one whole, with why, and the wait visible in its SQL span', async () => {
    // The list query waits behind a write lock this test holds for 400 ms.
    await s.env.query('LOCK TABLES `blog` WRITE')
    const pending = request(s.child.port, '/blogs/')
    await sleep(400)
    await s.env.query('UNLOCK TABLES')
    const res = await pending
    expect(res.status).toBe(200)
    expect(keptFlag(res)).toBe('01')
    const t = await s.traced(res, (spans) => spans.length >= 4)
    expect(t.server.attributes['blog.trace.kept'], t.tree).toBe('slow')
    expect(t.spans.map((x) => x.name).sort(), t.tree).toEqual(['GET /blogs/', 'SELECT', 'pool.acquire', 'view.render'])
    const select = t.spans.find((x) => x.name === 'SELECT')!
    expect(Number(select.endNs - select.startNs) / 1e6).toBeGreaterThan(250)
    // The kept span has the ids the response gave out, and its duration is the header's.
    expect(t.server.spanId).toBe(parseTraceHeader(res.headers.traceresponse).spanId)
    expect(t.server.attributes['blog.http.process_time_ms']).toBe(processTimeOf(res))
  })

  it('keeps a failed one, with the exception', async () => {
    await s.env.query('RENAME TABLE `blog` TO `blog_gone_for_a_moment`')
    let res: HttpResponse
    try {
      res = await request(s.child.port, '/blogs/')
    } finally {
      await s.env.query('RENAME TABLE `blog_gone_for_a_moment` TO `blog`')
    }
    expect(res.status).toBe(500)
    expect(keptFlag(res)).toBe('01')
    const t = await s.traced(res, (spans) => spans.some((x) => x.name === 'SELECT'))
    expect(t.server.attributes['blog.trace.kept']).toBe('error')
    expect(t.server.events.map((e) => e.name)).toContain('exception')
    expect(t.spans.find((x) => x.name === 'SELECT')!.attributes['error.type']).toBe('ER_NO_SUCH_TABLE')
  })
})

describe("with the slowest 1% of each route (the default rule)", () => {
  const s = useTracedServer(NEVER)

  it("keeps a route's first requests, then only what is slow for it", async () => {
    const flags: string[] = []
    for (let i = 0; i < 160; i++) flags.push(keptFlag(await request(s.child.port, '/blogs/show/1')))
    // Too few to know what slow is: the first 100 are all kept.
    expect(flags.slice(0, 100).every((f) => f === '01')).toBe(true)
    // Then the slowest ~1% (5% buckets, and a machine shared with other tests: allow some more).
    const kept = flags.slice(100).filter((f) => f === '01').length
    expect(kept).toBeLessThanOrEqual(12)
    await s.env.query('LOCK TABLES `blog` WRITE')
    const pending = request(s.child.port, '/blogs/show/1')
    await sleep(300)
    await s.env.query('UNLOCK TABLES')
    const slow = await pending
    expect(keptFlag(slow)).toBe('01')
    const t = await s.traced(slow, (spans) => spans.length >= 3)
    expect(t.server.attributes['blog.trace.kept']).toBe('slow')
  })
})

describe('a second look (hindsight): under the bar of the moment, but the slowest of what came after', () => {
  const s = useTracedServer(NEVER)
  const PAGE = '/blogs/show/1'
  const many = async (n: number) => {
    for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => request(s.child.port, PAGE)))
  }
  /** Answers of `n` requests sent while the post table is write-locked for `ms`. */
  const behindLock = async (n: number, ms: number) => {
    await s.env.query('LOCK TABLES `blog` WRITE')
    const pending = Promise.all(Array.from({ length: n }, () => request(s.child.port, PAGE)))
    await sleep(ms)
    await s.env.query('UNLOCK TABLES')
    return pending
  }

  it('keeps late, with blog.trace.kept slow_late and a log line, a request the bar of the moment let go', async () => {
    await many(600)
    // A burst of slow requests (3% of the route so far) raises the route's bar to theirs...
    await behindLock(20, 600)
    await many(100)
    // ...so a request a little less slow is not kept when it answers.
    const [held] = await behindLock(1, 450)
    expect(held!.status).toBe(200)
    expect(processTimeOf(held!)).toBeGreaterThan(430)
    expect(keptFlag(held!)).toBe('00')
    const { traceId } = parseTraceHeader(held!.headers.traceresponse)
    await sleep(1500)
    expect(s.receiver.trace(traceId), 'nothing exported yet').toEqual([])
    // None of the next 2,000 requests of its route is as slow: it was among the slowest of them.
    await many(2100)
    const t = await s.traced(held!, (spans) => spans.length >= 3)
    expect(t.server.attributes['blog.trace.kept'], t.tree).toBe('slow_late')
    expect(t.spans.map((x) => x.name).sort(), t.tree).toEqual(expect.arrayContaining(['GET /blogs/show/:id', 'SELECT']))
    expect(t.server.attributes['blog.http.process_time_ms']).toBe(processTimeOf(held!))
    const line = s.child.stdout().split('\n').find((l) => l.includes(traceId) && l.includes('trace kept after the response'))
    expect(line, 'a log line names the trace kept late').toBeDefined()
    expect(JSON.parse(line!)).toMatchObject({ trace_id: traceId, kept: 'slow_late', route: '/blogs/show/:id' })
  }, 120_000)
})
