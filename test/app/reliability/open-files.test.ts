import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { useDisposableApps } from '../../kit/app'
import { assertBuilt, killAllServers, request, startListening } from '../../kit/server'

// Idle sockets that trickle a header line now and then, more of them than the process may open
// files: before MAX_CONNECTIONS the app took every one, ran out of descriptors, and
// @fastify/under-pressure's memory sampler threw EMFILE on a timer, which ended the process.

const apps = useDisposableApps()
afterEach(() => killAllServers())

const OPEN_FILES = 256

/** Opens `n` sockets that send a request line and then one header every 500 ms; never finishes. */
async function trickle(port: number, n: number): Promise<{ connected(): number; stop(): void }> {
  const sockets: net.Socket[] = []
  let connected = 0
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => undefined)
    s.once('connect', () => {
      connected++
      s.write('GET /blogs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    })
    sockets.push(s)
    if (i % 50 === 49) await sleep(20)
  }
  const timer = setInterval(() => {
    for (const s of sockets) if (!s.destroyed && s.writable) s.write(`X-Slow-${Date.now()}: 1\r\n`)
  }, 500)
  return { connected: () => connected, stop: () => (clearInterval(timer), sockets.forEach((s) => s.destroy())) }
}

describe(`more idle sockets than the open-file limit (${OPEN_FILES})`, () => {
  it('caps connections below the limit, stays up while they hang on, and serves again once they go', async () => {
    assertBuilt()
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false', LOG_LEVEL: 'info', LOAD_SAMPLE_INTERVAL_MS: '100' })
    const server = await startListening(env.env, { openFiles: OPEN_FILES })
    const cap = server.logs().find((l) => l.msg === 'connection cap')?.maxConnections as number
    expect(cap).toBeGreaterThan(0)
    expect(cap).toBeLessThan(OPEN_FILES - 40)

    const flood = await trickle(server.port, OPEN_FILES + 150)
    try {
      // Long enough for many memory samples (every 100 ms) with the descriptors at their peak.
      await sleep(4000)
      expect(server.hasExited(), server.stderr().slice(-2000)).toBe(false)
      expect(server.logs().some((l) => String(l.msg).startsWith('connection cap reached'))).toBe(true)
      const open = Number((await import('node:fs/promises').then((fs) => fs.readdir(`/proc/${server.proc.pid}/fd`))).length)
      expect(open).toBeLessThan(OPEN_FILES)
    } finally {
      flood.stop()
    }
    await sleep(300)
    const res = await request(server.port, '/blogs/')
    expect(res.status).toBe(200)
    expect(server.hasExited()).toBe(false)
  }, 60_000)
})
