import { metrics, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import type { Sequelize } from 'sequelize'
import { now } from './clock'
import { appHistograms } from './histograms'
import { ATTR, DB_SYSTEM, METRIC, SCOPE, SPAN } from './names'
import { measureStatements, statementSink } from './sql'
import type { Work } from './request-trace'
import { timingStore, type RequestTimings } from './timing'
import { tracer } from './tracer'

/** One wait for a pooled connection, from beforePoolAcquire to afterPoolAcquire. */
interface PoolWait {
  start: number
  span: Span | undefined
  /** The wait as deferred work of its request (./request-trace.ts). */
  work: Work | undefined
  timings: RequestTimings | undefined
  record: (ms: number) => void
}

const kWait = Symbol('blog_app.poolWait')
/** Waits of a request that have not ended: a wait that fails never reaches afterPoolAcquire. */
const openWaits = new WeakMap<RequestTimings, Set<PoolWait>>()

function endWait(w: PoolWait, end: number, err?: { name: string }): void {
  const waited = end - w.start
  if (w.work) w.timings!.trace!.finish(w.work, end, err?.name)
  if (w.span) {
    if (err) {
      w.span.setStatus({ code: SpanStatusCode.ERROR, message: 'no connection within DB_POOL_ACQUIRE_MS' })
      w.span.setAttribute(ATTR.errorType, err.name)
    }
    w.span.end()
  }
  w.record(waited)
  if (w.timings) {
    w.timings.poolWaitMs += waited
    openWaits.get(w.timings)?.delete(w)
  }
}

/**
 * Ends the waits of a request that never got their connection (the telemetry plugin calls this
 * before it answers). Sequelize's hooks see a wait start and succeed, not fail: a wait still open
 * when the request answers was refused (DB_POOL_ACQUIRE_MS, or the pool closing), at most
 * `acquireMs` after it began.
 */
export function endFailedPoolWaits(t: RequestTimings, acquireMs: number): void {
  const open = openWaits.get(t)
  if (!open || open.size === 0) return
  const at = now()
  for (const w of [...open]) endWait(w, Math.min(at, w.start + acquireMs), { name: 'ConnectionAcquireTimeoutError' })
}

export interface InstrumentOptions {
  /** Give SQL spans their connection's server-side id, for the performance_schema join. */
  connectionIds?: boolean
}

/**
 * Pool-wait spans, per-statement measurement (./sql.ts), and the DB client metrics of the
 * semantic conventions, all through public hooks: Sequelize's before/afterPoolAcquire and
 * mysql2's diagnostics channels. The pool's size and queue are read from Sequelize's pool
 * object, which has no public accessor (test/app/internals-canary.test.ts guards it).
 */
export function instrumentSequelize(sequelize: Sequelize, opts: InstrumentOptions = {}): void {
  const meter = metrics.getMeter(SCOPE)
  const database = sequelize.getDatabaseName()
  const config = sequelize.config as { host?: string; port?: string | number }
  const poolName = { [ATTR.dbPoolName]: database }
  // Made once: an unsampled request builds no attributes (the SDK copies them into each span).
  const poolSpanAttributes: Attributes = { [ATTR.dbSystemName]: DB_SYSTEM, [ATTR.dbNamespace]: database, ...poolName }

  const sink = statementSink({
    database,
    host: config.host ?? 'localhost',
    port: Number(config.port ?? 3306),
    connectionIds: opts.connectionIds === true,
    duration: appHistograms.histogram({
      name: METRIC.dbOperationDuration,
      unit: 's',
      description: 'Duration of database client operations',
      boundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]
    })
  })
  const waitTime = appHistograms.histogram({
    name: METRIC.dbConnectionWaitTime,
    unit: 's',
    description: 'The time it took to obtain an open connection from the pool',
    boundaries: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]
  })
  const recordWait = (ms: number) => waitTime.record(ms / 1000, poolName)

  type PoolStats = { size: number; available: number; using: number; waiting: number; maxSize: number }
  const pool = () => (sequelize.connectionManager as unknown as { pool?: PoolStats }).pool
  meter
    .createObservableUpDownCounter(METRIC.dbConnectionCount, { unit: '{connection}', description: 'Connections by state' })
    .addCallback((r) => {
      const p = pool()
      if (!p) return
      r.observe(p.using, { ...poolName, [ATTR.dbConnectionState]: 'used' })
      r.observe(p.available, { ...poolName, [ATTR.dbConnectionState]: 'idle' })
    })
  meter
    .createObservableUpDownCounter(METRIC.dbConnectionPending, { unit: '{request}', description: 'Requests waiting for a connection' })
    .addCallback((r) => {
      const p = pool()
      if (p) r.observe(p.waiting, poolName)
    })
  meter
    .createObservableUpDownCounter(METRIC.dbConnectionMax, { unit: '{connection}', description: 'Largest pool size allowed' })
    .addCallback((r) => {
      const p = pool()
      if (p) r.observe(p.maxSize, poolName)
    })

  // Sequelize hands both hooks the same options object of one getConnection call.
  type AcquireOptions = { [kWait]?: PoolWait } | undefined
  sequelize.addHook('beforePoolAcquire', (config) => {
    const options = config as AcquireOptions
    if (!options || typeof options !== 'object') return
    const start = now()
    const timings = timingStore.getStore()
    const deferred = timings?.trace
    const work = deferred?.begin(SPAN.poolAcquire, SpanKind.INTERNAL, start, poolSpanAttributes, true)
    const span = !work && trace.getActiveSpan()?.isRecording() ? tracer.startSpan(SPAN.poolAcquire, { attributes: poolSpanAttributes }) : undefined
    const wait: PoolWait = { start, span, work, timings, record: recordWait }
    options[kWait] = wait
    if (timings) {
      let open = openWaits.get(timings)
      if (!open) openWaits.set(timings, (open = new Set()))
      open.add(wait)
    }
  })
  sequelize.addHook('afterPoolAcquire', (connection, config) => {
    const options = config as AcquireOptions
    measureStatements(connection as Parameters<typeof measureStatements>[0], sink)
    const wait = options?.[kWait]
    if (!wait) return
    options![kWait] = undefined
    endWait(wait, now())
  })
}
