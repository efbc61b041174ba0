import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import app from '../../../src/app'
import type { AppConfig } from '../../../src/config'
import { createTestEnv, storedFiles, incomingFiles, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { OtlpReceiver } from '../../kit/otlp-receiver'
import { assertBuilt, killAllServers, request, startListening } from '../../kit/server'
import { countRows, unique } from '../../kit/posts'
import { startTcpProxy, type TcpProxy } from '../../kit/tcp-proxy'
import { PNG_1x1 } from '../../fixtures/images'

// Load shedding through @fastify/under-pressure: a lagging event loop or a database known to be
// down gives a fast 503 through the app's error handler (page or JSON, Retry-After,
// X-Process-Time), while /health keeps answering.

let env: TestEnv
let proxy: TcpProxy
const apps: FastifyInstance[] = []

beforeAll(async () => {
  env = await createTestEnv()
  proxy = await startTcpProxy({ host: env.config.db.host, port: env.config.db.port })
})
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close()
  await proxy.up()
})
afterAll(async () => {
  await proxy?.close()
  await env?.cleanup()
})

async function build(overrides: { load?: Partial<AppConfig['load']>; db?: Partial<AppConfig['db']> }): Promise<FastifyInstance> {
  const config: AppConfig = {
    ...env.config,
    load: { ...env.config.load, ...overrides.load },
    db: { ...env.config.db, ...overrides.db, pool: { ...env.config.db.pool, ...overrides.db?.pool } }
  }
  const fastify = Fastify({ logger: false })
  apps.push(fastify)
  await fastify.register(app, { config })
  await fastify.ready()
  return fastify
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Keeps the event loop busy, as a CPU-heavy request would. */
function block(ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // spin
  }
}

function expect503Page(res: { statusCode: number; headers: Record<string, unknown>; body: string }, message: RegExp): void {
  expect(res.statusCode, res.body).toBe(503)
  expect(res.headers['retry-after']).toBe('5')
  expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{2}ms$/)
  expect(res.headers['content-type']).toMatch(/^text\/html/)
  expect(res.headers['content-security-policy']).toContain("default-src 'self'")
  expect(res.body).toContain('<p class="status">503</p>')
  expect(res.body).toMatch(message)
  expect(res.body).not.toMatch(/\n\s+at |Error:|FST_/)
}

describe('event loop overload', () => {
  it('answers 503 pages with Retry-After while the loop lags, keeps /health at 200, and recovers by itself', async () => {
    const fastify = await build({ load: { maxEventLoopDelayMs: 100, sampleIntervalMs: 200, dbHealthCheckIntervalMs: 0 } })
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)

    block(1500)
    await waitFor('pressure', () => fastify.isUnderPressure())
    const [page, json, asset, health] = await Promise.all([
      fastify.inject({ url: '/blogs/' }),
      fastify.inject({ url: '/blogs/', headers: { accept: 'application/json' } }),
      fastify.inject({ url: '/assets/style.css' }),
      fastify.inject({ url: '/health' })
    ])
    expect503Page(page, /too busy/)
    expect(json.statusCode).toBe(503)
    expect(json.json()).toEqual({ code: 'OVERLOADED', message: expect.stringMatching(/too busy/) })
    expect(json.headers['retry-after']).toBe('5')
    expect(asset.statusCode).toBe(503)
    expect(health.statusCode).toBe(200)

    await waitFor('recovery', () => !fastify.isUnderPressure())
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)
  })

  it('sheds by event-loop utilization when that threshold is set', async () => {
    const fastify = await build({ load: { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0.9, sampleIntervalMs: 300, dbHealthCheckIntervalMs: 0 } })
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)
    block(700)
    await waitFor('pressure', () => fastify.isUnderPressure())
    expect503Page(await fastify.inject({ url: '/blogs/' }), /too busy/)
    await waitFor('recovery', () => !fastify.isUnderPressure())
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)
  })

  it('does not shed an idle app with the default thresholds', async () => {
    const fastify = await build({})
    expect(env.config.load).toEqual({ maxEventLoopDelayMs: 500, maxEventLoopUtilization: 0, sampleIntervalMs: 1000, dbHealthCheckIntervalMs: 2000 })
    await sleep(1100)
    expect(fastify.isUnderPressure()).toBe(false)
    expect(fastify.memoryUsage().eventLoopDelay).toBeLessThan(100)
  })
})

