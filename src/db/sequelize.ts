import { Sequelize } from 'sequelize'
import type { DbConfig } from '../config'

type Connection = object

type Callback = (...args: unknown[]) => void
type QueryFn = ((...args: unknown[]) => unknown) & { __original?: QueryFn }
interface MysqlConnection {
  query: QueryFn
  execute: QueryFn
  stream: { destroy(err?: Error): void }
}

/**
 * Gives every statement on `conn` at most `timeoutMs` for its answer. A database that stops
 * answering (stalled disk, SIGSTOP, a dead peer without a RST) would otherwise hold the request
 * until TCP gives up (~35 s seen here) and then reset it with no answer. On expiry the socket is
 * destroyed: mysql2 fails the statement (and any queued behind it) through its normal path, so
 * the span ends with the error, the pool drops the connection and the server rolls back whatever
 * it had not committed. mysql2's own `timeout` option would not cover the PREPARE of `execute`.
 */
function boundStatements(conn: MysqlConnection, limit: { ms: number }): void {
  const bound = (fn: QueryFn): QueryFn => {
    const wrapped: QueryFn = function (this: unknown, ...args: unknown[]) {
      const last = args.length - 1
      const cb = args[last]
      const timeoutMs = limit.ms
      if (typeof cb !== 'function' || timeoutMs <= 0) return fn.apply(this, args)
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`The database did not answer within ${timeoutMs} ms (DB_QUERY_TIMEOUT_MS)`), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })
        conn.stream.destroy(err)
      }, timeoutMs)
      args[last] = function (this: unknown, ...res: unknown[]) {
        clearTimeout(timer)
        return (cb as Callback).apply(this, res)
      }
      return fn.apply(this, args)
    }
    // The telemetry layer calls the uninstrumented original for unsampled requests: bound too.
    if (fn.__original) wrapped.__original = bound(fn.__original)
    return wrapped
  }
  conn.query = bound(conn.query)
  conn.execute = bound(conn.execute)
}

/**
 * Builds the Sequelize instance. Sequelize has no time-based recycling (SQLAlchemy's
 * pool_recycle), so connections older than maxLifetimeMs fail validation on acquire and are
 * replaced; idle ones are evicted after idleMs.
 */
export function createSequelize(db: DbConfig, database: string | null = db.database): Sequelize {
  const limit = { ms: 0 }
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
    boundStatements(conn as MysqlConnection, limit)
  })
  statementLimits.set(sequelize, limit)
  return sequelize
}

const statementLimits = new WeakMap<Sequelize, { ms: number }>()

/**
 * Bounds every statement from now on (0: unbounded). Off while migrations run: an index built on
 * a large table may rightly take minutes.
 */
export function setStatementTimeout(sequelize: Sequelize, ms: number): void {
  const limit = statementLimits.get(sequelize)
  if (limit) limit.ms = ms
}
