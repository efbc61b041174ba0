import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, multipart, type TestEnv } from '../../kit/app'
import {
  childrenOf,
  formatTree,
  OtlpReceiver,
  parseTraceHeader,
  SpanKind,
  spanStrings,
  StatusCode,
  type ReceivedSpan
} from '../../kit/otlp-receiver'
import { assertBuilt, request, startListening, type HttpResponse, type ServerChild } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'

// One child server (compiled app + otel/bootstrap, exactly as `npm start`) exporting OTLP/JSON
// to an in-process receiver; every test reads the spans of its own requests by trace id. The whole
// suite runs twice: server spans made by the app's Fastify hooks (src/plugins/telemetry.ts, the
// default) and by the http instrumentation (when OTEL_NODE_ENABLED_INSTRUMENTATIONS adds http).

const MODES: { name: string; scope: string; env: Record<string, string> }[] = [
  { name: 'the http instrumentation', scope: '@opentelemetry/instrumentation-http', env: { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,mysql2,pino,runtime-node' } },
  {
    name: 'the Fastify hooks (the default: http instrumentation off)',
    scope: 'blog_app',
    env: {}
  }
]

let env: TestEnv
let receiver: OtlpReceiver
let child: ServerChild

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
})

afterAll(async () => {
  await child?.kill()
  await receiver?.close()
  await env?.cleanup()
})

interface Traced {
  res: HttpResponse
  spans: ReceivedSpan[]
  server: ReceivedSpan
  tree: string
}

/** Waits for the trace the response's `traceresponse` header names; returns it with its server span. */
async function traced(res: HttpResponse, ready?: (spans: ReceivedSpan[]) => boolean): Promise<Traced> {
  expect(res.headers.traceresponse, 'the response should carry traceresponse').toBeDefined()
  const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
  const spans = await receiver.waitForTrace(traceId, ready)
  const servers = spans.filter((s) => s.kind === SpanKind.SERVER)
  const tree = formatTree(spans)
  expect(servers, tree).toHaveLength(1)
  const server = servers[0]!
  // traceresponse names the exported server span, not some other span of the trace.
  expect(server.spanId, tree).toBe(spanId)
  return { res, spans, server, tree }
}

const mysqlSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.scope === '@opentelemetry/instrumentation-mysql2')
const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name)
/** One millisecond in ns: span start times are Date.now(), so comparisons across spans allow for the rounding. */
const MS = 1_000_000n

