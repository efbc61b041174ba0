import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COOKIE_NAME } from '../../../src/inspector/auth'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'

// The inspector's sign-in, as an attacker would try it. Before: `?token=` redirected to
// whatever the path resolved to (`/_inspect/..//evil.example/x` -> //evil.example/x, another
// site), the cookie was a fixed HMAC valid forever, Secure was never set behind a TLS proxy,
// and `/%5finspect/` (routed to the inspector) was traced and kept in its buffer.

const TOKEN = 'inspector-session-token-0123456789abcdef'

describe('signing in with ?token=', () => {
  let env: TestEnv
  let app: FastifyInstance
  beforeAll(async () => {
    env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN, INSPECTOR_SESSION_TTL_S: '1' })
    app = await buildApp(env)
  })
  afterAll(async () => {
    await app?.close()
    await env?.cleanup()
  })

  it('gives a random session that the server ends after INSPECTOR_SESSION_TTL_S, whatever the cookie says', async () => {
    const one = (await app.inject({ url: `/_inspect/?token=${TOKEN}` })).cookies.find((c) => c.name === COOKIE_NAME)!
    const two = (await app.inject({ url: `/_inspect/?token=${TOKEN}` })).cookies.find((c) => c.name === COOKIE_NAME)!
    expect(one.value).not.toBe(two.value)
    expect(one.maxAge).toBe(1)
    expect((await app.inject({ url: '/_inspect/', cookies: { [COOKIE_NAME]: one.value } })).statusCode).toBe(200)
    await sleep(1100)
    // A client that keeps the cookie past its Max-Age is still refused.
    expect((await app.inject({ url: '/_inspect/', cookies: { [COOKIE_NAME]: one.value } })).statusCode).toBe(401)
    expect((await app.inject({ url: '/_inspect/', cookies: { [COOKIE_NAME]: two.value } })).statusCode).toBe(401)
  })
})

describe('the redirect after ?token= (over real HTTP: the path exactly as sent)', () => {
  let env: TestEnv
  let child: ServerChild
  beforeAll(async () => {
    assertBuilt()
    env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN })
    child = await startListening(env.env)
  })
  afterAll(async () => {
    await child?.kill()
    await env?.cleanup()
  })

  it('goes only to an inspector page of this site', async () => {
    for (const path of ['/_inspect/..//evil.example/x', '/_inspect/../..//evil.example', '/_inspect//evil.example/', '/_inspect/%2F%2Fevil.example', '/_inspect/..%2F%2Fevil.example']) {
      const res = await request(child.port, `${path}?token=${TOKEN}`)
      expect(res.status, path).toBe(303)
      const location = String(res.headers.location)
      expect(location, path).toMatch(/^\/_inspect\//)
      expect(new URL(location, 'http://blog.test').host, path).toBe('blog.test')
    }
    const ok = await request(child.port, `/_inspect/routes?sort=slowest&token=${TOKEN}`)
    expect(ok.headers.location).toBe('/_inspect/routes?sort=slowest')
  })
})

describe('behind a TLS proxy', () => {
  const cookieFor = async (trustProxy: string) => {
    assertBuilt()
    const env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN, TRUST_PROXY: trustProxy })
    const child = await startListening(env.env)
    try {
      const res = await request(child.port, { path: `/_inspect/?token=${TOKEN}`, headers: { 'x-forwarded-proto': 'https' } })
      expect(res.status).toBe(303)
      return String(res.headers['set-cookie'])
    } finally {
      await child.kill()
      await env.cleanup()
    }
  }

  it('marks the session cookie Secure when TRUST_PROXY says the proxy speaks for the client', async () => {
    expect(await cookieFor('127.0.0.1')).toMatch(/;\s*Secure/i)
  })

  it('ignores X-Forwarded-Proto from a client that is not a trusted proxy', async () => {
    expect(await cookieFor('false')).not.toMatch(/;\s*Secure/i)
  })
})

describe('an escaped inspector path', () => {
  let env: TestEnv
  let child: ServerChild
  beforeAll(async () => {
    assertBuilt()
    env = await createTestEnv({ INSPECTOR_ENABLED: 'true', LOG_LEVEL: 'info' })
    child = await startListening(env.env, { telemetry: true })
  })
  afterAll(async () => {
    await child?.kill()
    await env?.cleanup()
  })

  it('is routed to the inspector but, like /_inspect/, neither traced nor kept in its buffer', async () => {
    for (const path of ['/%5finspect/', '/%5Finspect/routes', '/_insp%65ct/']) {
      const res = await request(child.port, path)
      expect(res.status, path).toBe(200)
      expect(res.headers.traceresponse, path).toBeUndefined()
    }
    expect((await request(child.port, '/blogs/')).status).toBe(200)
    await expect.poll(async () => (await request(child.port, '/_inspect/')).body).toMatch(/Buffer: 1 of 500 traces/)
  })
})
