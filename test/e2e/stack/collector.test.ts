import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { PNG_1x1 } from '../../fixtures/images'
import { startJaeger, type Jaeger } from '../../kit/jaeger'
import { startMariaDb, type MariaDbInstance } from '../../kit/mariadb-instance'
import { freePorts, stackTools, startProcess, waitFor, waitHealthy, type Proc, type Tools } from '../../kit/process'
import { assertBuilt, startListening, type ServerChild } from '../../kit/server'
import { expectRequestTrace, fromJaeger } from '../../kit/trace'
import {
  dashboardExprs, DB_SERVER_ROW, k6MetricsIn, K6_METRIC_NAMES, MYSQL_METRICS, promClient, readYaml, ROOT, startStackPrometheus,
  substituteVariables, variableQueries, type PromClient
} from '../../kit/stack'
import { SERVICE_GRAPH_TABLE_METRICS, serviceGraphTableQueries } from '../../kit/grafana-tempo'

// The observability pipeline with real programs, all on loopback ports:
//   app (compiled, OTel bootstrap) --OTLP/HTTP--> otelcol-blog (otel/collector.yaml, built from
//   otel/builder-config.yaml) --OTLP/gRPC--> Jaeger, and a second Jaeger standing in for Tempo
//   (both take OTLP/gRPC); collector :prometheus exporter <--scrape-- Prometheus 2.42 running
//   prometheus/prometheus.yml. The app's database is a MariaDB this test starts with
//   performance_schema on (and the flags docker-compose.yml gives MySQL's), which the collector's
//   mysql receiver scrapes. Then every PromQL expression of the Grafana dashboards runs against
//   that Prometheus. Grafana, Tempo and k6 do not run here (see compose.test.ts).

const COLLECTOR_CONFIG = path.join(ROOT, 'otel', 'collector.yaml')

let tools: Tools
let app: ServerChild
let work: string
let env: TestEnv
const procs: Proc[] = []
let jaeger: Jaeger
let tempo: Jaeger
let collector: Proc
let promUrl: string
let prom: PromClient
let mariadb: MariaDbInstance
let appUrl: string
let loadStart: number

const SHOW_REQUESTS = 30
const showTraceIds: string[] = []
let createTraceId: string
let listCount = 0
let postId: number

/** Series of a range query over the load, with at least one finite value. */
const seriesWithData = (expr: string) => prom.seriesWithData(expr, loadStart)

const traceIdOf = (res: Response) => /^00-([0-9a-f]{32})-/.exec(res.headers.get('traceresponse') ?? '')?.[1]

