import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import app from '../../../src/app'
import { loadConfig } from '../../../src/config'
import { STORED_NAME } from '../../../src/storage/sniff'
import { signUp, type Account } from '../../kit/accounts'
import { multipart } from '../../kit/form'
import { faultAppEnvs, timed, type Outcome } from '../../kit/faults'
import { startMariaDb, type MariaDbInstance } from '../../kit/mariadb-instance'
import { assertBuilt, killAllServers, request, startListening, startServer, waitUntilListening, type ServerChild } from '../../kit/server'
import { startTcpProxy, type CommitCut } from '../../kit/tcp-proxy'
import { PNG_1x1 } from '../../fixtures/images'

// Faults of the database itself, on a MariaDB server this file owns (the shared one is never
// touched): kill -9 under load, a restart, the app starting before the database, and a
// connection cut at COMMIT. The app runs as a child process (the compiled server), except for
// the COMMIT cut, which needs the store's sweep at hand.

let db: MariaDbInstance
const { appEnv, cleanup } = faultAppEnvs(() => db, 'blog_fault')

beforeAll(async () => {
  assertBuilt()
  db = await startMariaDb()
}, 90_000)
afterEach(async () => {
  await killAllServers()
  await db.start() // every test leaves the database running for the next one
})
afterAll(async () => {
  await killAllServers()
  await db?.destroy()
  await cleanup()
})

/** A new post's form as `author` sends it (session cookie, CSRF token). */
async function createBody(title: string, author: Account): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const body = await multipart(
    { _csrf: author.csrf, title, content: 'Written while the database may die.' },
    // A unique tail, so every stored file is distinguishable.
    { image_file: { data: Buffer.concat([PNG_1x1, randomBytes(64)]), filename: 'p.png', type: 'image/png' } }
  )
  return { payload: body.payload, headers: { ...body.headers, cookie: author.cookie } }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** Rows with an image whose file is missing, and stored files no row references. */
async function consistency(database: string, uploadDir: string): Promise<{ rows: number; withImage: number; missingFiles: string[]; orphans: string[]; incoming: string[] }> {
  const rows = await db.query<{ image_loc: string | null }>(`SELECT image_loc FROM \`${database}\`.blog`)
  const files = (await fs.readdir(uploadDir)).filter((n) => STORED_NAME.test(n))
  const referenced = new Set(rows.map((r) => r.image_loc).filter((n): n is string => n !== null))
  return {
    rows: rows.length,
    withImage: referenced.size,
    missingFiles: [...referenced].filter((n) => !files.includes(n)),
    orphans: files.filter((n) => !referenced.has(n)),
    incoming: await fs.readdir(path.join(uploadDir, '.incoming'))
  }
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const t: Record<string, number> = {}
  for (const o of outcomes) t[String(o.status)] = (t[String(o.status)] ?? 0) + 1
  return t
}

