import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { countRows } from '../../kit/posts'
import { securityHeaders } from '../../../src/plugins/security'
import { assertBuilt, killAllServers, request, startListening, type ServerChild } from '../../kit/server'

// Hostile requests that only a real socket can carry (inject normalises paths and has no
// header limits), against the compiled server.

let env: TestEnv
let server: ServerChild

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
  // Log lines are read by the parser-refusal tests.
  server = await startListening({ ...env.env, LOG_LEVEL: 'info' })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

/** Writes raw bytes, returns whatever the server answers before closing (or after 3 s). */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: server.port })
    let answer = ''
    const done = () => {
      socket.destroy()
      resolve(answer)
    }
    socket.setEncoding('latin1').on('data', (d: string) => {
      answer += d
      // One response is enough (the server may keep the socket open).
      if (/\r\n\r\n/.test(answer) && (/content-length: 0\r\n/i.test(answer) || /<\/html>|\}$/.test(answer))) done()
    })
    socket.on('error', done)
    socket.on('close', done)
    socket.setTimeout(3000, done)
    socket.write(bytes)
  })
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)

/** A raw answer's header (lower-case name), or undefined. */
const headerOf = (answer: string, name: string) =>
  answer.slice(0, answer.indexOf('\r\n\r\n')).split('\r\n').find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim()

async function stillServes(): Promise<void> {
  expect((await request(server.port, '/health')).status).toBe(200)
  expect((await request(server.port, '/blogs/')).status).toBe(200)
}

describe('giant or malformed requests', () => {
  it('refuses a 64 KiB header, 2000 headers and a 32 KiB URL with 431, and keeps serving', async () => {
    expect(statusOf(await raw(`GET /blogs/ HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`))).toBe(431)
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')
    expect(statusOf(await raw(`GET /blogs/ HTTP/1.1\r\nHost: localhost\r\n${many}\r\n`))).toBe(431)
    expect(statusOf(await raw(`GET /blogs/?q=${'a'.repeat(32 * 1024)} HTTP/1.1\r\nHost: localhost\r\n\r\n`))).toBe(431)
    await stillServes()
  })

  it('answers garbage, a bad request line or a lying Content-Length with 400, and keeps serving', async () => {
    for (const bytes of [
      'HELLO\r\n\r\n',
      'GET /blogs/ HTTP/9.9\r\nHost: localhost\r\n\r\n',
      'GET /blogs/\u0000 HTTP/1.1\r\nHost: localhost\r\n\r\n',
      'POST /blogs/new HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n',
      'POST /blogs/new HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) // a TLS ClientHello
    ]) {
      expect(statusOf(await raw(bytes)), JSON.stringify(bytes.toString().slice(0, 40))).toBe(400)
    }
    await stillServes()
  })

  it('a multipart part with a 100 KiB header is refused and stores nothing', async () => {
    const boundary = 'b0undary'
    const author = await signUp(server.port)
    const body =
      `--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${author.csrf}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="title"; x="${'y'.repeat(100 * 1024)}"\r\n\r\nTitle\r\n--${boundary}--\r\n`
    const before = await countRows(env)
    const answer = await raw(
      `POST /blogs/new HTTP/1.1\r\nHost: localhost\r\nCookie: ${author.cookie}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    )
    expect([400, 413]).toContain(statusOf(answer))
    expect(answer).not.toMatch(/\n\s+at /)
    expect(await countRows(env)).toBe(before)
    await stillServes()
  })
})

describe('what the HTTP parser refuses is answered by the app', () => {
  // Before, Fastify's default wrote bare JSON (no CSP, no X-Process-Time) and logged at trace.
  const refusals: [string, (mark: string) => string, number][] = [
    ['Transfer-Encoding with Content-Length', (m) => `POST /blogs/new?${m} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
    ['two Content-Length headers', (m) => `POST /account/signin?${m} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc`, 400],
    ['a 64 KiB header', (m) => `GET /blogs/?${m} HTTP/1.1\r\nHost: localhost\r\nX-Big: ${m}${'a'.repeat(64 * 1024)}\r\n\r\n`, 431],
    ['a bad request line', (m) => `GET /blogs/ ${m}\r\nHost: localhost\r\n\r\n`, 400],
    ['a header without a colon', (m) => `GET /blogs/ HTTP/1.1\r\nHost: localhost\r\n${m}\r\n\r\n`, 400]
  ]

  it.each(refusals)('%s: the security headers, X-Process-Time, Connection: close and one log line without the bytes', async (_name, bytes, status) => {
    const mark = `mark${randomBytes(6).toString('hex')}`
    const refused = () => server.logs().filter((l) => l.msg === 'request refused by the HTTP parser')
    const before = refused().length
    const answer = await raw(bytes(mark))
    expect(statusOf(answer), answer.slice(0, 300)).toBe(status)
    for (const [name, value] of Object.entries(securityHeaders())) expect(headerOf(answer, name), name).toBe(value)
    expect(headerOf(answer, 'x-process-time')).toMatch(/^\d+\.\d\dms$/)
    expect(headerOf(answer, 'connection')).toBe('close')
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: status === 431 ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST' })
    await expect.poll(() => refused().length).toBe(before + 1)
    const line = refused().at(-1)!
    expect(line).toMatchObject({ level: 30, res: { statusCode: status } })
    expect(line.code).toMatch(/^HPE_/)
    expect(server.stdout()).not.toContain(mark)
    await stillServes()
  })
})

describe('paths inject would normalise', () => {
  it.each([
    '/blogs/show/..',
    '/blogs/show/%2e%2e',
    '/blogs/show/.',
    '/blogs/show/1%2F2',
    '/blogs/show/..%2F..%2Fpackage.json',
    '/blogs/show/%2F%2F',
    '/blogs/modify/../../package.json',
    '/blogs/show/1/../2',
    '/blogs/show/%00',
    '/blogs/show/%ff',
    '/blogs/show/Infinity',
    '//blogs//show//1'
  ])('GET %s is a 400 or 404 page, never a file or a 500', async (path) => {
    const answer = await raw(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    const status = statusOf(answer)
    expect([400, 404], answer.slice(0, 300)).toContain(status)
    expect(answer).not.toContain('"name": "blog_app"')
  })

  it('DELETE with dot segments or encoded slashes deletes nothing', async () => {
    const before = await countRows(env)
    for (const path of ['/blogs/delete/..', '/blogs/delete/%2e%2e', '/blogs/delete/1%2F..', '/blogs/delete/Infinity']) {
      const status = statusOf(await raw(`DELETE ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`))
      expect([400, 404], path).toContain(status)
    }
    expect(await countRows(env)).toBe(before)
  })
})