beforeAll(async () => {
  assertBuilt()
  tools = stackTools()
  work = mkdtempSync(path.join(os.tmpdir(), 'blog-stack-'))
  // MySQL 8.4 has performance_schema on by default, MariaDB not; the other flags are compose's.
  const dbFlags = readYaml<{ services: { db: { command: string[] } } }>('docker-compose.yml').services.db.command
  expect(dbFlags).toContain('--performance-schema-consumer-events-statements-history-long=ON')
  mariadb = await startMariaDb({ args: ['--performance-schema=ON', ...dbFlags] })

  jaeger = await startJaeger('jaeger')
  tempo = await startJaeger('tempo-stand-in')
  procs.push(jaeger.proc, tempo.proc)

  const [grpc, http, promExporter, telemetry, health, promPort] = await freePorts(6)
  collector = startProcess('otelcol', tools.otelcol, ['--config', COLLECTOR_CONFIG], {
    OTELCOL_OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
    OTELCOL_OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
    OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${health}`,
    OTELCOL_PROMETHEUS_ENDPOINT: `127.0.0.1:${promExporter}`,
    OTELCOL_TELEMETRY_HOST: '127.0.0.1',
    OTELCOL_TELEMETRY_PORT: String(telemetry),
    OTELCOL_LOG_LEVEL: 'warn',
    JAEGER_OTLP_ENDPOINT: `127.0.0.1:${jaeger.otlpGrpc}`,
    TEMPO_OTLP_ENDPOINT: `127.0.0.1:${tempo.otlpGrpc}`,
    MYSQL_ENDPOINT: `127.0.0.1:${mariadb.port}`,
    MYSQL_USERNAME: 'root',
    MYSQL_PASSWORD: '',
    MYSQL_COLLECTION_INTERVAL: '1s'
  })
  procs.push(collector)
  await waitHealthy(collector, `http://127.0.0.1:${health}/`)

  // prometheus/prometheus.yml and compose's flags, its targets moved to the loopback ports.
  const prometheus = await startStackPrometheus(tools.prometheus, work, promPort!, { 'otel-collector:8889': `127.0.0.1:${promExporter}`, 'otel-collector:8888': `127.0.0.1:${telemetry}` })
  procs.push(prometheus.proc)
  promUrl = prometheus.url
  prom = promClient(promUrl)

  env = await createTestEnv()
  app = await startListening({
    ...env.env,
    DATABASE_URL: mariadb.url(env.database),
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${http}`,
    // Short intervals so the test does not wait a minute for the SDK's defaults.
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
    OTEL_BSP_SCHEDULE_DELAY: '200'
  }, { telemetry: true })
  appUrl = `http://127.0.0.1:${app.port}`

  // A short load: the list, a post, a missing post (404), creates with an image. One round
  // first, so every series exists in Prometheus before the counted rounds: rate() sees the
  // increase after a series appears, not the count it starts with.
  loadStart = Date.now()
  const list = await fetch(`${appUrl}/blogs/`)
  expect(list.status).toBe(200)
  listCount++
  postId = Number(/href="\/blogs\/show\/(\d+)"/.exec(await list.text())?.[1])
  expect(postId).toBeGreaterThan(0)
  const round = async () => {
    const [show, miss, again] = await Promise.all([fetch(`${appUrl}/blogs/show/${postId}`), fetch(`${appUrl}/blogs/show/999999999`), fetch(`${appUrl}/blogs/`)])
    expect([show.status, miss.status, again.status]).toEqual([200, 404, 200])
    showTraceIds.push(traceIdOf(show)!)
    listCount++
    await Promise.all([show.arrayBuffer(), miss.arrayBuffer(), again.arrayBuffer()])
  }
  const author = await signUp(Number(new URL(appUrl).port))
  const create = async () => {
    const { payload, headers } = await multipart(
      { _csrf: author.csrf, title: `stack test ${Date.now()}`, content: 'A post with an image.' },
      { image_file: { data: PNG_1x1, filename: 'pixel.png', type: 'image/png' } }
    )
    const created = await fetch(`${appUrl}/blogs/new`, { method: 'POST', headers: { ...headers, cookie: author.cookie }, body: new Uint8Array(payload), redirect: 'manual' })
    expect(created.status).toBe(303)
    return traceIdOf(created)!
  }
  await round()
  await create()
  await sleep(3000)
  for (let i = 1; i < SHOW_REQUESTS; i++) {
    await round()
    await sleep(150)
  }
  createTraceId = await create()
  expect(showTraceIds.every(Boolean) && Boolean(createTraceId)).toBe(true)
}, 180_000)

afterAll(async () => {
  await app?.kill()
  for (const p of procs.reverse()) await p.stop()
  await env?.cleanup()
  await mariadb?.destroy()
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('traces: app -> collector -> Jaeger (and the Tempo exporter)', () => {
  it('delivers a show request as one trace: server span, pool wait, SQL and render under it', async () => {
    const trace = await jaeger.waitForTrace(showTraceIds[0]!, (t) => t.spans.length >= 4)
    expectRequestTrace(fromJaeger(trace), { name: 'GET /blogs/show/:id', status: 200, children: ['pool.acquire', 'SELECT', 'view.render'], view: 'blogs/show' })
  })

  it('delivers the create request with its transaction and the image write span', async () => {
    const trace = await jaeger.waitForTrace(createTraceId, (t) => t.spans.length >= 9)
    const { children } = expectRequestTrace(fromJaeger(trace), { name: 'POST /blogs/new', status: 303, sql: [/FROM `session` LEFT JOIN `user`/, /^START TRANSACTION/, /^INSERT INTO `blog`/, /^COMMIT/] })
    expect(children.map((c) => c.name)).toContain('blog.image.write')
  })

  it('sends the same traces through the Tempo exporter (to a stand-in OTLP/gRPC receiver)', async () => {
    for (const id of [showTraceIds[0]!, createTraceId]) {
      const [viaTempo, viaJaeger] = await waitFor(`trace ${id} via the Tempo exporter`, async () => {
        const a = await tempo.trace(id)
        const b = await jaeger.trace(id)
        return a && b && a.spans.length === b.spans.length ? [a, b] : undefined
      }, 20_000)
      expect(viaTempo.spans.map((s) => s.spanID).sort()).toEqual(viaJaeger.spans.map((s) => s.spanID).sort())
    }
  })
})

describe('metrics: app and spanmetrics -> collector -> Prometheus', () => {
  it('counts every request the app served, by route and status', async () => {
    const value = async (sel: string) => {
      const r = await prom.query(`sum(http_server_request_duration_seconds_count{job="blog-app", ${sel}})`)
      return Number(r.data.result[0]?.value?.[1] ?? NaN)
    }
    await waitFor('the request counts to reach Prometheus', async () => {
      const [show, miss, list] = await Promise.all([
        value('http_route="/blogs/show/:id", http_response_status_code="200"'),
        value('http_route="/blogs/show/:id", http_response_status_code="404"'),
        value('http_route="/blogs/", http_response_status_code="200"')
      ])
      return show === SHOW_REQUESTS && miss === SHOW_REQUESTS && list === listCount ? true : undefined
    }, 30_000)
  })

  it('derives RED metrics from spans, with exemplars whose trace ids are in Jaeger', async () => {
    await waitFor('spanmetrics calls', async () => {
      const r = await prom.query('sum(traces_spanmetrics_calls_total{job="blog-app", span_name="GET /blogs/show/:id", span_kind="SPAN_KIND_SERVER"})')
      return Number(r.data.result[0]?.value?.[1]) === SHOW_REQUESTS * 2 ? true : undefined
    }, 30_000)
    const exemplars = await waitFor('exemplars on the span duration histogram', async () => {
      const params = new URLSearchParams({
        query: 'traces_spanmetrics_duration_seconds_bucket{job="blog-app", span_name="GET /blogs/show/:id"}',
        start: String(loadStart / 1000 - 5),
        end: String(Date.now() / 1000)
      })
      const body = (await (await fetch(`${promUrl}/api/v1/query_exemplars?${params}`)).json()) as { data: { exemplars: { labels: Record<string, string> }[] }[] }
      const all = body.data.flatMap((s) => s.exemplars)
      return all.length > 0 ? all : undefined
    }, 30_000)
    const traceId = exemplars[0]!.labels.trace_id!
    expect(traceId).toMatch(/^[0-9a-f]{32}$/)
    expect((await jaeger.waitForTrace(traceId, (t) => t.spans.length > 0, 10_000)).spans).not.toHaveLength(0)
  })

  it("names the span metrics the way Grafana's Service Graph table queries them, and its queries return rows", async () => {
    let seen: string[] = []
    const names = await waitFor(`${SERVICE_GRAPH_TABLE_METRICS.join(', ')} in Prometheus`, async () => {
      seen = await prom.labelValues('__name__', '{__name__=~"traces_span.*", job="blog-app"}')
      return SERVICE_GRAPH_TABLE_METRICS.every((n) => seen.includes(n)) ? seen : undefined
    }, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}; span metrics present: ${seen.join(', ') || 'none'}`)
    })
    // Only the table's names and the histogram's siblings: no second naming scheme alongside.
    expect(names.sort()).toEqual(['traces_spanmetrics_calls_total', 'traces_spanmetrics_duration_seconds_bucket', 'traces_spanmetrics_duration_seconds_count', 'traces_spanmetrics_duration_seconds_sum'])

    const range = `${Math.ceil((Date.now() - loadStart) / 1000) + 5}s`
    const q = serviceGraphTableQueries(range, 'GET /blogs/show/:id')
    const rate = await prom.query(q.rate)
    expect(rate.status, rate.error).toBe('success')
    expect(rate.data.result.map((r) => r.metric.span_name)).toEqual(expect.arrayContaining(['GET /blogs/', 'GET /blogs/show/:id', 'POST /blogs/new']))
    const errors = await prom.query(q.errors)
    expect(errors.status, errors.error).toBe('success')
    // The error column filters on status_code; every series carries it (404s are UNSET, not errors).
    const codes = await prom.query('count by (status_code) (traces_spanmetrics_calls_total{job="blog-app", span_kind="SPAN_KIND_SERVER"})')
    expect(codes.data.result.map((r) => r.metric.status_code)).toEqual(['STATUS_CODE_UNSET'])
    const duration = await prom.query(q.duration)
    expect(duration.status, duration.error).toBe('success')
    const p90 = Number(duration.data.result[0]?.value?.[1])
    expect(p90).toBeGreaterThan(0)
    expect(p90).toBeLessThan(10)
  })

  it('returns data for every PromQL expression of the dashboards (k6 panels: valid, k6 metric names)', async () => {
    const vars = { service: 'blog-app', route: '.*', testid: '', __rate_interval: '10s', __interval: '1s' }
    const exprs = dashboardExprs()
    expect(exprs.length).toBeGreaterThan(30)
    const k6Only = exprs.filter((e) => k6MetricsIn(e.expr).length > 0)
    const server = exprs.filter((e) => !k6Only.includes(e))
    // Listed on purpose: these fill only while k6 pushes a run (they cannot here).
    expect(k6Only.map((e) => `${e.dashboard} / ${e.panel} / ${e.refId}`)).toEqual([
      'Load test / Virtual users / A',
      'Load test / Virtual users / B',
      'Load test / Request rate (k6) by request name / A',
      'Load test / Latency percentiles (k6) / A',
      'Load test / Latency percentiles (k6) / B',
      'Load test / Latency percentiles (k6) / C',
      'Load test / Failure rate (k6) / A',
      'Load test / Failure rate (k6) / B',
      'Load test / Dropped iterations (open model) / A',
      'Load test / p95 latency: k6 (client) vs server / A'
    ])
    for (const e of k6Only) {
      for (const m of k6MetricsIn(e.expr)) expect(K6_METRIC_NAMES.has(m), `${e.panel}: ${m} is not a metric k6's prometheus-rw output writes`).toBe(true)
      const r = await prom.query(substituteVariables(e.expr, vars))
      expect(r.status, `${e.panel} / ${e.refId}: ${r.error}`).toBe('success')
    }
    // The tags the k6 panels filter or group by are ones the scripts keep.
    const options = readFileSync(path.join(ROOT, 'k6', 'lib', 'options.js'), 'utf8')
    for (const tag of ['name', 'expected_response']) expect(options).toContain(`'${tag}'`)
    expect(options).toMatch(/tags: \{ testid:/)

    // The event-loop delay gauges need 5 samples at the SDK's 5 s resolution: up to ~30 s.
    expect(await prom.withoutData(server, vars, loadStart, 60_000)).toEqual({})
  }, 120_000)

  it('fills the dashboards\' variables from Prometheus (label_values queries)', async () => {
    const expected: Record<string, string | undefined> = { service: 'blog-app', route: '/blogs/show/:id', testid: undefined }
    for (const v of variableQueries()) {
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.query)
      expect(m, `${v.dashboard} $${v.name}: ${v.query}`).not.toBeNull()
      const [, series, label] = m!
      const values = await prom.labelValues(label!, substituteVariables(series!, { service: 'blog-app' }))
      if (expected[v.name]) expect(values, `${v.dashboard} $${v.name}`).toContain(expected[v.name])
    }
  })

  it("answers the trace datasources' span-to-metrics queries", async () => {
    const ds = readYaml<{ datasources: { uid: string; jsonData?: { tracesToMetrics?: { queries: { query: string }[] } } }[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
    const queries = ds.flatMap((d) => d.jsonData?.tracesToMetrics?.queries ?? []).map((q) => q.query)
    expect(queries.length).toBe(6)
    // What Grafana makes of each ($$ is the provisioning escape): $__tags holds the span's tags the
    // datasource maps (service.name -> job, http.route, db.operation.name), so the route queries
    // are for the show route's server span and the SQL one for its SELECT.
    const tagsOf = (q: string) => (q.includes('db_client_operation') ? 'job="blog-app",db_operation_name="SELECT"' : 'job="blog-app",http_route="/blogs/show/:id"')
    const exprs = queries.map((q) => q.replaceAll('$$', '$').replace('$__tags', tagsOf(q)))
    // rate() needs an increase it can see: if the collector's first flush of the show route's
    // series already held every call of the load (a slow machine), show a few more pages.
    const empty = async () => (await Promise.all(exprs.map(async (e) => ((await seriesWithData(e)).length === 0 ? e : null)))).filter(Boolean)
    for (let i = 0; i < 10 && (await empty()).length > 0; i++) {
      for (let j = 0; j < 3; j++) expect((await fetch(`${appUrl}/blogs/show/${postId}`)).status).toBe(200)
      await sleep(3000)
    }
    expect(await empty()).toEqual([])
  }, 90_000)
})

describe('database server: MariaDB -> mysql receiver -> collector -> Prometheus', () => {
  it('scrapes the server the app uses: the mysql metrics the dashboard queries arrive under the names the kit gives them', async () => {
    let seen: string[] = []
    await waitFor('the mysql receiver metrics', async () => {
      seen = await prom.labelValues('__name__', '{__name__=~"mysql_.*"}')
      return Object.keys(MYSQL_METRICS).every((n) => seen.includes(n)) || undefined
    }, 30_000).catch(() => undefined)
    expect(Object.keys(MYSQL_METRICS).filter((n) => !seen.includes(n)), `mysql metrics present: ${seen.join(', ')}`).toEqual([])
    // The server's own count of the app's SELECTs over the load: show, 404 and list per round.
    const window = `${Math.ceil((Date.now() - loadStart) / 1000) + 5}s`
    const selects = await prom.query(`max_over_time(mysql_commands_total{command="select"}[${window}]) - min_over_time(mysql_commands_total{command="select"}[${window}])`)
    expect(Number(selects.data.result[0]?.value?.[1])).toBeGreaterThanOrEqual(3 * (SHOW_REQUESTS - 1))
  }, 60_000)

  it('shows a text statement in the top-5 digests with its literal replaced by ?, and the literal nowhere', async () => {
    // The app's own statements are prepared (mysql2 execute): MariaDB digests none of them.
    const secret = `collector-secret-${Date.now()}`
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: mariadb.port, user: 'root', database: env.database })
    for (let i = 0; i < 30; i++) {
      await conn.query(`SELECT COUNT(*) FROM blog WHERE author = '${secret}'`)
      await sleep(100)
    }
    await conn.end()
    const top = dashboardExprs().find((e) => DB_SERVER_ROW.test(e.row) && /top 5/.test(e.panel))!
    const digest = await waitFor('the statement in the top-5 panel', async () => {
      const series = await seriesWithData(substituteVariables(top.expr, { __rate_interval: '10s' }))
      return series.map((x) => x.metric.digest_text ?? '').find((t) => /^SELECT COUNT \( \* \) FROM `blog` WHERE `author` = \?/.test(t))
    }, 20_000)
    expect(digest).not.toContain(secret)
    const labels = JSON.stringify((await prom.query('{__name__=~"mysql_.*"}')).data.result)
    expect(labels).toContain(env.database)
    expect(labels).not.toMatch(new RegExp(`${secret}|stack test|collector\\.test`))
  }, 60_000)

  it('returns data for every PromQL expression of the "Database server" row', async () => {
    // (grafana.test.ts: all of them on the metrics MYSQL_METRICS lists, which arrive: see above)
    const exprs = dashboardExprs().filter((e) => DB_SERVER_ROW.test(e.row))
    expect(new Set(exprs.map((e) => e.panel)).size).toBeGreaterThanOrEqual(6)
    expect(await prom.withoutData(exprs, { __rate_interval: '10s', __interval: '1s' }, loadStart, 30_000)).toEqual({})
  }, 60_000)
})
