import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { anonymousForm, FORM_HEADERS, send, urlencoded } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, killAllServers, startListening, startServer, waitForExit } from '../../kit/server'

// Whose address the app believes. With TRUST_PROXY=true Fastify took the left-most
// X-Forwarded-For entry, which the client writes itself: 40 failed sign-ins with a new address
// in each got no 429. Only the hops the app is told about may speak for the client.

let env: TestEnv

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

describe('TRUST_PROXY=true', () => {
  it('stops the server (exit 2) naming TRUST_PROXY and what to set instead', async () => {
    const child = await startServer({ ...env.env, TRUST_PROXY: 'true', LOG_LEVEL: 'info' })
    expect((await waitForExit(child, 15_000)).code, child.stdout()).toBe(2)
    expect(child.stderr()).toMatch(/^blog_app: Invalid configuration: TRUST_PROXY is true.*number of proxies.*addresses/)
    expect(child.stderr()).not.toMatch(/\n\s+at /)
    expect(child.stdout()).not.toContain('Server listening')
  })
})

describe.each([
  { name: 'no proxy (the default)', trustProxy: 'false', forwardedFor: (i: number) => `203.0.113.${i}` },
  { name: 'a proxy address the client is not', trustProxy: '10.9.9.9', forwardedFor: (i: number) => `203.0.113.${i}` },
  // The caller here is the trusted hop: as nginx does with proxy_add_x_forwarded_for, it appends
  // the address it saw to whatever the client sent; the app takes the last entry only.
  { name: 'one hop, the proxy appending the address it saw', trustProxy: '1', forwardedFor: (i: number) => `203.0.113.${i}, 198.51.100.7` }
])('a client rotating X-Forwarded-For, TRUST_PROXY=$trustProxy ($name)', ({ trustProxy, forwardedFor }) => {
  it('is throttled at LOGIN_MAX_FAILURES failed sign-ins and then by the write limit: 40 failures, 36 of them 429', async () => {
    const server = await startListening({ ...env.env, TRUST_PROXY: trustProxy, WRITE_RATE_LIMIT: '30', LOGIN_MAX_FAILURES: '5' })
    try {
      const anon = await anonymousForm(server.port)
      const email = `victim-${trustProxy.replace(/\W/g, '')}@example.test`
      const statuses: number[] = []
      for (let i = 1; i <= 40; i++) {
        const res = await send(server.port, 'POST', '/account/signin', {
          cookie: anon.cookie,
          headers: { ...FORM_HEADERS, 'x-forwarded-for': forwardedFor(i) },
          body: urlencoded({ _csrf: anon.csrf, email, password: `wrong-${i}` })
        })
        statuses.push(res.status)
      }
      // The 5th failure is the one that throttles; past 30 writes the write limit answers too.
      expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401])
      expect(statuses.slice(4)).toEqual(Array(36).fill(429))
    } finally {
      await server.kill()
    }
  })
})
