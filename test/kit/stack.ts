import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import YAML from 'yaml'
import { ROOT } from '../../src/paths'

export { ROOT }

export const SERVER = path.join(ROOT, 'dist', 'src', 'server.js')
export const BOOTSTRAP = path.join(ROOT, 'dist', 'otel', 'bootstrap.js')

/** Fails fast when dist/ is missing or older than src/ or otel/ (`npm test` builds first). */
export function assertBuilt(): void {
  for (const f of [SERVER, BOOTSTRAP]) if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm test does)`)
  const built = statSync(SERVER).mtimeMs
  const stale: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name.endsWith('.ts') && statSync(p).mtimeMs > built) stale.push(path.relative(ROOT, p))
    }
  }
  walk(path.join(ROOT, 'src'))
  walk(path.join(ROOT, 'otel'))
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\` first (npm test does)`)
}

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

export interface Tools {
  otelcol: string
  jaeger: string
  prometheus: string
  promtool: string
}

let tools: Tools | undefined

/**
 * The binaries the stack tests run. scripts/install-tools.sh builds the collector and Jaeger
 * into its cache (a no-op once built) and installs Debian's prometheus; it prints the cache
 * directory as its last line. Throws saying what is missing: these tests never pass without
 * the real programs.
 */
export function stackTools(): Tools {
  if (tools) return tools
  let stdout: string
  try {
    stdout = execFileSync('bash', [path.join(ROOT, 'scripts', 'install-tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60_000 })
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`\`bash scripts/install-tools.sh\` failed, so there is no collector, Jaeger or Prometheus to test with.\n${e.message}\n${e.stderr ?? ''}`)
  }
  const dir = stdout.trim().split('\n').pop() ?? path.join(os.homedir(), '.cache', 'blog_app', 'tools')
  const found: Tools = {
    otelcol: path.join(dir, 'otelcol-blog'),
    jaeger: path.join(dir, 'jaeger'),
    prometheus: '/usr/bin/prometheus',
    promtool: '/usr/bin/promtool'
  }
  for (const [name, bin] of Object.entries(found)) {
    if (!existsSync(bin)) throw new Error(`no ${name} at ${bin}: run \`bash scripts/install-tools.sh\` (needs Go and apt) before these tests`)
  }
  return (tools = found)
}

/** Distinct loopback ports that nothing listens on right now (all held open until all are found). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer()
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject)
        srv.listen(0, '127.0.0.1', () => resolve())
      })
      servers.push(srv)
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

export interface Proc {
  name: string
  proc: ChildProcess
  /** stdout and stderr so far (the last 64 kB). */
  output(): string
  stop(): Promise<void>
}

const running = new Set<Proc>()
// A worker that dies without running afterAll must not leave servers behind.
process.once('exit', () => {
  for (const p of running) p.proc.kill('SIGKILL')
})

/** Starts a program with exactly `env` (plus PATH); `stop()` sends SIGTERM, then SIGKILL after 5 s. */
export function startProcess(name: string, command: string, args: string[], env: Record<string, string>, cwd = ROOT): Proc {
  const proc = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: string) => {
    out = (out + d).slice(-65_536)
  }
  proc.stdout!.setEncoding('utf8').on('data', keep)
  proc.stderr!.setEncoding('utf8').on('data', keep)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const p: Proc = {
    name,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      running.delete(p)
    }
  }
  running.add(p)
  return p
}

/** Polls `check` until it returns a value other than undefined, or throws with the last error. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await sleep(everyMs)
  }
}

/** Waits until GET `url` answers 200 while `proc` still runs. */
export async function waitHealthy(proc: Proc, url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${proc.name} at ${url}`, async () => {
    if (proc.proc.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.proc.exitCode}:\n${proc.output()}`)
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${proc.name} output ---\n${proc.output()}`)
  })
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
  panel: string
  refId: string
  expr: string
}

/** Every PromQL expression of the dashboards' panels. */
export function dashboardExprs(): Expr[] {
  return DASHBOARD_FILES.flatMap((file) => {
    const d = readJson<Dashboard>(file)
    return allPanels(d).flatMap((p) =>
      (p.targets ?? []).filter((t) => t.expr).map((t) => ({ dashboard: d.title, panel: p.title ?? `#${p.id}`, refId: t.refId ?? '?', expr: t.expr! }))
    )
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
