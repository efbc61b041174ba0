import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../../src/config'
import { COOKIE_NAME } from '../../../src/inspector/auth'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, request, startListening, startServer, waitForExit } from '../../kit/server'

// Who may see /_inspect/: nobody unless INSPECTOR_ENABLED=true, and with INSPECTOR_TOKEN only a
// caller that presents it. The app is built in-process (no OTel bootstrap, so no buffer).

const TOKEN = 'inspector-test-token-0123456789abcdef'
const SOME_TRACE = '/_inspect/traces/0123456789abcdef0123456789abcdef'

describe('a disabled inspector (the default)', () => {
  let env: TestEnv
  let app: FastifyInstance
  beforeAll(async () => {
    env = await createTestEnv({ INSPECTOR_BADGE: 'true' })
    app = await buildApp(env)
  })
  afterAll(async () => {
    await app?.close()
    await env?.cleanup()
  })

  it('answers 404 under /_inspect/', async () => {
    for (const url of ['/_inspect/', '/_inspect/routes', SOME_TRACE, `/_inspect/?token=${TOKEN}`]) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(404)
      expect(res.body).not.toContain('inspector')
    }
  })

  it('puts no badge on pages, even with INSPECTOR_BADGE=true', async () => {
    const res = await app.inject({ url: '/blogs/' })
    expect(res.statusCode).toBe(200)
    expect(res.body).not.toContain('inspector')
  })
})

describe('an inspector behind INSPECTOR_TOKEN', () => {
  let env: TestEnv
  let app: FastifyInstance
  beforeAll(async () => {
    env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN })
    app = await buildApp(env)
  })
  afterAll(async () => {
    await app?.close()
    await env?.cleanup()
  })

  it('answers 401 without the token, for every page under /_inspect/', async () => {
    for (const url of ['/_inspect/', '/_inspect/routes', SOME_TRACE, '/_inspect/no-such-page']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer realm="inspector"')
      expect(res.body).toContain('Token required')
      expect(res.body).not.toContain(TOKEN)
    }
  })

  it('answers 401 to a wrong token, cookie or bearer', async () => {
    const wrong = TOKEN.replace(/.$/, 'X')
    expect((await app.inject({ url: `/_inspect/?token=${wrong}` })).statusCode).toBe(401)
    expect((await app.inject({ url: '/_inspect/', headers: { authorization: `Bearer ${wrong}` } })).statusCode).toBe(401)
    expect((await app.inject({ url: '/_inspect/', headers: { authorization: `Bearer ${TOKEN}x` } })).statusCode).toBe(401)
    expect((await app.inject({ url: '/_inspect/', cookies: { [COOKIE_NAME]: TOKEN } })).statusCode).toBe(401)
  })

  it('accepts Authorization: Bearer', async () => {
    const res = await app.inject({ url: '/_inspect/routes', headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('Routes')
  })

  it('takes ?token= once: sets an HttpOnly cookie (not the token) and redirects to the URL without it', async () => {
    const res = await app.inject({ url: `/_inspect/?sort=slowest&token=${TOKEN}` })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/_inspect/?sort=slowest')
    const cookie = res.cookies.find((c) => c.name === COOKIE_NAME)
    expect(cookie).toMatchObject({ path: '/_inspect', httpOnly: true, sameSite: 'Strict' })
    expect(cookie!.value).not.toContain(TOKEN)

    const next = await app.inject({ url: '/_inspect/?sort=slowest', cookies: { [COOKIE_NAME]: cookie!.value } })
    expect(next.statusCode).toBe(200)
    expect(next.body).toContain('Recent requests')
    // Without the OTel bootstrap in this process there is no buffer: the page says so.
    expect(next.body).toContain('No trace buffer in this process')

    const tampered = cookie!.value.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))
    expect((await app.inject({ url: '/_inspect/', cookies: { [COOKIE_NAME]: tampered } })).statusCode).toBe(401)
  })

  it('leaves the blog alone', async () => {
    expect((await app.inject({ url: '/blogs/' })).statusCode).toBe(200)
  })
})

