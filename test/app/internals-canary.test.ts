import http, { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import multipart from '@fastify/multipart'
import underPressure from '@fastify/under-pressure'
import Fastify from 'fastify'
import type { Sequelize } from 'sequelize'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSequelize, setStatementTimeout } from '../../src/db/sequelize'
import { createTestEnv, type TestEnv } from '../kit/app'

// Canaries: the app reads or patches a few dependency internals where no public hook does the
// job (the comment at each use says why). A dependency upgrade that removes or changes
// one fails here, naming the dependency and the file to revisit, instead of silently switching a
// safeguard off. One describe per internal; keep each next to the comment naming where it is used.

const revisit = (dependency: string, file: string, what: string) =>
  `${dependency} changed: ${what}. Revisit ${file} (it relies on this) before upgrading.`

// --- mysql2 Connection._command ---------------------------------------------------------------
// Used by: src/db/sequelize.ts (StatementWatchdog: a statement whose `_command` stays the same
// object for DB_QUERY_TIMEOUT_MS has its socket destroyed). Why not a public hook: MySQL's
// max_execution_time (SELECT only; MariaDB has max_statement_time instead) and mysql2's per-query
// `timeout` are enforced by a server or a per-statement timer; neither cuts a stalled server
// (SIGSTOP, stalled disk, dead peer) without per-statement cost, and mysql2's tracing channels
// (mysql2:query) name no connection and wrap every statement's callback.
describe('mysql2 Connection._command (src/db/sequelize.ts, the statement watchdog)', () => {
  const WATCHDOG = 'src/db/sequelize.ts (StatementWatchdog)'
  type Watched = { _command?: unknown; stream?: { destroy?: unknown } }
  let env: TestEnv
  let sequelize: Sequelize
  const connections: Watched[] = []

  beforeAll(async () => {
    env = await createTestEnv()
    // No database selected: only the server is needed.
    sequelize = createSequelize(env.config.db, null)
    sequelize.addHook('afterConnect', (conn) => {
      connections.push(conn as Watched)
    })
    // Sequelize's first use reads the server version on a connection of its own, then closes it.
    await sequelize.query('SELECT 1')
  })

  afterAll(async () => {
    await sequelize?.close()
    await env?.cleanup()
  })

  it('holds the same command object while a statement runs, and none once it is answered', async () => {
    const conn = connections.at(-1)
    const running = sequelize.query('SELECT SLEEP(0.6)')
    let first: unknown
    for (let i = 0; i < 200 && !first; i++) {
      await sleep(10)
      first = conn?._command
    }
    await sleep(200)
    const later = conn?._command
    await running
    expect(conn, 'Sequelize afterConnect no longer passes the mysql2 connection').toBeDefined()
    expect(typeof conn!.stream?.destroy, revisit('mysql2', WATCHDOG, 'Connection.stream.destroy() is gone')).toBe('function')
    expect(first, revisit('mysql2', WATCHDOG, 'Connection._command is not set while a statement runs')).toBeTypeOf('object')
    expect(later, revisit('mysql2', WATCHDOG, 'Connection._command changes during one statement')).toBe(first)
    expect(conn!._command ?? null, revisit('mysql2', WATCHDOG, 'Connection._command stays set after the answer (idle connections would be cut)')).toBeNull()
  })

  it('fails a statement through mysql2 and Sequelize when the watchdog destroys its socket', async () => {
    setStatementTimeout(sequelize, 300)
    const started = performance.now()
    try {
      const err = await sequelize.query('SELECT SLEEP(5)').then(() => null, (e: Error) => e)
      expect(err?.message, revisit('mysql2', WATCHDOG, 'a statement outliving the limit was not failed with the watchdog\'s error')).toMatch(/did not answer within 300 ms \(DB_QUERY_TIMEOUT_MS\)/)
      expect(performance.now() - started).toBeLessThan(3000)
    } finally {
      setStatementTimeout(sequelize, 0)
    }
    // The pool replaced the destroyed connection: the next statement runs.
    await expect(sequelize.query('SELECT 1')).resolves.toBeDefined()
  })
})

