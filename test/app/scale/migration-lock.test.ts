import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samplePosts } from '../../../src/db/seeds/sample-posts'
import { migrationLockName } from '../../../src/db/bootstrap'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertBuilt, killAllServers, request, startServer, waitUntilListening, type ServerChild } from '../../kit/server'

// Replicas start together (Compose `deploy.replicas`, a Kubernetes rollout): migrations and the
// seed must run once, under the advisory lock, never twice and never racing.

let env: TestEnv
let children: ServerChild[] = []

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ LOG_LEVEL: 'info' })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

describe('two app processes started at once on a fresh database', () => {
  it('wait for the migration lock, then come up; the schema is migrated and the sample posts loaded exactly once', async () => {
    // The test holds the lock first, so both processes are certainly waiting for it together
    // (left to chance, one usually finishes before the other starts and nothing is proven).
    const lock = migrationLockName(env.database)
    const admin = await mysql.createConnection({ host: env.config.db.host, port: env.config.db.port, user: env.config.db.user, password: env.config.db.password })
    await admin.query(`CREATE DATABASE \`${env.database}\``)
    await admin.end()
    const [got] = await env.query<{ got: number }>('SELECT GET_LOCK(?, 5) AS got', [lock])
    expect(Number(got!.got)).toBe(1)
    children = await Promise.all([startServer(env.env), startServer(env.env)])
    await sleep(2000)
    for (const c of children) {
      expect(c.hasExited(), c.stdout() + c.stderr()).toBe(false)
      expect(await request(c.port, '/health').then((r) => r.status, () => 'refused')).toBe('refused')
    }
    const [tables] = await env.query<{ n: number }>("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = 'blog'", [env.database])
    expect(Number(tables!.n)).toBe(0)
    await env.query('SELECT RELEASE_LOCK(?)', [lock])
    await Promise.all(children.map((c) => waitUntilListening(c)))
    for (const c of children) expect((await request(c.port, '/blogs/')).status).toBe(200)

    const migrations = await env.query<{ name: string }>('SELECT `name` FROM `schema_migrations`')
    expect(migrations.map((m) => m.name)).toEqual(['001-create-blog', '002-blog-thumb', '003-accounts', '004-identity', '005-post-dates-and-images'])
    const seeds = await env.query<{ name: string }>('SELECT `name` FROM `schema_seeds`')
    expect(seeds.map((s) => s.name)).toEqual(['001-sample-posts'])
    const [count] = await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `blog`')
    expect(Number(count!.n)).toBe(samplePosts.length)

    // One of them did the work; the other found nothing left to do.
    const migratedBy = children.filter((c) => c.logs().some((l) => l.msg === 'database migrated'))
    expect(migratedBy).toHaveLength(1)
    const seededBy = children.filter((c) => c.logs().some((l) => l.msg === 'sample posts loaded'))
    expect(seededBy).toHaveLength(1)
    // Neither holds the lock once it serves.
    const [free] = await env.query<{ free: number }>('SELECT IS_FREE_LOCK(?) AS free', [migrationLockName(env.database)])
    expect(Number(free!.free)).toBe(1)
  })
})
