import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import YAML from 'yaml'
import { ROOT } from '../../src/paths'
import { startProcess, waitHealthy, type Proc } from './process'

export { ROOT }

// The stack's configuration files as the tests read them: Compose, the Collector, Grafana.

/** Reads a YAML file of the repo (merge keys on, as Compose and the Collector allow them). */
export function readYaml<T = unknown>(rel: string): T {
  return YAML.parse(readFileSync(path.join(ROOT, rel), 'utf8'), { merge: true }) as T
}

export function readJson<T = unknown>(rel: string): T {
  return JSON.parse(readFileSync(path.join(ROOT, rel), 'utf8')) as T
}

/**
 * Compose's variable interpolation of one value: `$$` is a literal `$`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?msg}`, `${VAR:+alt}` and `$VAR` are substituted; any other `$` is an
 * error, as `docker compose` reports "invalid interpolation format".
 */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c !== '$') {
      out += c
      continue
    }
    const next = value[i + 1]
    if (next === '$') {
      out += '$'
      i++
    } else if (next === '{') {
      const end = value.indexOf('}', i)
      if (end === -1) throw new Error(`invalid interpolation format in ${JSON.stringify(value)}: unclosed \${`)
      const body = value.slice(i + 2, end)
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s.exec(body)
      if (!m) throw new Error(`invalid interpolation format in ${JSON.stringify(value)}: \${${body}}`)
      const [, name, op, arg = ''] = m
      const v = env[name!]
      const unsetOrEmpty = v === undefined || (op?.startsWith(':') && v === '')
      if (op === ':-' || op === '-') out += unsetOrEmpty ? interpolate(arg, env) : v
      else if (op === ':?' || op === '?') {
        if (unsetOrEmpty) throw new Error(`required variable ${name} is missing: ${arg}`)
        out += v
      } else if (op === ':+' || op === '+') out += unsetOrEmpty ? '' : interpolate(arg, env)
      else out += v ?? ''
      i = end
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(value.slice(i + 1))
      if (!m) throw new Error(`invalid interpolation format in ${JSON.stringify(value)} at "${value.slice(i, i + 5)}": write a literal $ as $$`)
      out += env[m[0]] ?? ''
      i += m[0].length
    }
  }
  return out
}

/** Applies `interpolate` to every string value (not keys) of a parsed Compose file. */
export function interpolateDeep<T>(node: T, env: Record<string, string | undefined>): T {
  if (typeof node === 'string') return interpolate(node, env) as T
  if (Array.isArray(node)) return node.map((n) => interpolateDeep(n, env)) as T
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateDeep(v, env)])) as T
  }
  return node
}

/** The Collector's `${env:NAME:-default}` placeholders, resolved with `env` (the defaults when unset). */
export function expandCollectorEnv(text: string, env: Record<string, string | undefined> = {}): string {
  return text.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, def?: string) => env[name] ?? def ?? '')
}

// ---------------------------------------------------------------- Grafana dashboards

export interface Target {
  refId?: string
  expr?: string
  datasource?: { type?: string; uid?: string }
  [k: string]: unknown
}

export interface Panel {
  id: number
  type: string
  title?: string
  datasource?: { type?: string; uid?: string }
  gridPos?: { x: number; y: number; w: number; h: number }
  fieldConfig?: { defaults?: { unit?: string } }
  options?: { yAxis?: { unit?: string } }
  targets?: Target[]
  panels?: Panel[]
}

export interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  links?: { title: string; url: string }[]
  templating?: { list: { name: string; type: string; query?: string | { query: string }; datasource?: { uid?: string } }[] }
}

export const DASHBOARD_FILES = ['grafana/dashboards/blog-app.json', 'grafana/dashboards/load-test.json']

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])])
}

export interface Expr {
  dashboard: string
  /** The title of the row the panel sits under ('' above the first row). */
  row: string
  panel: string
  refId: string
  expr: string
}

/** Every PromQL expression of the dashboards' panels. */
export function dashboardExprs(): Expr[] {
  return DASHBOARD_FILES.flatMap((file) => {
    const d = readJson<Dashboard>(file)
    let row = ''
    return d.panels.flatMap((top) => {
      if (top.type === 'row') row = top.title ?? ''
      return [top, ...(top.panels ?? [])].flatMap((p) =>
        (p.targets ?? []).filter((t) => t.expr).map((t) => ({ dashboard: d.title, row, panel: p.title ?? `#${p.id}`, refId: t.refId ?? '?', expr: t.expr! }))
      )
    })
  })
}

