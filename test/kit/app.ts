import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import mysql from 'mysql2/promise'
import { afterAll, afterEach, beforeAll } from 'vitest'
import app, { appServerOptions } from '../../src/app'
import { loadConfig, type AppConfig } from '../../src/config'

/** The test server's admin URL (root on the local MariaDB unless TEST_DATABASE_URL says otherwise). */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/'

export interface TestEnv {
  /** Environment variables for a child `node dist/src/server.js` against this database. */
  env: Record<string, string>
  config: AppConfig
  database: string
  uploadDir: string
  /** Runs SQL on this test's database. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  /** Drops the database this helper created and removes the upload dir. */
  cleanup(): Promise<void>
}

/** A fresh database name and upload dir owned by the caller; nothing is created in MySQL yet. */
export async function createTestEnv(extra: Record<string, string> = {}): Promise<TestEnv> {
  const database = `blog_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-uploads-'))
  const base = new URL(ADMIN_URL)
  base.pathname = `/${database}`
  const env: Record<string, string> = {
    DATABASE_URL: base.toString(),
    UPLOAD_DIR: uploadDir,
    LOG_LEVEL: 'silent',
    DB_STARTUP_TIMEOUT_MS: '5000',
    // Tests write far more than 30 posts a minute from one address; test/app/hostile/rate-limit
    // sets it.
    WRITE_RATE_LIMIT: '0',
    ...extra
  }
  const config = loadConfig(env)
  let conn: mysql.Connection | undefined
  const connect = async () =>
    (conn ??= await mysql.createConnection({
      host: config.db.host, port: config.db.port, user: config.db.user, password: config.db.password,
      database, multipleStatements: true
    }))
  return {
    env,
    config,
    database,
    uploadDir,
    async query<T>(sql: string, params: unknown[] = []) {
      const [rows] = await (await connect()).query(sql, params)
      return rows as T[]
    },
    async cleanup() {
      await conn?.end().catch(() => undefined)
      const admin = await mysql.createConnection({ host: config.db.host, port: config.db.port, user: config.db.user, password: config.db.password })
      try {
        await admin.query(`DROP DATABASE IF EXISTS \`${database}\``)
      } finally {
        await admin.end()
      }
      await fs.rm(uploadDir, { recursive: true, force: true })
    }
  }
}

/** Builds the real app (real MariaDB, real upload dir) for `inject` tests. */
export async function buildApp(env: TestEnv): Promise<FastifyInstance> {
  const fastify = Fastify({ ...appServerOptions, logger: false })
  await fastify.register(app, { config: env.config })
  await fastify.ready()
  return fastify
}

/**
 * One database, upload dir and app for a whole test file: built before its tests, closed and
 * dropped after them. `assign` receives them (e.g. `useTestApp((t) => ({ env, app } = t))`).
 */
export function useTestApp(assign: (t: { env: TestEnv; app: FastifyInstance }) => void, extra: Record<string, string> = {}): void {
  let env: TestEnv | undefined
  let built: FastifyInstance | undefined
  beforeAll(async () => {
    env = await createTestEnv(extra)
    built = await buildApp(env)
    assign({ env, app: built })
  })
  afterAll(async () => {
    await built?.close()
    await env?.cleanup()
  })
}

/** Lists stored images (ignores the incoming area). */
export async function storedFiles(uploadDir: string): Promise<string[]> {
  return (await fs.readdir(uploadDir)).filter((n) => !n.startsWith('.')).sort()
}

export async function incomingFiles(uploadDir: string): Promise<string[]> {
  return fs.readdir(path.join(uploadDir, '.incoming')).catch(() => [])
}

/**
 * Databases and apps a test makes for itself (`newEnv`, `newApp`), closed and dropped after each
 * test of the file.
 */
export function useDisposableApps(): {
  newEnv(extra?: Record<string, string>): Promise<TestEnv>
  newApp(env: TestEnv): Promise<FastifyInstance>
  /** Closes an app before the test ends (a restart on the same database). */
  closeApp(app: FastifyInstance): Promise<void>
} {
  const envs: TestEnv[] = []
  const apps: FastifyInstance[] = []
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close()
    for (const env of envs.splice(0)) await env.cleanup()
  })
  return {
    async newEnv(extra = {}) {
      const env = await createTestEnv(extra)
      envs.push(env)
      return env
    },
    async newApp(env) {
      const app = await buildApp(env)
      apps.push(app)
      return app
    },
    async closeApp(app) {
      apps.splice(apps.indexOf(app), 1)
      await app.close()
    }
  }
}

