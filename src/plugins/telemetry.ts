import { performance } from 'node:perf_hooks'
import { context, isSpanContextValid, metrics, SpanStatusCode, trace, type Span, type TracerProvider } from '@opentelemetry/api'
import { getRPCMetadata, RPCType } from '@opentelemetry/core'
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
const kAcquireStart = Symbol('blog.acquireStart')

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

    fastify.addHook('onRequest', (request, _reply, done) => {
      const active = context.active()
      const span = trace.getSpan(active)
      if (span) {
        request.otelSpan = span
        const rpc = getRPCMetadata(active)
        let route = request.routeOptions.url
        // A prefix's '/' route answers both '/blogs' and '/blogs/', but Fastify reports the bare
        // prefix for both: name the trailing-slash form (the canonical list URL) as it is.
        if (route !== undefined && request.url.startsWith(route + '/') && (request.url.length === route.length + 1 || request.url[route.length + 1] === '?')) {
          route += '/'
        }
        if (rpc?.type === RPCType.HTTP && route !== undefined) rpc.route = route
      }
      done()
    })

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

  sequelize.addHook('beforePoolAcquire', (options) => {
    ;(options as unknown as Record<symbol, number>)[kAcquireStart] = performance.now()
  })
  sequelize.addHook('afterPoolAcquire', (_connection, options) => {
    const start = (options as unknown as Record<symbol, number>)[kAcquireStart]
    if (start === undefined) return
    const waited = performance.now() - start
    waitTime.record(waited / 1000, poolName)
    const t = timingStore.getStore()
    if (t) t.poolWaitMs += waited
    if (trace.getActiveSpan()?.isRecording()) {
      // Started and ended after the fact: the hooks are the only place that sees the wait.
      const startTime = performance.timeOrigin + start
      tracer.startSpan('pool.acquire', { startTime, attributes: { ...base, ...poolName } }).end(startTime + waited)
    }
  })

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
