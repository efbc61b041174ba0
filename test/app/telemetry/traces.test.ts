import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { PNG_1x1, pngDeclaring } from '../../fixtures/images'
import { parseTraceHeader, StatusCode } from '../../kit/otlp-receiver'
import { request, type HttpResponse } from '../../kit/server'
import { expectRequestTrace } from '../../kit/trace'
import { SERVER_SPAN_MODES, useTracedServer } from '../../kit/traced-server'

// The span tree of each kind of request (the trace contract of test/kit/trace.ts), read from
// what the compiled app exports, in both ways of making server spans.

const LIST_SQL = /^SELECT .* FROM `blog` ORDER BY .* LIMIT \? OFFSET \?$/
const SHOW_SQL = /^SELECT `id`, `title`, `author`, `content`, `image_loc`, `thumb_loc`, `image_width`, `image_height`, `thumb_width`, `thumb_height`, `image_alt`, `user_id`, DATE_FORMAT\(`published_dt`, \?\) AS `published_iso`, IF\(`modified_dt` > `published_dt`, DATE_FORMAT\(`modified_dt`, \?\), NULL\) AS `edited_iso` FROM `blog` WHERE `id` = \?$/

const SESSION_SQL = /^SELECT `session`\.`csrf_token`, .* FROM `session` LEFT JOIN `user` .* WHERE `session`\.`id` = \? AND `session`\.`expires_dt` > UTC_TIMESTAMP\(\)$/

