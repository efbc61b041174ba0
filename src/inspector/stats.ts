import { percentile } from '../lib/stats'
import { ATTR, spanCategory, type SpanCategory } from '../telemetry/names'
import { INSPECTOR_PREFIX } from './prefix'
import { age, clockTime, formatMs } from './format'
import type { SpanRecord, TraceEntry } from './trace-buffer'

// Read side of the inspector: plain objects for the templates, computed when a page is asked
// for (never on the span path).

export type Category = SpanCategory

/** The span's kind of work, as telemetry/names.ts classifies every reader's spans. */
export const categoryOf = (span: SpanRecord): Category => spanCategory({ name: span.name, kind: span.kind, attributes: span.attrs })

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
  /** SQL time with the database's own time joined (blog.db.server_ms), and that time. */
  joinedMs: number
  serverMs: number
  error: boolean
}

/**
 * Where a SQL span's time went: the database itself (`blog.db.server_ms`, when it was joined),
 * the event loop busy with other work (`blog.event_loop.active_ms`), and the rest (network,
 * driver, waiting). Parts are clamped so they add up to the span; null without the attributes.
 */
export interface SqlSplit {
  serverMs: number | undefined
  loopMs: number
  restMs: number
}

export function sqlSplit(span: SpanRecord): SqlSplit | null {
  const loop = span.attrs[ATTR.loopActiveMs]
  if (typeof loop !== 'number') return null
  const server = span.attrs[ATTR.dbServerMs]
  const serverMs = typeof server === 'number' ? Math.min(server, span.duration) : undefined
  const loopMs = Math.min(loop, span.duration - (serverMs ?? 0))
  return { serverMs, loopMs, restMs: Math.max(0, span.duration - (serverMs ?? 0) - loopMs) }
}

const summaries = new WeakMap<TraceEntry, { spans: number; row: Omit<RequestRow, 'age'> }>()

/** One request's line in the list (cached per trace until another span arrives). */
export function summarize(entry: TraceEntry, now = Date.now()): RequestRow {
  const cached = summaries.get(entry)
  if (cached && cached.spans === entry.spans.length) return { ...cached.row, age: age(cached.row.start, now) }
  const root = entry.root!
  let queries = 0
  let dbMs = 0
  // SQL time whose server share is known, and that share.
  let joinedMs = 0
  let serverMs = 0
  for (const s of entry.spans) {
    if (categoryOf(s) === 'sql') {
      queries++
      dbMs += s.duration
      const split = sqlSplit(s)
      if (split?.serverMs !== undefined) {
        joinedMs += s.duration
        serverMs += split.serverMs
      }
    }
  }
  const status = Number(root.attrs[ATTR.httpResponseStatusCode] ?? 0)
  const row = {
    traceId: entry.traceId,
    start: root.start,
    iso: new Date(root.start).toISOString(),
    time: clockTime(root.start),
    method: String(root.attrs[ATTR.httpRequestMethod] ?? root.name.split(' ')[0]),
    route: String(root.attrs[ATTR.httpRoute] ?? '(no route)'),
    path: String(root.attrs[ATTR.urlPath] ?? ''),
    status,
    durationMs: root.duration,
    duration: formatMs(root.duration),
    queries,
    dbMs,
    db: queries > 0 ? formatMs(dbMs) : '–',
    joinedMs,
    serverMs,
    error: root.error || status >= 500
  }
  summaries.set(entry, { spans: entry.spans.length, row })
  return { ...row, age: age(row.start, now) }
}

/** Static files and uploads: real requests, but noise in the list unless asked for. */
export const isStaticRoute = (route: string) => route.startsWith('/assets/') || route.startsWith('/static/')

export interface RequestFilter {
  route?: string
  /** GET, POST...: a route answers several methods, each its own work. */
  method?: string
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
      (!f.method || r.method === f.method) &&
      statusMatch(r.status) && (f.slowerThanMs === undefined || r.durationMs > f.slowerThanMs)
  )
  if (f.sort === 'slowest') out.sort((a, b) => b.durationMs - a.durationMs)
  return out
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
  /** Share of the SQL time (where it is known) that was the database itself, e.g. '12%'. */
  dbShare: string
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
      href: `${INSPECTOR_PREFIX}/?route=${encodeURIComponent(g[0]!.route)}&method=${encodeURIComponent(g[0]!.method)}&sort=slowest`,
      count: g.length,
      errors: g.filter((r) => r.status >= 500).length,
      p50: formatMs(percentile(d, 50)),
      p95: formatMs(percentile(d, 95)),
      p99: formatMs(percentile(d, 99)),
      max: formatMs(d[d.length - 1]!),
      avgQueries: (sum((r) => r.queries) / g.length).toFixed(1),
      avgDb: sum((r) => r.queries) > 0 ? formatMs(sum((r) => r.dbMs) / g.length) : '–',
      dbShare: sum((r) => r.joinedMs) > 0 ? `${Math.round((sum((r) => r.serverMs) / sum((r) => r.joinedMs)) * 100)}%` : '–'
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
    const route = entry.root ? `${entry.root.attrs[ATTR.httpRequestMethod] ?? ''} ${entry.root.attrs[ATTR.httpRoute] ?? '(no route)'}` : ''
    const inThis = new Map<string, number>()
    for (const s of entry.spans) {
      if (categoryOf(s) !== 'sql') continue
      const text = String(s.attrs[ATTR.dbQueryText] ?? s.name)
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