/** Every query variable's query, e.g. `label_values(metric{...}, label)`. */
export function variableQueries(): { dashboard: string; name: string; query: string }[] {
  return DASHBOARD_FILES.flatMap((file) => {
    const d = readJson<Dashboard>(file)
    return (d.templating?.list ?? [])
      .filter((v) => v.type === 'query')
      .map((v) => ({ dashboard: d.title, name: v.name, query: typeof v.query === 'string' ? v.query : (v.query?.query ?? '') }))
  })
}

/**
 * k6 metrics as the experimental-prometheus-rw output names them (prefix k6_; counters _total,
 * rates _rate, gauges bare, trends with K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true one
 * native histogram with the unit suffix: time _seconds), for k6's built-in metrics and the
 * custom ones in k6/ (trace_joined, a rate).
 */
export const K6_METRIC_NAMES = new Set([
  'k6_vus', 'k6_vus_max',
  'k6_http_reqs_total', 'k6_iterations_total', 'k6_dropped_iterations_total', 'k6_data_sent_total', 'k6_data_received_total',
  'k6_http_req_failed_rate', 'k6_checks_rate', 'k6_trace_joined_rate',
  'k6_http_req_duration_seconds', 'k6_http_req_blocked_seconds', 'k6_http_req_connecting_seconds',
  'k6_http_req_tls_handshaking_seconds', 'k6_http_req_sending_seconds', 'k6_http_req_waiting_seconds',
  'k6_http_req_receiving_seconds', 'k6_iteration_duration_seconds'
])

export function k6MetricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bk6_[a-z0-9_]+/g)].map((m) => m[0])
}

/** Grafana's variables, replaced the way the stack test queries Prometheus. */
export function substituteVariables(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{?(__rate_interval|__interval|[A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => vars[name] ?? m)
}

// ---------------------------------------------------------------- the collector's mysql receiver

/**
 * The mysql receiver's metrics that the dashboards query, under the names the collector's
 * prometheus exporter gives them (as test/e2e/stack/collector.test.ts sees them arrive), with the
 * receiver metric each comes from. `optional`: off in the receiver unless otel/collector.yaml
 * enables it. Sums the receiver marks non-monotonic (statement_event.*) come out as gauges
 * (`gauge`), without `_total`, though they only grow: the dashboards take their slope with
 * deriv(), since rate() is for counters.
 */
export const MYSQL_METRICS: Record<string, { metric: string; optional?: true; gauge?: true }> = {
  mysql_query_client_count_total: { metric: 'mysql.query.client.count', optional: true },
  mysql_query_slow_count_total: { metric: 'mysql.query.slow.count', optional: true },
  mysql_commands_total: { metric: 'mysql.commands', optional: true },
  mysql_statement_event_wait_time_nanoseconds: { metric: 'mysql.statement_event.wait.time', optional: true, gauge: true },
  mysql_statement_event_count: { metric: 'mysql.statement_event.count', optional: true, gauge: true },
  mysql_threads: { metric: 'mysql.threads' },
  mysql_max_used_connections: { metric: 'mysql.max_used_connections', optional: true },
  mysql_handlers_total: { metric: 'mysql.handlers' },
  mysql_buffer_pool_usage_bytes: { metric: 'mysql.buffer_pool.usage' },
  mysql_buffer_pool_pages: { metric: 'mysql.buffer_pool.pages' },
  mysql_page_size_bytes: { metric: 'mysql.page_size', optional: true },
  mysql_buffer_pool_operations_total: { metric: 'mysql.buffer_pool.operations' },
  mysql_row_locks_total: { metric: 'mysql.row_locks' },
  mysql_locks_total: { metric: 'mysql.locks' }
}

export function mysqlMetricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bmysql_[a-z0-9_]+/g)].map((m) => m[0])
}

/** The title of the Blog app dashboard's row for the mysql receiver's panels. */
export const DB_SERVER_ROW = /^Database server\b/

// ---------------------------------------------------------------- Prometheus' HTTP API

export interface PromResult { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }
export interface PromResponse { status: string; error?: string; data: { resultType: string; result: PromResult[] } }

