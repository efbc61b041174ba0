import { ATTR } from '../telemetry/names'
import { formatBytes, formatMs } from './format'
import { categoryOf, sqlSplit, summarize, type Category } from './stats'
import type { SpanRecord, TraceEntry } from './trace-buffer'

const KIND_NAMES = ['internal', 'server', 'client', 'producer', 'consumer']

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
  /** A SQL bar split into DB server / loop busy / the rest, left to right (SVG x and width). */
  parts: { part: 'server' | 'loop' | 'rest'; x: string; width: string; title: string }[]
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
  if (category === 'sql') return String(a[ATTR.dbQueryText] ?? '')
  if (category === 'render') return String(a[ATTR.viewName] ?? '')
  const bytes = a[ATTR.imageBytes]
  if ((category === 'image' || category === 'store') && typeof bytes === 'number') return formatBytes(bytes)
  if (category === 'pool') return String(a[ATTR.dbPoolName] ?? '')
  if (category === 'server' && a[ATTR.urlPath] !== a[ATTR.httpRoute]) return String(a[ATTR.urlPath] ?? '')
  return ''
}

/** Sub-bars of a SQL span, in the order server, loop busy, rest, each sized by its share. */
function splitBar(span: SpanRecord, x: number, total: number): WaterfallRow['parts'] {
  const split = sqlSplit(span)
  if (!split) return []
  const parts: WaterfallRow['parts'] = []
  let at = x
  const add = (part: 'server' | 'loop' | 'rest', ms: number, what: string) => {
    if (ms <= 0) return
    const w = (ms / total) * 100
    parts.push({ part, x: pct(at), width: pct(w), title: `${what}: ${formatMs(ms)}` })
    at += w
  }
  if (split.serverMs !== undefined) add('server', split.serverMs, 'DB server')
  add('loop', split.loopMs, 'event loop busy')
  add('rest', split.restMs, split.serverMs === undefined ? 'the rest (DB server time not joined)' : 'network, driver, waiting')
  return parts
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
      const x = ((s.start - t0) / total) * 100
      rows.push({
        spanId: s.spanId,
        name: s.name,
        detail: detailOf(s, category),
        category,
        depth: Math.min(depth, 6),
        x: pct(x),
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
        ],
        parts: category === 'sql' ? splitBar(s, x, total) : []
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
  /** Decoding and re-encoding the upload; undefined when the request had none. */
  image: string | undefined
  /** Writing its files (or object-store calls). */
  store: string | undefined
  /** Of the SQL time: the database itself and the loop busy with other work ('–' if unknown). */
  sqlServer: string
  sqlLoop: string
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
  const store = sumOf('store')
  const splits = entry.spans.filter((s) => categoryOf(s) === 'sql').map(sqlSplit)
  const server = splits.filter((x) => x?.serverMs !== undefined)
  const loops = splits.filter((x) => x !== null)
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
    store: store === '–' ? undefined : store,
    sqlServer: server.length > 0 ? formatMs(server.reduce((a, x) => a + x!.serverMs!, 0)) : '–',
    sqlLoop: loops.length > 0 ? formatMs(loops.reduce((a, x) => a + x!.loopMs, 0)) : '–',
    error: row.error
  }
}
