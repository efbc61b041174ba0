import type { SpanRecord, TraceEntry } from './trace-buffer'

// Read side of the inspector: plain objects for the templates, computed when a page is asked
// for (never on the span path). Numbers are formatted here so templates only print.

const SERVER = 1
const CLIENT = 2
const KIND_NAMES = ['internal', 'server', 'client', 'producer', 'consumer']

/** 0.42 ms, 3.27 ms, 12.3 ms, 123 ms, 1.23 s */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`
  if (ms >= 100) return `${Math.round(ms)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1048576).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} B`
}

/** "14:03:27 UTC" */
export function clockTime(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 19) + ' UTC'
}

/** "3 s ago", "5 min ago" */
export function age(epochMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return `${Math.floor(s / 3600)} h ago`
}

export type Category = 'server' | 'pool' | 'sql' | 'render' | 'image' | 'other'

export function categoryOf(span: SpanRecord): Category {
  if (span.kind === SERVER) return 'server'
  if (span.name === 'pool.acquire') return 'pool'
  if (span.kind === CLIENT && span.attrs['db.system.name'] !== undefined) return 'sql'
  if (span.name === 'view.render') return 'render'
  if (span.name === 'blog.image.write') return 'image'
  return 'other'
}

export interface RequestRow {
  traceId: string
  start: number
  /** ISO 8601, for <time datetime>. */
  iso: string
  time: string
  age: string
  method: string
  /** Route template, or '(no route)' for a request no route matched. */
  route: string
  path: string
  status: number
  durationMs: number
  duration: string
  queries: number
  dbMs: number
  db: string
  error: boolean
}

const summaries = new WeakMap<TraceEntry, { spans: number; row: Omit<RequestRow, 'age'> }>()

/** One request's line in the list (cached per trace until another span arrives). */
export function summarize(entry: TraceEntry, now = Date.now()): RequestRow {
  const cached = summaries.get(entry)
  if (cached && cached.spans === entry.spans.length) return { ...cached.row, age: age(cached.row.start, now) }
  const root = entry.root!
  let queries = 0
  let dbMs = 0
  for (const s of entry.spans) {
    if (categoryOf(s) === 'sql') {
      queries++
      dbMs += s.duration
    }
  }
  const status = Number(root.attrs['http.response.status_code'] ?? 0)
  const row = {
    traceId: entry.traceId,
    start: root.start,
    iso: new Date(root.start).toISOString(),
    time: clockTime(root.start),
    method: String(root.attrs['http.request.method'] ?? root.name.split(' ')[0]),
    route: String(root.attrs['http.route'] ?? '(no route)'),
    path: String(root.attrs['url.path'] ?? ''),
    status,
    durationMs: root.duration,
    duration: formatMs(root.duration),
    queries,
    dbMs,
    db: queries > 0 ? formatMs(dbMs) : '–',
    error: root.error || status >= 500
  }
  summaries.set(entry, { spans: entry.spans.length, row })
  return { ...row, age: age(row.start, now) }
}

/** Static files and uploads: real requests, but noise in the list unless asked for. */
export const isStaticRoute = (route: string) => route.startsWith('/assets/') || route.startsWith('/static/')

export interface RequestFilter {
  route?: string
  /** Include static files (off by default). */
  includeStatic?: boolean
  /** '5xx' or '404' */
  status?: string
  slowerThanMs?: number
  sort?: 'recent' | 'slowest'
}

export function filterRequests(rows: RequestRow[], f: RequestFilter): RequestRow[] {
  const status = f.status ?? ''
  const statusMatch = /^[1-5]xx$/.test(status)
    ? (s: number) => Math.floor(s / 100) === Number(status[0])
    : status
      ? (s: number) => s === Number(status)
      : () => true
  const out = rows.filter(
    (r) =>
      (f.route ? r.route === f.route : f.includeStatic || !isStaticRoute(r.route)) &&
      statusMatch(r.status) && (f.slowerThanMs === undefined || r.durationMs > f.slowerThanMs)
  )
  if (f.sort === 'slowest') out.sort((a, b) => b.durationMs - a.durationMs)
  return out
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export interface RouteStats {
  method: string
  route: string
  /** The list page filtered to this route, slowest first. */
  href: string
  count: number
  errors: number
  p50: string
  p95: string
  p99: string
  max: string
  avgQueries: string
  avgDb: string
}

/** Per method and route: how many, how slow (over what the buffer holds). */
export function routeStats(rows: RequestRow[]): RouteStats[] {
  const groups = new Map<string, RequestRow[]>()
  for (const r of rows) {
    const key = `${r.method} ${r.route}`
    const g = groups.get(key)
    if (g) g.push(r)
    else groups.set(key, [r])
  }
  const out = [...groups.values()].map((g) => {
    const d = g.map((r) => r.durationMs).sort((a, b) => a - b)
    const sum = (f: (r: RequestRow) => number) => g.reduce((acc, r) => acc + f(r), 0)
    return {
      method: g[0]!.method,
      route: g[0]!.route,
      href: `/_inspect/?route=${encodeURIComponent(g[0]!.route)}&sort=slowest`,
      count: g.length,
      errors: g.filter((r) => r.status >= 500).length,
      p50: formatMs(percentile(d, 50)),
      p95: formatMs(percentile(d, 95)),
      p99: formatMs(percentile(d, 99)),
      max: formatMs(d[d.length - 1]!),
      avgQueries: (sum((r) => r.queries) / g.length).toFixed(1),
      avgDb: sum((r) => r.queries) > 0 ? formatMs(sum((r) => r.dbMs) / g.length) : '–'
    }
  })
  return out.sort((a, b) => b.count - a.count || a.route.localeCompare(b.route))
}

export interface SqlStats {
  text: string
  calls: number
  total: string
  avg: string
  max: string
  /** Requests it ran in. */
  requests: number
  perRequest: string
  maxPerRequest: number
  /** Ran three or more times within one request: the shape of an N+1. */
  repeated: boolean
  routes: string[]
}

/** A statement that runs this often within one request is probably a loop (N+1). */
export const REPEATED_PER_REQUEST = 3

/** Statements (masked text) by total time across the buffered requests. */
export function topSql(entries: TraceEntry[], limit = 20): SqlStats[] {
  type Acc = { text: string; calls: number; totalMs: number; maxMs: number; requests: number; maxPerRequest: number; routes: Set<string> }
  const all = new Map<string, Acc>()
  for (const entry of entries) {
    const route = entry.root ? `${entry.root.attrs['http.request.method'] ?? ''} ${entry.root.attrs['http.route'] ?? '(no route)'}` : ''
    const inThis = new Map<string, number>()
    for (const s of entry.spans) {
      if (categoryOf(s) !== 'sql') continue
      const text = String(s.attrs['db.query.text'] ?? s.name)
      let acc = all.get(text)
      if (!acc) all.set(text, (acc = { text, calls: 0, totalMs: 0, maxMs: 0, requests: 0, maxPerRequest: 0, routes: new Set() }))
      acc.calls++
      acc.totalMs += s.duration
      acc.maxMs = Math.max(acc.maxMs, s.duration)
      inThis.set(text, (inThis.get(text) ?? 0) + 1)
    }
    for (const [text, n] of inThis) {
      const acc = all.get(text)!
      acc.requests++
      acc.maxPerRequest = Math.max(acc.maxPerRequest, n)
      if (route) acc.routes.add(route)
    }
  }
  return [...all.values()]
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, limit)
    .map((a) => ({
      text: a.text,
      calls: a.calls,
      total: formatMs(a.totalMs),
      avg: formatMs(a.totalMs / a.calls),
      max: formatMs(a.maxMs),
      requests: a.requests,
      perRequest: (a.calls / Math.max(1, a.requests)).toFixed(1),
      maxPerRequest: a.maxPerRequest,
      repeated: a.maxPerRequest >= REPEATED_PER_REQUEST,
      routes: [...a.routes].slice(0, 3)
    }))
}

export interface WaterfallRow {
  spanId: string
  name: string
  /** Second line: the masked SQL, the view name, the image size. */
  detail: string
  category: Category
  /** 0..6, for an indentation class. */
  depth: number
  /** SVG x and width, as percentages of the trace's time span. */
  x: string
  width: string
  offset: string
  duration: string
  error: boolean
  attrs: [string, string][]
}

export interface Tick {
  x: string
  label: string
  anchor: 'start' | 'middle' | 'end'
}

export interface Waterfall {
  rows: WaterfallRow[]
  ticks: Tick[]
  total: string
}

// Two decimals: a hundredth of a percent is well under a pixel, and epoch-millisecond floats
// make the root's width come out as 99.999...% otherwise.
const pct = (n: number) => `${Math.min(100, Math.max(0, n)).toFixed(2)}%`

/** A step of 1, 2 or 5 times a power of ten giving about five intervals. */
function tickStep(totalMs: number): number {
  const raw = totalMs / 5
  const pow = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow
}

function detailOf(span: SpanRecord, category: Category): string {
  const a = span.attrs
  if (category === 'sql') return String(a['db.query.text'] ?? '')
  if (category === 'render') return String(a['blog.view.name'] ?? '')
  if (category === 'image' && typeof a['blog.image.bytes'] === 'number') return formatBytes(a['blog.image.bytes'])
  if (category === 'pool') return String(a['db.client.connection.pool.name'] ?? '')
  if (category === 'server' && a['url.path'] !== a['http.route']) return String(a['url.path'] ?? '')
  return ''
}

/** The spans of one trace as rows drawn to scale: parents before children, siblings by start. */
export function waterfall(entry: TraceEntry): Waterfall {
  const spans = entry.spans
  const ids = new Set(spans.map((s) => s.spanId))
  const children = new Map<string | undefined, SpanRecord[]>()
  for (const s of spans) {
    const parent = s.parentId !== undefined && ids.has(s.parentId) ? s.parentId : undefined
    const list = children.get(parent)
    if (list) list.push(s)
    else children.set(parent, [s])
  }
  let t0 = Infinity
  let t1 = -Infinity
  for (const s of spans) {
    t0 = Math.min(t0, s.start)
    t1 = Math.max(t1, s.start + s.duration)
  }
  const total = Math.max(t1 - t0, 0.001)

  const rows: WaterfallRow[] = []
  const walk = (parent: string | undefined, depth: number) => {
    const list = (children.get(parent) ?? []).sort((a, b) => a.start - b.start)
    for (const s of list) {
      const category = categoryOf(s)
      rows.push({
        spanId: s.spanId,
        name: s.name,
        detail: detailOf(s, category),
        category,
        depth: Math.min(depth, 6),
        x: pct(((s.start - t0) / total) * 100),
        // At least a sliver, so a 20 µs statement is still visible.
        width: pct(Math.max((s.duration / total) * 100, 0.25)),
        offset: formatMs(s.start - t0),
        duration: formatMs(s.duration),
        error: s.error,
        attrs: [
          ['span id', s.spanId],
          ['parent span id', s.parentId ?? '(root)'],
          ['kind', KIND_NAMES[s.kind] ?? String(s.kind)],
          ['starts at', `+${formatMs(s.start - t0)}`],
          ['duration', formatMs(s.duration)],
          ['status', s.error ? 'error' : 'ok'],
          ...Object.entries(s.attrs).map(([k, v]): [string, string] => [k, String(v)])
        ]
      })
      walk(s.spanId, depth + 1)
    }
  }
  walk(undefined, 0)

  const step = tickStep(total)
  const ticks: Tick[] = []
  for (let i = 0; i * step <= total * 1.0001; i++) {
    const at = ((i * step) / total) * 100
    // "10 ms", not "10.0 ms": an axis reads better without the trailing zeros.
    const label = i === 0 ? '0' : formatMs(i * step).replace(/\.(\d*?)0+ /, (_m, d: string) => (d ? `.${d} ` : ' '))
    ticks.push({ x: pct(at), label, anchor: i === 0 ? 'start' : at > 92 ? 'end' : 'middle' })
  }
  return { rows, ticks, total: formatMs(total) }
}

export interface TraceSummary {
  method: string
  route: string
  path: string
  status: number
  time: string
  total: string
  db: string
  queries: number
  pool: string
  render: string
  image: string | undefined
  error: boolean
}

/** The numbers above the waterfall: where the request's time went, by kind of work. */
export function traceSummary(entry: TraceEntry): TraceSummary | undefined {
  if (!entry.root) return undefined
  const row = summarize(entry)
  // '–' when the request had no such work (a redirect renders nothing).
  const sumOf = (c: Category) => {
    const spans = entry.spans.filter((s) => categoryOf(s) === c)
    return spans.length > 0 ? formatMs(spans.reduce((acc, s) => acc + s.duration, 0)) : '–'
  }
  const image = sumOf('image')
  return {
    method: row.method,
    route: row.route,
    path: row.path,
    status: row.status,
    time: `${new Date(row.start).toISOString().replace('T', ' ').slice(0, 23)} UTC`,
    total: row.duration,
    db: row.db,
    queries: row.queries,
    pool: sumOf('pool'),
    render: sumOf('render'),
    image: image === '–' ? undefined : image,
    error: row.error
  }
}
