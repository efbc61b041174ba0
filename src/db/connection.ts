import type mysql from 'mysql2/promise'
import type { DbConfig } from '../config'

/**
 * A connection of its own, outside Sequelize's pool (a migration lock, the load-shedding probe,
 * the performance_schema reader), with the pool's connect timeout and charset. `database`: use
 * DbConfig's database; otherwise none is selected (the probe and the reader need none).
 *
 * mysql2 is loaded on the first call, not at import: the SDK bootstrap imports this module
 * (through src/telemetry/db-server.ts) before the instrumentation that patches mysql2 is enabled.
 */
export async function openConnection(db: DbConfig, { database = false }: { database?: boolean } = {}): Promise<mysql.Connection> {
  const { createConnection } = await import('mysql2/promise')
  return createConnection({
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    ...(database ? { database: db.database } : {}),
    connectTimeout: db.connectTimeoutMs,
    charset: 'utf8mb4'
  })
}