describe('database health check', () => {
  it('while the database is unreachable: database pages are 503 at once, /health and assets 200, /ready 503; then recovers', async () => {
    const fastify = await build({ db: { port: proxy.port }, load: { dbHealthCheckIntervalMs: 100 } })
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)
    const rowsBefore = await countRows(env)

    await proxy.down()
    await waitFor('the health check to fail', () => fastify.isUnderPressure())

    const t0 = performance.now()
    const page = await fastify.inject({ url: '/blogs/' })
    const took = performance.now() - t0
    expect503Page(page, /database is not answering/)
    // Shed before any query: no pool wait, no connect attempt.
    expect(took).toBeLessThan(200)
    expect(page.headers['server-timing']).toMatch(/db;dur=0\.00;desc="0 queries"/)

    const body = await multipart(
      { title: unique('Shed'), content: 'Never stored.' },
      { image_file: { data: PNG_1x1, filename: 'a.png', type: 'image/png' } }
    )
    expect503Page(await fastify.inject({ method: 'POST', url: '/blogs/new', ...body }), /database is not answering/)
    const del = await fastify.inject({ method: 'DELETE', url: '/blogs/delete/1' })
    expect(del.statusCode).toBe(503)
    expect(del.json()).toMatchObject({ code: 'DB_UNAVAILABLE' })

    expect((await fastify.inject({ url: '/health' })).statusCode).toBe(200)
    expect((await fastify.inject({ url: '/assets/style.css' })).statusCode).toBe(200)
    const ready = await fastify.inject({ url: '/ready' })
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toMatchObject({ status: 'unavailable' })

    await proxy.up()
    await waitFor('the health check to pass', () => !fastify.isUnderPressure())
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200)
    expect((await fastify.inject({ url: '/ready' })).statusCode).toBe(200)
    expect(await countRows(env)).toBe(rowsBefore)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('uses one connection of its own, outside the pool: a saturated pool is not an outage', async () => {
    const fastify = await build({ db: { port: proxy.port, pool: { max: 1, acquireMs: 200 } as AppConfig['db']['pool'] }, load: { dbHealthCheckIntervalMs: 50 } })
    expect((await fastify.inject({ url: '/blogs/' })).statusCode).toBe(200) // the one pooled connection is open
    proxy.latencyMs = 50
    try {
      const results = await Promise.all(Array.from({ length: 6 }, () => fastify.inject({ url: '/blogs/' })))
      const statuses = results.map((r) => r.statusCode).sort()
      // The pool (1 connection, 200 ms acquire) serves some and refuses the rest with 503 ...
      expect(statuses).toContain(200)
      expect(statuses).toContain(503)
      // ... while the probe, on its own connection, keeps finding the database.
      expect(fastify.isUnderPressure()).toBe(false)
    } finally {
      proxy.latencyMs = 0
    }
  })
})

describe('the database probe and telemetry', () => {
  it('pings every 100 ms without making a span, while a page still makes its own', async () => {
    assertBuilt()
    const receiver = await OtlpReceiver.start()
    try {
      const child = await startListening({ ...env.env, ...receiver.env(), DB_HEALTH_CHECK_INTERVAL_MS: '100' }, { telemetry: true })
      const statements = async () => Number((await env.query<{ n: string }>("SELECT VARIABLE_VALUE AS n FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_SELECT'"))[0]!.n)
      // Start-up (migrations, seed) makes spans of its own: let them arrive, then start counting.
      await sleep(1000)
      receiver.reset()
      const selectsBefore = await statements()
      await sleep(1500)
      // The probe did run (the shared server counts its SELECTs) ...
      expect((await statements()) - selectsBefore).toBeGreaterThanOrEqual(5)
      await sleep(500)
      // ... and exported nothing.
      expect(receiver.spans.map((sp) => sp.name)).toEqual([])
      expect((await request(child.port, '/blogs/')).status).toBe(200)
      await waitFor('the page\'s spans', () => receiver.spans.some((sp) => sp.name === 'GET /blogs/'), 5000)
      expect(receiver.spans.filter((sp) => sp.parentSpanId === undefined).map((sp) => sp.name)).toEqual(['GET /blogs/'])
    } finally {
      await killAllServers()
      await receiver.close()
    }
  })
})
