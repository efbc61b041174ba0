import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { InspectorConfig } from '../config'
import { tokenGuard } from './auth'
import { formatBytes } from './format'
import { filterRequests, routeStats, summarize, topSql, type RequestFilter } from './stats'
import type { TraceSource } from './trace-buffer'
import type { UnkeptTraces } from './unkept'
import { traceSummary, waterfall } from './waterfall'

/** At most this many rows on the list page (the buffer may hold thousands). */
const LIST_LIMIT = 200

const ListQuery = Type.Object({
  route: Type.Optional(Type.String({ maxLength: 300 })),
  method: Type.Optional(Type.String({ pattern: '^([A-Z]{1,10})?$' })),
  status: Type.Optional(Type.String({ pattern: '^([1-5]xx|[1-5][0-9]{2})?$' })),
  // A string, so the form's empty field means "no filter" rather than a validation error.
  slower: Type.Optional(Type.String({ pattern: '^([0-9]{1,7}(\\.[0-9]{1,3})?)?$' })),
  sort: Type.Optional(Type.Union([Type.Literal('recent'), Type.Literal('slowest')])),
  static: Type.Optional(Type.Literal('1')),
  token: Type.Optional(Type.String())
})

// Any text: one that is not a trace id gets this inspector's "not found" page, not the blog's.
const TraceParams = Type.Object({ traceId: Type.String({ maxLength: 200 }) })
const TRACE_ID = /^[0-9a-f]{32}$/

const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx']

/** The status filter's choices; an exact status typed into the URL (?status=404) is kept. */
const statusOptions = (current: string) => [
  { value: '', label: 'Any' },
  ...STATUS_CLASSES.map((c) => ({ value: c, label: c })),
  ...(current && !STATUS_CLASSES.includes(current) ? [{ value: current, label: current }] : [])
]

export interface InspectorRoutesOptions {
  config: InspectorConfig
  traces: TraceSource | null
  /** Recent requests whose trace was not kept (null without a buffer). */
  unkept: UnkeptTraces | null
  /** The performance_schema reader (null when DB_SERVER_TIMINGS=false or without the SDK). */
  serverTimings: { readonly enabled: boolean } | null
}

/** Why a trace shows no DB server time, for the note under '–'. */
function dbServerNote(serverTimings: InspectorRoutesOptions['serverTimings'], queries: number): string | undefined {
  if (queries === 0) return undefined
  if (!serverTimings) return 'Not measured: DB_SERVER_TIMINGS is off (or the app runs without the OpenTelemetry SDK).'
  if (!serverTimings.enabled) return "Not measured: the database's performance_schema is off or keeps no statement history (MariaDB's default; the log at start-up says which)."
  return "Not found: none of these statements was in performance_schema's history when it was read."
}

const setLocal = (reply: FastifyReply, key: string, value: unknown) => {
  const r = reply as unknown as { locals?: Record<string, unknown> }
  ;(r.locals ??= {})[key] = value
}

/**
 * /_inspect/*: pages over the in-memory trace buffer. They render with viewAsync, not
 * reply.render: these requests are not traced, and a view.render span would start a trace of
 * its own.
 */
