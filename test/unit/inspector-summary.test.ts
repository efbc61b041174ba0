import { describe, expect, it } from 'vitest'
import { filterRequests, routeStats, sqlSplit, summarize, topSql, type RequestRow } from '../../src/inspector/stats'
import { traceSummary, waterfall } from '../../src/inspector/waterfall'
import { percentile } from '../../src/lib/stats'
import type { SpanRecord, TraceEntry } from '../../src/inspector/trace-buffer'

// The read side: numbers and layout the pages print, from hand-made trace entries.

let ids = 0
const id = () => (++ids).toString(16).padStart(16, '0')

function rec(p: Partial<SpanRecord> & { name: string }): SpanRecord {
  return { spanId: id(), parentId: undefined, kind: 0, start: 1000, duration: 1, error: false, attrs: {}, ...p }
}

/** A GET with `n` copies of one SELECT (an N+1 when n is large). */
function trace(route: string, durationMs: number, status = 200, selects = 1): TraceEntry {
  const root = rec({ name: `GET ${route}`, kind: 1, start: 1000, duration: durationMs, attrs: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': status, 'url.path': route } })
  const spans: SpanRecord[] = [rec({ name: 'pool.acquire', parentId: root.spanId, start: 1000.5, duration: 0.2, attrs: { 'db.system.name': 'mysql' } })]
  for (let i = 0; i < selects; i++) {
    spans.push(rec({ name: 'SELECT', kind: 2, parentId: root.spanId, start: 1001 + i, duration: 0.5, attrs: { 'db.system.name': 'mysql', 'db.query.text': 'SELECT * FROM `blog` WHERE `id` = ?' } }))
  }
  spans.push(rec({ name: 'view.render', parentId: root.spanId, start: 1001 + selects, duration: 2, attrs: { 'blog.view.name': 'blogs/index' } }))
  spans.push(root)
  return { traceId: id().padStart(32, '0'), spans, root, bytes: 0 }
}

describe('inspector summaries', () => {
  it('counts queries and SQL time per request (pool waits are not queries)', () => {
    const row = summarize(trace('/blogs/', 10, 200, 3))
    expect(row).toMatchObject({ method: 'GET', route: '/blogs/', status: 200, queries: 3, durationMs: 10, duration: '10.0 ms' })
    expect(row.dbMs).toBeCloseTo(1.5)
  })

  it('takes percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    expect([percentile(xs, 50), percentile(xs, 95), percentile(xs, 99), percentile(xs, 100)]).toEqual([50, 95, 99, 100])
    expect(percentile([7], 99)).toBe(7)
  })

  it('filters by route, status class or code and duration, and sorts slowest first on demand', () => {
    const rows: RequestRow[] = [
      summarize(trace('/blogs/', 5)),
      summarize(trace('/blogs/show/:id', 50, 404)),
      summarize(trace('/blogs/show/:id', 20)),
      summarize(trace('/assets/*', 1))
    ]
    const routes = (r: RequestRow[]) => r.map((x) => `${x.route} ${x.durationMs}`)
    expect(routes(filterRequests(rows, {}))).toEqual(['/blogs/ 5', '/blogs/show/:id 50', '/blogs/show/:id 20'])
    expect(filterRequests(rows, { includeStatic: true })).toHaveLength(4)
    expect(routes(filterRequests(rows, { route: '/blogs/show/:id', sort: 'slowest' }))).toEqual(['/blogs/show/:id 50', '/blogs/show/:id 20'])
    expect(routes(filterRequests(rows, { status: '4xx' }))).toEqual(['/blogs/show/:id 50'])
    expect(routes(filterRequests(rows, { status: '200', slowerThanMs: 10 }))).toEqual(['/blogs/show/:id 20'])
  })

  it('ranks statements by total time and flags one that repeats within a request (N+1)', () => {
    const [top] = topSql([trace('/blogs/', 30, 200, 12), trace('/blogs/', 10, 200, 1)])
    expect(top).toMatchObject({ calls: 13, requests: 2, maxPerRequest: 12, repeated: true, routes: ['GET /blogs/'] })
    const [single] = topSql([trace('/blogs/', 3, 200, 1)])
    expect(single!.repeated).toBe(false)
  })

  it('lays the waterfall out parent first, children by start, to scale', () => {
    const w = waterfall(trace('/blogs/show/:id', 10, 200, 2))
    expect(w.rows.map((r) => `${r.depth} ${r.name}`)).toEqual(['0 GET /blogs/show/:id', '1 pool.acquire', '1 SELECT', '1 SELECT', '1 view.render'])
    const [server, pool, select] = w.rows
    expect(server).toMatchObject({ x: '0.00%', width: '100.00%', category: 'server' })
    expect(pool).toMatchObject({ x: '5.00%', width: '2.00%', category: 'pool' })
    expect(select).toMatchObject({ x: '10.00%', width: '5.00%', category: 'sql', detail: 'SELECT * FROM `blog` WHERE `id` = ?' })
    expect(w.ticks.map((t) => t.label)).toEqual(['0', '2 ms', '4 ms', '6 ms', '8 ms', '10 ms'])
    expect(w.ticks[1]).toMatchObject({ x: '20.00%', anchor: 'middle' })
  })

  it('splits a SQL bar into DB server, loop busy and the rest, clamped to the span, and shares per route', () => {
    const t = trace('/blogs/', 10, 200, 2)
    const [first, second] = t.spans.filter((s) => s.name === 'SELECT')
    // 0.5 ms statements: 0.1 ms in the server and 0.3 busy loop; the other's numbers overshoot.
    first!.attrs['blog.db.server_ms'] = 0.1
    first!.attrs['blog.event_loop.active_ms'] = 0.3
    second!.attrs['blog.event_loop.active_ms'] = 9
    expect(sqlSplit(first!)).toEqual({ serverMs: 0.1, loopMs: 0.3, restMs: expect.closeTo(0.1, 6) })
    expect(sqlSplit(second!)).toEqual({ serverMs: undefined, loopMs: 0.5, restMs: 0 })
    expect(sqlSplit(t.spans.find((s) => s.name === 'view.render')!)).toBeNull()
    const rows = waterfall(t).rows.filter((r) => r.name === 'SELECT')
    expect(rows[0]!.parts.map((p) => [p.part, p.x, p.width])).toEqual([['server', '10.00%', '1.00%'], ['loop', '11.00%', '3.00%'], ['rest', '14.00%', '1.00%']])
    expect(rows[1]!.parts.map((p) => p.part)).toEqual(['loop'])
    const [route] = routeStats([summarize(t)])
    // Only the joined statement counts: 0.1 of its 0.5 ms.
    expect(route!.dbShare).toBe('20%')
    expect(routeStats([summarize(trace('/blogs/', 10))])[0]!.dbShare).toBe('–')
    expect(traceSummary(t)).toMatchObject({ sqlServer: '0.10 ms', sqlLoop: '0.80 ms' })
  })
})
