import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { assertBuilt, freePort, killAllServers, processTimeOf, request, startServer, waitForExit, waitUntilListening } from '../../kit/server'

// The buffered log (LOG_FLUSH_MS, on by default) as `npm start` runs it: the other tests of the
// compiled server turn it off to read each line as soon as its response arrives.

const envs: TestEnv[] = []
beforeAll(() => {
  assertBuilt()
})
afterEach(killAllServers)
afterAll(async () => {
  for (const env of envs.splice(0)) await env.cleanup()
})

/** The request lines of the pages this test asks for (waitUntilListening's probes are logged too). */
const completed = (lines: Record<string, unknown>[]) =>
  lines.filter((l) => l.msg === 'request completed' && String((l.req as { url?: string } | undefined)?.url).startsWith('/blogs/'))

/** The compiled server on a database of its own, logging at info with this LOG_FLUSH_MS. */
async function serve(logFlushMs: string) {
  const env = await createTestEnv()
  envs.push(env)
  const port = await freePort()
  const child = await startServer({ ...env.env, LOG_LEVEL: 'info', LOG_FLUSH_MS: logFlushMs }, { port })
  await waitUntilListening(child)
  return { port, child }
}

describe('buffered request log', () => {
  it('writes each line within LOG_FLUSH_MS and loses none at a graceful exit', async () => {
    const { port, child } = await serve('300')

    // One line is far below the 4 KiB that forces a write: the timer flushes it.
    expect((await request(port, '/blogs/')).status).toBe(200)
    await expect.poll(() => completed(child.logs()).length, { timeout: 2000, interval: 50 }).toBe(1)

    // Lines still in the buffer when SIGTERM comes are written before the process ends.
    const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => request(port, `/blogs/?page=${i + 1}`).then((r) => r.status)))
    expect(statuses.every((s) => s === 200)).toBe(true)
    child.proc.kill('SIGTERM')
    expect(await waitForExit(child, 15_000)).toEqual({ code: 0, signal: null })
    const lines = child.logs()
    expect(completed(lines)).toHaveLength(21)
    expect(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toBe(true)
    // Whole lines: every one parsed as JSON (a torn write would not).
    expect(child.stdout().trim().split('\n')).toHaveLength(lines.length)
  })
})

describe('what a request line says', () => {
  it('names the route, method, url and status, and never a cookie, a token or a Set-Cookie value', async () => {
    const { port, child } = await serve('0')

    // A well-formed session cookie the server does not know (it answers with a Set-Cookie that
    // clears it), a flash cookie, and a bearer token: on a page, and on the one API-token route,
    // where a wrong token is a 401 the error handler logs too.
    const session = 'S3cretSessionValue_0123456789abcdefghijklmn'
    const token = 'T0kenThatMustNotBeLogged-42'
    const headers = { cookie: `blog_session=${session}; flash=created`, authorization: `Bearer ${token}` }
    const page = await request(port, { path: '/blogs/?page=1', headers })
    expect(page.status).toBe(200)
    expect(String(page.headers['set-cookie'])).toMatch(/blog_session=;/)
    const api = await request(port, { method: 'DELETE', path: '/blogs/delete/1', headers })
    expect(api.status).toBe(401)

    await expect.poll(() => completed(child.logs()).length, { timeout: 2000, interval: 50 }).toBe(2)
    const [list, remove] = completed(child.logs())
    expect(list).toMatchObject({ route: '/blogs/', req: { method: 'GET', url: '/blogs/?page=1' }, res: { statusCode: 200 } })
    // The same number the client saw in X-Process-Time (one clock per request).
    expect(list!.responseTime).toBe(processTimeOf(page))
    expect(remove!.responseTime).toBe(processTimeOf(api))
    expect(remove).toMatchObject({ route: '/blogs/delete/:id', req: { method: 'DELETE', url: '/blogs/delete/1' }, res: { statusCode: 401 } })
    const all = child.stdout()
    expect(all).not.toContain(session)
    expect(all).not.toContain(token)
    expect(all.toLowerCase()).not.toContain('set-cookie')
  })
})