const inspectorRoutes: FastifyPluginAsyncTypebox<InspectorRoutesOptions> = async (fastify, { config, traces: source, unkept, serverTimings }) => {
  const check = config.token ? tokenGuard(config.token, config.sessionTtlMs) : undefined

  /** A page in the site's layout, whose header shows who is signed in to the blog. */
  const page = (request: FastifyRequest, reply: FastifyReply, name: string, data: Record<string, unknown>) =>
    reply.viewAsync(name, { viewer: request.viewer ?? null, csrfToken: request.session?.csrfToken ?? '', ...data })

  const stats = () => {
    if (!source) return undefined
    const s = source.stats()
    return { ...s, bytesText: formatBytes(s.bytes), maxBytesText: formatBytes(s.maxBytes) }
  }

  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('Cache-Control', 'no-store')
    reply.header('X-Robots-Tag', 'noindex')
    setLocal(reply, 'inspectorCss', true)
    if (!check) return
    const result = check(request, reply)
    if (result === 'redirect') return reply
    if (result === 'denied') {
      request.log.warn({ ip: request.ip }, 'inspector: access denied (no or wrong INSPECTOR_TOKEN)')
      const html = await reply.viewAsync('inspector/token', { pageTitle: 'Inspector', nav: '', stats: undefined })
      return reply.code(401).header('WWW-Authenticate', 'Bearer realm="inspector"').send(html)
    }
  })

  // Who is signed in to the blog, for the header. The inspector must work while the database
  // does not (that may be what is being looked into): then the header says "Sign in".
  fastify.addHook('preHandler', async (request, reply) => {
    if (typeof fastify.loadViewer === 'function') await fastify.loadViewer(request, reply).catch(() => undefined)
  })

  // Unknown pages under /_inspect/ go through the guard above too: no probing without the token.
  fastify.setNotFoundHandler(async (_request, reply) => reply.notFound('There is no such inspector page.'))

  fastify.get('/', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const q = request.query
    const filter: RequestFilter = {
      route: q.route || undefined,
      method: q.method || undefined,
      status: q.status || undefined,
      slowerThanMs: q.slower ? Number(q.slower) : undefined,
      sort: q.sort ?? 'recent',
      includeStatic: q.static === '1'
    }
    const filtered = Boolean(filter.route || filter.method || filter.status || filter.slowerThanMs !== undefined || filter.includeStatic)
    const now = Date.now()
    const all = source ? source.requests().map((e) => summarize(e, now)) : []
    const matched = filterRequests(all, filter)
    const rows = matched.slice(0, LIST_LIMIT)
    const maxMs = Math.max(0.001, ...rows.map((r) => r.durationMs))
    return page(request, reply, 'inspector/requests', {
      pageTitle: filter.sort === 'slowest' ? 'Slowest requests' : 'Recent requests',
      nav: filter.sort === 'slowest' && !filtered ? 'slowest' : 'requests',
      stats: stats(),
      rows: rows.map((r) => ({
        ...r,
        barWidth: `${((r.durationMs / maxMs) * 100).toFixed(2)}%`,
        dbWidth: `${((Math.min(r.dbMs, r.durationMs) / maxMs) * 100).toFixed(2)}%`
      })),
      matched: matched.length,
      total: all.length,
      routes: [...new Set(all.map((r) => r.route))].sort(),
      methods: [...new Set([...all.map((r) => r.method), ...(q.method ? [q.method] : [])])].sort(),
      statusOptions: statusOptions(q.status ?? ''),
      filter: { route: q.route ?? '', method: q.method ?? '', status: q.status ?? '', slower: q.slower ?? '', sort: filter.sort, includeStatic: filter.includeStatic },
      filtered
    })
  })

  fastify.get('/traces/:traceId', { schema: { params: TraceParams } }, async (request, reply) => {
    // Trace ids are lower-case hex (W3C Trace Context); one pasted in capitals is the same trace.
    const traceId = request.params.traceId.toLowerCase()
    const missing = (message: string | undefined, pageTitle = 'Trace not found') =>
      page(request, reply.code(404), 'inspector/missing', { pageTitle, nav: '', stats: stats(), message, jaegerHref: TRACE_ID.test(traceId) && config.jaegerUrl ? `${config.jaegerUrl}/trace/${traceId}` : undefined })
    if (!TRACE_ID.test(traceId)) {
      return missing('That is not a trace id: a trace id is 32 hexadecimal digits (the second field of a traceparent or traceresponse header).')
    }
    const entry = source?.get(traceId)
    const summary = entry && traceSummary(entry)
    if (!entry || !summary) {
      if (unkept?.has(traceId)) {
        return missing(
          'This request was traced while it ran, but its trace was not kept (its traceresponse header ends in -00). The app keeps the traces of failed requests (5xx), of the slowest of each route (TRACE_KEEP_SLOWEST_PERCENT) or those over TRACE_KEEP_SLOWER_THAN_MS, of requests a trusted caller sent with a sampled traceparent, and the share the sampler picks (OTEL_TRACES_SAMPLER); this one was none of them.',
          'Trace not kept'
        )
      }
      return missing(
        source
          ? 'This trace is not in the buffer: it is older than what the buffer keeps, was not kept (only failed, slow and sampled requests are), or has not finished yet.'
          : undefined
      )
    }
    return page(request, reply, 'inspector/trace', {
      pageTitle: `Trace ${summary.method} ${summary.route}`,
      nav: '',
      stats: stats(),
      traceId,
      summary,
      dbServerNote: summary.sqlServer === '–' ? dbServerNote(serverTimings, summary.queries) : undefined,
      waterfall: waterfall(entry),
      jaegerHref: config.jaegerUrl ? `${config.jaegerUrl}/trace/${traceId}` : undefined
    })
  })

  fastify.get('/routes', async (request, reply) => {
    const entries = source ? source.requests() : []
    const now = Date.now()
    return page(request, reply, 'inspector/routes', {
      pageTitle: 'Routes and SQL',
      nav: 'routes',
      stats: stats(),
      routes: routeStats(entries.map((e) => summarize(e, now))),
      sql: topSql(entries),
      requests: entries.length
    })
  })
}

export default inspectorRoutes
