import fs from 'node:fs/promises'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, killAllServers, request, startListening, type ServerChild } from '../../kit/server'
import { startTcpProxy, type TcpProxy } from '../../kit/tcp-proxy'

// A slow database (a loopback proxy adds latency to every packet) behind a small pool: requests
// that cannot get a connection within DB_POOL_ACQUIRE_MS get a 503 page, instead of queueing
// without bound; memory stays flat while it happens.

const LATENCY_MS = 150 // each way: a query takes at least 300 ms
const ACQUIRE_MS = 500

let env: TestEnv
let proxy: TcpProxy
let server: ServerChild

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
  proxy = await startTcpProxy({ host: env.config.db.host, port: env.config.db.port })
  const url = new URL(env.env.DATABASE_URL!)
  url.port = String(proxy.port)
  server = await startListening({
    ...env.env,
    DATABASE_URL: url.toString(),
    DB_POOL_MAX: '2',
    DB_POOL_ACQUIRE_MS: String(ACQUIRE_MS),
    LOG_LEVEL: 'warn'
  })
})
afterAll(async () => {
  await killAllServers()
  await proxy?.close()
  await env?.cleanup()
})

async function rssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

interface Outcome {
  status: number | string
  ms: number
  body: string
}

function get(path: string): Promise<Outcome> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body }))
    })
    req.setTimeout(20_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? e.message, ms: performance.now() - t0, body: '' }))
  })
}

/** Sends `total` requests with `concurrency` in flight, as fast as answers come back. */
async function burst(total: number, concurrency: number): Promise<Outcome[]> {
  const out: Outcome[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++
        out.push(await get(next % 3 === 0 ? `/blogs/show/${1 + (next % 12)}` : '/blogs/'))
      }
    })
  )
  return out
}

describe('a slow database with a pool of 2 (acquire timeout 500 ms)', () => {
  it('answers 503 pages after the acquire timeout instead of queueing, keeps memory flat, and is fast again when the database is', async () => {
    expect((await request(server.port, '/blogs/')).status).toBe(200)
    // Warm up (JIT, template cache, both pool connections) before measuring memory.
    await burst(200, 20)
    proxy.latencyMs = LATENCY_MS
    const rssBefore = await rssBytes(server.proc.pid!)

    const t0 = Date.now()
    const outcomes = await burst(400, 40)
    const elapsed = Date.now() - t0
    const rssAfter = await rssBytes(server.proc.pid!)

    const ok = outcomes.filter((o) => o.status === 200)
    const refused = outcomes.filter((o) => o.status === 503)
    const other = outcomes.filter((o) => o.status !== 200 && o.status !== 503)
    const max = (xs: Outcome[]) => Math.max(0, ...xs.map((o) => o.ms))
    const min = (xs: Outcome[]) => Math.min(...xs.map((o) => o.ms))
    console.info(
      `slow db: ${outcomes.length} requests in ${elapsed} ms with 40 in flight: ${ok.length} x 200 (slowest ${max(ok).toFixed(0)} ms), ` +
        `${refused.length} x 503 (${min(refused).toFixed(0)}-${max(refused).toFixed(0)} ms), ${other.length} other; ` +
        `RSS ${(rssBefore / 1048576).toFixed(1)} -> ${(rssAfter / 1048576).toFixed(1)} MiB`
    )

    expect(other.map((o) => o.status)).toEqual([])
    expect(refused.length).toBeGreaterThan(outcomes.length / 2)
    // Two connections, each busy at least 2 x latency per query: throughput is capped accordingly.
    expect(ok.length).toBeLessThanOrEqual(Math.ceil((2 * elapsed) / (2 * LATENCY_MS)) + 2)
    for (const o of refused) {
      expect(o.body).toContain('The database is not answering right now.')
      // Refused after waiting the acquire timeout, not before and not much after.
      expect(o.ms).toBeGreaterThanOrEqual(ACQUIRE_MS - 20)
      expect(o.ms).toBeLessThan(ACQUIRE_MS + 2500)
    }
    // Nobody waits in an unbounded queue: the slowest answer is about one acquire timeout plus a
    // query or two (queueing for the 2 connections would take 40 / 2 x 300 ms = 6 s).
    expect(max(outcomes)).toBeLessThan(4000)
    // The waiting requests hold no unbounded state.
    expect(rssAfter - rssBefore).toBeLessThan(40 * 1048576)
    // The slow database is not "down": the health check passes, so nothing was shed without waiting.
    expect(server.logs().some((l) => l.msg === 'database health check failing; shedding database requests')).toBe(false)

    proxy.latencyMs = 0
    await sleep(200)
    const after = await burst(40, 4)
    expect(after.every((o) => o.status === 200)).toBe(true)
    expect(max(after)).toBeLessThan(500)
    expect(server.hasExited()).toBe(false)
  }, 60_000)
})
