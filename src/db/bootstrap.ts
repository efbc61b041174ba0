import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type mysql from 'mysql2/promise'
import { QueryTypes, type Sequelize } from 'sequelize'
import type { DbConfig } from '../config'
import { openConnection } from './connection'
import { createSequelize } from './sequelize'
import { MIGRATIONS, MIGRATIONS_TABLE, SEED_NAMES, SEEDS_TABLE } from './migration-list'

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError'
}

/**
 * Waits for the server to accept connections, with exponential backoff, for at most
 * startupTimeoutMs; then creates the database when it is missing (if the user may).
 */
export async function prepareDatabase(db: DbConfig, log: FastifyBaseLogger): Promise<void> {
  const admin = createSequelize(db, null)
  const deadline = Date.now() + db.startupTimeoutMs
  try {
    for (let attempt = 1, delay = 250; ; attempt++, delay = Math.min(delay * 2, 5000)) {
      try {
        await admin.authenticate({ logging: false })
        break
      } catch (err) {
        const left = deadline - Date.now()
        const reason = (err as Error).message
        if (left <= 0) {
          throw new DatabaseUnavailableError(
            `Database at ${db.host}:${db.port} unreachable after ${attempt} attempts over ${db.startupTimeoutMs} ms (DB_STARTUP_TIMEOUT_MS): ${reason}`
          )
        }
        log.warn({ host: db.host, port: db.port, attempt, retryInMs: Math.min(delay, left), reason }, 'database not reachable yet, retrying')
        await sleep(Math.min(delay, left))
      }
    }
    try {
      await admin.query(
        `CREATE DATABASE IF NOT EXISTS \`${db.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`
      )
    } catch (err) {
      // Without CREATE privilege the database must already exist; authenticate() below says so if not.
      log.info({ database: db.database, reason: (err as Error).message }, 'could not create database (continuing)')
    }
  } finally {
    await admin.close()
  }
}

/**
 * Whether any of `names` is not yet recorded in `table` (all are when it does not exist). umzug
 * imports a command-line framework it never uses here (~180 modules, 6-14 MB of an idle
 * process, measured): a start with nothing to migrate or seed does not load it.
 */
async function anyPending(sequelize: Sequelize, table: string, names: readonly string[]): Promise<boolean> {
  try {
    const rows = await sequelize.query<{ name: string }>(`SELECT \`name\` FROM \`${table}\``, { type: QueryTypes.SELECT, logging: false })
    const done = new Set(rows.map((r) => r.name))
    return names.some((n) => !done.has(n))
  } catch (err) {
    if ((err as { parent?: { code?: string } }).parent?.code === 'ER_NO_SUCH_TABLE') return true
    throw err
  }
}

export async function migrate(sequelize: Sequelize, log: FastifyBaseLogger): Promise<void> {
  if (!(await anyPending(sequelize, MIGRATIONS_TABLE, MIGRATIONS.map((m) => m.name)))) return
  const { createMigrator } = await import('./migrator.js')
  const done = await createMigrator(sequelize).up()
  if (done.length > 0) log.info({ migrations: done.map((m) => m.name) }, 'database migrated')
}

export async function seed(sequelize: Sequelize, log: FastifyBaseLogger): Promise<void> {
  if (!(await anyPending(sequelize, SEEDS_TABLE, SEED_NAMES))) return
  const { createSeeder } = await import('./migrator.js')
  const done = await createSeeder(sequelize).up()
  if (done.length > 0) log.info({ seeds: done.map((m) => m.name) }, 'sample posts loaded')
}

/** The server-wide name of a database's migration lock (GET_LOCK names are at most 64 characters). */
export function migrationLockName(database: string): string {
  return `blog_app.migrate.${database}`.slice(0, 64)
}

/**
 * How long an instance waits for another's migrations: as long as a start-up may take, and never
 * less than a minute (a long migration must not make the other replicas give up).
 */
export const migrationLockWaitMs = (db: Pick<DbConfig, 'startupTimeoutMs'>): number => Math.max(60, Math.ceil(db.startupTimeoutMs / 1000)) * 1000

/**
 * Runs `work` (migrations, seeds) holding a MySQL advisory lock on the database, so replicas
 * that start together take turns: the first migrates, the others find nothing left to do.
 * The lock lives on a connection of its own and goes with it, so a replica that dies while
 * migrating never leaves it held.
 */
export async function withMigrationLock<T>(db: DbConfig, log: FastifyBaseLogger, work: () => Promise<T>): Promise<T> {
  const conn = await openConnection(db, { database: true })
  const name = migrationLockName(db.database)
  const waitS = migrationLockWaitMs(db) / 1000
  try {
    const started = Date.now()
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [name, waitS])
    if (rows[0]?.got !== 1) throw new DatabaseUnavailableError(`could not take the migration lock ${name} within ${waitS} s (another instance is still migrating)`)
    const waitedMs = Date.now() - started
    if (waitedMs > 100) log.info({ lock: name, waitedMs }, 'waited for another instance to migrate')
    try {
      return await work()
    } finally {
      await conn.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => undefined)
    }
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}
