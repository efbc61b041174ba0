import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, killAllServers, request, startListening, type ServerChild } from '../../kit/server'

// A path Fastify's router cannot decode used to get Fastify's own bare JSON 400: no security
// headers, no timing, no trace, no log line. A real socket, because inject would not send it as is.

let env: TestEnv
let server: ServerChild

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false', LOG_LEVEL: 'info' })
  server = await startListening(env.env, { telemetry: true })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

describe('a URL with broken percent-encoding', () => {
  for (const path of ['/%ff', '/blogs/show/%ff', '/blogs/%E0%A4%A', '/%ff?page=2']) {
    it(`answers ${path} with the app's 400 page and every header a response carries`, async () => {
      const res = await request(server.port, path)
      expect(res.status).toBe(400)
      expect(res.headers['content-type']).toMatch(/^text\/html/)
      expect(res.body).toContain('The address is not valid')
      expect(res.headers['content-security-policy']).toContain("default-src 'self'")
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{2}ms$/)
      expect(res.headers['server-timing']).toMatch(/total;dur=/)
      expect(res.headers.traceresponse).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    })
  }

  it('answers JSON clients with { message, code }', async () => {
    const res = await request(server.port, { path: '/%ff', headers: { accept: 'application/json' } })
    expect(res.status).toBe(400)
    expect(JSON.parse(res.body)).toEqual({ code: 'BAD_URL', message: expect.stringContaining('not valid') })
  })

  it('writes one request log line with the status and trace id, and keeps serving', async () => {
    const res = await request(server.port, '/%fe%fe')
    const traceId = String(res.headers.traceresponse).split('-')[1]
    // The line is written after the response is sent.
    await expect.poll(() => server.logs().find((l) => l.msg === 'request completed' && l.trace_id === traceId), { timeout: 2000 }).toBeTruthy()
    const line = server.logs().find((l) => l.msg === 'request completed' && l.trace_id === traceId)!
    expect(line.res).toEqual({ statusCode: 400 })
    // The escaped form: unambiguous, and what the 400 was about.
    expect((line.req as { url: string }).url).toBe('/%25fe%25fe')
    expect((await request(server.port, '/health')).status).toBe(200)
  })
})
