import diagnostics from 'node:diagnostics_channel'
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import { now } from './clock'
import { CONNECTION_ID } from './db-server'
import type { Recorder } from './histograms'
import { ATTR, DB_SYSTEM } from './names'
import type { Work } from './request-trace'
import { timingStore, type RequestTimings } from './timing'
import { errorTypeOf, tracer } from './tracer'

/**
 * One measurement per SQL statement, from mysql2's diagnostics channels (`mysql2:query`,
 * `mysql2:execute`: published when a statement is handed to the driver and when its callback
 * gets the answer). The same two instants feed the request's Server-Timing `db`, the
 * db.client.operation.duration histogram and, inside a recorded trace, the statement's span, so
 * the header's sum is the sum of the spans. This replaces the mysql2 instrumentation, which
 * patched the driver's prototype and kept its own clock.
 *
 * The channels do not say which connection ran a statement. The app's connections (and only
 * they: the performance_schema reader and the health probe have their own) call through a thin
 * wrapper set at Sequelize's public `afterConnect` hook, which names the connection for the
 * synchronous length of the call, inside which the channel's start event is published.
 */

/** What the app's statements share: attributes, the histogram, whether to name the connection. */
export interface StatementSink {
  /** Span attributes: db.system.name, db.namespace, server.address, server.port. */
  readonly base: Attributes
  /** Metric attributes: db.system.name, db.namespace (plus db.operation.name per statement). */
  readonly metricBase: Attributes
  readonly duration: Recorder
  /** Give each span its connection's server-side id (for the performance_schema join). */
  connectionIds: boolean
  /** Metric attributes by operation, made once each. */
  readonly byOperation: Map<string, Attributes>
  /** Span attributes (without the text) by operation, made once each. */
  byOperationSpan(operation: string): Attributes
}

interface Caller {
  sink: StatementSink
  conn: { threadId: number | null }
}

/** The app connection whose query/execute is on the stack right now (synchronous only). */
let calling: Caller | undefined

interface Statement {
  sink: StatementSink
  operation: string
  start: number
  timings: RequestTimings | undefined
  span: Span | undefined
  /** The statement as deferred work of its request (./request-trace.ts). */
  work: Work | undefined
}

/** Where the channel's context object carries our record of its statement. */
const kStatement = Symbol('blog_app.statement')
type ChannelContext = { query?: string; [kStatement]?: Statement; error?: unknown }

/** The statement's first word: SELECT, INSERT, START (TRANSACTION), COMMIT, ... */
export function operationOf(sql: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(sql)
  return m ? m[1]!.toUpperCase() : 'UNKNOWN'
}

/**
 * The statement with every literal replaced by `?`: quoted strings (with their charset
 * introducer or x/b prefix), hex and decimal numbers. Backquoted identifiers are kept as they
 * are. Prepared statements arrive with `?` already; text statements (transactions, raw SQL)
 * arrive with their values inlined, which must never reach a span.
 */
export function maskSql(sql: string): string {
  let masked = masks.get(sql)
  if (masked === undefined) {
    // A page runs the same few statements again and again (prepared ones carry no values):
    // remember their masked text instead of running the expression over each. Bounded: values
    // inlined into text statements make every one new.
    if (masks.size >= MASKS_MAX) masks.clear()
    masks.set(sql, (masked = mask(sql)))
  }
  return masked
}
const masks = new Map<string, string>()
const MASKS_MAX = 512

function mask(sql: string): string {
  return sql.replace(
    /`(?:[^`]|``)*`|(?:\b_[A-Za-z0-9]+|\b[xXbBnN])?'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|\b0[xX][0-9A-Fa-f]+\b|\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b/g,
    (token) => (token.startsWith('`') ? token : '?')
  )
}

