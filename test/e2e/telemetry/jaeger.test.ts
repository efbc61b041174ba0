import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { createTestEnv, multipart, type TestEnv } from '../../kit/app'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, freePorts, request, startListening, type ServerChild } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'

// End to end with a real Jaeger v2 (an OpenTelemetry Collector distribution): the app exports with
// its default OTLP protocol (http/protobuf), Jaeger stores in memory, the test reads Jaeger's query
// API. Jaeger listens on loopback only, on free ports, so it cannot clash with a user's Jaeger.

interface JaegerTag {
  key: string
  type: string
  value: string | number | boolean
}
interface JaegerSpan {
  traceID: string
  spanID: string
  operationName: string
  references: { refType: string; traceID: string; spanID: string }[]
  tags: JaegerTag[]
  processID: string
  startTime: number
  duration: number
}
interface JaegerTrace {
  traceID: string
  spans: JaegerSpan[]
  processes: Record<string, { serviceName: string; tags: JaegerTag[] }>
}

let jaeger: ChildProcess | undefined
let jaegerOutput = ''
let jaegerExited = false
let queryPort = 0
let grpcPort = 0
let otlpPort = 0
let tmpDir: string | undefined
let env: TestEnv
let app: ServerChild | undefined

/** Runs scripts/install-tools.sh (a no-op once built) and returns the jaeger binary, or throws saying why not. */
function locateJaeger(): string {
  let stdout: string
  try {
    stdout = execFileSync('bash', [path.join(ROOT, 'scripts', 'install-tools.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15 * 60_000
    })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`jaeger test: \`bash scripts/install-tools.sh\` failed, so there is no Jaeger binary to test against.\n${e.message}\n${e.stderr ?? ''}`)
  }
  const dir = stdout.trim().split('\n').at(-1)?.trim() ?? ''
  const bin = path.join(dir, 'jaeger')
  try {
    accessSync(bin, constants.X_OK)
  } catch {
    throw new Error(`jaeger test: no executable Jaeger binary at ${bin} (install-tools.sh printed ${JSON.stringify(dir)}). Run \`bash scripts/install-tools.sh\` (needs Go) before the tests.`)
  }
  return bin
}

function jaegerConfig(): string {
  return `# Written by test/telemetry/jaeger.test.ts: in-memory Jaeger v2 on loopback, test-only ports.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      test_memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: test_memstore
    http:
      endpoint: 127.0.0.1:${queryPort}
    grpc:
      endpoint: 127.0.0.1:${grpcPort}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlpPort}
exporters:
  jaeger_storage_exporter:
    trace_storage: test_memstore
`
}
function getJson<T>(port: number, urlPath: string): Promise<{ status: number; body: T | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => (text += d))
        res.on('end', () => {
          let body: T | undefined
          try {
            body = JSON.parse(text) as T
          } catch {
            body = undefined
          }
          resolve({ status: res.statusCode ?? 0, body })
        })
      })
      .on('error', reject)
  })
}

async function waitForJaeger(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (jaegerExited) throw new Error(`jaeger exited during startup:\n${jaegerOutput}`)
    const query = await getJson(queryPort, '/api/services').then((r) => r.status === 200, () => false)
    // The OTLP receiver answers 405 to a GET once it listens.
    const otlp = await getJson(otlpPort, '/v1/traces').then((r) => r.status > 0, () => false)
    if (query && otlp) return
    await sleep(100)
  }
  throw new Error(`jaeger did not come up within ${timeoutMs} ms:\n${jaegerOutput}`)
}

/** Polls Jaeger until the trace is stored with a span named `operation` (the server span). */
async function jaegerTrace(traceId: string, operation: string, minSpans: number, timeoutMs = 15_000): Promise<JaegerTrace> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    const r = await getJson<{ data?: JaegerTrace[] }>(queryPort, `/api/traces/${traceId}`)
    last = r.body
    const trace = r.status === 200 ? r.body?.data?.[0] : undefined
    if (trace && trace.spans.some((s) => s.operationName === operation) && trace.spans.length >= minSpans) return trace
    await sleep(200)
  }
  throw new Error(`Jaeger has no complete trace ${traceId} (${operation}) after ${timeoutMs} ms; last answer: ${JSON.stringify(last)?.slice(0, 2000)}\napp stderr:\n${app?.stderr()}\njaeger:\n${jaegerOutput}`)
}

const tags = (s: JaegerSpan): Record<string, JaegerTag['value']> => Object.fromEntries(s.tags.map((t) => [t.key, t.value]))
const parentOf = (s: JaegerSpan) => s.references.find((r) => r.refType === 'CHILD_OF')?.spanID

function serverSpan(trace: JaegerTrace, operation: string): JaegerSpan {
  const servers = trace.spans.filter((s) => tags(s)['span.kind'] === 'server')
  expect(servers.map((s) => s.operationName)).toEqual([operation])
  return servers[0]!
}

