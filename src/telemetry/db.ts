import { performance } from 'node:perf_hooks'
import { context, metrics, trace, type Attributes } from '@opentelemetry/api'
import type { Sequelize } from 'sequelize'
import { SCOPE } from './constants'
import { CONNECTION_ID } from './db-server'
import { timingStore } from './timing'
import { withSpan } from './tracer'

const kQueryStart = Symbol('blog.queryStart')
const kWrapped = Symbol('blog.connectionWrapped')

type Method = ((...args: unknown[]) => unknown) & { __original?: (...args: unknown[]) => unknown }
type MysqlConnection = { threadId: number | null; query: Method; execute: Method; [kWrapped]?: true }

/**
 * Wraps a connection's query and execute (which the mysql2 instrumentation patches), once:
 * - inside a request that is not sampled, the unpatched method runs (shimmer keeps it as
 *   `__original`): no attributes, no masked SQL, no span objects for a trace nobody keeps;
 * - with `connectionIds`, the statement runs in a context carrying the connection's server-side
 *   id, where its span starts, so the server's own timing can be joined (./db-server.ts).
 */
function wrapConnection(conn: MysqlConnection, connectionIds: boolean): void {
  if (conn[kWrapped]) return
  conn[kWrapped] = true
  for (const method of ['query', 'execute'] as const) {
    const traced = conn[method]
    const plain = traced.__original ?? traced
    conn[method] = function (this: unknown, ...args: unknown[]) {
      const active = trace.getActiveSpan()
      if (active && !active.isRecording()) return plain.apply(this, args)
      if (!connectionIds || typeof conn.threadId !== 'number') return traced.apply(this, args)
      return context.with(context.active().setValue(CONNECTION_ID, conn.threadId), () => traced.apply(this, args))
    }
  }
}

/**
 * Pool wait spans, per-request DB time, and the DB client metrics of the semantic conventions.
 * Statements of unsampled requests skip the mysql2 instrumentation; with `connectionIds`, each
 * statement runs in a context naming its connection (see wrapConnection).
 */
export function instrumentSequelize(sequelize: Sequelize, opts: { connectionIds?: boolean } = {}): void {
  const meter = metrics.getMeter(SCOPE)
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
  // Made once: an unsampled request builds no attributes (the SDK copies them into each span).
  const poolSpanAttributes = { ...base, ...poolName }
  const getConnection = manager.getConnection.bind(manager)
  manager.getConnection = async (options) => {
    const start = performance.now()
    try {
      const connection = await withSpan('pool.acquire', poolSpanAttributes, () => getConnection(options))
      wrapConnection(connection as MysqlConnection, opts.connectionIds === true)
      return connection
    } finally {
      const waited = performance.now() - start
      waitTime.record(waited / 1000, poolName)
      const t = timingStore.getStore()
      if (t) t.poolWaitMs += waited
    }
  }

  sequelize.addHook('beforeQuery', (_options, query) => {
    ;(query as unknown as Record<symbol, number>)[kQueryStart] = performance.now()
  })
  // One attribute set per operation, made once: this runs after every statement.
  const opAttributes = new Map<string, Attributes>()
  sequelize.addHook('afterQuery', (_options, query) => {
    const start = (query as unknown as Record<symbol, number>)[kQueryStart]
    if (start === undefined) return
    const took = performance.now() - start
    const sql = (query as unknown as { sql?: string }).sql ?? ''
    const operation = OPERATION.exec(sql)?.[1]?.toUpperCase() ?? 'UNKNOWN'
    let attributes = opAttributes.get(operation)
    if (!attributes) opAttributes.set(operation, (attributes = { ...base, 'db.operation.name': operation }))
    operationDuration.record(took / 1000, attributes)
    const t = timingStore.getStore()
    if (t) {
      t.dbMs += took
      t.queries += 1
    }
  })
}

/** The statement's first word: SELECT, INSERT, START (TRANSACTION), COMMIT, ... */
const OPERATION = /^\s*([A-Za-z]+)/
