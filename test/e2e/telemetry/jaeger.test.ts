import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PNG_1x1 } from '../../fixtures/images'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { startJaeger, type Jaeger } from '../../kit/jaeger'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, request, startListening, type HttpResponse, type ServerChild } from '../../kit/server'
import { expectRequestTrace, fromJaeger, type JaegerTrace } from '../../kit/trace'

// End to end with a real Jaeger v2 (an OpenTelemetry Collector distribution): the app exports with
// its default OTLP protocol (http/protobuf), Jaeger stores in memory, the test reads Jaeger's query
// API and checks the same trace contract as the in-process tests (test/kit/trace.ts).

let jaeger: Jaeger
let env: TestEnv
let app: ServerChild

beforeAll(async () => {
  assertBuilt()
  jaeger = await startJaeger()
  env = await createTestEnv()
  app = await startListening(
    {
      ...env.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger.otlpHttp}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      // Jaeger takes traces only.
      OTEL_METRICS_EXPORTER: 'none',
      LOG_LEVEL: 'warn'
    },
    { telemetry: true }
  )
}, 16 * 60_000)

afterAll(async () => {
  await app?.kill()
  await jaeger?.stop()
  await env?.cleanup()
})

/** The response's trace as Jaeger stored it, once it has the server span and `spans` spans in all. */
async function stored(res: HttpResponse, spans: number): Promise<{ trace: JaegerTrace; traceId: string; spanId: string }> {
  const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
  const trace = await jaeger.waitForTrace(traceId, (t) => t.spans.length >= spans && t.spans.some((s) => s.spanID === spanId))
  expect(trace.traceID).toBe(traceId)
  return { trace, traceId, spanId }
}

describe('traces in a real Jaeger v2', () => {
  it('GET /blogs/show/:id arrives as a server span named by route with the mysql2 SELECT as its child', async () => {
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` ORDER BY `id` LIMIT 1')
    const res = await request(app.port, `/blogs/show/${row!.id}`)
    expect(res.status).toBe(200)
    const { trace, spanId } = await stored(res, 4)
    const { server, sql } = expectRequestTrace(fromJaeger(trace), {
      name: 'GET /blogs/show/:id', status: 200, spanId,
      children: ['pool.acquire', 'SELECT', 'view.render'], view: 'blogs/show',
      sql: [/^SELECT `id`, `title`, `author`, `content`, `image_loc`, `thumb_loc`, `image_width`, `image_height`, `thumb_width`, `thumb_height`, `image_alt`, `user_id`, DATE_FORMAT\(`published_dt`, \?\) AS `published_iso`, IF\(`modified_dt` > `published_dt`, DATE_FORMAT\(`modified_dt`, \?\), NULL\) AS `edited_iso` FROM `blog` WHERE `id` = \?$/]
    })
    expect(server.parentId).toBeUndefined()
    expect(server.attributes['url.path']).toBe(`/blogs/show/${row!.id}`)
    expect(trace.processes[trace.spans.find((s) => s.spanID === spanId)!.processID]?.serviceName).toBe('blog-app')
    expect(sql[0]!.attributes).toMatchObject({ 'db.system.name': 'mysql', 'db.namespace': env.database, 'server.address': env.config.db.host })
  })

  it('GET /blogs/ arrives with its SELECT, pool wait and render, all children of the server span', async () => {
    const res = await request(app.port, '/blogs/')
    expect(res.status).toBe(200)
    const { trace, spanId } = await stored(res, 4)
    expectRequestTrace(fromJaeger(trace), {
      name: 'GET /blogs/', status: 200, spanId,
      children: ['pool.acquire', 'SELECT', 'view.render'], view: 'blogs/index',
      sql: [/FROM `blog` ORDER BY .* LIMIT \? OFFSET \?$/]
    })
  })

  it('POST /blogs/new with an image arrives with the image write and START TRANSACTION, INSERT, COMMIT in order', async () => {
    const image = Buffer.concat([PNG_1x1, randomBytes(4096)])
    const marker = randomBytes(6).toString('hex')
    const author = await signUp(app.port)
    const body = await multipart(
      { _csrf: author.csrf, title: `Jaeger ${marker}`, content: `Content ${marker}` },
      { image_file: { data: image, filename: 'j.png', type: 'image/png' } }
    )
    const res = await request(app.port, { method: 'POST', path: '/blogs/new', headers: { ...body.headers, cookie: author.cookie }, body: body.payload })
    expect(res.status, res.body).toBe(303)
    const { trace, spanId } = await stored(res, 10)
    // Jaeger orders by start time, millisecond-rounded: ties are possible, but not reversals
    // (traces.test.ts checks the strict order from the export sequence).
    // The session lookup (under blog.session), then the transaction.
    const { children, sql } = expectRequestTrace(fromJaeger(trace), {
      name: 'POST /blogs/new', status: 303, spanId,
      sql: [/FROM `session` LEFT JOIN `user`/, /^START TRANSACTION/, /^INSERT INTO `blog`/, /^COMMIT/]
    })
    expect(sql[2]!.name).toBe('INSERT')
    expect(children.find((s) => s.name === 'blog.session')?.attributes['blog.session.state']).toBe('user')
    // Stored is the re-encoded image: what the decode span says it kept is what was written.
    const processed = children.find((s) => s.name === 'blog.image.process')
    expect(processed?.attributes['blog.image.input_bytes']).toBe(image.length)
    expect(children.find((s) => s.name === 'blog.image.write')?.attributes['blog.image.bytes']).toBe(processed?.attributes['blog.image.bytes'])
    // The submitted values are nowhere in what Jaeger stored.
    expect(JSON.stringify(trace)).not.toContain(marker)

    // The app exported without a single complaint.
    expect(app.stderr()).not.toMatch(/opentelemetry/i)
    const services = (await (await fetch(`${jaeger.api}/api/services`)).json()) as { data: string[] }
    expect(services.data).toContain('blog-app')
  })
})
