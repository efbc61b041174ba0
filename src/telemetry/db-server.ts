import { performance } from 'node:perf_hooks'
import { context, createContextKey, ROOT_CONTEXT, type Context } from '@opentelemetry/api'
import { suppressTracing } from '@opentelemetry/core'
import type mysql from 'mysql2/promise'
import type { DbConfig } from '../config'
import { openConnection } from '../db/connection'

/** Where a mysql2 span's connection is named: set around each statement (./db.ts). */
export const CONNECTION_ID = createContextKey('blog_app.db.connection_id')

export function connectionIdIn(ctx: Context): number | undefined {
  return ctx.getValue(CONNECTION_ID) as number | undefined
}

/** What the server recorded for the statements of one span (sums over them). */
export interface ServerTiming {
  serverMs: number
  lockMs: number
  rowsExamined: number
  rowsSent: number
  statements: number
}

/** One traced statement, as the span processor knows it. */
export interface TimedSpan {
  connectionId: number
  /** Wall-clock milliseconds (performance.timeOrigin + performance.now()). */
  start: number
  end: number
}

interface StatementEvent {
  conn: number
  /** Wall-clock milliseconds, mapped from the server's timer. */
  start: number
  serverMs: number
  lockMs: number
  rowsExamined: number
  rowsSent: number
}

const untraced = <T>(work: () => Promise<T>): Promise<T> => context.with(suppressTracing(ROOT_CONTEXT), work)

export type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }

const PS_PER_MS = 1e9
const now = () => performance.timeOrigin + performance.now()
/** Keep the clock offset from the tightest round trip of the last this many polls. */
const CLOCK_SAMPLES = 20
/** At most this many statement events per poll (the history holds 10,000 by default). */
const MAX_EVENTS = 20_000

/**
 * Reads the database's own timing of each statement from performance_schema, off the request
 * path: one connection of its own polls the statement history every `pollMs`, for the
 * connections that have spans waiting. Events are joined to spans by connection id
 * (threads.PROCESSLIST_ID = mysql2's connection.threadId) and time: the server's timer is mapped
 * to this process's clock by a marker statement, keeping the sample with the shortest round trip
 * (as NTP does). A span gets the sum over the events that started inside it, or nothing.
 */
export class DbServerTimings {
  private conn: mysql.Connection | null = null
  private table: 'events_statements_history_long' | 'events_statements_history' | null = null
  /** wall ms = offset + server timer ps / 1e9 */
  private offset = NaN
  private uncertainty = Infinity
  private clock: { offset: number; rtt: number }[] = []
  private watermark = 0
  private markers = 0
  private stopped = false
  private active = false

  constructor(readonly pollMs: number) {}

  /** True once start() found a usable statement history. */
  get enabled(): boolean {
    return this.active && !this.stopped
  }

  /**
   * Detects performance_schema and the statement history on the app's database and says once,
   * in the log, whether server timings are on and why not if they are off.
   */
  async start(db: DbConfig, log: Logger): Promise<boolean> {
    try {
      this.conn = await this.connect(db)
      const [[flag]] = (await this.query('SELECT @@performance_schema AS ps')) as unknown as [{ ps: number }[]]
      if (Number(flag?.ps) !== 1) {
        log.info({ dbServerTimings: 'off', reason: 'performance_schema is off (MariaDB default)' },
          'db server timings off: start the database with --performance-schema=ON and the statement history consumer (README "Truthful timings")')
        return this.close()
      }
      const [consumers] = (await this.query(
        "SELECT NAME AS name FROM performance_schema.setup_consumers WHERE ENABLED = 'YES' AND NAME IN ('events_statements_current', 'events_statements_history_long', 'events_statements_history')"
      )) as unknown as [{ name: string }[]]
      const names = new Set(consumers.map((c) => c.name))
      if (!names.has('events_statements_current')) {
        // The history consumers are fed from the current one: without it they stay empty.
        log.info({ dbServerTimings: 'off', reason: 'the events_statements_current consumer is off' },
          'db server timings off: enable events_statements_current, which the statement history consumers record from (README "Truthful timings")')
        return this.close()
      }
      this.table = names.has('events_statements_history_long') ? 'events_statements_history_long' : names.has('events_statements_history') ? 'events_statements_history' : null
      if (!this.table) {
        log.info({ dbServerTimings: 'off', reason: 'no statement history consumer enabled' },
          'db server timings off: enable the events_statements_history(_long) consumer (README "Truthful timings")')
        return this.close()
      }
      if (!(await this.calibrate())) {
        log.info({ dbServerTimings: 'off', reason: 'the statement history did not record a statement of this connection' },
          'db server timings off: the statement history skips this user or its statements (performance_schema.setup_actors, setup_instruments statement/%)')
        return this.close()
      }
      this.active = true
      log.info({ dbServerTimings: 'on', table: `performance_schema.${this.table}`, pollMs: this.pollMs }, 'db server timings on')
      return true
    } catch (err) {
      log.warn({ dbServerTimings: 'off', reason: (err as Error).message }, 'db server timings off: performance_schema could not be read')
      return this.close()
    }
  }