describe('the database is killed (kill -9) during a burst of reads and writes', () => {
  it('answers every request within seconds (2xx/3xx or a 503 page), stays up, and leaves no row without its file', async () => {
    const { env, database, uploadDir } = await appEnv()
    const server = await startListening(env)
    const author = await signUp(server.port)

    // Each worker owns a post to edit, so edits replace images while the database dies.
    const WORKERS = 12
    const own: number[] = []
    for (let w = 0; w < WORKERS; w++) {
      const title = `Owned ${w} ${randomBytes(3).toString('hex')}`
      const b = await createBody(title, author)
      const res = await timed(server.port, 'create', { method: 'POST', path: '/blogs/new', body: b.payload, headers: b.headers })
      expect(res.status, res.body).toBe(303)
      const [row] = await db.query<{ id: number }>(`SELECT id FROM \`${database}\`.blog WHERE title = ?`, [title])
      own.push(row!.id)
    }

    const outcomes: Outcome[] = []
    let stop = false
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const kind = i % 4
        let o: Outcome
        if (kind === 0) {
          const body = await createBody(`Burst ${w}-${i} ${randomBytes(3).toString('hex')}`, author)
          o = await timed(server.port, 'create', { method: 'POST', path: '/blogs/new', body: body.payload, headers: body.headers })
        } else if (kind === 1) {
          o = await timed(server.port, 'list', { path: '/blogs/' })
        } else if (kind === 2) {
          const body = await createBody(`Edited ${w}-${i}`, author)
          o = await timed(server.port, 'modify', { method: 'POST', path: `/blogs/modify/${own[w]}`, body: body.payload, headers: body.headers })
        } else {
          o = await timed(server.port, 'show', { path: `/blogs/show/${own[w]}` })
        }
        outcomes.push(o)
        // Back off a little after a 503, as a client honouring Retry-After would (and spare CI's CPU).
        if (o.status === 503) await sleep(25)
      }
    }
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w))

    await sleep(1000)
    const beforeKill = outcomes.length
    await db.kill()
    await sleep(4000)
    const whileDown = outcomes.length - beforeKill
    await db.start()
    const restartedAt = outcomes.length
    // Writes succeed again within a few seconds of the restart (health check interval + reconnect).
    await waitFor('a successful write after the restart', async () => outcomes.slice(restartedAt).some((o) => o.op === 'create' && o.status === 303), 15_000)
    await sleep(500)
    stop = true
    await Promise.all(workers)

    const summary = tally(outcomes)
    const maxMs = Math.max(...outcomes.map((o) => o.ms))
    console.info(`kill -9 burst: ${outcomes.length} requests (${beforeKill} before the kill, ${whileDown} while down), statuses ${JSON.stringify(summary)}, slowest ${maxMs.toFixed(0)} ms`)

    // Every request was answered, none hung: 2xx/3xx, or a proper 503 page with Retry-After.
    for (const o of outcomes) {
      expect([200, 303, 503], `${o.op}: ${o.status} ${o.body.slice(0, 300)}`).toContain(o.status)
      if (o.status === 503) {
        expect(o.retryAfter).toBe('5')
        expect(o.body).toContain('<p class="status">503</p>')
        expect(o.body).not.toMatch(/\n\s+at /)
      }
    }
    expect(maxMs).toBeLessThan(6000)
    expect(summary['503'] ?? 0).toBeGreaterThan(0)
    expect(outcomes.slice(0, beforeKill).every((o) => o.status !== 503)).toBe(true)
    expect(server.hasExited()).toBe(false)

    // After the restart: the app serves, and every row's image is on disk.
    expect((await request(server.port, '/blogs/')).status).toBe(200)
    const state = await consistency(database, uploadDir)
    console.info(`kill -9 burst: ${state.rows} rows, ${state.withImage} with images, ${state.orphans.length} unreferenced files (left for the sweep), ${state.incoming.length} temp files`)
    expect(state.missingFiles).toEqual([])
    expect(state.incoming).toEqual([])
    // Unreferenced files come only from writes whose COMMIT outcome was unknown (or an edit that
    // did commit and could not be told so): at most one per failed write.
    const failedWrites = outcomes.filter((o) => o.op !== 'list' && o.op !== 'show' && o.status === 503).length
    expect(state.orphans.length).toBeLessThanOrEqual(failedWrites)
  }, 60_000)
})

describe('the database restarts while the app runs', () => {
  it('/ready follows the database (503 while down, 200 after), pages come back without restarting the app', async () => {
    const { env } = await appEnv({ DB_HEALTH_CHECK_INTERVAL_MS: '500' })
    const server = await startListening(env)
    expect((await request(server.port, '/ready')).status).toBe(200)
    expect((await request(server.port, '/blogs/')).status).toBe(200)

    const t0 = Date.now()
    await db.stop()
    const down = await timed(server.port, 'ready', { path: '/ready' })
    expect(down.status).toBe(503)
    expect(JSON.parse(down.body)).toMatchObject({ status: 'unavailable' })
    const page = await timed(server.port, 'list', { path: '/blogs/' })
    expect(page.status).toBe(503)
    expect(page.body).toContain('The database is not answering right now.')
    expect(page.ms).toBeLessThan(4000)
    expect((await timed(server.port, 'health', { path: '/health' })).status).toBe(200)
    // Once the health check has noticed, pages are refused without trying the database at all.
    const failing = (l: Record<string, unknown>) => l.msg === 'database health check failing; shedding database requests'
    await waitFor('the health check to notice', async () => server.logs().some(failing), 5000)
    const shed = await timed(server.port, 'list', { path: '/blogs/' })
    expect(shed.status).toBe(503)
    expect(shed.body).toContain('The database is not answering right now.')
    expect(shed.ms).toBeLessThan(100)

    await db.start()
    const restartedAfter = Date.now() - t0
    const t1 = Date.now()
    await waitFor('/ready to answer 200', async () => (await request(server.port, '/ready')).status === 200, 15_000)
    const readyAfter = Date.now() - t1
    await waitFor('/blogs/ to answer 200', async () => (await request(server.port, '/blogs/')).status === 200, 15_000)
    const servingAfter = Date.now() - t1
    console.info(`restart: database down for ${restartedAfter} ms (shed page in ${shed.ms.toFixed(0)} ms); /ready 200 ${readyAfter} ms and /blogs/ 200 ${servingAfter} ms after it was back`)
    expect(server.hasExited()).toBe(false)
  }, 60_000)
})

