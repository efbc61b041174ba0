import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { InspectorConfig } from '../config'
import { tokenGuard } from './auth'
import { formatBytes } from './format'
import { filterRequests, routeStats, summarize, topSql, type RequestFilter } from './stats'
import type { TraceSource } from './trace-buffer'
import { traceSummary, waterfall } from './waterfall'

/** At most this many rows on the list page (the buffer may hold thousands). */
const LIST_LIMIT = 200

const ListQuery = Type.Object({
  route: Type.Optional(Type.String({ maxLength: 300 })),
  status: Type.Optional(Type.String({ pattern: '^([1-5]xx|[1-5][0-9]{2})?$' })),
  // A string, so the form's empty field means "no filter" rather than a validation error.
  slower: Type.Optional(Type.String({ pattern: '^([0-9]{1,7}(\\.[0-9]{1,3})?)?$' })),
  sort: Type.Optional(Type.Union([Type.Literal('recent'), Type.Literal('slowest')])),
  static: Type.Optional(Type.Literal('1')),
  token: Type.Optional(Type.String())
})

const TraceParams = Type.Object({ traceId: Type.String({ pattern: '^[0-9a-f]{32}$' }) })

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
const inspectorRoutes: FastifyPluginAsyncTypebox<InspectorRoutesOptions> = async (fastify, { config, traces: source }) => {
  const check = config.token ? tokenGuard(config.token, config.sessionTtlMs) : undefined

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

  // Unknown pages under /_inspect/ go through the guard above too: no probing without the token.
  fastify.setNotFoundHandler(async (_request, reply) => reply.notFound('There is no such inspector page.'))

  fastify.get('/', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const q = request.query
    const filter: RequestFilter = {
      route: q.route || undefined,
      status: q.status || undefined,
      slowerThanMs: q.slower ? Number(q.slower) : undefined,
      sort: q.sort ?? 'recent',
      includeStatic: q.static === '1'
    }
    const filtered = Boolean(filter.route || filter.status || filter.slowerThanMs !== undefined || filter.includeStatic)
    const now = Date.now()
    const all = source ? source.requests().map((e) => summarize(e, now)) : []
    const matched = filterRequests(all, filter)
    const rows = matched.slice(0, LIST_LIMIT)
    const maxMs = Math.max(0.001, ...rows.map((r) => r.durationMs))
    return reply.viewAsync('inspector/requests', {
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
      statusOptions: statusOptions(q.status ?? ''),
      filter: { route: q.route ?? '', status: q.status ?? '', slower: q.slower ?? '', sort: filter.sort, includeStatic: filter.includeStatic },
      filtered
    })
  })

  fastify.get('/traces/:traceId', { schema: { params: TraceParams } }, async (request, reply) => {
    const { traceId } = request.params
    const jaegerHref = config.jaegerUrl ? `${config.jaegerUrl}/trace/${traceId}` : undefined
    const entry = source?.get(traceId)
    const summary = entry && traceSummary(entry)
    if (!entry || !summary) {
      return reply.code(404).viewAsync('inspector/missing', {
        pageTitle: 'Trace not found',
        nav: '',
        stats: stats(),
        message: source
          ? 'This trace is not in the buffer: it is older than what the buffer keeps, was not sampled, or has not finished yet.'
          : undefined,
        jaegerHref
      })
    }
    return reply.viewAsync('inspector/trace', {
      pageTitle: `Trace ${summary.method} ${summary.route}`,
      nav: '',
      stats: stats(),
      traceId,
      summary,
      waterfall: waterfall(entry),
      jaegerHref
    })
  })

  fastify.get('/routes', async (_request, reply) => {
    const entries = source ? source.requests() : []
    const now = Date.now()
    return reply.viewAsync('inspector/routes', {
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
