// First: starts the SDK before anything below loads mysql2.
import { askedToSample, traces } from '../../kit/in-process-sdk'
import { useInProcessApp } from '../../kit/in-process-app'
import { beforeAll, describe, expect, it } from 'vitest'

// A request the caller chose not to sample (traceparent flags 00, or the ratio sampler saying
// no), and that is neither slow nor failed, must cost almost nothing in telemetry: its work is
// recorded as plain data and no span object, attributes or masked SQL are made for it. The
// sampler is asked once, at its end, for the baseline decision.

const t = useInProcessApp()
beforeAll(async () => {
  await t.app.inject({ url: '/blogs/' }) // warm: the pool's first connection
})

const parent = (flags: '00' | '01') => `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-${flags}`

describe('an unsampled request', () => {
  it('makes no span: the sampler is asked once, for the decision, and nothing is exported', async () => {
    askedToSample.length = 0
    const res = await t.app.inject({ url: '/blogs/', headers: { traceparent: parent('00') } })
    expect(res.statusCode).toBe(200)
    expect(res.headers.traceresponse).toMatch(/-00$/)
    expect(askedToSample).toEqual(['GET /blogs/'])
    expect(traces.get(String(res.headers.traceresponse).split('-')[1]!)).toBeUndefined()
  })

  it('while a sampled one gets its spans, SQL included (the check above can fail)', async () => {
    askedToSample.length = 0
    const res = await t.app.inject({ url: '/blogs/', headers: { traceparent: parent('01') } })
    expect(res.statusCode).toBe(200)
    expect(res.headers.traceresponse).toMatch(/-01$/)
    // A trusted sampled parent decides (kept: `parent`) without the sampler, and the kept trace is
    // recorded whole, whatever the sampler would say of a span in it: it is never asked (a ratio
    // sampler asked for each child would split a kept trace).
    expect(askedToSample).toEqual([])
    const entry = traces.get(String(res.headers.traceresponse).split('-')[1]!)
    expect(entry?.spans.map((s) => s.name).sort()).toEqual(['GET /blogs/', 'SELECT', 'pool.acquire', 'view.render'])
  })
})
