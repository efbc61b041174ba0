import { randomUUID } from 'node:crypto'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { timed } from '../../kit/faults'
import { multipart } from '../../kit/form'
import { countRows } from '../../kit/posts'
import { assertBuilt, freePort, killAllServers, request, startListening, type ServerChild } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'

// STORAGE=s3 with a store that accepts connections and never answers, or refuses them. No real
// store is needed: before, an upload and an image GET hung until the socket timeout (35 s) and
// were reset with no answer and no log line, /ready stayed 200, and a refused connection made
// the image GET a 500. Now each store call gives up after S3_TIMEOUT_MS (x3 attempts).

const TIMEOUT_MS = 300
/** What the client waits at most: far above 3 attempts of TIMEOUT_MS plus the SDK's backoff. */
const CLIENT_LIMIT_MS = 8000

/** A TCP server that accepts connections and reads, and never writes a byte (or answers 200 when told to). */
async function silentStore(): Promise<{ port: number; connections(): number; answer: boolean; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const store = {
    port: 0,
    connections: () => accepted,
    answer: false,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    }
  }
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    socket.on('data', () => {
      if (store.answer) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  store.port = (server.address() as net.AddressInfo).port
  return store
}

const s3Env = (port: number) => ({
  STORAGE: 's3',
  S3_BUCKET: 'blog-images',
  S3_ENDPOINT: `http://127.0.0.1:${port}`,
  S3_FORCE_PATH_STYLE: 'true',
  S3_TIMEOUT_MS: String(TIMEOUT_MS),
  AWS_ACCESS_KEY_ID: 'test-key',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
  AWS_REGION: 'us-east-1',
  LOG_LEVEL: 'info',
  // Only so that the old code (no store timeouts) fails in bounded time.
  REQUEST_TIMEOUT_MS: '10000'
})

let env: TestEnv
beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

/** The log lines of the request to `url` that failed: the error line and the request line. */
function failureLines(server: ServerChild, url: string) {
  const logs = server.logs()
  const line = logs.find((l) => (l.req as { url?: string } | undefined)?.url === url && l.msg === 'request completed')
  const error = logs.find((l) => l.reqId === line?.reqId && l.msg === 'request failed')
  return { line, error }
}

describe('an object store that accepts connections and never answers', () => {
  let store: Awaited<ReturnType<typeof silentStore>>
  let server: ServerChild
  beforeAll(async () => {
    store = await silentStore()
    server = await startListening({ ...env.env, ...s3Env(store.port) })
  })
  afterAll(async () => {
    await server?.kill()
    await store?.close()
  })

  it('GET of an image answers 503 with Retry-After within 3 attempts, and logs the failure', async () => {
    const url = `/static/uploads/${randomUUID()}.png`
    const res = await timed(server.port, 'image', { path: url }, CLIENT_LIMIT_MS)
    expect(res.status, res.body).toBe(503)
    expect(res.retryAfter).toBe('5')
    expect(res.ms).toBeLessThan(CLIENT_LIMIT_MS / 2)
    expect(res.body).toContain('Images cannot be shown right now.')
    await expect.poll(() => failureLines(server, url).error).toMatchObject({ level: 50, err: { code: 'IMAGE_STORE_UNAVAILABLE' } })
    expect(failureLines(server, url).line).toMatchObject({ res: { statusCode: 503 } })
    expect(store.connections()).toBeGreaterThan(0)
  })

  it('an upload answers 503 and saves no row', async () => {
    const author = await signUp(server.port)
    const before = await countRows(env)
    const form = await multipart({ _csrf: author.csrf, title: `Silent store ${randomUUID()}`, content: 'Never stored.' }, { image_file: { data: PNG_1x1, filename: 'p.png', type: 'image/png' } })
    const res = await timed(server.port, 'upload', { method: 'POST', path: '/blogs/new', headers: { ...form.headers, cookie: author.cookie }, body: form.payload }, CLIENT_LIMIT_MS)
    expect(res.status, res.body).toBe(503)
    expect(res.body).toContain('Images cannot be stored right now.')
    expect(res.ms).toBeLessThan(CLIENT_LIMIT_MS / 2)
    expect(await countRows(env)).toBe(before)
  })

  it('/ready answers 503 naming the store while /health stays 200, and 200 once the store answers', async () => {
    const ready = await timed(server.port, 'ready', { path: '/ready' }, CLIENT_LIMIT_MS)
    expect(ready.status).toBe(503)
    expect(ready.ms).toBeLessThan(3000)
    expect(JSON.parse(ready.body)).toEqual({ status: 'unavailable', message: 'Image store unreachable' })
    expect((await request(server.port, '/health')).status).toBe(200)
    // Log lines are written in batches (LOG_FLUSH_MS): wait for it rather than race the flush.
    await expect.poll(() => server.logs().some((l) => l.msg === 'readiness check failed'), { timeout: 2000, interval: 50 }).toBe(true)
    // The outcome is reused for 2 s: a second probe right away costs no store call.
    const connections = store.connections()
    expect((await timed(server.port, 'ready', { path: '/ready' }, CLIENT_LIMIT_MS)).status).toBe(503)
    expect(store.connections()).toBe(connections)
    store.answer = true
    await expect.poll(async () => (await request(server.port, '/ready')).status, { timeout: 6000, interval: 250 }).toBe(200)
  })
})

describe('an object store that refuses connections', () => {
  let server: ServerChild
  beforeAll(async () => {
    const port = await freePort() // nothing listens there
    server = await startListening({ ...env.env, ...s3Env(port) })
  })
  afterAll(() => server?.kill())

  it('GET of an image answers 503 (it was 500) and /ready 503', async () => {
    const url = `/static/uploads/${randomUUID()}.png`
    const res = await timed(server.port, 'image', { path: url }, CLIENT_LIMIT_MS)
    expect(res.status, res.body).toBe(503)
    await expect.poll(() => failureLines(server, url).error).toMatchObject({ err: { code: 'IMAGE_STORE_UNAVAILABLE' } })
    expect((await timed(server.port, 'ready', { path: '/ready' }, CLIENT_LIMIT_MS)).status).toBe(503)
  })
})
