import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import app from '../../../src/app'
import { loadConfig } from '../../../src/config'
import { STORED_NAME } from '../../../src/storage/sniff'
import { signUp, type Account } from '../../kit/accounts'
import { multipart } from '../../kit/form'
import { faultAppEnvs, timed } from '../../kit/faults'
import { startMariaDb, type MariaDbInstance } from '../../kit/mariadb-instance'
import { assertBuilt, killAllServers, request, startListening, type HttpResponse } from '../../kit/server'
import { startTcpProxy } from '../../kit/tcp-proxy'
import { PNG_1x1 } from '../../fixtures/images'

// A database that stops answering without closing anything (kill -STOP: a stalled disk, a
// frozen VM). Before DB_QUERY_TIMEOUT_MS, requests waited ~35 s and then lost their socket with
// no answer and no log line, and writes the client saw fail were committed after kill -CONT.

const QUERY_TIMEOUT_MS = 1500
let db: MariaDbInstance
const { appEnv, cleanup } = faultAppEnvs(() => db, 'blog_stall')

beforeAll(async () => {
  assertBuilt()
  db = await startMariaDb()
}, 90_000)
afterEach(async () => {
  db.resume()
  await killAllServers()
})
afterAll(async () => {
  await killAllServers()
  await db?.destroy()
  await cleanup()
})

// Every request must meet the stall itself: the DB probe would refuse them at once once it noticed.
const stalledAppEnv = () => appEnv({ LOG_LEVEL: 'info', DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS), DB_HEALTH_CHECK_INTERVAL_MS: '0' })

/** A post with an image, as `as` (session cookie and CSRF token). */
const postBody = async (title: string, as: Account) => {
  const body = await multipart({ _csrf: as.csrf, title, content: 'Sent while the database is frozen.' }, { image_file: { data: PNG_1x1, filename: 'p.png', type: 'image/png' } })
  return { payload: body.payload, headers: { ...body.headers, cookie: as.cookie } }
}

describe('a stalled database (kill -STOP)', () => {
  it('answers every read and write with a 503 within the query timeout, logs each, and stores none of the writes', async () => {
    const { env, database } = await stalledAppEnv()
    const server = await startListening(env)
    const writer = await signUp(server.port)
    // Warm the pool: the stalled statements are sent on connections that were fine a moment ago.
    await Promise.all(Array.from({ length: 6 }, () => request(server.port, '/blogs/')))

    db.pause()
    const titles = Array.from({ length: 3 }, (_, i) => `Stalled write ${i} ${randomBytes(3).toString('hex')}`)
    const writes = await Promise.all(titles.map(async (t) => postBody(t, writer)))
    const outcomes = await Promise.all([
      ...Array.from({ length: 4 }, () => timed(server.port, 'list', { path: '/blogs/' })),
      timed(server.port, 'show', { path: '/blogs/show/1' }),
      ...writes.map((w) => timed(server.port, 'create', { method: 'POST', path: '/blogs/new', headers: w.headers, body: w.payload }))
    ])
    for (const { op, status, ms, body } of outcomes) {
      expect(status, `${op}: ${body.slice(0, 300)}`).toBe(503)
      // The query timeout, or a new connection's connect timeout (3 s), plus the work around it.
      expect(ms).toBeLessThan(QUERY_TIMEOUT_MS + 3000 + 1500)
      expect(body).toContain('The database is not answering right now.')
    }
    // One line per request (written just after its answer: give the last ones a moment).
    const failed = () => server.logs().filter((l) => l.msg === 'request failed' || l.msg === 'request shed')
    for (let i = 0; i < 20 && failed().length < outcomes.length; i++) await sleep(100)
    expect(failed()).toHaveLength(outcomes.length)

    db.resume()
    // Serving again without a restart; the refused writes were not stored (their transactions were rolled back).
    let list: HttpResponse | undefined
    for (let i = 0; i < 50 && list?.status !== 200; i++) {
      list = await request(server.port, '/blogs/').catch(() => undefined)
      if (list?.status !== 200) await sleep(200)
    }
    expect(list?.status).toBe(200)
    await sleep(500)
    const rows = await db.query(`SELECT id FROM \`${database}\`.blog WHERE title IN (?)`, [titles])
    expect(rows).toEqual([])
  }, 60_000)
})

describe('a COMMIT the stalled database never answers', () => {
  let fastify: FastifyInstance | undefined
  afterEach(async () => {
    await fastify?.close()
    fastify = undefined
  })

  it('gets a 503 saying the post may have been saved (it was, after kill -CONT), and the post keeps its image', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: db.port })
    try {
      const { env, database, uploadDir } = await stalledAppEnv()
      const url = new URL(env.DATABASE_URL!)
      url.port = String(proxy.port)
      fastify = Fastify({ logger: false })
      await fastify.register(app, { config: loadConfig({ ...env, LOG_LEVEL: 'silent', DATABASE_URL: url.toString() }) })
      await fastify.ready()
      const writer = await signUp(fastify)

      const title = `Unknown outcome ${randomBytes(3).toString('hex')}`
      const held = proxy.holdNextCommit()
      const t0 = performance.now()
      const answer = fastify.inject({ method: 'POST', url: '/blogs/new', ...(await postBody(title, writer)) })
      const release = await held
      db.pause()
      release() // the COMMIT now waits in the frozen server's socket
      const res = await answer
      const ms = performance.now() - t0

      expect(res.statusCode, res.body).toBe(503)
      expect(res.body).toContain('it may have been saved')
      expect(ms).toBeLessThan(QUERY_TIMEOUT_MS + 1500)

      db.resume()
      const files = (await fs.readdir(uploadDir)).filter((n) => STORED_NAME.test(n))
      expect(files).toHaveLength(1)
      let rows: { image_loc: string }[] = []
      for (let i = 0; i < 50 && rows.length === 0; i++) {
        rows = await db.query<{ image_loc: string }>(`SELECT image_loc FROM \`${database}\`.blog WHERE title = ?`, [title])
        if (rows.length === 0) await sleep(100)
      }
      // Committed after all: that is why the answer could not say "not saved".
      expect(rows).toEqual([{ image_loc: files[0] }])
      // The app goes on with fresh connections.
      expect((await fastify.inject({ method: 'POST', url: '/blogs/new', ...(await postBody(`${title} again`, writer)) })).statusCode).toBe(303)
    } finally {
      await proxy.close()
    }
  }, 60_000)
})