// --- Sequelize's dialect connection manager ------------------------------------------------------
// Used by: src/db/sequelize.ts (pool.validate calls the dialect's own validate, then adds the
// DB_POOL_MAX_LIFETIME_MS age check; Sequelize has no public way to extend its validation).
describe("Sequelize connectionManager.dialect.connectionManager.validate (src/db/sequelize.ts, pool recycling)", () => {
  it('is the dialect validator, true for a live connection', async () => {
    const env = await createTestEnv()
    const sequelize = createSequelize(env.config.db, null)
    let conn: object | undefined
    sequelize.addHook('afterConnect', (c) => {
      conn = c as object
    })
    try {
      await sequelize.query('SELECT 1')
      const manager = (sequelize.connectionManager as unknown as { dialect?: { connectionManager?: { validate?: unknown } } }).dialect?.connectionManager
      const what = 'connectionManager.dialect.connectionManager.validate is not a function'
      expect(typeof manager?.validate, revisit('sequelize', 'src/db/sequelize.ts (pool.validate)', what)).toBe('function')
      expect((manager!.validate as (c: object) => boolean)(conn!), revisit('sequelize', 'src/db/sequelize.ts (pool.validate)', 'the dialect validator rejects a live connection')).toBe(true)
    } finally {
      await sequelize.close()
      await env.cleanup()
    }
  })
})

// --- request.raw.pipe --------------------------------------------------------------------------
// Used by: src/plugins/request-guard.ts (capBody wraps a chunked request's `raw.pipe` to count
// the bytes @fastify/multipart feeds busboy, and fails busboy past the cap). Why not a public
// hook: @fastify/multipart ignores the payload a preParsing hook may replace and reads
// request.raw itself, and busboy has no limit on a whole body.
describe('IncomingMessage.pipe as @fastify/multipart reads it (src/plugins/request-guard.ts, capBody)', () => {
  const GUARD = 'src/plugins/request-guard.ts (capBody)'

  it('is a method of IncomingMessage that an instance can shadow', () => {
    expect(typeof IncomingMessage.prototype.pipe, revisit('node:http', GUARD, 'IncomingMessage.prototype.pipe is gone')).toBe('function')
    const msg = new IncomingMessage(null as never)
    const own = function pipe() {}
    ;(msg as unknown as { pipe: unknown }).pipe = own
    expect(msg.pipe, revisit('node:http', GUARD, 'an IncomingMessage instance cannot replace pipe')).toBe(own)
  })

  it('is how @fastify/multipart reads a request body (the wrapper sees every byte)', async () => {
    const fastify = Fastify({ logger: false })
    await fastify.register(multipart)
    const piped: { dest: string; bytes: number }[] = []
    fastify.addHook('onRequest', (request, _reply, done) => {
      const raw = request.raw
      const pipe = raw.pipe.bind(raw)
      raw.pipe = function <T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
        const seen = { dest: dest.constructor.name, bytes: 0 }
        piped.push(seen)
        raw.on('data', (chunk: Buffer) => (seen.bytes += chunk.length))
        return pipe(dest, opts)
      }
      done()
    })
    fastify.post('/', async (request) => {
      const file = await request.file()
      return { size: (await file!.toBuffer()).length }
    })
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    try {
      const { port } = fastify.server.address() as AddressInfo
      const body = Buffer.from('--zz\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n' + 'x'.repeat(5000) + '\r\n--zz--\r\n')
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        // Chunked, as the bodies capBody guards are (no Content-Length).
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { 'content-type': 'multipart/form-data; boundary=zz', 'transfer-encoding': 'chunked' } }, (res) => {
          let text = ''
          res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        })
        req.on('error', reject)
        req.write(body.subarray(0, 100))
        req.end(body.subarray(100))
      })
      expect(answer).toEqual({ status: 200, text: JSON.stringify({ size: 5000 }) })
      const what = 'it no longer reads the body with request.raw.pipe(busboy), so capBody counts nothing and a chunked body is unbounded'
      expect(piped.length, revisit('@fastify/multipart', GUARD, what)).toBe(1)
      expect(piped[0]!.bytes, revisit('@fastify/multipart', GUARD, what)).toBe(body.length)
    } finally {
      await fastify.close()
    }
  })
})

// --- process.memoryUsage ---------------------------------------------------------------------
// Used by: src/lib/open-files.ts (survivableMemoryUsage replaces process.memoryUsage, which
// throws EMFILE when no descriptor is left, with one that answers the last good reading).
// Why not a public hook: @fastify/under-pressure samples it on a timer whatever its options
// (even with no memory limit set), and a throw there ends the process.
describe('process.memoryUsage as @fastify/under-pressure calls it (src/lib/open-files.ts, survivableMemoryUsage)', () => {
  const FILE = 'src/lib/open-files.ts (survivableMemoryUsage)'

  it('is writable, with an rss() of its own', () => {
    const original = process.memoryUsage
    const replacement = Object.assign(() => original.call(process), { rss: () => original.rss() }) as typeof process.memoryUsage
    try {
      process.memoryUsage = replacement
      expect(process.memoryUsage, revisit('node', FILE, 'process.memoryUsage can no longer be replaced')).toBe(replacement)
    } finally {
      process.memoryUsage = original
    }
    expect(typeof original.rss, revisit('node', FILE, 'process.memoryUsage.rss is gone')).toBe('function')
  })

  it('is looked up on process at every sample, even with no memory limit set', async () => {
    const original = process.memoryUsage
    let calls = 0
    const fastify = Fastify({ logger: false })
    await fastify.register(underPressure, { sampleInterval: 10, maxEventLoopDelay: 1000 })
    await fastify.ready()
    try {
      // Replaced after the plugin was loaded and registered, as server.ts does.
      process.memoryUsage = Object.assign(() => {
        calls++
        return original.call(process)
      }, { rss: () => original.rss() }) as typeof process.memoryUsage
      await sleep(200)
    } finally {
      process.memoryUsage = original
      await fastify.close()
    }
    expect(calls, revisit('@fastify/under-pressure', FILE, 'it no longer calls process.memoryUsage() at each sample (the patch may be unneeded, or bypassed)')).toBeGreaterThan(0)
  })
})

