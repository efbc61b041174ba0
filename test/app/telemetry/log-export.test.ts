import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { OtlpReceiver, parseTraceHeader } from '../../kit/otlp-receiver'
import { assertBuilt, killAllServers, request, startListening } from '../../kit/server'

// Trace ids reach log lines through the app's own pino mixin (src/telemetry/log-correlation.ts);
// the pino instrumentation is loaded only to send log records, when OTEL_LOGS_EXPORTER asks.

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

type LogRecordJson = { traceId?: string; spanId?: string; body?: { stringValue?: string }; attributes?: { key: string; value: { stringValue?: string } }[] }

/** The log records exported so far (OTLP/JSON). */
function exportedLogs(): LogRecordJson[] {
  return receiver.requests
    .filter((r) => r.path === '/v1/logs' && r.body !== '')
    .flatMap((r) => {
      const body = JSON.parse(r.body) as { resourceLogs?: { scopeLogs?: { logRecords?: LogRecordJson[] }[] }[] }
      return (body.resourceLogs ?? []).flatMap((rl) => (rl.scopeLogs ?? []).flatMap((sl) => sl.logRecords ?? []))
    })
}

describe('OTEL_LOGS_EXPORTER=otlp', () => {
  it("exports each request's log line as a log record in its trace, and the line on stdout keeps its trace ids", async () => {
    receiver.reset()
    const child = await startListening(
      { ...env.env, ...receiver.env(), OTEL_LOGS_EXPORTER: 'otlp', OTEL_BLRP_SCHEDULE_DELAY: '200', LOG_LEVEL: 'info' },
      { telemetry: true }
    )
    const res = await request(child.port, '/blogs/')
    expect(res.status).toBe(200)
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)

    let record: LogRecordJson | undefined
    for (let i = 0; i < 50 && !record; i++) {
      record = exportedLogs().find((l) => l.body?.stringValue === 'request completed' && l.traceId === traceId)
      if (!record) await sleep(100)
    }
    expect(record, JSON.stringify(exportedLogs().slice(0, 3))).toBeDefined()
    expect(record!.spanId).toBe(spanId)

    const line = child.logs().find((l) => l.msg === 'request completed' && l.trace_id === traceId)
    expect(line, 'the stdout line with the same trace id').toBeDefined()
    expect(line!.span_id).toBe(spanId)
  })
})
