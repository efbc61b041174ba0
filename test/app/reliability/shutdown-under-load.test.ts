import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { assertBuilt, killAllServers, startListening } from '../../kit/server'
import { startTcpProxy, type TcpProxy } from '../../kit/tcp-proxy'
import { PNG_1x1 } from '../../fixtures/images'

// SIGTERM while 16 clients keep reads and writes (uploads) going, and 4 more reuse kept-alive
// connections: every request the server had
// received finishes normally, new connections are refused, and the process exits 0 with every
// acknowledged post stored with its file. The database answers through a proxy that adds a
// little latency, so requests are really in flight when the signal comes.

let env: TestEnv
let proxy: TcpProxy

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
  proxy = await startTcpProxy({ host: env.config.db.host, port: env.config.db.port })
})
afterAll(async () => {
  await killAllServers()
  await proxy?.close()
  await env?.cleanup()
})

interface Outcome {
  op: 'list' | 'create' | 'keep-alive list'
  title?: string
  startedAt: number
  /** When the TCP connection was established (undefined if it never was). */
  connectedAt?: number
  /** When the whole request had been written (undefined if it never was). */
  sentAt?: number
  endAt: number
  status: number | string
}

function send(port: number, op: Outcome['op'], title?: string, body?: { payload: Buffer; headers: Record<string, string> }, agent: http.Agent | false = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const startedAt = performance.now()
    let sentAt: number | undefined
    let connectedAt: number | undefined
    const req = http.request(
      {
        host: '127.0.0.1', port, agent,
        method: body ? 'POST' : 'GET',
        path: body ? '/blogs/new' : '/blogs/',
        headers: body ? { ...body.headers, 'content-length': String(body.payload.length) } : {}
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ op, title, startedAt, connectedAt, sentAt, endAt: performance.now(), status: res.statusCode ?? 0 }))
      }
    )
    req.on('socket', (s) => {
      if (s.connecting) s.once('connect', () => (connectedAt = performance.now()))
      else connectedAt = startedAt // a kept-alive socket
    })
    req.on('finish', () => (sentAt = performance.now()))
    req.setTimeout(20_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ op, title, startedAt, connectedAt, sentAt, endAt: performance.now(), status: e.code ?? e.message }))
    req.end(body?.payload)
  })
}

describe('SIGTERM under load', () => {
  it('finishes every request in flight, refuses new connections, exits 0, and loses no acknowledged write', async () => {
    const url = new URL(env.env.DATABASE_URL!)
    url.port = String(proxy.port)
    const server = await startListening({ ...env.env, DATABASE_URL: url.toString(), LOG_LEVEL: 'info' })
    proxy.latencyMs = 20

    const author = await signUp(server.port)
    const outcomes: Outcome[] = []
    const worker = async (w: number) => {
      for (let i = 0; ; i++) {
        let o: Outcome
        if (i % 2 === 0) {
          const title = `Shutdown ${w}-${i} ${randomBytes(3).toString('hex')}`
          const body = await multipart(
            { _csrf: author.csrf, title, content: 'Sent while the server shuts down.' },
            { image_file: { data: Buffer.concat([PNG_1x1, randomBytes(32 * 1024)]), filename: 'p.png', type: 'image/png' } }
          )
          o = await send(server.port, 'create', title, { payload: body.payload, headers: { ...body.headers, cookie: author.cookie } })
        } else {
          o = await send(server.port, 'list')
        }
        outcomes.push(o)
        if (o.status === 'ECONNREFUSED' || o.status === 'ECONNRESET') return
      }
    }
    // And browsers: kept-alive connections, reused for request after request.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
    const keepAliveWorker = async () => {
      for (;;) {
        const o = await send(server.port, 'keep-alive list', undefined, undefined, agent)
        outcomes.push(o)
        if (o.status === 'ECONNREFUSED' || o.status === 'ECONNRESET') return
      }
    }
    const workers = [...Array.from({ length: 16 }, (_, w) => worker(w)), ...Array.from({ length: 4 }, keepAliveWorker)]
    await sleep(1500)
    const signalAt = performance.now()
    server.proc.kill('SIGTERM')
    await Promise.all(workers)
    const exit = await server.exited
    agent.destroy()

    const before = outcomes.filter((o) => o.sentAt !== undefined && o.sentAt < signalAt)
    const after = outcomes.filter((o) => !before.includes(o))
    const tally = (xs: Outcome[]) => xs.reduce<Record<string, number>>((t, o) => ({ ...t, [o.status]: (t[o.status] ?? 0) + 1 }), {})
    const inFlight = before.filter((o) => o.endAt > signalAt)
    console.info(
      `SIGTERM under load: ${outcomes.length} requests; sent before the signal ${JSON.stringify(tally(before))} ` +
        `(${inFlight.length} still in flight at the signal); after it ${JSON.stringify(tally(after))}`
    )

    expect(exit, server.stderr()).toEqual({ code: 0, signal: null })
    expect(inFlight.length).toBeGreaterThan(0)
    // Zero failed in-flight requests: everything sent before the signal got its normal answer.
    for (const o of before) expect([200, 303], `${o.op} ${o.status}`).toContain(o.status)
    // After the signal: served (the listener stays open ~25 ms to drain its accept queue), or
    // refused. A connection the kernel completed in the instant before the listener closed is
    // reset by it, never having reached the app: allowed only for connections made after the signal.
    for (const o of after) {
      if (o.status === 'ECONNRESET') expect(o.connectedAt ?? o.startedAt, 'reset of a connection made before the signal').toBeGreaterThan(signalAt)
      else expect([200, 303, 'ECONNREFUSED'], `${o.op} ${o.status}`).toContain(o.status)
    }
    expect(after.filter((o) => o.status === 'ECONNREFUSED' || o.status === 'ECONNRESET').length).toBe(20)

    // Every acknowledged create is stored, with its file.
    const acknowledged = outcomes.filter((o) => o.op === 'create' && o.status === 303)
    const rows = await env.query<{ title: string; image_loc: string }>('SELECT `title`, `image_loc` FROM `blog`')
    const byTitle = new Map(rows.map((r) => [r.title, r.image_loc]))
    for (const o of acknowledged) {
      const image = byTitle.get(o.title!)
      expect(image, o.title).toBeDefined()
      await fs.access(path.join(env.uploadDir, image!))
    }
    expect(server.logs().some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toBe(true)
  }, 60_000)
})
