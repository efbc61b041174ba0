import { performance } from 'node:perf_hooks'
import {
  context, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type TracerProvider
} from '@opentelemetry/api'
import { getRPCMetadata, RPCType } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Sequelize } from 'sequelize'
import { timingStore, tracer } from './request-timing'

declare module 'fastify' {
  interface FastifyRequest {
    /** The HTTP server span of this request (undefined when tracing is off or not traced). */
    otelSpan: Span | undefined
  }
}

const kQueryStart = Symbol('blog.queryStart')

/**
 * The app's side of OpenTelemetry. The SDK and the http/mysql2 instrumentations are started
 * by otel/bootstrap before the app loads; without them every call here is a no-op.
 * - names the server span by route (through the http instrumentation's RPC metadata, the
 *   cheap way: no per-hook spans) and records errors on it;
 * - answers W3C `traceresponse`;
 * - pool-wait spans and DB / pool metrics from Sequelize hooks (mysql2 emits no metrics).
 */
export default fp(
  async (fastify) => {
    fastify.decorateRequest('otelSpan', undefined)

    if (serverSpansByFastify()) traceRequests(fastify)
    else {
      // The http instrumentation made the server span: name it by route through its RPC
      // metadata (it reads http.route from there for the span and the duration metric).
      fastify.addHook('onRequest', (request, _reply, done) => {
        const active = context.active()
        const span = trace.getSpan(active)
        if (span) {
          request.otelSpan = span
          const rpc = getRPCMetadata(active)
          const route = routeOf(request)
          if (rpc?.type === RPCType.HTTP && route !== undefined) rpc.route = route
        }
        done()
      })
    }

    fastify.addHook('onSend', (request, reply, payload, done) => {
      const sc = request.otelSpan?.spanContext()
      if (sc && isSpanContextValid(sc)) reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`)
      done(null, payload)
    })

    fastify.addHook('onError', (request, reply, err, done) => {
      const span = request.otelSpan
      // Client errors (4xx) are the client's, not the server's: only 5xx mark the span.
      if (span && (reply.statusCode >= 500 || !(err as { statusCode?: number }).statusCode)) {
        span.recordException(err)
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message })
        span.setAttribute('error.type', (err as { code?: string }).code ?? err.name)
      }
      done()
    })

    fastify.addHook('onClose', async () => {
      // Flush what is queued before the process exits (the SDK's own shutdown may not run).
      const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => { forceFlush?: () => Promise<void> } }
      await provider.getDelegate?.().forceFlush?.().catch(() => undefined)
    })

    instrumentSequelize(fastify.sequelize)
  },
  { name: 'telemetry', dependencies: ['db', 'request-timing'] }
)

/**
 * The route template of a request. A prefix's '/' route answers both '/blogs' and '/blogs/',
 * but Fastify reports the bare prefix for both: name the trailing-slash form (the canonical
 * list URL) as it is.
 */
export function routeOf(request: FastifyRequest): string | undefined {
  const route = request.routeOptions.url
  if (route === undefined) return undefined
  const url = request.url
  if (url.length > route.length && url.charCodeAt(route.length) === 47 /* / */ && url.startsWith(route)) {
    const next = url.charCodeAt(route.length + 1)
    if (Number.isNaN(next) || next === 63 /* ? */) return route + '/'
  }
  return route
}

/** Set by otel/sdk.ts when the http instrumentation is off and this plugin makes server spans. */
export const SERVER_SPANS_FLAG = Symbol.for('blog_app.otel.serverSpansByFastify')
const serverSpansByFastify = () => (globalThis as Record<symbol, unknown>)[SERVER_SPANS_FLAG] === true

/** Health probes are not worth a trace each. */
const UNTRACED = new Set(['/health', '/ready'])

/**
 * Server spans made from Fastify hooks, instead of the http instrumentation (measured cheaper:
 * see README "Tracing overhead"). Follows the stable HTTP semantic conventions: span name
 * `METHOD route`, http.* / url.* attributes, and the http.server.request.duration histogram.
 */
function traceRequests(fastify: FastifyInstance): void {
  const kContext = Symbol('blog.otelContext')
  type Traced = FastifyRequest & { [kContext]?: Context }
  const requestDuration = metrics.getMeter('blog_app').createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] }
  })

  fastify.addHook('onRequest', (request: Traced, _reply, done) => {
    // Health probes and the request inspector's own pages (src/inspector) are not traced.
    if (UNTRACED.has(request.url) || request.url.startsWith('/_inspect')) return done()
    const parent = propagation.extract(ROOT_CONTEXT, request.headers)
    const route = routeOf(request)
    const method = request.method
    const span = tracer.startSpan(route ? `${method} ${route}` : method, { kind: SpanKind.SERVER }, parent)
    if (span.isRecording()) {
      const host = request.host
      const colon = host.lastIndexOf(':')
      span.setAttributes({
        'http.request.method': method,
        'url.path': request.url.split('?', 1)[0],
        'url.scheme': request.protocol,
        'server.address': colon > 0 ? host.slice(0, colon) : host,
        'network.protocol.version': request.raw.httpVersion,
        'client.address': request.ip
      })
      if (colon > 0) span.setAttribute('server.port', Number(host.slice(colon + 1)))
      if (route) span.setAttribute('http.route', route)
      const ua = request.headers['user-agent']
      if (ua) span.setAttribute('user_agent.original', ua)
    }
    request.otelSpan = span
    const ctx = trace.setSpan(parent, span)
    request[kContext] = ctx
    // The synchronous rest of the lifecycle runs in the span's context ...
    context.with(ctx, done)
  })

  // ... and so does every handler, also when it starts after an asynchronous body read.
  fastify.addHook('onRoute', (routeOptions) => {
    const handler = routeOptions.handler
    routeOptions.handler = function (request: Traced, reply) {
      const ctx = request[kContext]
      return ctx ? context.with(ctx, () => handler.call(this, request, reply)) : handler.call(this, request, reply)
    }
  })

  fastify.addHook('onResponse', (request, reply, done) => {
    const span = request.otelSpan
    if (!span) return done()
    const status = reply.statusCode
    const attributes: Attributes = { 'http.request.method': request.method, 'url.scheme': request.protocol, 'http.response.status_code': status }
    const route = routeOf(request)
    if (route) attributes['http.route'] = route
    if (status >= 500) {
      attributes['error.type'] = String(status)
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.setAttributes(attributes)
    span.end()
    requestDuration.record(reply.elapsedTime / 1000, attributes)
    done()
  })
}

/** Pool wait spans, per-request DB time, and the DB client metrics of the semantic conventions. */
export function instrumentSequelize(sequelize: Sequelize): void {
  const meter = metrics.getMeter('blog_app')
  const database = sequelize.getDatabaseName()
  const base = { 'db.system.name': 'mysql', 'db.namespace': database }
  const poolName = { 'db.client.connection.pool.name': database }

  const operationDuration = meter.createHistogram('db.client.operation.duration', {
    unit: 's',
    description: 'Duration of database client operations',
    advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] }
  })
  const waitTime = meter.createHistogram('db.client.connection.wait_time', {
    unit: 's',
    description: 'The time it took to obtain an open connection from the pool',
    advice: { explicitBucketBoundaries: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] }
  })

  type PoolStats = { size: number; available: number; using: number; waiting: number; maxSize: number }
  const pool = () => (sequelize.connectionManager as unknown as { pool?: PoolStats }).pool
  meter
    .createObservableUpDownCounter('db.client.connection.count', { unit: '{connection}', description: 'Connections by state' })
    .addCallback((r) => {
      const p = pool()
      if (!p) return
      r.observe(p.using, { ...poolName, 'db.client.connection.state': 'used' })
      r.observe(p.available, { ...poolName, 'db.client.connection.state': 'idle' })
    })
  meter
    .createObservableUpDownCounter('db.client.connection.pending_requests', { unit: '{request}', description: 'Requests waiting for a connection' })
    .addCallback((r) => {
      const p = pool()
      if (p) r.observe(p.waiting, poolName)
    })
  meter
    .createObservableUpDownCounter('db.client.connection.max', { unit: '{connection}', description: 'Largest pool size allowed' })
    .addCallback((r) => {
      const p = pool()
      if (p) r.observe(p.maxSize, poolName)
    })

  // Wrapping getConnection (rather than the before/afterPoolAcquire hooks) also sees the waits
  // that fail: an acquire timeout shows up as an ERROR span, which is the case worth seeing.
  const manager = sequelize.connectionManager as unknown as { getConnection(options?: object): Promise<unknown> }
  const getConnection = manager.getConnection.bind(manager)
  manager.getConnection = async (options) => {
    const span = trace.getActiveSpan()?.isRecording() ? tracer.startSpan('pool.acquire', { attributes: { ...base, ...poolName } }) : undefined
    const start = performance.now()
    try {
      return await getConnection(options)
    } catch (err) {
      span?.recordException(err as Error)
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      span?.setAttribute('error.type', (err as Error).name)
      throw err
    } finally {
      const waited = performance.now() - start
      waitTime.record(waited / 1000, poolName)
      const t = timingStore.getStore()
      if (t) t.poolWaitMs += waited
      span?.end()
    }
  }

  sequelize.addHook('beforeQuery', (_options, query) => {
    ;(query as unknown as Record<symbol, number>)[kQueryStart] = performance.now()
  })
  sequelize.addHook('afterQuery', (_options, query) => {
    const start = (query as unknown as Record<symbol, number>)[kQueryStart]
    if (start === undefined) return
    const took = performance.now() - start
    const sql = ((query as unknown as { sql?: string }).sql ?? '').trimStart()
    const space = sql.search(/\s/)
    const operation = (space === -1 ? sql : sql.slice(0, space)).replace(/;$/, '').toUpperCase() || 'UNKNOWN'
    operationDuration.record(took / 1000, { ...base, 'db.operation.name': operation })
    const t = timingStore.getStore()
    if (t) {
      t.dbMs += took
      t.queries += 1
    }
  })
}
