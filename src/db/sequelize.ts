import { performance } from 'node:perf_hooks'
import { Sequelize } from 'sequelize'
import type { DbConfig } from '../config'

type Connection = object

/** The mysql2 connection fields the watchdog reads (`_command`: the command being answered). */
interface WatchedConnection {
  _command?: object | null
  stream: { destroy(err?: Error): void; once(event: 'close', listener: () => void): unknown }
}

/**
 * Gives every statement at most `ms` for its answer (setLimit). A database that stops answering
 * (stalled disk, SIGSTOP, a dead peer without a RST) would otherwise hold the request until TCP
 * gives up (~35 s seen here) and then reset it with no answer. On expiry the socket is destroyed:
 * mysql2 fails the statement (and any queued behind it) through its normal path, so the span ends
 * with the error, the pool drops the connection and the server rolls back whatever it had not
 * committed. mysql2's own `timeout` option would not cover the PREPARE of `execute`.
 *
 * A sweep every tenth of the limit looks at the command each connection is answering: the same
 * one for the whole limit is cut (so between `ms` and `ms` + a tenth). Nothing runs per
 * statement: the earlier design wrapped each statement's callback and armed a timer, and that
 * wrapper alone made every young-generation GC ~10x slower, promoting each request's rows to the
 * old generation (README "Performance"). `_command` is mysql2's own field (3.x), read, not written.
 * Not MySQL's max_execution_time or MariaDB's max_statement_time: the server enforces those, and
 * a stalled server enforces nothing. test/app/internals-canary.test.ts fails if mysql2 changes it.
 */
class StatementWatchdog {
  private readonly seen = new Map<WatchedConnection, { command?: WeakRef<object>; since: number }>()
  private timer: NodeJS.Timeout | undefined
  /** The limit in ms; 0: unbounded, and no sweep runs at all. */
  private ms = 0

  setLimit(ms: number): void {
    this.ms = ms
    if (ms <= 0) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    this.schedule()
  }

  add(conn: WatchedConnection): void {
    this.seen.set(conn, { since: 0 })
    conn.stream.once('close', () => this.seen.delete(conn))
    this.schedule()
  }

  private schedule(): void {
    if (this.timer || this.seen.size === 0 || this.ms <= 0) return
    this.timer = setTimeout(() => this.sweep(), Math.max(10, Math.min(1000, this.ms / 10))).unref()
  }

  private sweep(): void {
    this.timer = undefined
    const ms = this.ms
    const now = performance.now()
    for (const [conn, last] of this.seen) {
      const command = conn._command
      if (!command) continue
      // A weak reference: holding the command itself would keep its rows alive past a GC.
      if (last.command?.deref() !== command) {
        this.seen.set(conn, { command: new WeakRef(command), since: now })
      } else if (now - last.since >= ms) {
        this.seen.delete(conn)
        const err = Object.assign(new Error(`The database did not answer within ${ms} ms (DB_QUERY_TIMEOUT_MS)`), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })
        conn.stream.destroy(err)
      }
    }
    this.schedule()
  }
}

/**
 * Builds the Sequelize instance. Sequelize has no time-based recycling (SQLAlchemy's
 * pool_recycle), so connections older than maxLifetimeMs fail validation on acquire and are
 * replaced; idle ones are evicted after idleMs.
 */
export function createSequelize(db: DbConfig, database: string | null = db.database): Sequelize {
  const watchdog = new StatementWatchdog()
  const bornAt = new WeakMap<Connection, number>()
  const sequelize: Sequelize = new Sequelize({
    dialect: 'mysql',
    host: db.host,
    port: db.port,
    username: db.user,
    password: db.password,
    ...(database ? { database } : {}),
    logging: false,
    benchmark: false,
    timezone: '+00:00',
    define: { freezeTableName: true, timestamps: false, underscored: true },
    dialectOptions: { connectTimeout: db.connectTimeoutMs, charset: 'utf8mb4' },
    pool: {
      max: db.pool.max,
      min: db.pool.min,
      idle: db.pool.idleMs,
      acquire: db.pool.acquireMs,
      evict: 1000,
      // The dialect's own check plus the age; Sequelize offers no public way to extend it (canary:
      // test/app/internals-canary.test.ts).
      validate: (conn: Connection) => {
        const dialectManager = (sequelize.connectionManager as unknown as {
          dialect: { connectionManager: { validate(c: Connection): boolean } }
        }).dialect.connectionManager
        const born = bornAt.get(conn) ?? 0
        return dialectManager.validate(conn) && Date.now() - born < db.pool.maxLifetimeMs
      }
    },
    retry: { max: 1 }
  })
  sequelize.addHook('afterConnect', (conn) => {
    bornAt.set(conn as Connection, Date.now())
    watchdog.add(conn as WatchedConnection)
  })
  watchdogs.set(sequelize, watchdog)
  return sequelize
}

const watchdogs = new WeakMap<Sequelize, StatementWatchdog>()

/**
 * Bounds every statement from now on (0: unbounded). Off while migrations run: an index built on
 * a large table may rightly take minutes.
 */
export function setStatementTimeout(sequelize: Sequelize, ms: number): void {
  watchdogs.get(sequelize)?.setLimit(ms)
}