describe('the app starts before the database', () => {
  it('retries, then serves once the database appears within DB_STARTUP_TIMEOUT_MS', async () => {
    await db.stop()
    const { env } = await appEnv({ DB_STARTUP_TIMEOUT_MS: '30000' })
    const started = Date.now()
    const server: ServerChild = await startServer(env)
    await waitFor('two retries in the log', async () => server.logs().filter((l) => l.msg === 'database not reachable yet, retrying').length >= 2, 10_000)
    expect(server.hasExited()).toBe(false)
    expect(await request(server.port, '/health').then(() => 'answered', (e: NodeJS.ErrnoException) => e.code)).toBe('ECONNREFUSED')

    // The database stays down past Fastify's own 10 s limit for loading a plugin: the wait is
    // DB_STARTUP_TIMEOUT_MS's to end, not Fastify's.
    await new Promise((r) => setTimeout(r, Math.max(0, 12_000 - (Date.now() - started))))
    expect(server.hasExited()).toBe(false)
    const t0 = Date.now()
    await db.start()
    await waitUntilListening(server, 20_000)
    const listeningAfter = Date.now() - t0
    const list = await request(server.port, '/blogs/')
    expect(list.status).toBe(200)
    console.info(`late database: app listening ${listeningAfter} ms after the database came up`)
    // Backoff is capped at 5 s, so the app notices within about that.
    expect(listeningAfter).toBeLessThan(8000)
  }, 60_000)
})

describe('the connection is cut at COMMIT (outcome unknown to the app)', () => {
  let fastify: FastifyInstance | undefined
  afterEach(async () => {
    await fastify?.close()
    fastify = undefined
  })

  it.each<[CommitCut, string]>([
    ['before', 'the server never saw the COMMIT: no row, and the kept file is swept'],
    ['after', 'the server committed but the answer was lost: the row keeps its file and the sweep leaves it']
  ])('cut %s the COMMIT reached the server: %s', async (mode) => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: db.port })
    try {
      const { env, database, uploadDir } = await appEnv({ LOG_LEVEL: 'silent' })
      const url = new URL(env.DATABASE_URL!)
      url.port = String(proxy.port)
      const config = loadConfig({ ...env, DATABASE_URL: url.toString() })
      fastify = Fastify({ logger: false })
      await fastify.register(app, { config })
      await fastify.ready()

      const title = `Commit cut ${mode} ${randomBytes(3).toString('hex')}`
      const author = await signUp(fastify)
      const body = await createBody(title, author)
      const cut = proxy.cutNextCommit(mode)
      const res = await fastify.inject({ method: 'POST', url: '/blogs/new', ...body })
      await cut

      // The same answer either way: the app cannot know what happened, and says so.
      expect(res.statusCode, res.body).toBe(503)
      expect(res.body).toContain('it may have been saved')
      const rows = await db.query<{ image_loc: string }>(`SELECT image_loc FROM \`${database}\`.blog WHERE title = ?`, [title])
      const files = (await fs.readdir(uploadDir)).filter((n) => STORED_NAME.test(n))
      // The file is kept in both cases ...
      expect(files).toHaveLength(1)
      const file = files[0]!
      expect(rows).toEqual(mode === 'after' ? [{ image_loc: file }] : [])

      // ... and the sweep decides by the rows: not within the grace period, then only if unreferenced.
      const referenced = await fastify.blogs.imageNames()
      expect(await fastify.imageStore.sweep(referenced, 60 * 60 * 1000)).toEqual([])
      const removed = await fastify.imageStore.sweep(referenced, 0, Date.now() + 1000)
      if (mode === 'before') {
        expect(removed).toEqual([file])
        expect((await fs.readdir(uploadDir)).filter((n) => STORED_NAME.test(n))).toEqual([])
      } else {
        expect(removed).toEqual([])
        const [row] = await db.query<{ id: number }>(`SELECT id FROM \`${database}\`.blog WHERE title = ?`, [title])
        const show = await fastify.inject({ url: `/blogs/show/${row!.id}` })
        expect(show.statusCode).toBe(200)
        expect(show.body).toContain(`/static/uploads/${file}`)
        const image = await fastify.inject({ url: `/static/uploads/${file}` })
        expect(image.statusCode).toBe(200)
      }
      // The app goes on working after the cut.
      expect((await fastify.inject({ method: 'POST', url: '/blogs/new', ...(await createBody(`${title} again`, author)) })).statusCode).toBe(303)
    } finally {
      await proxy.close()
    }
  })
})