// --- Sequelize connectionManager.pool ----------------------------------------------------------
// Used by: src/telemetry/db.ts (the db.client.connection.count / pending_requests / max metrics
// read the pool's size, use and queue). Why not a public hook: Sequelize 6 has hooks for a wait's
// start and success (beforePoolAcquire, afterPoolAcquire, which the pool.acquire spans use) but
// none for a release, so the pool's state cannot be counted from outside.
describe('Sequelize connectionManager.pool (src/telemetry/db.ts, the pool metrics)', () => {
  it('reports using, available, waiting and maxSize as numbers that follow the pool', async () => {
    const env = await createTestEnv()
    const sequelize = createSequelize({ ...env.config.db, pool: { ...env.config.db.pool, max: 3 } }, null)
    const FILE = 'src/telemetry/db.ts (pool metrics)'
    try {
      await sequelize.query('SELECT 1')
      const pool = (sequelize.connectionManager as unknown as { pool?: Record<string, unknown> }).pool
      for (const key of ['using', 'available', 'waiting', 'maxSize']) {
        expect(typeof pool?.[key], revisit('sequelize', FILE, `connectionManager.pool.${key} is not a number`)).toBe('number')
      }
      expect(pool!.maxSize, revisit('sequelize', FILE, 'pool.maxSize is not the configured max')).toBe(3)
      // While a transaction holds a connection, it is counted as in use.
      await sequelize.transaction(async () => {
        expect(pool!.using, revisit('sequelize', FILE, 'pool.using does not count a held connection')).toBeGreaterThanOrEqual(1)
      })
    } finally {
      await sequelize.close()
      await env.cleanup()
    }
  })
})

// --- mysql2's diagnostics channels -------------------------------------------------------------
// Used by: src/telemetry/sql.ts (every statement's span, Server-Timing db and
// db.client.operation.duration). Public API, but the context object's shape is mysql2's own:
// the statement text must be in `query`, and `start`/`asyncStart` must bracket the round trip.
describe("mysql2's tracing channels mysql2:query and mysql2:execute (src/telemetry/sql.ts)", () => {
  it('publish start with the statement text in `query`, then asyncStart when the answer arrives', async () => {
    const { tracingChannel } = await import('node:diagnostics_channel')
    const FILE = 'src/telemetry/sql.ts'
    const seen: string[] = []
    const handlers = (channel: string) => ({
      start: (m: unknown) => seen.push(`${channel} start ${String((m as { query?: unknown }).query)}`),
      asyncStart: () => seen.push(`${channel} answer`),
      end: () => undefined,
      asyncEnd: () => undefined,
      error: () => undefined
    })
    const q = handlers('query')
    const x = handlers('execute')
    tracingChannel('mysql2:query').subscribe(q)
    tracingChannel('mysql2:execute').subscribe(x)
    const env = await createTestEnv()
    const sequelize = createSequelize(env.config.db, null)
    try {
      await sequelize.query('SELECT 1 AS one')
      await sequelize.query('SELECT $1 AS two', { bind: [2] })
    } finally {
      tracingChannel('mysql2:query').unsubscribe(q)
      tracingChannel('mysql2:execute').unsubscribe(x)
      await sequelize.close()
      await env.cleanup()
    }
    expect(seen, revisit('mysql2', FILE, 'mysql2:query no longer publishes start (with `query`) and asyncStart')).toEqual(
      expect.arrayContaining(['query start SELECT 1 AS one', 'query answer'])
    )
    expect(seen, revisit('mysql2', FILE, 'mysql2:execute no longer publishes start (with `query`) and asyncStart')).toEqual(
      expect.arrayContaining(['execute start SELECT ? AS two', 'execute answer'])
    )
  })
})
