import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt } from '../../kit/server'

// deploy/mysql/users.sql against the real server: the migrations' user runs the migrations with
// the same CLI as the Kubernetes Job and the Compose `migrate` service; the app's user then serves
// with DB_MIGRATE_ON_START=false and cannot change the schema; the monitor sees status, not rows.
// Users are server-wide: this file makes its own, with unique names, and drops them.

const run = promisify(execFile)
const USERS_SQL = readFileSync(path.join(ROOT, 'deploy', 'mysql', 'users.sql'), 'utf8')
const suffix = randomBytes(3).toString('hex')
const users = { app: `t_app_${suffix}`, migrate: `t_mig_${suffix}`, monitor: `t_mon_${suffix}` }
const passwords = { app: `a-${suffix}'"x`, migrate: `m-${suffix}\\y`, monitor: `o-${suffix}` }

let env: TestEnv
let admin: mysql.Connection

/** users.sql as an administrator runs it: the variables first, then the file, in one session. */
async function runUsersSql(vars: Record<string, string | undefined>): Promise<void> {
  const conn = await mysql.createConnection({ host: env.config.db.host, port: env.config.db.port, user: env.config.db.user, password: env.config.db.password, multipleStatements: true })
  try {
    const set = Object.entries(vars).filter(([, v]) => v !== undefined)
    if (set.length) await conn.query(`SET ${set.map(([k]) => `@${k} = ?`).join(', ')}`, set.map(([, v]) => v))
    await conn.query(USERS_SQL)
  } finally {
    await conn.end()
  }
}

const urlFor = (who: keyof typeof users) => {
  const u = new URL(env.env.DATABASE_URL!)
  u.username = users[who]
  u.password = encodeURIComponent(passwords[who])
  return u.toString()
}
const connectAs = (who: keyof typeof users, database: string | null = env.database) =>
  mysql.createConnection({ host: env.config.db.host, port: env.config.db.port, user: users[who], password: passwords[who], ...(database ? { database } : {}) })

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
  admin = await mysql.createConnection({ host: env.config.db.host, port: env.config.db.port, user: env.config.db.user, password: env.config.db.password })
  await runUsersSql({
    blog_database: env.database, blog_app_user: users.app, blog_migrate_user: users.migrate, blog_monitor_user: users.monitor,
    blog_app_password: passwords.app, blog_migrate_password: passwords.migrate, blog_monitor_password: passwords.monitor
  })
})
afterAll(async () => {
  for (const u of Object.values(users)) await admin?.query(`DROP USER IF EXISTS '${u}'@'%'`)
  await admin?.end()
  await env?.cleanup()
})

