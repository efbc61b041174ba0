// First: starts the SDK before anything below loads mysql2.
import { askedToSample } from '../../kit/in-process-sdk'
import { useInProcessApp } from '../../kit/in-process-app'
import { beforeAll, describe, expect, it } from 'vitest'

// A request the caller chose not to sample (traceparent flags 00, or the ratio sampler saying
// no) must cost almost nothing in telemetry: its statements skip the mysql2 instrumentation, so
// no span object, attributes or masked SQL are made for them.

const t = useInProcessApp()
beforeAll(async () => {
  await t.app.inject({ url: '/blogs/' }) // warm: the pool's first connection
})

const parent = (flags: '00' | '01') => `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-${flags}`

describe('an unsampled request', () => {
  it('makes one span (the server span, to learn the decision) and none for its SQL', async () => {
    askedToSample.length = 0
    const res = await t.app.inject({ url: '/blogs/', headers: { traceparent: parent('00') } })
    expect(res.statusCode).toBe(200)
    expect(res.headers.traceresponse).toMatch(/-00$/)
    expect(askedToSample).toEqual(['GET /blogs/'])
  })

  it('while a sampled one still gets its SQL span (the check above can fail)', async () => {
    askedToSample.length = 0
    const res = await t.app.inject({ url: '/blogs/', headers: { traceparent: parent('01') } })
    expect(res.statusCode).toBe(200)
    expect(askedToSample).toEqual(expect.arrayContaining(['GET /blogs/', 'SELECT', 'pool.acquire', 'view.render']))
  })
})
