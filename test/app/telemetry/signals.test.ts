import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { PNG_1x1 } from '../../fixtures/images'
import { multipart } from '../../kit/form'
import { SpanKind, spanStrings, type ReceivedSpan } from '../../kit/otlp-receiver'
import { request } from '../../kit/server'
import { SERVER_SPAN_MODES, useTracedServer } from '../../kit/traced-server'

// What else a request tells: Server-Timing that agrees with its trace, log lines with its trace
// ids, metrics with semantic-convention attributes, and never a submitted value in any of them.

const mysqlSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === SpanKind.CLIENT && s.attributes['db.system.name'] === 'mysql')
const durationMs = (s: ReceivedSpan) => Number(s.endNs - s.startNs) / 1e6

/** `db;dur=1.23;desc="1 query", render;dur=...` as { db: { dur: 1.23, desc: '1 query' }, ... }. */
function parseServerTiming(header: string | string[] | undefined): Record<string, { dur: number; desc?: string }> {
  const out: Record<string, { dur: number; desc?: string }> = {}
  for (const entry of String(header ?? '').split(',')) {
    const [name, ...params] = entry.trim().split(';')
    if (!name) continue
    const p = Object.fromEntries(params.map((x) => x.split('=') as [string, string]))
    out[name] = { dur: Number(p.dur), ...(p.desc ? { desc: p.desc.replace(/^"|"$/g, '') } : {}) }
  }
  return out
}