describe('the server log', () => {
  it('never holds the token, and records denied attempts', async () => {
    assertBuilt()
    const env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN, LOG_LEVEL: 'info' })
    const child = await startListening(env.env)
    try {
      expect((await request(child.port, `/_inspect/?token=${TOKEN}`)).status).toBe(303)
      expect((await request(child.port, { path: '/_inspect/', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
      expect((await request(child.port, '/_inspect/?token=wrong-token-wrong-token')).status).toBe(401)
      expect((await request(child.port, '/blogs/')).status).toBe(200)
      await expect.poll(() => child.logs().some((l) => l.msg === 'request completed')).toBe(true)
      expect(child.stdout()).not.toContain(TOKEN)
      expect(child.stdout()).not.toContain('wrong-token-wrong-token')
      expect(child.logs().filter((l) => String(l.msg).startsWith('inspector: access denied'))).toHaveLength(1)
    } finally {
      await child.kill()
      await env.cleanup()
    }
  })
})

describe('the buffer bounds (read by the OTel bootstrap from the same validated configuration)', () => {
  it('INSPECTOR_MAX_TRACES bounds what the buffer keeps', async () => {
    assertBuilt()
    const env = await createTestEnv({ INSPECTOR_ENABLED: 'true', INSPECTOR_MAX_TRACES: '3', INSPECTOR_MAX_BYTES: '100000' })
    const child = await startListening(env.env, { telemetry: true })
    try {
      for (let i = 0; i < 5; i++) expect((await request(child.port, '/blogs/')).status).toBe(200)
      await expect.poll(async () => (await request(child.port, '/_inspect/')).body).toMatch(/Buffer: 3 of 3 traces · [\d.]+ KiB of 97\.7 KiB · 2 dropped/)
    } finally {
      await child.kill()
      await env.cleanup()
    }
  })

  it('a bad bound stops the server with a message naming it, with the bootstrap loaded', async () => {
    assertBuilt()
    const env = await createTestEnv({ INSPECTOR_ENABLED: 'true' })
    try {
      const child = await startServer({ ...env.env, INSPECTOR_MAX_TRACES: '0' }, { telemetry: true })
      expect((await child.exited).code).toBe(2)
      expect(child.stderr()).toMatch(/INSPECTOR_MAX_TRACES must be >= 1/)
    } finally {
      await env.cleanup()
    }
  })
})

describe('an inspector on a network address', () => {
  it('without INSPECTOR_TOKEN stops the server (exit 2, naming INSPECTOR_TOKEN) before it listens', async () => {
    assertBuilt()
    const env = await createTestEnv({ INSPECTOR_ENABLED: 'true' })
    try {
      // Refused before anything binds: the server never listens on 0.0.0.0.
      const child = await startServer({ ...env.env, HOST: '0.0.0.0', LOG_LEVEL: 'info' }, { telemetry: true })
      expect((await waitForExit(child, 15_000)).code, child.stderr()).toBe(2)
      expect(child.stderr()).toMatch(/^blog_app: .*INSPECTOR_TOKEN must be set.*HOST=0\.0\.0\.0/)
      expect(child.stdout()).not.toContain('Server listening')
    } finally {
      await env.cleanup()
    }
  })

  it('is refused by the configuration for any non-loopback HOST, and allowed on loopback or with a token', () => {
    for (const HOST of ['0.0.0.0', '::', '10.0.0.5', 'blog.internal', '[fd00::1]']) {
      expect(() => loadConfig({ INSPECTOR_ENABLED: 'true', HOST }), HOST).toThrow(/INSPECTOR_TOKEN/)
      expect(loadConfig({ INSPECTOR_ENABLED: 'true', INSPECTOR_TOKEN: TOKEN, HOST }).inspector.enabled).toBe(true)
      expect(loadConfig({ INSPECTOR_ENABLED: 'false', HOST }).inspector.enabled).toBe(false)
    }
    for (const HOST of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(loadConfig({ INSPECTOR_ENABLED: 'true', HOST }).inspector.enabled, HOST).toBe(true)
  })
})

describe('inspector configuration', () => {
  it('refuses a short INSPECTOR_TOKEN or a JAEGER_URL that is not http(s), naming the variable', () => {
    expect(() => loadConfig({ INSPECTOR_TOKEN: 'short' })).toThrow(ConfigError)
    expect(() => loadConfig({ INSPECTOR_TOKEN: 'short' })).toThrow(/INSPECTOR_TOKEN/)
    expect(() => loadConfig({ JAEGER_URL: 'javascript:alert(1)' })).toThrow(/JAEGER_URL/)
  })

  it('is off by default, with a 500-trace and 8 MiB buffer', () => {
    expect(loadConfig({}).inspector).toEqual({ enabled: false, token: '', badge: false, maxTraces: 500, maxBytes: 8 * 1024 * 1024, sessionTtlMs: 12 * 3600 * 1000, jaegerUrl: '' })
    expect(loadConfig({ INSPECTOR_ENABLED: 'true', INSPECTOR_BADGE: 'true', JAEGER_URL: 'http://localhost:16686/' }).inspector).toMatchObject({
      enabled: true,
      badge: true,
      jaegerUrl: 'http://localhost:16686'
    })
  })
})
