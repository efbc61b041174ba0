import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, storedFiles, type TestEnv } from '../../kit/app'
import { endlessPart, multipart, pngFile, postForm } from '../../kit/form'
import { countRows, unique } from '../../kit/posts'
import { LINGER_BYTES } from '../../../src/plugins/request-guard'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'

// Upload volume a client can make the server take. Before: 80 parallel 5 MiB uploads were all
// accepted (no per-client limit), and a chunked body (no Content-Length to refuse up front) of
// one unterminated part was read to its end, 1.5 GB of it.

const MAX_UPLOAD = 64 * 1024
const CAP = MAX_UPLOAD + 1024 * 1024 // the image plus room for the fields (request-guard)
let env: TestEnv
let server: ServerChild
// Writes need an account: the limits are about what a signed-in client can send.
let writer: Account

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
  server = await startListening({ ...env.env, LOG_LEVEL: 'info', MAX_UPLOAD_BYTES: String(MAX_UPLOAD), WRITE_RATE_LIMIT: '6' })
  writer = await signUp(server.port)
})
afterAll(async () => {
  await server?.kill()
  await env?.cleanup()
})

describe('a chunked body with a part that never ends', () => {
  it.each(['file', 'field'] as const)('(%s part) gets a 413 and the connection is closed near the cap, not read to the end', async (part) => {
    const total = 64 * 1024 * 1024
    const { head, sent } = await endlessPart(server.port, writer.cookie, part, total)
    expect(head).toMatch(/^HTTP\/1\.1 413/)
    expect(head).toMatch(/connection: close/i)
    // What the sockets' buffers hold on top of the cap and what is dropped before the close
    // (request-guard's LINGER_BYTES), not the 64 MiB offered.
    expect(sent).toBeLessThan(CAP + LINGER_BYTES + 16 * 1024 * 1024)
    expect(await countRows(env)).toBe(0)
  }, 30_000)
})

describe('a form of many tiny parts', () => {
  it('is refused naming the limit it hit, not the upload size', async () => {
    const fields = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, 'x']))
    const body = await multipart({ _csrf: writer.csrf, ...fields })
    const res = await request(server.port, { method: 'POST', path: '/blogs/new', headers: { ...body.headers, cookie: writer.cookie, accept: 'application/json' }, body: body.payload })
    expect(res.status).toBe(413)
    // Fields run out first (10 of the 12 parts): that is the limit named.
    expect(JSON.parse(res.body)).toEqual({ code: 'FST_FIELDS_LIMIT', message: 'The form has too many fields (at most 10).' })
  })
})

describe('writes per client (WRITE_RATE_LIMIT=6 a minute)', () => {
  it('answers 429 with Retry-After past the limit, before reading the upload, and stores nothing for it', async () => {
    const before = await countRows(env)
    const statuses: number[] = []
    let refused: Awaited<ReturnType<typeof request>> | undefined
    for (let i = 0; i < 6; i++) {
      const res = await postForm(server.port, '/blogs/new', { title: unique('Volume'), content: 'One of many.' }, { image_file: pngFile() }, { as: writer })
      statuses.push(res.status)
      if (res.status === 429) refused = res
    }
    // Spent so far: the sign-up, the two chunked bodies and the form of parts (the limit is
    // checked before a body is read, whatever becomes of it): two writes left.
    expect(statuses).toEqual([303, 303, 429, 429, 429, 429])
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThan(0)
    expect(refused!.headers['content-security-policy']).toBeDefined()
    expect(refused!.body).toContain('Too many changes from your address')
    const accepted = statuses.filter((s) => s === 303).length
    expect(await countRows(env)).toBe(before + accepted)
    expect(await storedFiles(env.uploadDir)).toHaveLength(before + accepted)

    // Reads are not limited.
    expect((await request(server.port, '/blogs/')).status).toBe(200)
    const shed = server.logs().filter((l) => l.msg === 'request shed' && l.code === 'RATE_LIMITED')
    expect(shed.length).toBeGreaterThanOrEqual(2)
  })
})

describe('sign-up and sign-in', () => {
  it('share the per-client budget (each costs a password hash): past it, 429 before any hashing', async () => {
    const t0 = performance.now()
    const res = await request(server.port, { method: 'POST', path: '/account/signup', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=x%40example.test&display_name=X&password=long-enough-password' })
    expect(res.status).toBe(429)
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    expect(performance.now() - t0).toBeLessThan(1000)
    expect((await request(server.port, { method: 'POST', path: '/account/signin', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=x%40example.test&password=whatever-it-is' })).status).toBe(429)
  })
})
