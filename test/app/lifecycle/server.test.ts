import { randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { samplePosts } from '../../../src/db/seeds/sample-posts'
import { signUp } from '../../kit/accounts'
import { createTestEnv, storedFiles, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { assertBuilt, freePort, killAllServers, request, startServer, waitForExit, waitUntilListening } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'

// These tests run the compiled server the way `npm start` does: `npm test` builds first.

/** One GET on a fresh connection. */
const get = (port: number, urlPath: string) => request(port, urlPath)
const envs: TestEnv[] = []

/** Resolves with the error code of a TCP connect attempt, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
  })
}

async function newEnv(extra: Record<string, string> = {}): Promise<TestEnv> {
  const env = await createTestEnv(extra)
  envs.push(env)
  return env
}

beforeAll(() => {
  assertBuilt()
})
// Nothing outlives its test: SIGKILL whatever still runs.
afterEach(killAllServers)
afterAll(async () => {
  for (const env of envs.splice(0)) await env.cleanup()
})

describe('graceful shutdown', () => {
  it('on SIGTERM finishes an upload in flight (303, row saved), refuses new connections and exits 0', async () => {
    const env = await newEnv()
    const port = await freePort()
    const child = await startServer({ ...env.env, LOG_LEVEL: 'info' }, { port })
    await waitUntilListening(child)

    const title = `In flight ${randomBytes(4).toString('hex')}`
    const author = await signUp(port)
    // A real PNG signature followed by 256 KiB, so the upload is still streaming when the signal comes.
    const image = Buffer.concat([PNG_1x1, randomBytes(256 * 1024)])
    const body = await multipart(
      { _csrf: author.csrf, title, content: 'Sent across a SIGTERM.' },
      { image_file: { data: image, filename: 'big.png', type: 'image/png' } }
    )
    const half = Math.floor(body.payload.length / 2)

    const response = new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/blogs/new',
          agent: false,
          headers: { ...body.headers, cookie: author.cookie, 'content-length': String(body.payload.length) }
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8').on('data', (d: string) => (text += d))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }))
        }
      )
      req.on('error', reject)
      req.flushHeaders()
      req.write(body.payload.subarray(0, half))
      void (async () => {
        await sleep(300)
        child.proc.kill('SIGTERM')
        await sleep(200)
        // While the upload is still in flight the server no longer accepts connections.
        connectDuringShutdown = await tryConnect(port)
        expect(child.hasExited()).toBe(false)
        req.end(body.payload.subarray(half))
      })().catch(reject)
    })
    let connectDuringShutdown = ''

    const res = await response
    expect(res.status, res.body).toBe(303)
    expect(res.location).toBe('/blogs/')
    expect(connectDuringShutdown).toBe('ECONNREFUSED')

    const exit = await waitForExit(child, 15_000)
    expect(exit, child.stderr()).toEqual({ code: 0, signal: null })
    expect(child.logs().some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toBe(true)

    const rows = await env.query<{ image_loc: string }>('SELECT `image_loc` FROM `blog` WHERE `title` = ?', [title])
    expect(rows).toHaveLength(1)
    expect(await storedFiles(env.uploadDir)).toEqual([rows[0]!.image_loc])
    expect(await tryConnect(port)).toBe('ECONNREFUSED')
  })

  it('on SIGTERM with idle connections open (kept-alive, and a preconnect that never sent a request) exits 0 promptly', async () => {
    const env = await newEnv()
    const port = await freePort()
    const child = await startServer({ ...env.env, LOG_LEVEL: 'info' }, { port })
    await waitUntilListening(child)

    // A kept-alive connection after a finished request...
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    await new Promise<void>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port, path: '/health', agent }, (res) => res.resume().on('end', resolve)).on('error', reject)
    )
    const keptAlive = Object.values(agent.freeSockets).flat()[0]
    expect(keptAlive, 'the agent should keep the socket').toBeDefined()
    // ...and a connection that never sends anything (browsers preconnect; load balancers probe TCP).
    const preconnect = net.connect({ host: '127.0.0.1', port })
    preconnect.on('error', () => undefined)
    await new Promise((r) => preconnect.once('connect', r))
    await sleep(100)

    const t0 = Date.now()
    child.proc.kill('SIGTERM')
    const exit = await waitForExit(child, 15_000)
    const elapsed = Date.now() - t0
    agent.destroy()
    preconnect.destroy()

    expect(exit, child.stdout() + child.stderr()).toEqual({ code: 0, signal: null })
    // Well inside SHUTDOWN_GRACE_MS (10 s): nothing waited for the idle sockets.
    expect(elapsed).toBeLessThan(3000)
    expect(child.stdout()).not.toContain('killed by timeout')
    expect(await tryConnect(port)).toBe('ECONNREFUSED')
  })
})

describe('bad configuration', () => {
  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '99999' }, 'PORT'],
    [{ DATABASE_URL: 'http://x' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'mysql://root:50%off@127.0.0.1/blog_db' }, 'DATABASE_URL'],
    [{ PAGE_SIZE: 'ten' }, 'PAGE_SIZE']
  ])('%j stops the process with a message naming %s', async (bad, variable) => {
    const env = await newEnv()
    const child = await startServer({ ...env.env, LOG_LEVEL: 'info', ...bad })
    const exit = await waitForExit(child, 10_000)
    const stderr = child.stderr()
    const stdout = child.stdout()

    expect(exit.code, stderr).not.toBe(0)
    expect(exit.code).toBe(2)
    expect(stderr).toContain(variable)
    expect(stderr).toMatch(/^blog_app: /)
    // A configuration message, not a crash: no stack trace.
    expect(stderr).not.toMatch(/\n\s+at /)
    expect(stdout).not.toContain('Server listening')
  })
})

describe('database unreachable at start', () => {
  it('retries with host and port in the log, then exits non-zero within the startup timeout', async () => {
    const dbPort = await freePort() // nothing listens there
    const env = await newEnv()
    const child = await startServer(
      {
        ...env.env,
        DATABASE_URL: `mysql://root@127.0.0.1:${dbPort}/blog_db`,
        DB_STARTUP_TIMEOUT_MS: '1500',
        LOG_LEVEL: 'warn'
      }
    )
    const t0 = Date.now()
    const exit = await waitForExit(child, 10_000)
    const elapsed = Date.now() - t0

    expect(exit.code).not.toBe(0)
    expect(exit.code).not.toBeNull()
    expect(elapsed).toBeGreaterThanOrEqual(1400)
    expect(elapsed).toBeLessThan(6000)

    const retries = child.logs().filter((l) => l.msg === 'database not reachable yet, retrying')
    expect(retries.length, child.stdout()).toBeGreaterThanOrEqual(2)
    for (const r of retries) {
      expect(r).toMatchObject({ level: 40, host: '127.0.0.1', port: dbPort })
      expect(r.reason).toMatch(/ECONNREFUSED|connect/i)
    }
    expect(retries.map((r) => r.attempt)).toEqual(retries.map((_, i) => i + 1))

    const stderr = child.stderr()
    expect(stderr).toContain(`Database at 127.0.0.1:${dbPort} unreachable`)
    expect(stderr).toContain('DB_STARTUP_TIMEOUT_MS')
    expect(child.stdout()).not.toContain('Server listening')
  })
})

describe('npm start on a fresh database', () => {
  it('creates the schema, loads the sample posts and serves them at /blogs/', async () => {
    const env = await newEnv()
    const port = await freePort()
    const child = await startServer({ ...env.env, LOG_LEVEL: 'info' }, { port })
    await waitUntilListening(child)
    expect(child.stdout()).toContain(`Server listening at http://127.0.0.1:${port}`)

    const root = await get(port, '/')
    expect(root.status).toBe(302)
    expect(root.headers.location).toBe('/blogs/')

    const list = await get(port, '/blogs/')
    expect(list.status).toBe(200)
    expect(list.headers['content-type']).toMatch(/text\/html/)
    for (const p of samplePosts) expect(list.body).toContain(p.title.replaceAll("'", '&#39;'))

    const health = await get(port, '/health')
    expect(health.status).toBe(200)
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' })
    const ready = await get(port, '/ready')
    expect(ready.status).toBe(200)

    const [row] = await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `blog`')
    expect(Number(row!.n)).toBe(samplePosts.length)
    const logs = child.logs()
    expect(logs.some((l) => l.msg === 'database migrated')).toBe(true)
    expect(logs.some((l) => l.msg === 'sample posts loaded')).toBe(true)

    child.proc.kill('SIGTERM')
    expect(await waitForExit(child, 15_000)).toEqual({ code: 0, signal: null })
  })
})