beforeAll(async () => {
  assertBuilt()
  const bin = locateJaeger()
  ;[queryPort, grpcPort, otlpPort] = (await freePorts(3)) as [number, number, number]
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'blog-jaeger-'))
  const configFile = path.join(tmpDir, 'jaeger.yaml')
  writeFileSync(configFile, jaegerConfig())
  jaeger = spawn(bin, ['--config', configFile], { cwd: tmpDir, stdio: ['ignore', 'pipe', 'pipe'] })
  jaeger.stdout!.setEncoding('utf8').on('data', (d: string) => (jaegerOutput += d))
  jaeger.stderr!.setEncoding('utf8').on('data', (d: string) => (jaegerOutput += d))
  jaeger.on('close', () => (jaegerExited = true))
  await waitForJaeger()

  env = await createTestEnv()
  app = await startListening(
    {
      ...env.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`,
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
  if (jaeger && !jaegerExited) {
    const closed = new Promise((r) => jaeger!.once('close', r))
    jaeger.kill('SIGTERM')
    await Promise.race([closed, sleep(5000)])
    if (!jaegerExited) {
      jaeger.kill('SIGKILL')
      await closed
    }
  }
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true })
  await env?.cleanup()
})

describe('traces in a real Jaeger v2', () => {
  it('GET /blogs/show/:id arrives as a server span named by route with the mysql2 SELECT as its child', async () => {
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` ORDER BY `id` LIMIT 1')
    const res = await request(app!.port, `/blogs/show/${row!.id}`)
    expect(res.status).toBe(200)
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)

    const trace = await jaegerTrace(traceId, 'GET /blogs/show/:id', 3)
    expect(trace.traceID).toBe(traceId)
    const server = serverSpan(trace, 'GET /blogs/show/:id')
    expect(server.spanID).toBe(spanId)
    expect(parentOf(server)).toBeUndefined()
    expect(trace.processes[server.processID]?.serviceName).toBe('blog-app')
    expect(tags(server)).toMatchObject({
      'http.route': '/blogs/show/:id',
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'url.path': `/blogs/show/${row!.id}`
    })

    const selects = trace.spans.filter((s) => s.operationName === 'SELECT')
    expect(selects).toHaveLength(1)
    const select = selects[0]!
    expect(parentOf(select)).toBe(server.spanID)
    expect(select.references[0]!.traceID).toBe(traceId)
    expect(tags(select)).toMatchObject({
      'span.kind': 'client',
      'db.system.name': 'mysql',
      'db.namespace': env.database,
      'db.query.text': 'SELECT `id`, `title`, `author`, `content`, `image_loc`, `modified_dt` FROM `blog` WHERE `id` = ?',
      'server.address': env.config.db.host
    })
    // The child lies within its parent on Jaeger's (microsecond) clock.
    expect(select.startTime).toBeGreaterThanOrEqual(server.startTime)
    expect(select.startTime + select.duration).toBeLessThanOrEqual(server.startTime + server.duration)
    const render = trace.spans.find((s) => s.operationName === 'view.render')
    expect(render && parentOf(render)).toBe(server.spanID)
    expect(render && tags(render)['blog.view.name']).toBe('blogs/show')
  })

  it('GET /blogs/ arrives with its SELECT, pool wait and render, all children of the server span', async () => {
    const res = await request(app!.port, '/blogs/')
    expect(res.status).toBe(200)
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
    const trace = await jaegerTrace(traceId, 'GET /blogs/', 4)
    const server = serverSpan(trace, 'GET /blogs/')
    expect(server.spanID).toBe(spanId)
    expect(tags(server)['http.route']).toBe('/blogs/')
    expect(trace.spans.map((s) => s.operationName).sort()).toEqual(['GET /blogs/', 'SELECT', 'pool.acquire', 'view.render'])
    for (const s of trace.spans.filter((x) => x !== server)) expect(parentOf(s), s.operationName).toBe(server.spanID)
    const select = trace.spans.find((s) => s.operationName === 'SELECT')!
    expect(tags(select)['db.query.text']).toMatch(/FROM `blog` ORDER BY .* LIMIT \? OFFSET \?$/)
  })

  it('POST /blogs/new with an image arrives with the image write and START TRANSACTION, INSERT, COMMIT in order', async () => {
    const image = Buffer.concat([PNG_1x1, randomBytes(4096)])
    const marker = randomBytes(6).toString('hex')
    const body = await multipart(
      { title: `Jaeger ${marker}`, author: `Author ${marker}`, content: `Content ${marker}` },
      { image_file: { data: image, filename: 'j.png', type: 'image/png' } }
    )
    const res = await request(app!.port, { method: 'POST', path: '/blogs/new', headers: body.headers, body: body.payload })
    expect(res.status, res.body).toBe(303)
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)

    const trace = await jaegerTrace(traceId, 'POST /blogs/new', 6)
    const server = serverSpan(trace, 'POST /blogs/new')
    expect(server.spanID).toBe(spanId)
    expect(tags(server)).toMatchObject({ 'http.route': '/blogs/new', 'http.response.status_code': 303 })

    const write = trace.spans.find((s) => s.operationName === 'blog.image.write')
    expect(write && parentOf(write)).toBe(server.spanID)
    expect(write && tags(write)['blog.image.bytes']).toBe(image.length)

    const sql = trace.spans.filter((s) => tags(s)['db.system.name'] === 'mysql' && tags(s)['span.kind'] === 'client')
    for (const s of sql) expect(parentOf(s)).toBe(server.spanID)
    const statement = (re: RegExp) => {
      const found = sql.filter((s) => re.test(String(tags(s)['db.query.text'])))
      expect(found, `${re}`).toHaveLength(1)
      return found[0]!
    }
    const [start, insert, commit] = [statement(/^START TRANSACTION/), statement(/^INSERT INTO `blog`/), statement(/^COMMIT/)]
    // In order (start times are millisecond-rounded, so ties are possible; spans.test.ts checks
    // the strict order from the export sequence).
    expect(start.startTime).toBeLessThanOrEqual(insert.startTime)
    expect(insert.startTime).toBeLessThanOrEqual(commit.startTime)
    expect(start.startTime).toBeLessThan(commit.startTime + commit.duration)
    expect(insert.operationName).toBe('INSERT')
    // The submitted values are nowhere in what Jaeger stored.
    expect(JSON.stringify(trace)).not.toContain(marker)

    // The app exported without a single complaint.
    expect(app!.stderr()).not.toMatch(/opentelemetry/i)
    const services = await getJson<{ data: string[] }>(queryPort, '/api/services')
    expect(services.body?.data).toContain('blog-app')
  })
})
