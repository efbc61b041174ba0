import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { idToHex, OtlpReceiver, parseTraceHeader } from '../kit/otlp-receiver'
import { request } from '../kit/server'

// The test receiver itself: the telemetry tests are only as good as its decoding.

let receiver: OtlpReceiver
beforeAll(async () => {
  receiver = await OtlpReceiver.start()
})
afterAll(async () => {
  await receiver?.close()
})

const traceHex = '5b8efff798038103d269b633813fc60c'
const spanHex = 'eee19b7ec3c1b174'

function post(path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }, encode = (b: string): Buffer | string => b) {
  return request(receiver.port, { method: 'POST', path, headers, body: encode(JSON.stringify(body)) })
}

describe('the OTLP/JSON test receiver', () => {
  it('decodes ids given as hex (the OTLP/JSON rule) or base64, and every attribute value type', async () => {
    receiver.reset()
    const res = await post('/v1/traces', {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
          scopeSpans: [
            {
              scope: { name: 'scope-a' },
              spans: [
                {
                  traceId: traceHex,
                  spanId: spanHex,
                  name: 'hex ids',
                  kind: 2,
                  startTimeUnixNano: '1700000000000000001',
                  endTimeUnixNano: '1700000000500000001',
                  attributes: [
                    { key: 's', value: { stringValue: 'x' } },
                    { key: 'i', value: { intValue: '42' } },
                    { key: 'n', value: { intValue: 7 } },
                    { key: 'big', value: { intValue: '9007199254740993' } },
                    { key: 'd', value: { doubleValue: 0.5 } },
                    { key: 'b', value: { boolValue: true } },
                    { key: 'a', value: { arrayValue: { values: [{ stringValue: 'p' }, { intValue: '1' }] } } },
                    { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { stringValue: 'v' } }] } } }
                  ],
                  status: { code: 2, message: 'boom' },
                  events: [{ name: 'exception', timeUnixNano: '1700000000100000000', attributes: [{ key: 'exception.type', value: { stringValue: 'E' } }] }]
                },
                {
                  traceId: Buffer.from(traceHex, 'hex').toString('base64'),
                  spanId: Buffer.from('0102030405060708', 'hex').toString('base64'),
                  parentSpanId: Buffer.from(spanHex, 'hex').toString('base64'),
                  name: 'base64 ids'
                }
              ]
            }
          ]
        }
      ]
    })
    expect(res.status).toBe(200)
    const spans = receiver.trace(traceHex)
    expect(spans.map((s) => s.name)).toEqual(['hex ids', 'base64 ids'])
    const [a, b] = spans
    expect(a).toMatchObject({
      spanId: spanHex,
      parentSpanId: undefined,
      kind: 2,
      scope: 'scope-a',
      resource: { 'service.name': 'svc' },
      attributes: { s: 'x', i: 42, n: 7, big: 9007199254740993n, d: 0.5, b: true, a: ['p', 1], kv: { inner: 'v' } },
      status: { code: 2, message: 'boom' },
      startNs: 1700000000000000001n,
      endNs: 1700000000500000001n
    })
    expect(a!.events).toEqual([{ name: 'exception', timeNs: 1700000000100000000n, attributes: { 'exception.type': 'E' } }])
    expect(b).toMatchObject({ spanId: '0102030405060708', parentSpanId: spanHex })
    expect(() => idToHex('not an id', 8)).toThrow()
  })

  it('decodes sum, gauge and histogram metrics, gzip bodies too', async () => {
    receiver.reset()
    const body = {
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              scope: { name: 'm' },
              metrics: [
                { name: 'c', unit: '{x}', sum: { dataPoints: [{ asInt: '3', attributes: [{ key: 'k', value: { stringValue: 'v' } }] }] } },
                { name: 'g', unit: 'By', gauge: { dataPoints: [{ asDouble: 1.5 }] } },
                { name: 'h', unit: 's', histogram: { dataPoints: [{ count: '2', sum: 0.3, min: 0.1, max: 0.2 }] } }
              ]
            }
          ]
        }
      ]
    }
    const res = await post('/v1/metrics', body, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, (s) => gzipSync(s))
    expect(res.status).toBe(200)
    expect(receiver.metricNames()).toEqual(['c', 'g', 'h'])
    expect(receiver.latestMetric('c')).toMatchObject({ type: 'sum', unit: '{x}', points: [{ value: 3, attributes: { k: 'v' } }] })
    expect(receiver.latestMetric('g')?.points[0]?.value).toBe(1.5)
    expect(receiver.latestMetric('h')?.points[0]).toMatchObject({ count: 2, sum: 0.3, min: 0.1, max: 0.2 })
    await expect(receiver.waitForMetric('missing', undefined, 100)).rejects.toThrow(/metrics seen: c, g, h/)
  })

  it('refuses protobuf loudly (415) instead of recording nothing', async () => {
    const res = await request(receiver.port, {
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      body: Buffer.from([0x0a, 0x00])
    })
    expect(res.status).toBe(415)
  })

  it('parses W3C trace headers and rejects malformed ones', () => {
    expect(parseTraceHeader(`00-${traceHex}-${spanHex}-01`)).toEqual({ traceId: traceHex, spanId: spanHex, flags: '01' })
    expect(() => parseTraceHeader(undefined)).toThrow()
    expect(() => parseTraceHeader(`00-${traceHex}-${spanHex}`)).toThrow()
  })
})