describe.each(SERVER_SPAN_MODES)('server spans made by $name', (mode) => {
  const s = useTracedServer(mode.env)

  it('answers X-Process-Time and Server-Timing with the numbers its trace holds: one clock per request', async () => {
    const res = await request(s.child.port, '/blogs/')
    expect(res.status).toBe(200)
    const timing = parseServerTiming(res.headers['server-timing'])
    expect(Object.keys(timing)).toEqual(expect.arrayContaining(['db', 'pool', 'render', 'total']))
    expect(timing.db!.desc).toBe('1 query')
    for (const name of ['db', 'render', 'total']) expect(timing[name]!.dur, name).toBeGreaterThan(0)
    const header = String(res.headers['x-process-time'])
    expect(header).toMatch(/^\d+\.\d{2}ms$/)
    const shown = Number(header.slice(0, -2))
    expect(timing.total!.dur).toBe(shown)

    const { server, spans } = await s.traced(res)
    // The number the client saw is on the server span, exactly.
    expect(server.attributes['blog.http.process_time_ms']).toBe(shown)
    const select = mysqlSpans(spans)
    expect(select.map((q) => q.name)).toEqual(['SELECT'])
    expect(select[0]!.scope).toBe('blog_app')
    if (mode.scope === 'blog_app') {
      // The app's own server span: its start and end are the instants the header was computed
      // from (to the header's hundredth of a millisecond), and Server-Timing's db, pool and
      // render are its SQL, pool.acquire and view.render spans, summed.
      expect(Math.abs(durationMs(server) - shown)).toBeLessThanOrEqual(0.006)
      const sum = (name: string | ((x: ReceivedSpan) => boolean)) =>
        spans.filter(typeof name === 'string' ? (x) => x.name === name : name).reduce((a, x) => a + durationMs(x), 0)
      expect(Math.abs(sum((x) => mysqlSpans([x]).length === 1) - timing.db!.dur)).toBeLessThanOrEqual(0.01)
      expect(Math.abs(sum('pool.acquire') - timing.pool!.dur)).toBeLessThanOrEqual(0.01)
      expect(Math.abs(sum('view.render') - timing.render!.dur)).toBeLessThanOrEqual(0.01)
    } else {
      // The http instrumentation's span keeps its own clock: it starts before the app sees the request.
      expect(shown).toBeLessThanOrEqual(durationMs(server) + 1)
    }
  })

  it('never puts the submitted values (SQL parameters) into any span or metric: create, show, edit, delete', async () => {
    const marker = randomBytes(6).toString('hex')
    const values = { title: `TitleMarker${marker}`, content: `ContentMarker${marker} body text` }
    const created = await s.postForm(values, PNG_1x1)
    expect(created.status, created.body).toBe(303)
    const createTrace = await s.traced(created)
    expect(mysqlSpans(createTrace.spans).some((s) => s.name === 'INSERT'), createTrace.tree).toBe(true)
    const [row] = await s.env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [values.title])
    const id = row!.id
    // Read it back: the SELECT by id and the page carry the values, the spans must not.
    const shown = await request(s.child.port, `/blogs/show/${id}`)
    expect(shown.status).toBe(200)
    expect(shown.body).toContain(`ContentMarker${marker}`)
    const showTrace = await s.traced(shown)
    // Edit it (a locking SELECT and an UPDATE), then delete it (SELECT ... FOR UPDATE, DELETE).
    const edit = await multipart({ _csrf: s.author.csrf, title: `EditedMarker${marker}`, content: values.content })
    const edited = await request(s.child.port, { method: 'POST', path: `/blogs/modify/${id}`, headers: { ...edit.headers, cookie: s.author.cookie }, body: edit.payload })
    expect(edited.status, edited.body).toBe(303)
    const editTrace = await s.traced(edited)
    expect(mysqlSpans(editTrace.spans).map((s) => s.name), editTrace.tree).toContain('UPDATE')
    const deleted = await request(s.child.port, { method: 'DELETE', path: `/blogs/delete/${id}`, headers: { cookie: s.author.cookie } })
    expect(deleted.status).toBe(200)
    const deleteTrace = await s.traced(deleted)
    expect(mysqlSpans(deleteTrace.spans).map((s) => s.name), deleteTrace.tree).toContain('DELETE')
    // A rejected form with the markers (nothing is written, the values are re-rendered).
    const rejected = await s.postForm({ ...values, title: '' })
    expect(rejected.status).toBe(400)
    const rejectTrace = await s.traced(rejected)

    const markers = [values.title, `ContentMarker${marker}`, `EditedMarker${marker}`, marker]
    for (const t of [createTrace, showTrace, editTrace, deleteTrace, rejectTrace]) {
      for (const span of t.spans) {
        const leaked = spanStrings(span).filter((v) => markers.some((m) => v.includes(m)))
        expect(leaked, `span ${span.name} of ${t.server.name}`).toEqual([])
      }
      // No literal at all in any statement: the post id (inlined by Sequelize in findByPk and
      // destroy) is masked as well as the bound values.
      for (const q of mysqlSpans(t.spans)) {
        expect(String(q.attributes['db.query.text']), `${q.name} of ${t.server.name}`).not.toMatch(/\b\d+\b|'[^']*'|"[^"]*"/)
      }
    }
    // And nowhere in anything the app exported (metrics included), byte for byte.
    expect(s.receiver.requests.length).toBeGreaterThan(0)
    for (const r of s.receiver.requests) expect(r.body.includes(marker), `export to ${r.path}`).toBe(false)
  })

  it('every request log line carries the trace_id and span_id of its request\'s server span', async () => {
    const id = await s.existingPostId()
    const responses = [
      await request(s.child.port, '/blogs/'),
      await request(s.child.port, `/blogs/show/${id}`),
      await request(s.child.port, '/blogs/show/999999'),
      // A params validation failure: the error handler logs 'request rejected' as well.
      await request(s.child.port, '/blogs/show/not-a-number'),
      await s.postForm({ title: '', content: 'Rejected.' })
    ]
    const expected = new Map<string, string>()
    for (const res of responses) {
      const { server } = await s.traced(res)
      expected.set(server.traceId, server.spanId)
    }
    // Health probes are deliberately untraced.
    expect((await request(s.child.port, '/health')).headers.traceresponse).toBeUndefined()
    await sleep(100) // the last line is written after the response

    const requestLines = s.child.logs().filter((l) => typeof l.reqId === 'string')
    const urlOf = (l: Record<string, unknown>) => String((l.req as { url?: string } | undefined)?.url)
    const healthReqs = new Set(requestLines.filter((l) => ['/health', '/ready'].includes(urlOf(l))).map((l) => l.reqId))
    expect(healthReqs.size).toBeGreaterThanOrEqual(1)
    const tracedLines = requestLines.filter((l) => !healthReqs.has(l.reqId))
    for (const line of tracedLines) {
      expect(line.trace_id, JSON.stringify(line)).toMatch(/^[0-9a-f]{32}$/)
      expect(line.span_id, JSON.stringify(line)).toMatch(/^[0-9a-f]{16}$/)
    }
    // All lines of one request name the same trace.
    const tracesByReq = new Map<string, Set<unknown>>()
    for (const l of tracedLines) tracesByReq.set(String(l.reqId), (tracesByReq.get(String(l.reqId)) ?? new Set()).add(l.trace_id))
    for (const [reqId, traces] of tracesByReq) expect(traces.size, reqId).toBe(1)

    // Each of our requests: its lines (at least the completion line) name its server span.
    for (const [traceId, spanId] of expected) {
      const lines = tracedLines.filter((l) => l.trace_id === traceId)
      expect(lines.map((l) => l.msg), traceId).toContain('request completed')
      for (const l of lines) expect(l.span_id, JSON.stringify(l)).toBe(spanId)
    }
    const rejected = tracedLines.filter((l) => urlOf(l) === '/blogs/show/not-a-number' || l.msg === 'request rejected')
    expect(rejected.map((l) => l.msg)).toEqual(expect.arrayContaining(['request rejected', 'request completed']))

    for (const reqId of healthReqs) {
      for (const l of requestLines.filter((x) => x.reqId === reqId)) expect(l.trace_id, JSON.stringify(l)).toBeUndefined()
    }
  })

  it('exports HTTP, database, pool and runtime metrics with their semantic-convention attributes', async () => {
    // Traffic of every kind this test looks for (the earlier tests made some too, but run alone it must pass).
    expect((await request(s.child.port, '/blogs/')).status).toBe(200)
    expect((await s.postForm({ title: `Metric ${randomBytes(3).toString('hex')}`, content: 'Counted.' })).status).toBe(303)

    const http = await s.receiver.waitForMetric('http.server.request.duration', (m) =>
      m.points.some((p) => p.attributes['http.route'] === '/blogs/' && (p.count ?? 0) > 0)
    )
    expect(http.unit).toBe('s')
    expect(http.type).toBe('histogram')
    const listPoint = http.points.find((p) => p.attributes['http.route'] === '/blogs/' && p.attributes['http.response.status_code'] === 200)
    expect(listPoint?.attributes).toMatchObject({ 'http.request.method': 'GET' })
    // Seconds, not milliseconds: a local page takes well under a second.
    expect(listPoint!.sum! / listPoint!.count!).toBeLessThan(1)
    // Route templates only: no URL with an id becomes a series of its own.
    for (const p of http.points) expect(String(p.attributes['http.route'] ?? '')).not.toMatch(/\/\d+/)

    const ops = await s.receiver.waitForMetric('db.client.operation.duration', (m) =>
      ['SELECT', 'INSERT'].every((op) => m.points.some((p) => p.attributes['db.operation.name'] === op))
    )
    expect(ops.unit).toBe('s')
    expect(ops.type).toBe('histogram')
    for (const p of ops.points) expect(p.attributes).toMatchObject({ 'db.system.name': 'mysql', 'db.namespace': s.env.database })

    // An export taken while a request holds the connection says 0 idle: wait for one after it.
    const count = await s.receiver.waitForMetric('db.client.connection.count', (m) =>
      m.points.some((p) => p.attributes['db.client.connection.state'] === 'used') &&
      m.points.some((p) => p.attributes['db.client.connection.state'] === 'idle' && (p.value ?? 0) >= 1)
    )
    expect(count.unit).toBe('{connection}')
    for (const p of count.points) expect(p.attributes['db.client.connection.pool.name']).toBe(s.env.database)
    const idle = count.points.find((p) => p.attributes['db.client.connection.state'] === 'idle')
    expect(idle!.value).toBeGreaterThanOrEqual(1)

    const wait = await s.receiver.waitForMetric('db.client.connection.wait_time', (m) => m.points.some((p) => (p.count ?? 0) > 0))
    expect(wait.unit).toBe('s')
    expect(wait.points[0]!.attributes['db.client.connection.pool.name']).toBe(s.env.database)

    // The observer's own cost, so a load test can subtract it: kept traces' spans (and, with the
    // app's OTLP/protobuf encoder, their encoding; this receiver takes OTLP/JSON).
    // Only the app's own server spans are made from a record (the http instrumentation's are not).
    if (mode.scope === 'blog_app') {
      const self = await s.receiver.waitForMetric('blog.telemetry.cpu_time', (m) =>
        m.points.some((p) => p.attributes['blog.telemetry.work'] === 'spans' && (p.value ?? 0) > 0)
      )
      expect(self.unit).toBe('s')
    }

    const heap = await s.receiver.waitForMetric('v8js.memory.heap.used')
    expect(heap.unit).toBe('By')
    expect(heap.points.some((p) => (p.value ?? 0) > 1_000_000)).toBe(true)
    const loop = await s.receiver.waitForMetric('nodejs.eventloop.utilization')
    expect(loop.points[0]!.value).toBeGreaterThanOrEqual(0)
    expect(loop.points[0]!.value).toBeLessThanOrEqual(1)
  })
})