function onStart(message: unknown): void {
  const caller = calling
  if (!caller) return
  const ctx = message as ChannelContext
  const sql = typeof ctx.query === 'string' ? ctx.query : ''
  const operation = operationOf(sql)
  const start = now()
  const timings = timingStore.getStore()
  let span: Span | undefined
  let work: Work | undefined
  const deferred = timings?.trace
  if (deferred) {
    const { sink, conn } = caller
    // Attributes stay the shared constant; the text is masked only if the trace is kept.
    work = deferred.begin(operation, SpanKind.CLIENT, start, sink.byOperationSpan(operation), true)
    if (work) {
      work.sql = sql
      if (sink.connectionIds && typeof conn.threadId === 'number') work.connectionId = conn.threadId
    }
  } else if (trace.getActiveSpan()?.isRecording()) {
    const { sink, conn } = caller
    const parent = sink.connectionIds && typeof conn.threadId === 'number' ? context.active().setValue(CONNECTION_ID, conn.threadId) : context.active()
    span = tracer.startSpan(
      operation,
      { kind: SpanKind.CLIENT, attributes: { ...sink.base, [ATTR.dbOperationName]: operation, [ATTR.dbQueryText]: maskSql(sql) } },
      parent
    )
  }
  ctx[kStatement] = { sink: caller.sink, operation, start, timings, span, work }
}

/** The callback got the answer (or the error): the statement's end, once. */
function onAnswer(message: unknown): void {
  const ctx = message as ChannelContext
  const s = ctx[kStatement]
  if (!s) return
  ctx[kStatement] = undefined
  const end = now()
  const took = end - s.start
  const errorType = ctx.error === undefined ? undefined : errorTypeOf(ctx.error)
  if (s.work) s.timings!.trace!.finish(s.work, end, errorType)
  if (s.span) {
    if (errorType !== undefined) {
      // No message: a driver's error text can quote the offending value (a duplicate key).
      s.span.setStatus({ code: SpanStatusCode.ERROR })
      s.span.setAttribute(ATTR.errorType, errorType)
    }
    s.span.end()
  }
  let attributes = s.sink.byOperation.get(s.operation)
  if (!attributes) s.sink.byOperation.set(s.operation, (attributes = { ...s.sink.metricBase, [ATTR.dbOperationName]: s.operation }))
  s.sink.duration.record(took / 1000, attributes)
  if (s.timings) {
    s.timings.dbMs += took
    s.timings.queries += 1
  }
}

let subscribed = false

function subscribeOnce(): void {
  if (subscribed) return
  subscribed = true
  for (const name of ['mysql2:query', 'mysql2:execute']) {
    // `error` is published before asyncStart with the same context: asyncStart ends it either way.
    diagnostics.tracingChannel(name).subscribe({ start: onStart, asyncStart: onAnswer, end: () => undefined, asyncEnd: () => undefined, error: () => undefined })
  }
}

type Method = (...args: unknown[]) => unknown
type AppConnection = { threadId: number | null; query: Method; execute: Method }

const kMeasured = Symbol('blog_app.measured')

/**
 * Measures every statement of this connection from now on (called at each pool acquire; wraps a
 * connection once). The wrappers only name the connection while its method runs.
 */
export function measureStatements(conn: AppConnection & { [kMeasured]?: true }, sink: StatementSink): void {
  if (conn[kMeasured]) return
  conn[kMeasured] = true
  subscribeOnce()
  const caller: Caller = { sink, conn }
  for (const method of ['query', 'execute'] as const) {
    const original = conn[method]
    conn[method] = function (this: unknown, ...args: unknown[]) {
      const outer = calling
      calling = caller
      try {
        return original.apply(this, args)
      } finally {
        calling = outer
      }
    }
  }
}

export function statementSink(opts: { database: string; host: string; port: number; duration: Recorder; connectionIds: boolean }): StatementSink {
  const spanAttributes = new Map<string, Attributes>()
  return {
    byOperationSpan(operation) {
      let a = spanAttributes.get(operation)
      if (!a) spanAttributes.set(operation, (a = { ...this.base, [ATTR.dbOperationName]: operation }))
      return a
    },
    base: { [ATTR.dbSystemName]: DB_SYSTEM, [ATTR.dbNamespace]: opts.database, [ATTR.serverAddress]: opts.host, [ATTR.serverPort]: opts.port },
    metricBase: { [ATTR.dbSystemName]: DB_SYSTEM, [ATTR.dbNamespace]: opts.database },
    duration: opts.duration,
    connectionIds: opts.connectionIds,
    byOperation: new Map()
  }
}