  private connect(db: DbConfig): Promise<mysql.Connection> {
    // openConnection loads mysql2 lazily: this module is part of the SDK bootstrap, which must
    // not load mysql2 before the instrumentation that patches it.
    return untraced(() => openConnection(db))
  }

  /** A statement of the reader's own: never traced (a poll may start inside a request's context). */
  private query(sql: string, values?: unknown[]): Promise<unknown> {
    return untraced(() => this.conn!.query(sql, values))
  }

  /**
   * One marker statement: its start on the server's timer is this process's clock at the middle
   * of the round trip, within half the round trip. Not its end: the server closes a statement's
   * event after sending the result, and that tail (over 1 ms seen on a busy machine) lies
   * outside the round trip. Each marker's text is unique, so an older marker still in the
   * history (the consumer was turned off, say) is never paired with this round trip: that
   * shifted every old event by the time between the two and joined them to new spans.
   * Returns false when the server did not record this marker: its history is not recording.
   */
  private async calibrate(): Promise<boolean> {
    const marker = `SELECT 'blog_app clock ${++this.markers}'`
    const t0 = now()
    await this.query(marker)
    const t1 = now()
    const [rows] = (await this.query(
      `SELECT h.TIMER_START AS s FROM performance_schema.${this.table} h JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID ` +
        'WHERE t.PROCESSLIST_ID = CONNECTION_ID() AND h.SQL_TEXT = ? LIMIT 1',
      [marker]
    )) as unknown as [{ s: number | string }[]]
    const found = rows[0]
    if (!found) return false
    this.clock.push({ offset: (t0 + t1) / 2 - Number(found.s) / PS_PER_MS, rtt: t1 - t0 })
    if (this.clock.length > CLOCK_SAMPLES) this.clock.shift()
    const best = this.clock.reduce((a, b) => (b.rtt < a.rtt ? b : a))
    this.offset = best.offset
    this.uncertainty = best.rtt / 2
    return true
  }

  /**
   * Reads the statements of these connections that ended since the last poll and gives each
   * span the sum over the events inside it. Spans with no event inside get nothing, and so do
   * all of them when the server did not record this poll's marker (it would not have recorded
   * their statements either, and what it still holds is older).
   */
  async resolve(spans: TimedSpan[]): Promise<Map<TimedSpan, ServerTiming>> {
    const out = new Map<TimedSpan, ServerTiming>()
    if (!this.enabled || spans.length === 0) return out
    if (!(await this.calibrate())) return out
    const ids = [...new Set(spans.map((s) => s.connectionId))]
    const [rows] = (await this.query(
      'SELECT t.PROCESSLIST_ID AS conn, h.TIMER_START AS s, h.TIMER_WAIT AS w, h.LOCK_TIME AS l, ' +
        `h.ROWS_EXAMINED AS x, h.ROWS_SENT AS r FROM performance_schema.${this.table} h ` +
        'JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID ' +
        `WHERE t.PROCESSLIST_ID IN (?) AND h.TIMER_END > ? AND h.TIMER_END IS NOT NULL LIMIT ${MAX_EVENTS}`,
      [ids, this.watermark]
    )) as unknown as [{ conn: number; s: string | number; w: string | number; l: string | number; x: number; r: number }[]]
    const events: StatementEvent[] = rows.map((r) => ({
      conn: Number(r.conn),
      start: this.offset + Number(r.s) / PS_PER_MS,
      serverMs: Number(r.w) / PS_PER_MS,
      lockMs: Number(r.l) / PS_PER_MS,
      rowsExamined: Number(r.x),
      rowsSent: Number(r.r)
    }))
    // Events older than every span now waiting can never match again: read past them next time.
    const oldest = Math.min(...spans.map((s) => s.start)) - 1000
    const floor = (oldest - this.offset) * PS_PER_MS
    if (Number.isFinite(floor) && floor > this.watermark) this.watermark = Math.floor(floor)

    const slack = Math.min(this.uncertainty, 1) + 0.05
    const byConn = new Map<number, TimedSpan[]>()
    for (const s of spans) {
      const list = byConn.get(s.connectionId)
      if (list) list.push(s)
      else byConn.set(s.connectionId, [s])
    }
    for (const ev of events) {
      // The span of this connection during which the statement started: the server starts it
      // after the client sent it and before the client has the result (its end may come later,
      // see calibrate). Within the clock's uncertainty, the span nearest to that start.
      let best: TimedSpan | undefined
      let bestDistance = slack
      for (const s of byConn.get(ev.conn) ?? []) {
        const distance = ev.start < s.start ? s.start - ev.start : ev.start > s.end ? ev.start - s.end : 0
        if (distance <= bestDistance) {
          best = s
          bestDistance = distance
        }
      }
      if (!best) continue
      const t = out.get(best) ?? { serverMs: 0, lockMs: 0, rowsExamined: 0, rowsSent: 0, statements: 0 }
      t.serverMs += ev.serverMs
      t.lockMs += ev.lockMs
      t.rowsExamined += ev.rowsExamined
      t.rowsSent += ev.rowsSent
      t.statements++
      out.set(best, t)
    }
    return out
  }

  async close(): Promise<false> {
    this.stopped = true
    const conn = this.conn
    this.conn = null
    await conn?.end().catch(() => conn.destroy())
    return false
  }
}