describe('deploy/mysql/users.sql on a real server', () => {
  it('lets the migrations user create the database and run every migration with `db.js migrate`', async () => {
    await run(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'db.js'), 'migrate'], {
      cwd: ROOT, env: { ...process.env, DATABASE_URL: urlFor('migrate'), LOG_LEVEL: 'silent', DB_STARTUP_TIMEOUT_MS: '5000' }
    })
    const migrations = await env.query<{ name: string }>('SELECT `name` FROM `schema_migrations` ORDER BY `name`')
    expect(migrations.map((m) => m.name)).toEqual(['001-create-blog', '002-blog-thumb', '003-accounts'])
  })

  it('lets the app user read and write rows, and refuses it any change to the schema', async () => {
    const conn = await connectAs('app')
    try {
      await conn.query("INSERT INTO `blog` (`title`, `author`, `content`) VALUES ('t', 'a', 'c')")
      await conn.query("UPDATE `blog` SET `title` = 't2' WHERE `title` = 't'")
      const [rows] = await conn.query("SELECT COUNT(*) AS n FROM `blog` WHERE `title` = 't2'")
      expect(Number((rows as { n: number }[])[0]!.n)).toBe(1)
      await conn.query("DELETE FROM `blog` WHERE `title` = 't2'")
      for (const ddl of ['CREATE TABLE `x` (`id` INT)', 'ALTER TABLE `blog` ADD COLUMN `x` INT', 'DROP TABLE `blog`', 'CREATE INDEX `ix` ON `blog` (`title`)', 'TRUNCATE TABLE `blog`']) {
        await expect(conn.query(ddl), ddl).rejects.toMatchObject({ code: expect.stringMatching(/^ER_(TABLEACCESS|DBACCESS)_DENIED_ERROR$/) })
      }
      // The performance_schema tables DB_SERVER_TIMINGS reads, and nothing else there.
      await conn.query('SELECT COUNT(*) FROM performance_schema.setup_consumers')
      await expect(conn.query('SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest')).rejects.toMatchObject({ code: 'ER_TABLEACCESS_DENIED_ERROR' })
    } finally {
      await conn.end()
    }
  })

  it('serves the blog as the app user with DB_MIGRATE_ON_START=false and DB_SEED_ON_START=false', async () => {
    const appEnv = await createTestEnv({ DATABASE_URL: urlFor('app'), DB_MIGRATE_ON_START: 'false', DB_SEED_ON_START: 'false' })
    const app = await buildApp(appEnv)
    try {
      const res = await app.inject({ method: 'GET', url: '/blogs/' })
      expect(res.statusCode).toBe(200)
    } finally {
      await app.close()
      // Not appEnv.cleanup(): it would connect as the app's user. The database is this file's.
      rmSync(appEnv.uploadDir, { recursive: true, force: true })
    }
  })

  it('fails to start the app as the app user when asked to migrate: it may not change the schema', async () => {
    const fresh = `${env.database}_x`
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${fresh}\`.* TO '${users.app}'@'%'`)
    await admin.query(`CREATE DATABASE \`${fresh}\``)
    try {
      const u = new URL(urlFor('app'))
      u.pathname = `/${fresh}`
      const appEnv = await createTestEnv({ DATABASE_URL: u.toString(), DB_MIGRATE_ON_START: 'true' })
      await expect(buildApp(appEnv)).rejects.toThrow(/denied/i)
      rmSync(appEnv.uploadDir, { recursive: true, force: true })
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${fresh}\``)
      await admin.query(`REVOKE ALL PRIVILEGES ON \`${fresh}\`.* FROM '${users.app}'@'%'`)
    }
  })

  it('lets the monitor read server status and performance_schema, and no rows', async () => {
    const conn = await connectAs('monitor', null)
    try {
      const [status] = await conn.query("SHOW GLOBAL STATUS LIKE 'Questions'")
      expect((status as unknown[]).length).toBe(1)
      await conn.query('SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest')
      await expect(conn.query(`SELECT * FROM \`${env.database}\`.\`blog\``)).rejects.toMatchObject({ code: expect.stringMatching(/DENIED/) })
    } finally {
      await conn.end()
    }
  })

  it('puts the grants back to exactly these when run again (a grant added by hand is revoked)', async () => {
    await admin.query(`GRANT CREATE ON \`${env.database}\`.* TO '${users.app}'@'%'`)
    await runUsersSql({
      blog_database: env.database, blog_app_user: users.app, blog_migrate_user: users.migrate, blog_monitor_user: users.monitor,
      blog_app_password: passwords.app, blog_migrate_password: passwords.migrate
    })
    const [grants] = await admin.query(`SHOW GRANTS FOR '${users.app}'@'%'`)
    const text = (grants as Record<string, string>[]).map((g) => Object.values(g)[0]).join('\n')
    expect(text).toContain(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${env.database}\`.*`)
    expect(text).not.toMatch(/\bCREATE\b/)
  })

  it('refuses to run without the passwords, and creates no user', async () => {
    const nobody = `t_none_${suffix}`
    await expect(runUsersSql({ blog_database: env.database, blog_app_user: nobody, blog_migrate_user: nobody, blog_monitor_user: nobody }))
      .rejects.toThrow(/Set @blog_app_password before running deploy\/mysql\/users.sql/)
    const [found] = await admin.query('SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?', [nobody])
    expect(Number((found as { n: number }[])[0]!.n)).toBe(0)
  })
})