export interface PromClient {
  /** An instant query, or a range query (seconds) when `range` is given. */
  query(expr: string, range?: { start: number; end: number; step: number }): Promise<PromResponse>
  /** The series of a range query from `sinceMs` (minus 5 s) to now, with at least one finite value. */
  seriesWithData(expr: string, sinceMs: number): Promise<PromResult[]>
  /** The values of `label` on the series matching `match`. */
  labelValues(label: string, match: string): Promise<string[]>
  /**
   * The dashboard expressions (Grafana variables replaced by `vars`) that still have no data since
   * `sinceMs` after `timeoutMs` of asking every 2 s, as "dashboard / panel / refId" -> expression.
   */
  withoutData(exprs: Expr[], vars: Record<string, string>, sinceMs: number, timeoutMs: number): Promise<Record<string, string>>
}

export function promClient(url: string): PromClient {
  const query: PromClient['query'] = async (expr, range) => {
    const params = new URLSearchParams({ query: expr })
    if (range) for (const [k, v] of Object.entries(range)) params.set(k, String(v))
    const res = await fetch(`${url}/api/v1/${range ? 'query_range' : 'query'}`, { method: 'POST', body: params })
    return (await res.json()) as PromResponse
  }
  const seriesWithData: PromClient['seriesWithData'] = async (expr, sinceMs) => {
    const r = await query(expr, { start: sinceMs / 1000 - 5, end: Date.now() / 1000, step: 1 })
    if (r.status !== 'success') throw new Error(`${expr}: ${r.error}`)
    return r.data.result.filter((s) => (s.values ?? []).some(([, v]) => Number.isFinite(Number(v))))
  }
  return {
    query,
    seriesWithData,
    async withoutData(exprs, vars, sinceMs, timeoutMs) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const missing: Record<string, string> = {}
        for (const e of exprs) {
          const expr = substituteVariables(e.expr, vars)
          if ((await seriesWithData(expr, sinceMs)).length === 0) missing[`${e.dashboard} / ${e.panel} / ${e.refId}`] = expr
        }
        if (Object.keys(missing).length === 0 || Date.now() > deadline) return missing
        await sleep(2000)
      }
    },
    async labelValues(label, match) {
      const params = new URLSearchParams({ 'match[]': match })
      const body = (await (await fetch(`${url}/api/v1/label/${label}/values?${params}`)).json()) as { status: string; data: string[] }
      if (body.status !== 'success') throw new Error(`label ${label} of ${match}: ${body.status}`)
      return body.data
    }
  }
}

/**
 * Starts `bin` (Debian's Prometheus 2.42) on `port` with prometheus/prometheus.yml, its compose
 * targets moved (`moved`), and the other flags docker-compose.yml gives Prometheus v3.5, read
 * from it: one that 2.42 does not know stops this start (README, "What is tested here", lists what
 * differs). Resolves once it is ready.
 */
export async function startStackPrometheus(bin: string, work: string, port: number, moved: Record<string, string>): Promise<{ proc: Proc; url: string }> {
  writeFileSync(path.join(work, 'prometheus.yml'), loopbackPromConfig(moved))
  const composeFlags = readYaml<{ services: { prometheus: { command: string[] } } }>('docker-compose.yml').services.prometheus.command
    .filter((f) => !/^--(config\.file|storage\.tsdb\.path)=/.test(f))
  if (!composeFlags.includes('--web.enable-remote-write-receiver')) throw new Error('docker-compose.yml: prometheus has no --web.enable-remote-write-receiver')
  const proc = startProcess('prometheus', bin, [
    `--config.file=${path.join(work, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(work, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...composeFlags
  ], {})
  const url = `http://127.0.0.1:${port}`
  await waitHealthy(proc, `${url}/-/ready`)
  return { proc, url }
}

/**
 * prometheus/prometheus.yml as it is, its compose targets replaced by `moved` (a target it does
 * not list is an error: the test would not know how to run it), scraping every second.
 */
export function loopbackPromConfig(moved: Record<string, string>): string {
  const config = readYaml<{ global: Record<string, string>; scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] }>('prometheus/prometheus.yml')
  for (const job of config.scrape_configs) {
    for (const sc of job.static_configs) {
      sc.targets = sc.targets.map((t) => {
        if (!moved[t]) throw new Error(`prometheus.yml scrapes ${t}, which this test does not know how to run`)
        return moved[t]
      })
    }
  }
  config.global.scrape_interval = '1s'
  return YAML.stringify(config)
}
