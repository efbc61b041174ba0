import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { OtlpReceiver, parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, killAllServers, request, startListening } from '../../kit/server'

let env: TestEnv
let receiver: OtlpReceiver

beforeAll(async () => {
  assertBuilt()
  receiver = await OtlpReceiver.start()
  env = await createTestEnv()
})
afterEach(async () => {
  await killAllServers()
})
afterAll(async () => {
  await killAllServers()
  await receiver?.close()
  await env?.cleanup()
})

/** Lines on stdout or stderr that come from the SDK's diag logger (or any OpenTelemetry complaint). */
const otelLines = (text: string) => text.split('\n').filter((l) => /opentelemetry/i.test(l))

describe('OTEL_SDK_DISABLED=true', () => {
  it('serves normally, answers no traceresponse and sends nothing even with an endpoint configured', async () => {
    receiver.reset()
    const child = await startListening(
      { ...env.env, ...receiver.env(), OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'info' },
      { telemetry: true }
    )
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` ORDER BY `id` LIMIT 1')
    for (const path of ['/blogs/', `/blogs/show/${row!.id}`, '/blogs/show/999999', '/account/signin']) {
      const res = await request(child.port, path)
      expect(res.status, path).toBe(path.endsWith('999999') ? 404 : 200)
      expect(res.headers.traceresponse, path).toBeUndefined()
      // The app's own timing headers do not depend on OpenTelemetry.
      expect(res.headers['x-process-time'], path).toMatch(/^\d+\.\d{2}ms$/)
      expect(res.headers['server-timing'], path).toMatch(/total;dur=/)
    }
    // Several span (200 ms) and metric (500 ms) export intervals.
    await sleep(1500)
    expect(receiver.requests).toEqual([])

    // No trace ids in the logs either: the logger gets no trace-id mixin.
    const requestLines = child.logs().filter((l) => typeof l.reqId === 'string')
    expect(requestLines.length).toBeGreaterThan(0)
    for (const l of requestLines) expect(l.trace_id).toBeUndefined()
    expect(otelLines(child.stdout() + child.stderr())).toEqual([])
  })

  it('with the receiver still there, the same server with the SDK enabled does export (the check above can fail)', async () => {
    receiver.reset()
    const child = await startListening({ ...env.env, ...receiver.env(), LOG_LEVEL: 'info' }, { telemetry: true })
    const res = await request(child.port, '/blogs/')
    expect(res.status).toBe(200)
    const { traceId } = parseTraceHeader(res.headers.traceresponse)
    await receiver.waitForTrace(traceId)
    expect(receiver.requests.some((r) => r.path === '/v1/traces')).toBe(true)
  })
})

describe('no OTLP endpoint configured', () => {
  it('still traces (traceresponse, trace ids in logs) but exports nothing and logs no OpenTelemetry warning', async () => {
    receiver.reset()
    // No endpoint and no exporter chosen. The batch/interval settings are not an endpoint: they
    // only make a default exporter (to localhost:4318, most likely closed) try, and fail, quickly.
    const child = await startListening(
      { ...env.env, LOG_LEVEL: 'info', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_METRIC_EXPORT_INTERVAL: '500' },
      { telemetry: true }
    )
    const res = await request(child.port, '/blogs/')
    expect(res.status).toBe(200)
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
    expect(res.headers['x-process-time']).toBeDefined()

    // Several export intervals: a failing default export would have complained by now.
    await sleep(1500)
    const lines = child.logs().filter((l) => l.trace_id === traceId)
    expect(lines.map((l) => l.msg)).toContain('request completed')
    for (const l of lines) expect(l.span_id).toBe(spanId)

    expect(otelLines(child.stdout() + child.stderr())).toEqual([])
    expect(child.stderr()).not.toMatch(/error|ECONNREFUSED|export/i)
    // Nothing reached a receiver no one pointed it at (a sanity check of the receiver, not a proof).
    expect(receiver.requests).toEqual([])
  })
})
