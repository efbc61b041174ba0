import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { otlpEnv, parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, freePort, killAllServers, mapConcurrent, request, startListening, type ServerChild } from '../../kit/server'

// The collector being down must never hurt the app: requests keep succeeding and the logs get a
// warning per distinct problem (rate-limited by otel/sdk.ts), not one per failed export.

const REQUESTS = 200
const CONCURRENCY = 20

let env: TestEnv
const blackHoles: { server: net.Server; sockets: Set<net.Socket> }[] = []

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
})
afterEach(async () => {
  await killAllServers()
})
afterAll(async () => {
  await killAllServers()
  for (const b of blackHoles) {
    for (const s of b.sockets) s.destroy()
    await new Promise((r) => b.server.close(r))
  }
  await env?.cleanup()
})

/** A TCP server that accepts connections and never answers (a hung collector or a firewall). */
async function blackHole(): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((s) => {
    connections++
    sockets.add(s)
    s.on('error', () => undefined)
    s.on('data', () => undefined) // read and ignore
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  blackHoles.push({ server, sockets })
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections }
}

/** Warning lines from the OpenTelemetry diag logger, stdout and stderr together. */
function otelWarnings(child: ServerChild): string[] {
  return (child.stdout() + '\n' + child.stderr()).split('\n').filter((l) => /opentelemetry/i.test(l))
}

/** The diag logger's JSON lines, each problem (message) at most once. */
function expectOneLinePerProblem(warnings: string[]): void {
  const messages = warnings.map((w) => (JSON.parse(w) as { msg: string }).msg)
  for (const m of messages) expect(m).toMatch(/^opentelemetry: /)
  expect(new Set(messages).size, warnings.join('\n')).toBe(messages.length)
}

async function burst(child: ServerChild): Promise<void> {
  const t0 = Date.now()
  const results = await mapConcurrent(Array.from({ length: REQUESTS }), CONCURRENCY, () => request(child.port, '/blogs/'))
  const statuses = results.map((r) => r.status)
  expect(statuses.filter((s) => s !== 200), `statuses: ${[...new Set(statuses)].join(',')}`).toEqual([])
  // Tracing is still on: every response names its trace.
  for (const r of results) expect(() => parseTraceHeader(r.headers.traceresponse)).not.toThrow()
  // Generous: about 1-3 s here; exports blocking requests would take far longer.
  expect(Date.now() - t0).toBeLessThan(20_000)
}

describe('the OTLP endpoint is down', () => {
  it('closed port: 200 requests at concurrency 20 all succeed and the failure is logged once, not per export', async () => {
    const closed = await freePort() // bound, then closed: connections are refused
    const child = await startListening(
      // The exporter retries a refused connection until its timeout: keep that short so the
      // failures (and their reports) happen within the test.
      { ...env.env, ...otlpEnv(`http://127.0.0.1:${closed}`), OTEL_EXPORTER_OTLP_TIMEOUT: '1000', LOG_LEVEL: 'info' },
      { telemetry: true }
    )
    await burst(child)
    // Span exports every 200 ms and metric exports every 500 ms have been failing for seconds.
    await sleep(3000)

    const warnings = otelWarnings(child)
    // Reported (an operator must be able to see it)...
    expect(warnings.length, child.stderr()).toBeGreaterThanOrEqual(1)
    // ...but each distinct problem once, not once per failed export.
    expect(warnings.length, warnings.join('\n')).toBeLessThanOrEqual(3)
    expectOneLinePerProblem(warnings)
    expect((await request(child.port, '/blogs/')).status).toBe(200)
  })

  it('black-holed endpoint (accepts, never answers): requests all succeed and at most a couple of warnings appear', async () => {
    const hole = await blackHole()
    const child = await startListening(
      // A short export timeout, so timeouts happen (and are reported) within the test.
      { ...env.env, ...otlpEnv(`http://127.0.0.1:${hole.port}`), OTEL_EXPORTER_OTLP_TIMEOUT: '1000', LOG_LEVEL: 'info' },
      { telemetry: true }
    )
    await burst(child)
    await sleep(3000)

    // The exporter really was talking to the hole (the test is not passing vacuously).
    expect(hole.connections()).toBeGreaterThan(0)
    const warnings = otelWarnings(child)
    expect(warnings.length, warnings.join('\n')).toBeGreaterThanOrEqual(1)
    expect(warnings.length, warnings.join('\n')).toBeLessThanOrEqual(3)
    expectOneLinePerProblem(warnings)
    // Still serving, and still answering promptly.
    const t0 = Date.now()
    expect((await request(child.port, '/blogs/')).status).toBe(200)
    expect(Date.now() - t0).toBeLessThan(2000)
  })
})
