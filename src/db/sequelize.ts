import { Sequelize } from 'sequelize'
import type { DbConfig } from '../config'

type Connection = object

/**
 * Builds the Sequelize instance. Sequelize has no time-based recycling (SQLAlchemy's
 * pool_recycle), so connections older than maxLifetimeMs fail validation on acquire and are
 * replaced; idle ones are evicted after idleMs.
 */
export function createSequelize(db: DbConfig, database: string | null = db.database): Sequelize {
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
  })
  return sequelize
}