describe.each(SERVER_SPAN_MODES)('server spans made by $name', (mode) => {
  const s = useTracedServer(mode.env)
  const spanIdOf = (res: HttpResponse) => parseTraceHeader(res.headers.traceresponse).spanId

  it('GET /blogs/: one server span with the pool wait, the SELECT and the render as children', async () => {
    const res = await request(s.child.port, '/blogs/')
    expect(res.status).toBe(200)
    const t = await s.traced(res)
    const { children, sql } = expectRequestTrace(t.contract, {
      name: 'GET /blogs/', status: 200, spanId: spanIdOf(res),
      children: ['pool.acquire', 'SELECT', 'view.render'], sql: [LIST_SQL], view: 'blogs/index'
    })
    expect(t.server.scope).toBe(mode.scope)
    expect(t.server.parentSpanId).toBeUndefined()
    expect(t.server.resource['service.name']).toBe('blog-app')
    expect(t.server.attributes['url.path']).toBe('/blogs/')
    expect(sql[0]!.attributes).toMatchObject({
      'db.system.name': 'mysql', 'db.namespace': s.env.database, 'server.address': s.env.config.db.host, 'server.port': s.env.config.db.port
    })
    const acquire = children.find((c) => c.name === 'pool.acquire')!
    expect(acquire.attributes).toMatchObject({ 'db.client.connection.pool.name': s.env.database, 'db.system.name': 'mysql' })
    // The wait for a connection comes before the query that uses it, the render after it.
    expect(acquire.endUs).toBeLessThanOrEqual(sql[0]!.endUs + 1000)
    expect(children.find((c) => c.name === 'view.render')!.startUs).toBeGreaterThanOrEqual(sql[0]!.startUs)
  })

  it('GET /blogs/show/:id is named by the route template, not the URL, with the id masked', async () => {
    const id = await s.existingPostId()
    const res = await request(s.child.port, `/blogs/show/${id}`)
    expect(res.status).toBe(200)
    const t = await s.traced(res)
    expectRequestTrace(t.contract, { name: 'GET /blogs/show/:id', status: 200, sql: [SHOW_SQL], view: 'blogs/show' })
    expect(t.server.attributes['url.path']).toBe(`/blogs/show/${id}`)
  })

  it('a post that does not exist is a 404 under the same route name, not an error', async () => {
    const t = await s.traced(await request(s.child.port, '/blogs/show/999999'))
    expectRequestTrace(t.contract, { name: 'GET /blogs/show/:id', status: 404, sql: [SHOW_SQL], view: 'errors/error' })
    expect(t.server.events).toEqual([])
  })

  it('a signed-in page view: a blog.session span for the session lookup, its SELECT traced like any other, and no enduser.id', async () => {
    const res = await request(s.child.port, { path: '/blogs/', headers: { cookie: s.author.cookie } })
    expect(res.status).toBe(200)
    expect(res.body).toContain(`Signed in as ${s.author.displayName}`)
    const t = await s.traced(res)
    const { children } = expectRequestTrace(t.contract, {
      name: 'GET /blogs/', status: 200, spanId: spanIdOf(res),
      children: ['blog.session', 'pool.acquire', 'SELECT', 'pool.acquire', 'SELECT', 'view.render'], sql: [SESSION_SQL, LIST_SQL], view: 'blogs/index'
    })
    const session = children.find((c) => c.name === 'blog.session')!
    expect(session.attributes).toEqual({ 'blog.session.source': 'cookie', 'blog.session.state': 'user' })
    const lookup = children.find((c) => SESSION_SQL.test(String(c.attributes['db.query.text'])))!
    // The lookup's statement runs inside the session span.
    expect(lookup.startUs + 1000).toBeGreaterThanOrEqual(session.startUs)
    expect(lookup.endUs).toBeLessThanOrEqual(session.endUs + 1000)
    for (const span of t.spans) for (const key of Object.keys(span.attributes)) expect(key, span.name).not.toMatch(/^enduser\./)
    expect(JSON.stringify(t.contract)).not.toContain(s.author.displayName)
  })

  it('an unknown URL is a 404 whose span carries no route (no URL in the span name)', async () => {
    const path = `/no-such-page-${randomBytes(4).toString('hex')}`
    const t = await s.traced(await request(s.child.port, path))
    expectRequestTrace(t.contract, { name: 'GET', status: 404, sql: [] })
    expect(t.server.attributes['url.path']).toBe(path)
  })

  it('POST /blogs/new with an image: the image decode and re-encode, its write, then START TRANSACTION, INSERT, COMMIT in order', async () => {
    const image = Buffer.concat([PNG_1x1, randomBytes(20_000)])
    const title = `Traced ${randomBytes(4).toString('hex')}`
    const res = await s.postForm({ title, content: 'A post with a picture.' }, image)
    expect(res.status, res.body).toBe(303)
    const t = await s.traced(res)
    const { children, sql: all } = expectRequestTrace(t.contract, {
      name: 'POST /blogs/new', status: 303, spanId: spanIdOf(res),
      // In the order they ended (the export order), which for sequential statements is the order they ran.
      sql: [SESSION_SQL, /^START TRANSACTION/, /^INSERT INTO `blog`/, /^COMMIT/]
    })
    const sql = all.slice(1)
    expect(sql.map((q) => q.name)[1]).toBe('INSERT')
    const [row] = await s.env.query<{ image_loc: string; thumb_loc: string | null }>('SELECT `image_loc`, `thumb_loc` FROM `blog` WHERE `title` = ?', [title])
    // 1x1: no thumbnail, so one file is written, the re-encoded image (the trailing bytes are gone).
    expect(row!.thumb_loc).toBeNull()
    const stored = (await fs.stat(path.join(s.env.uploadDir, row!.image_loc))).size
    expect(stored).toBeLessThan(image.length)
    const processes = children.filter((c) => c.name === 'blog.image.process')
    expect(processes).toHaveLength(1)
    expect(processes[0]!.attributes).toMatchObject({
      'blog.image.input_type': 'png', 'blog.image.input_bytes': image.length,
      'blog.image.width': 1, 'blog.image.height': 1, 'blog.image.bytes': stored, 'blog.image.thumb_bytes': 0
    })
    expect(JSON.stringify(processes[0]!.attributes)).not.toContain('picture.png')
    expect(processes[0]!.error).toBe(false)
    const writes = children.filter((c) => c.name === 'blog.image.write')
    expect(writes).toHaveLength(1)
    expect(writes[0]!.attributes).toMatchObject({ 'blog.image.bytes': stored, 'blog.image.type': 'png' })
    expect(writes[0]!.error).toBe(false)
    // Decoded, then written, all before the transaction opens.
    expect(processes[0]!.endUs).toBeLessThanOrEqual(writes[0]!.startUs + 1000)
    expect(writes[0]!.startUs).toBeLessThanOrEqual(sql[0]!.startUs)
    expect(writes[0]!.endUs).toBeLessThanOrEqual(sql[0]!.endUs + 1000)
  })

  it('an upload that is a decompression bomb: 422, the blog.image.process span marked ERROR, nothing written', async () => {
    const res = await s.postForm({ title: `Bomb ${randomBytes(4).toString('hex')}`, content: 'A post with a bomb.' }, pngDeclaring(20_000, 20_000))
    expect(res.status).toBe(422)
    const t = await s.traced(res)
    // The session lookup, then the refused decode: no transaction, no INSERT.
    const { children } = expectRequestTrace(t.contract, { name: 'POST /blogs/new', status: 422, children: ['blog.session', 'pool.acquire', 'SELECT', 'blog.image.process', 'view.render'], sql: [SESSION_SQL], view: 'blogs/new' })
    const processed = children.find((c) => c.name === 'blog.image.process')!
    expect(processed.error).toBe(true)
    expect(processed.attributes).toMatchObject({ 'blog.image.input_type': 'png', 'error.type': 'IMAGE_TOO_MANY_PIXELS' })
  })

  it('a validation failure answers 400 with the form re-rendered: no transaction, no INSERT, not an error', async () => {
    const res = await s.postForm({ title: 'x', content: 'Too short a title.' })
    expect(res.status).toBe(400)
    const t = await s.traced(res)
    // Only the session lookup touches the database.
    expectRequestTrace(t.contract, { name: 'POST /blogs/new', status: 400, children: ['blog.session', 'pool.acquire', 'SELECT', 'view.render'], sql: [SESSION_SQL], view: 'blogs/new' })
    expect(t.server.events).toEqual([])
    expect(t.server.attributes['error.type']).toBeUndefined()
  })

  it('a database error marks the server span ERROR with an exception event and error.type, and the failed query too', async () => {
    await s.env.query('RENAME TABLE `blog` TO `blog_moved_away`')
    let res: HttpResponse
    try {
      res = await request(s.child.port, '/blogs/')
    } finally {
      await s.env.query('RENAME TABLE `blog_moved_away` TO `blog`')
    }
    expect(res.status).toBe(500)
    const t = await s.traced(res)
    const { sql } = expectRequestTrace(t.contract, { name: 'GET /blogs/', status: 500, error: true, sql: [LIST_SQL], view: 'errors/error' })
    // error.type is the status code at the end (semantic conventions for HTTP); the exception's
    // own type is on the exception event.
    expect(t.server.attributes['error.type'], t.tree).toBe('500')
    const exceptions = t.server.events.filter((e) => e.name === 'exception')
    expect(exceptions, t.tree).toHaveLength(1)
    expect(exceptions[0]!.attributes).toMatchObject({
      'exception.type': 'SequelizeDatabaseError',
      'exception.message': `Table '${s.env.database}.blog' doesn't exist`
    })
    expect(sql[0]!.error).toBe(true)
    // The statement's span says which error (the driver's code), not its message: a driver's
    // message can quote a value (a duplicate key).
    const failed = t.spans.find((x) => x.name === 'SELECT')!
    expect(failed.attributes['error.type']).toBe('ER_NO_SUCH_TABLE')
    expect(failed.status.message ?? '').toBe('')
    expect(t.server.status.code).toBe(StatusCode.ERROR)
    // Restored: the next request is fine again.
    expect((await request(s.child.port, '/blogs/')).status).toBe(200)
  })

  it("an incoming traceparent is continued: same trace id, the server span is the caller span's child", async () => {
    const traceId = randomBytes(16).toString('hex')
    const parentId = randomBytes(8).toString('hex')
    const res = await request(s.child.port, { path: '/blogs/', headers: { traceparent: `00-${traceId}-${parentId}-01` } })
    expect(res.status).toBe(200)
    const header = parseTraceHeader(res.headers.traceresponse)
    expect(header.traceId).toBe(traceId)
    expect(header.flags).toBe('01')
    const t = await s.traced(res)
    expect(t.server.traceId).toBe(traceId)
    expect(t.server.parentSpanId).toBe(parentId)
    expect(t.server.spanId).not.toBe(parentId)
    for (const x of t.spans) expect(x.traceId).toBe(traceId)
  })

  it('without a traceparent each request starts its own trace', async () => {
    const a = parseTraceHeader((await request(s.child.port, '/blogs/')).headers.traceresponse)
    const b = parseTraceHeader((await request(s.child.port, '/blogs/')).headers.traceresponse)
    expect(a.traceId).not.toBe(b.traceId)
    expect(a.traceId).not.toMatch(/^0+$/)
  })
})