async function existingPostId(): Promise<number> {
  const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` ORDER BY `id` LIMIT 1')
  expect(row, 'the seeded database should have posts').toBeDefined()
  return row!.id
}

async function postForm(fields: Record<string, string>, image?: Buffer): Promise<HttpResponse> {
  const body = await multipart(fields, image ? { image_file: { data: image, filename: 'picture.png', type: 'image/png' } } : {})
  return request(child.port, { method: 'POST', path: '/blogs/new', headers: body.headers, body: body.payload })
}

/** `db;dur=1.23;desc="1 queries", render;dur=...` as { db: { dur: 1.23, desc: '1 queries' }, ... }. */
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

describe.each(MODES)('server spans made by $name', (mode) => {
  beforeAll(async () => {
    receiver = await OtlpReceiver.start()
    child = await startListening({ ...env.env, ...receiver.env(), ...mode.env, LOG_LEVEL: 'info' }, { telemetry: true })
  })
  afterAll(async () => {
    await child.kill()
    await receiver.close()
  })

  describe('GET /blogs/ (the list)', () => {
    it('is one server span named by its route, with the SELECT, the pool wait and the render as children', async () => {
      const res = await request(child.port, '/blogs/')
      expect(res.status).toBe(200)
      const { spans, server, tree } = await traced(res, (s) => s.some((x) => x.kind === SpanKind.SERVER))

      expect(server.name, tree).toBe('GET /blogs/')
      expect(server.parentSpanId).toBeUndefined()
      expect(server.scope).toBe(mode.scope)
      expect(server.attributes).toMatchObject({
        'http.route': '/blogs/',
        'http.request.method': 'GET',
        'http.response.status_code': 200,
        'url.path': '/blogs/'
      })
      expect(server.status.code).toBe(StatusCode.UNSET)
      expect(server.resource['service.name']).toBe('blog-app')

      const children = childrenOf(spans, server)
      // Nothing in the trace hangs off anything but the server span (no stray roots, no deep nesting).
      expect(children, tree).toHaveLength(spans.length - 1)

      const queries = mysqlSpans(children)
      expect(queries.map((q) => q.name), tree).toEqual(['SELECT'])
      const select = queries[0]!
      expect(select.kind).toBe(SpanKind.CLIENT)
      expect(select.attributes).toMatchObject({
        'db.system.name': 'mysql',
        'db.namespace': env.database,
        'server.address': env.config.db.host,
        'server.port': env.config.db.port
      })
      const text = String(select.attributes['db.query.text'])
      expect(text).toMatch(/^SELECT .* FROM `blog` ORDER BY .* LIMIT \? OFFSET \?$/)
      // Masked: the page size and offset are placeholders, no literal values.
      expect(text).not.toMatch(/\b\d+\b|'[^']*'/)

      const [acquire] = named(children, 'pool.acquire')
      expect(acquire, tree).toBeDefined()
      expect(acquire!.attributes).toMatchObject({ 'db.client.connection.pool.name': env.database, 'db.system.name': 'mysql' })
      // The wait for a connection comes before the query that uses it (1 ms: span starts are
      // millisecond-rounded).
      expect(acquire!.endNs).toBeLessThanOrEqual(select.endNs + MS)

      const renders = named(children, 'view.render')
      expect(renders, tree).toHaveLength(1)
      expect(renders[0]!.attributes['blog.view.name']).toBe('blogs/index')
      expect(renders[0]!.startNs).toBeGreaterThanOrEqual(select.startNs)

      // Children lie inside the server span.
      for (const c of children) {
        expect(c.startNs + MS, c.name).toBeGreaterThanOrEqual(server.startNs)
        expect(c.endNs, c.name).toBeLessThanOrEqual(server.endNs)
      }
    })

    it('answers Server-Timing with db, render and total entries that agree with the trace', async () => {
      const res = await request(child.port, '/blogs/')
      expect(res.status).toBe(200)
      const timing = parseServerTiming(res.headers['server-timing'])
      expect(Object.keys(timing)).toEqual(expect.arrayContaining(['db', 'render', 'total']))
      expect(timing.db!.desc).toBe('1 queries')
      for (const name of ['db', 'render', 'total']) {
        expect(timing[name]!.dur, name).toBeGreaterThan(0)
      }
      expect(timing.total!.dur).toBeGreaterThanOrEqual(timing.render!.dur)
      expect(timing.total!.dur).toBeGreaterThanOrEqual(timing.db!.dur)
      expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{2}ms$/)

      const { server, spans } = await traced(res)
      const serverMs = Number(server.endNs - server.startNs) / 1e6
      // Fastify's clock starts after the http instrumentation's: total fits inside the server span.
      expect(timing.total!.dur).toBeLessThanOrEqual(serverMs + 1)
      const select = mysqlSpans(spans)[0]!
      const selectMs = Number(select.endNs - select.startNs) / 1e6
      // Measured by different hooks, so not equal, but the same order of magnitude.
      expect(timing.db!.dur).toBeLessThanOrEqual(serverMs)
      expect(selectMs).toBeLessThanOrEqual(serverMs)
    })
  })

  describe('GET /blogs/show/:id', () => {
    it('is named by the route template, not the URL, and has the SELECT by id with the id masked', async () => {
      const id = await existingPostId()
      const res = await request(child.port, `/blogs/show/${id}`)
      expect(res.status).toBe(200)
      const { spans, server, tree } = await traced(res)

      expect(server.name).toBe('GET /blogs/show/:id')
      expect(server.attributes).toMatchObject({ 'http.route': '/blogs/show/:id', 'http.response.status_code': 200, 'url.path': `/blogs/show/${id}` })
      const queries = mysqlSpans(spans)
      expect(queries.map((q) => q.name), tree).toEqual(['SELECT'])
      expect(queries[0]!.parentSpanId).toBe(server.spanId)
      expect(queries[0]!.attributes['db.query.text']).toBe('SELECT `id`, `title`, `author`, `content`, `image_loc`, `modified_dt` FROM `blog` WHERE `id` = ?')
      expect(named(spans, 'view.render')[0]?.attributes['blog.view.name'], tree).toBe('blogs/show')
    })

    it('for a post that does not exist answers 404 under the same route name, not as an error', async () => {
      const res = await request(child.port, '/blogs/show/999999')
      expect(res.status).toBe(404)
      const { spans, server, tree } = await traced(res)
      expect(server.name).toBe('GET /blogs/show/:id')
      expect(server.attributes['http.response.status_code']).toBe(404)
      expect(server.status.code, tree).not.toBe(StatusCode.ERROR)
      expect(server.events).toEqual([])
      expect(mysqlSpans(spans).map((s) => s.name)).toEqual(['SELECT'])
      expect(named(spans, 'view.render')[0]?.attributes['blog.view.name'], tree).toBe('errors/error')
    })

    it('an unknown URL is a 404 whose span carries no route (no URL in the span name)', async () => {
      const path = `/no-such-page-${randomBytes(4).toString('hex')}`
      const res = await request(child.port, path)
      expect(res.status).toBe(404)
      const { server } = await traced(res)
      expect(server.name).toBe('GET')
      expect(server.attributes['http.route']).toBeUndefined()
      expect(server.attributes['url.path']).toBe(path)
      expect(server.status.code).not.toBe(StatusCode.ERROR)
    })
  })

  describe('POST /blogs/new', () => {
    it('with an image: the image write, then START TRANSACTION, INSERT, COMMIT in order, all children of the server span', async () => {
      const image = Buffer.concat([PNG_1x1, randomBytes(20_000)])
      const title = `Traced ${randomBytes(4).toString('hex')}`
      const res = await postForm({ title, author: 'Span Tester', content: 'A post with a picture.' }, image)
      expect(res.status, res.body).toBe(303)
      const { spans, server, tree } = await traced(res)

      expect(server.name).toBe('POST /blogs/new')
      expect(server.attributes).toMatchObject({ 'http.route': '/blogs/new', 'http.request.method': 'POST', 'http.response.status_code': 303 })
      expect(server.status.code).toBe(StatusCode.UNSET)

      const writes = named(spans, 'blog.image.write')
      expect(writes, tree).toHaveLength(1)
      expect(writes[0]!.parentSpanId).toBe(server.spanId)
      expect(writes[0]!.attributes).toMatchObject({ 'blog.image.bytes': image.length, 'blog.image.type': 'png' })
      expect(writes[0]!.status.code).toBe(StatusCode.UNSET)

      // In the order they ended (exact; see ReceivedSpan.seq), which for sequential statements
      // is the order they ran.
      const queries = mysqlSpans(spans).sort((a, b) => a.seq - b.seq)
      for (const q of queries) expect(q.parentSpanId, tree).toBe(server.spanId)
      const texts = queries.map((q) => String(q.attributes['db.query.text']))
      const start = texts.findIndex((t) => /^START TRANSACTION/.test(t))
      const insert = texts.findIndex((t) => /^INSERT INTO `blog`/.test(t))
      const commit = texts.findIndex((t) => /^COMMIT/.test(t))
      expect([start, insert, commit], tree).not.toContain(-1)
      expect(start, texts.join('\n')).toBeLessThan(insert)
      expect(insert, texts.join('\n')).toBeLessThan(commit)
      // Start times agree (not strictly: they are millisecond-rounded).
      expect(queries[start]!.startNs).toBeLessThanOrEqual(queries[insert]!.startNs)
      expect(queries[insert]!.startNs).toBeLessThanOrEqual(queries[commit]!.startNs)
      expect(queries[insert]!.name).toBe('INSERT')
      expect(texts.some((t) => /^ROLLBACK/.test(t)), tree).toBe(false)
      // The file is received before the transaction opens.
      expect(writes[0]!.startNs).toBeLessThanOrEqual(queries[start]!.startNs)
      expect(writes[0]!.endNs).toBeLessThanOrEqual(queries[start]!.endNs + MS)

      const rows = await env.query<{ image_loc: string }>('SELECT `image_loc` FROM `blog` WHERE `title` = ?', [title])
      expect(rows).toHaveLength(1)
    })

    it('never puts the submitted values (SQL parameters) into any span or metric: create, show, edit, delete', async () => {
      const marker = randomBytes(6).toString('hex')
      const values = { title: `TitleMarker${marker}`, author: `AuthorMarker${marker}`, content: `ContentMarker${marker} body text` }
      const created = await postForm(values, PNG_1x1)
      expect(created.status, created.body).toBe(303)
      const createTrace = await traced(created)
      expect(mysqlSpans(createTrace.spans).some((s) => s.name === 'INSERT'), createTrace.tree).toBe(true)
      const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [values.title])
      const id = row!.id
      // Read it back: the SELECT by id and the page carry the values, the spans must not.
      const shown = await request(child.port, `/blogs/show/${id}`)
      expect(shown.status).toBe(200)
      expect(shown.body).toContain(`ContentMarker${marker}`)
      const showTrace = await traced(shown)
      // Edit it (a locking SELECT and an UPDATE), then delete it (SELECT ... FOR UPDATE, DELETE).
      const edit = await multipart({ title: `EditedMarker${marker}`, author: values.author, content: values.content })
      const edited = await request(child.port, { method: 'POST', path: `/blogs/modify/${id}`, headers: edit.headers, body: edit.payload })
      expect(edited.status, edited.body).toBe(303)
      const editTrace = await traced(edited)
      expect(mysqlSpans(editTrace.spans).map((s) => s.name), editTrace.tree).toContain('UPDATE')
      const deleted = await request(child.port, { method: 'DELETE', path: `/blogs/delete/${id}` })
      expect(deleted.status).toBe(200)
      const deleteTrace = await traced(deleted)
      expect(mysqlSpans(deleteTrace.spans).map((s) => s.name), deleteTrace.tree).toContain('DELETE')
      // A rejected form with the markers (nothing is written, the values are re-rendered).
      const rejected = await postForm({ ...values, title: '' })
      expect(rejected.status).toBe(400)
      const rejectTrace = await traced(rejected)

      const markers = [values.title, values.author, `ContentMarker${marker}`, `EditedMarker${marker}`, marker]
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
      expect(receiver.requests.length).toBeGreaterThan(0)
      for (const r of receiver.requests) expect(r.body.includes(marker), `export to ${r.path}`).toBe(false)
    })

    it('a validation failure answers 400 with the form re-rendered: no transaction, no INSERT, not an error', async () => {
      const res = await postForm({ title: 'x', author: '', content: 'Too short a title and no author.' })
      expect(res.status).toBe(400)
      const { spans, server, tree } = await traced(res)
      expect(server.name).toBe('POST /blogs/new')
      expect(server.attributes['http.response.status_code']).toBe(400)
      expect(server.status.code, tree).not.toBe(StatusCode.ERROR)
      expect(server.events).toEqual([])
      expect(server.attributes['error.type']).toBeUndefined()
      expect(mysqlSpans(spans), tree).toEqual([])
      const renders = named(spans, 'view.render')
      expect(renders.map((r) => r.attributes['blog.view.name']), tree).toEqual(['blogs/new'])
      expect(renders[0]!.parentSpanId).toBe(server.spanId)
    })
  })

  describe('trace context', () => {
    it('an incoming traceparent is continued: same trace id, the server span is the caller span\'s child', async () => {
      const traceId = randomBytes(16).toString('hex')
      const parentId = randomBytes(8).toString('hex')
      const res = await request(child.port, { path: '/blogs/', headers: { traceparent: `00-${traceId}-${parentId}-01` } })
      expect(res.status).toBe(200)
      const header = parseTraceHeader(res.headers.traceresponse)
      expect(header.traceId).toBe(traceId)
      expect(header.flags).toBe('01')
      const { server, spans } = await traced(res)
      expect(server.traceId).toBe(traceId)
      expect(server.parentSpanId).toBe(parentId)
      expect(server.spanId).not.toBe(parentId)
      for (const s of spans) expect(s.traceId).toBe(traceId)
    })

    it('without a traceparent each request starts its own trace', async () => {
      const a = parseTraceHeader((await request(child.port, '/blogs/')).headers.traceresponse)
      const b = parseTraceHeader((await request(child.port, '/blogs/')).headers.traceresponse)
      expect(a.traceId).not.toBe(b.traceId)
      expect(a.traceId).not.toMatch(/^0+$/)
    })

    it('every request log line carries the trace_id and span_id of its request\'s server span', async () => {
      const id = await existingPostId()
      const responses = [
        await request(child.port, '/blogs/'),
        await request(child.port, `/blogs/show/${id}`),
        await request(child.port, '/blogs/show/999999'),
        // A params validation failure: the error handler logs 'request rejected' as well.
        await request(child.port, '/blogs/show/not-a-number'),
        await postForm({ title: '', author: 'Log Tester', content: 'Rejected.' })
      ]
      const expected = new Map<string, string>()
      for (const res of responses) {
        const { server } = await traced(res)
        expected.set(server.traceId, server.spanId)
      }
      // Health probes are deliberately untraced.
      expect((await request(child.port, '/health')).headers.traceresponse).toBeUndefined()
      await sleep(100) // the last line is written after the response

      const requestLines = child.logs().filter((l) => typeof l.reqId === 'string')
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
  })

  describe('a database error', () => {
    it('marks the server span ERROR with an exception event and error.type, and the failed query span too', async () => {
      await env.query('RENAME TABLE `blog` TO `blog_moved_away`')
      let res: HttpResponse
      try {
        res = await request(child.port, '/blogs/')
      } finally {
        await env.query('RENAME TABLE `blog_moved_away` TO `blog`')
      }
      expect(res.status).toBe(500)
      const { spans, server, tree } = await traced(res)

      expect(server.name).toBe('GET /blogs/')
      expect(server.attributes['http.response.status_code']).toBe(500)
      expect(server.status.code, tree).toBe(StatusCode.ERROR)
      // The http instrumentation sets error.type to the status code at the end (semantic
      // conventions for HTTP); the exception's own type is on the exception event.
      expect(server.attributes['error.type'], tree).toBe('500')
      const exceptions = server.events.filter((e) => e.name === 'exception')
      expect(exceptions, tree).toHaveLength(1)
      expect(exceptions[0]!.attributes).toMatchObject({
        'exception.type': 'SequelizeDatabaseError',
        'exception.message': `Table '${env.database}.blog' doesn't exist`
      })

      const failed = mysqlSpans(spans)
      expect(failed.map((s) => s.name), tree).toEqual(['SELECT'])
      expect(failed[0]!.status.code).toBe(StatusCode.ERROR)
      expect(failed[0]!.status.message).toMatch(/doesn't exist/)
      // The error page is still rendered (and traced).
      expect(named(spans, 'view.render')[0]?.attributes['blog.view.name']).toBe('errors/error')

      // Restored: the next request is fine again.
      expect((await request(child.port, '/blogs/')).status).toBe(200)
    })
  })

  describe('metrics', () => {
    it('exports HTTP, database, pool and runtime metrics with their semantic-convention attributes', async () => {
      // Traffic of every kind this test looks for (the earlier tests made some too, but run alone it must pass).
      expect((await request(child.port, '/blogs/')).status).toBe(200)
      expect((await postForm({ title: `Metric ${randomBytes(3).toString('hex')}`, author: 'M', content: 'Counted.' })).status).toBe(303)

      const http = await receiver.waitForMetric('http.server.request.duration', (m) =>
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

      const ops = await receiver.waitForMetric('db.client.operation.duration', (m) =>
        ['SELECT', 'INSERT'].every((op) => m.points.some((p) => p.attributes['db.operation.name'] === op))
      )
      expect(ops.unit).toBe('s')
      expect(ops.type).toBe('histogram')
      for (const p of ops.points) expect(p.attributes).toMatchObject({ 'db.system.name': 'mysql', 'db.namespace': env.database })

      const count = await receiver.waitForMetric('db.client.connection.count', (m) =>
        ['used', 'idle'].every((state) => m.points.some((p) => p.attributes['db.client.connection.state'] === state))
      )
      expect(count.unit).toBe('{connection}')
      for (const p of count.points) expect(p.attributes['db.client.connection.pool.name']).toBe(env.database)
      const idle = count.points.find((p) => p.attributes['db.client.connection.state'] === 'idle')
      expect(idle!.value).toBeGreaterThanOrEqual(1)

      const wait = await receiver.waitForMetric('db.client.connection.wait_time', (m) => m.points.some((p) => (p.count ?? 0) > 0))
      expect(wait.unit).toBe('s')
      expect(wait.points[0]!.attributes['db.client.connection.pool.name']).toBe(env.database)

      const heap = await receiver.waitForMetric('v8js.memory.heap.used')
      expect(heap.unit).toBe('By')
      expect(heap.points.some((p) => (p.value ?? 0) > 1_000_000)).toBe(true)
      const loop = await receiver.waitForMetric('nodejs.eventloop.utilization')
      expect(loop.points[0]!.value).toBeGreaterThanOrEqual(0)
      expect(loop.points[0]!.value).toBeLessThanOrEqual(1)
    })
  })
})
