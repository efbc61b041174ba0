import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { OtlpReceiver, parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, killAllServers, request, startListening } from '../../kit/server'

// OTEL_TRACES_SAMPLER=always_off: no trace is ever kept, so requests record no work (the app
// skips it), yet each still gets its trace id (traceresponse, log lines) and is counted in the
// metrics.

let env: TestEnv
let receiver: OtlpReceiver

beforeAll(async () => {
  assertBuilt()
  receiver = await OtlpReceiver.start()
  env = await createTestEnv()
})
afterAll(async () => {
  await killAllServers()
  await receiver?.close()
  await env?.cleanup()
})

describe('OTEL_TRACES_SAMPLER=always_off', () => {
  it('keeps no trace, not even a slow or failed one, and still names each trace and counts each request', async () => {
    receiver.reset()
    const child = await startListening(
      // Every request over this threshold would be kept under any other sampler.
      { ...env.env, ...receiver.env(), OTEL_TRACES_SAMPLER: 'always_off', TRACE_KEEP_SLOWER_THAN_MS: '0.01', LOG_LEVEL: 'info' },
      { telemetry: true }
    )
    const traceIds: string[] = []
    for (const path of ['/blogs/', '/blogs/show/999999', '/blogs/']) {
      const res = await request(child.port, path)
      expect(res.status, path).toBe(path.includes('999999') ? 404 : 200)
      expect(res.headers['server-timing'], path).toMatch(/db;dur=[\d.]+;desc="1 query"/)
      const { traceId, flags } = parseTraceHeader(res.headers.traceresponse)
      expect(flags, path).toBe('00')
      traceIds.push(traceId)
    }
    expect(new Set(traceIds).size).toBe(3)

    // Counted: the duration histogram has the list page twice.
    const http = await receiver.waitForMetric('http.server.request.duration', (m) =>
      m.points.some((p) => p.attributes['http.route'] === '/blogs/' && (p.count ?? 0) >= 2)
    )
    expect(http.points.length).toBeGreaterThan(0)
    // Several span export intervals (200 ms): nothing was kept.
    await sleep(1000)
    expect(receiver.spans.filter((s) => traceIds.includes(s.traceId))).toEqual([])

    const lines = child.logs().filter((l) => l.msg === 'request completed' && traceIds.includes(String(l.trace_id)))
    expect(lines).toHaveLength(3)
    for (const l of lines) expect(l.trace_flags).toBe('00')
  })
})
