import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SERVICE_GRAPH_TABLE_METRICS } from '../kit/grafana-tempo'
import { loadCompose } from '../kit/compose'
import { allPanels, DASHBOARD_FILES, dashboardExprs, DB_SERVER_ROW, MYSQL_METRICS, mysqlMetricsIn, readJson, readYaml, ROOT, type Dashboard } from '../kit/stack'

// Grafana's provisioning (datasources, dashboards) and what the compose file gives Grafana.
// Grafana cannot run here; test/e2e/stack/collector.test.ts runs every dashboard query.

const { services } = loadCompose()

describe('Grafana under Compose', () => {
  it('admits anonymous users as plain Viewers, without the deprecated viewers_can_edit, and still links exemplars to a trace', () => {
    const env = services.grafana!.environment!
    // Grafana 12 OSS has no role between Viewer (no Explore) and Editor (edits every dashboard):
    // custom roles are Enterprise-only and viewers_can_edit is deprecated.
    expect(env).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' })
    expect(Object.keys(env).filter((k) => /VIEWERS_CAN_EDIT|EDITORS_CAN_ADMIN/.test(k))).toEqual([])
    // An exemplar link that needs no Explore: the Jaeger UI on its published host port.
    const ds = readYaml<{ datasources: { uid: string; jsonData?: { exemplarTraceIdDestinations?: { name: string; url?: string; datasourceUid?: string }[] } }[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
    const byUrl = ds.find((d) => d.uid === 'prometheus')!.jsonData!.exemplarTraceIdDestinations!.filter((d) => d.url)
    expect(byUrl).toEqual([expect.objectContaining({ name: 'trace_id', url: 'http://localhost:16686/trace/$${__value.raw}' })])
    expect(services.jaeger!.ports).toContain('127.0.0.1:16686:16686')
    // Explore (Tempo searches, the datasource links) is for signed-in users: the docs say so.
    for (const f of DASHBOARD_FILES) expect(readJson<Dashboard>(f).links!.some((l) => l.url.startsWith('http://localhost:16686/')), f).toBe(true)
    const ops = readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8')
    expect(ops).toMatch(/sign in as admin[^.]*Explore|Explore[^.]*sign in as admin/i)
    expect(ops).not.toContain('GF_USERS_VIEWERS_CAN_EDIT')
  })
})

describe('Grafana provisioning', () => {
  interface Ds {
    uid: string
    type: string
    jsonData?: {
      exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[]
      tracesToMetrics?: { datasourceUid: string; queries: { query: string }[] }
      serviceMap?: { datasourceUid: string }
    }
  }
  const datasources = readYaml<{ datasources: Ds[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
  const uids = new Set(datasources.map((d) => d.uid))
  const dashboards = DASHBOARD_FILES.map((f) => readJson<Dashboard>(f))

  it('provisions Prometheus, Tempo and Jaeger under fixed uids', () => {
    expect(datasources.map((d) => [d.uid, d.type])).toEqual([['prometheus', 'prometheus'], ['tempo', 'tempo'], ['jaeger', 'jaeger']])
  })

  it('links exemplars to a trace datasource and traces back to Prometheus', () => {
    const prom = datasources.find((d) => d.uid === 'prometheus')!
    const dest = prom.jsonData!.exemplarTraceIdDestinations!
    expect(dest.filter((d) => d.datasourceUid).map((d) => d.datasourceUid).sort()).toEqual(['jaeger', 'tempo'])
    // The prometheus exporter names the exemplar label trace_id (collector.test.ts sees it).
    expect(dest.every((d) => d.name === 'trace_id')).toBe(true)
    const tempo = datasources.find((d) => d.uid === 'tempo')!
    expect(tempo.jsonData!.serviceMap!.datasourceUid).toBe('prometheus')
    for (const d of datasources.filter((x) => x.jsonData?.tracesToMetrics)) {
      expect(d.jsonData!.tracesToMetrics!.datasourceUid).toBe('prometheus')
    }
  })

  it("names the span metrics as Grafana's Service Graph table queries them, and uses no other span-metric name", () => {
    const collector = readYaml<{ connectors: { spanmetrics: { namespace: string; histogram: { unit: string } } } }>('otel/collector.yaml')
    // namespace traces.spanmetrics + unit s -> traces_spanmetrics_{calls_total,duration_seconds_bucket}
    // (test/e2e/stack/collector.test.ts sees these names arrive in a real Prometheus).
    expect(collector.connectors.spanmetrics.namespace).toBe('traces.spanmetrics')
    expect(collector.connectors.spanmetrics.histogram.unit).toBe('s')
    const files = [...DASHBOARD_FILES, 'grafana/provisioning/datasources/datasources.yaml']
    const used = new Set(files.flatMap((f) => [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\btraces_span[a-z_]*/g)].map((m) => m[0])))
    expect([...used].filter((m) => !(SERVICE_GRAPH_TABLE_METRICS as readonly string[]).includes(m))).toEqual([])
    expect(used.size).toBeGreaterThan(0)
    // Tempo's own span-metrics processor would write the same names a second time.
    const tempo = readYaml<{ overrides: { defaults: { metrics_generator: { processors: string[] } } } }>('otel/tempo.yaml')
    expect(tempo.overrides.defaults.metrics_generator.processors).toEqual(['service-graphs'])
  })

  // Spanmetrics count only the traces the app kept (slow, failed, sampled): rates, error ratios and
  // percentiles from them would be biased. They are there for their exemplars (trace links).
  it('computes every rate, error ratio and percentile from the app\'s own histograms, and spanmetrics only for exemplars', () => {
    const APP_HISTOGRAMS = /\b(http_server_request_duration_seconds|db_client_operation_duration_seconds)_(bucket|count|sum)\b/
    let exemplarOnly = 0
    for (const d of dashboards) {
      for (const p of allPanels(d)) {
        for (const t of p.targets ?? []) {
          if (!t.expr?.includes('traces_spanmetrics_')) continue
          const where = `${d.title} / ${p.title} / ${t.refId}`
          expect(t.exemplar, `${where}: a spanmetrics query is there for its exemplars`).toBe(true)
          // Its own line is invisible and out of legend and tooltip; another query of the panel draws the numbers.
          const override = ((p.fieldConfig as { overrides?: { matcher: { id: string; options: string }; properties: { id: string; value: unknown }[] }[] } | undefined)?.overrides ?? [])
            .find((o) => o.matcher.id === 'byFrameRefID' && o.matcher.options === t.refId)
          expect(override, `${where}: no override hiding its line`).toBeDefined()
          expect(override!.properties).toEqual(expect.arrayContaining([
            { id: 'custom.lineWidth', value: 0 },
            { id: 'custom.hideFrom', value: { legend: true, tooltip: true, viz: false } }
          ]))
          const others = (p.targets ?? []).filter((o) => o !== t)
          expect(others.some((o) => APP_HISTOGRAMS.test(o.expr ?? '') && !o.expr!.includes('traces_spanmetrics_')), `${where}: no app-histogram query beside it`).toBe(true)
          exemplarOnly++
        }
      }
    }
    expect(exemplarOnly).toBeGreaterThanOrEqual(3)
    // Span -> metrics links use the app's histograms too.
    for (const d of datasources) {
      for (const q of d.jsonData?.tracesToMetrics?.queries ?? []) {
        expect(q.query, d.uid).not.toContain('traces_spanmetrics_')
        expect(q.query, d.uid).toMatch(APP_HISTOGRAMS)
      }
    }
  })

  it('takes the slope of the gauges that only grow (mysql.statement_event.*) with deriv, never rate/irate/increase', () => {
    const gauges = Object.entries(MYSQL_METRICS).filter(([, m]) => m.gauge).map(([name]) => name)
    expect(gauges.sort()).toEqual(['mysql_statement_event_count', 'mysql_statement_event_wait_time_nanoseconds'])
    const counterFns = /\b(rate|irate|increase)\(\s*([a-z_:][a-z0-9_:]*)/g
    for (const e of dashboardExprs()) {
      for (const m of e.expr.matchAll(counterFns)) expect(gauges, `${e.dashboard} / ${e.panel} / ${e.refId}: ${m[1]}(${m[2]})`).not.toContain(m[2])
    }
    expect(dashboardExprs().filter((e) => gauges.some((g) => e.expr.includes(g))).every((e) => /deriv\(mysql_statement_event_/.test(e.expr))).toBe(true)
    // What the old query did, which the check refuses.
    expect([...'rate(mysql_statement_event_count[5m])'.matchAll(counterFns)].map((m) => m[2])).toEqual(['mysql_statement_event_count'])
  })

  it("writes Grafana's own $__tags as $$__tags (provisioning files expand environment variables)", () => {
    const text = readFileSync(path.join(ROOT, 'grafana/provisioning/datasources/datasources.yaml'), 'utf8')
    const queries = datasources.flatMap((d) => d.jsonData?.tracesToMetrics?.queries ?? []).map((q) => q.query)
    expect(queries.length).toBeGreaterThan(0)
    for (const q of queries) expect(q.replace(/\$\$/g, '')).not.toMatch(/\$/)
    expect(text).not.toMatch(/[^$]\$(?!\$)\{?__/)
  })

  it('serves the dashboards folder the compose file mounts, and the home dashboard exists', () => {
    const provider = readYaml<{ providers: { type: string; options: { path: string } }[] }>('grafana/provisioning/dashboards/dashboards.yaml').providers[0]!
    expect(provider.type).toBe('file')
    expect(services.grafana!.volumes).toContain(`./grafana/dashboards:${provider.options.path}:ro`)
    expect(services.grafana!.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro')
    const home = services.grafana!.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!
    expect(home.startsWith(provider.options.path + '/')).toBe(true)
    expect(existsSync(path.join(ROOT, 'grafana/dashboards', path.basename(home)))).toBe(true)
  })

  it('has the Blog app and Load test dashboards with unique uids and panel ids', () => {
    expect(dashboards.map((d) => d.title)).toEqual(['Blog app', 'Load test'])
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length)
    for (const d of dashboards) {
      const ids = allPanels(d).map((p) => p.id)
      expect(new Set(ids).size, d.title).toBe(ids.length)
    }
  })

  it('refers only to provisioned datasource uids, in panels, targets, variables and trace links', () => {
    for (const d of dashboards) {
      const text = JSON.stringify(d)
      const referenced = [...text.matchAll(/"uid":"([^"]+)"/g)].map((m) => m[1]!).filter((u) => u !== d.uid)
      expect(referenced.length, d.title).toBeGreaterThan(0)
      for (const u of referenced) expect(uids.has(u), `${d.title}: datasource uid ${u}`).toBe(true)
      for (const link of d.links ?? []) {
        const panes = /panes=([^&]+)/.exec(link.url)?.[1]
        if (!panes) continue
        const json = JSON.parse(decodeURIComponent(panes)) as Record<string, { datasource: string; range: { from: string; to: string } }>
        for (const pane of Object.values(json)) {
          expect(uids.has(pane.datasource), link.title).toBe(true)
          expect(pane.range).toEqual({ from: '${__from}', to: '${__to}' })
        }
      }
    }
  })

  it('links each dashboard to the traces of its time range in Tempo and Jaeger', () => {
    for (const d of dashboards) {
      const titles = (d.links ?? []).map((l) => l.title).join(' | ')
      expect(titles, d.title).toMatch(/Tempo/)
      expect(titles, d.title).toMatch(/Jaeger/)
    }
  })

  it('gives every panel a title and a unit', () => {
    for (const d of dashboards) {
      for (const p of allPanels(d).filter((x) => x.type !== 'row')) {
        const where = `${d.title} panel #${p.id}`
        expect(p.title?.trim(), where).toBeTruthy()
        // A node graph shows the units the Tempo datasource gives its frames (ms/r, r/sec).
        if (p.type !== 'nodeGraph') expect(p.fieldConfig?.defaults?.unit, `${where} (${p.title})`).toBeTruthy()
        if (p.type === 'heatmap') expect(p.options?.yAxis?.unit, `${where} (${p.title})`).toBeTruthy()
        expect(p.targets?.length, `${where} (${p.title}) has no query`).toBeGreaterThan(0)
      }
    }
  })

  it('has the panels the issue asks for', () => {
    const titles = (i: number) => allPanels(dashboards[i]!).map((p) => p.title ?? '')
    const blog = titles(0)
    for (const want of [/Request rate by route/, /error ratio/i, /Latency percentiles by route/, /X-Process-Time/, /DB operation latency/, /Pool connections/, /Pool acquire wait/, /Event loop delay/, /heap/i]) {
      expect(blog.some((t) => want.test(t)), String(want)).toBe(true)
    }
    const load = titles(1)
    for (const want of [/Virtual users/, /Request rate \(k6\)/, /Latency percentiles \(k6\)/, /Failure rate \(k6\)/, /Server p99/, /DB operation latency/]) {
      expect(load.some((t) => want.test(t)), String(want)).toBe(true)
    }
    // Tempo's service graph, with the reason it shows no k6 edge where one would look for it.
    const graph = allPanels(dashboards[1]!).find((p) => p.type === 'nodeGraph')
    expect(graph?.datasource?.uid).toBe('tempo')
    expect(graph?.targets).toEqual([expect.objectContaining({ queryType: 'serviceMap', datasource: { type: 'tempo', uid: 'tempo' } })])
    expect((graph as { description?: string }).description).toMatch(/k6 sends a traceparent but exports no span.*no k6 -> blog-app edge/)
    const testid = dashboards[1]!.templating!.list.find((v) => v.name === 'testid')
    expect(testid?.query).toEqual({ query: 'label_values(k6_http_reqs_total, testid)', refId: 'testid' })
  })

  it('lays the panels out without overlaps (rows moved down by hand stay in order)', () => {
    for (const d of dashboards) {
      const boxes = allPanels(d).map((p) => ({ p, g: p.gridPos! }))
      for (const [i, a] of boxes.entries()) {
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.g.x < b.g.x + b.g.w && b.g.x < a.g.x + a.g.w && a.g.y < b.g.y + b.g.h && b.g.y < a.g.y + a.g.h
          expect(overlap, `${d.title}: ${a.p.title} and ${b.p.title}`).toBe(false)
        }
      }
      const ys = d.panels.map((p) => p.gridPos!.y)
      expect(ys, d.title).toEqual([...ys].sort((a, b) => a - b))
    }
  })

  it('has a "Database server" row next to the client-side Database row, on the mysql receiver metrics the collector enables', () => {
    const rows = dashboards[0]!.panels.filter((p) => p.type === 'row').map((p) => p.title ?? '')
    expect(rows[rows.findIndex((t) => /^Database \(Sequelize/.test(t)) + 1]).toMatch(DB_SERVER_ROW)
    const exprs = dashboardExprs().filter((e) => DB_SERVER_ROW.test(e.row))
    expect(exprs.every((e) => e.dashboard === 'Blog app')).toBe(true)
    expect([...new Set(exprs.map((e) => e.panel))]).toEqual([
      'Server statements per second', 'Server time by statement (top 5 digests)', 'Server connections',
      'Rows per second (server)', 'InnoDB buffer pool', 'Buffer pool reads and lock waits per second'
    ])
    for (const e of exprs) {
      expect(mysqlMetricsIn(e.expr), `${e.panel} / ${e.refId}`).not.toHaveLength(0)
      // The receiver's series carry the scrape's job (no service.name): no $service filter.
      expect(e.expr, e.panel).not.toMatch(/\$service|job=/)
    }
    // The kit's list (whose names collector.test.ts sees arrive) is what the row uses, and nothing
    // outside the row uses the receiver's metrics.
    const used = [...new Set(exprs.flatMap((e) => mysqlMetricsIn(e.expr)))].sort()
    expect(used).toEqual(Object.keys(MYSQL_METRICS).sort())
    expect(dashboardExprs().filter((e) => !DB_SERVER_ROW.test(e.row) && mysqlMetricsIn(e.expr).length > 0)).toEqual([])
    // Optional receiver metrics: exactly the ones the row uses are enabled in otel/collector.yaml.
    const config = readYaml<{ receivers: { mysql: { metrics: Record<string, { enabled: boolean }> } } }>('otel/collector.yaml')
    const enabled = Object.entries(config.receivers.mysql.metrics).filter(([, v]) => v.enabled).map(([k]) => k).sort()
    expect(enabled).toEqual(Object.values(MYSQL_METRICS).filter((m) => m.optional).map((m) => m.metric).sort())
  })
})
