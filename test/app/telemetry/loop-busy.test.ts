// First: starts the SDK before anything below loads mysql2.
import { traces } from '../../kit/in-process-sdk'
import { useInProcessApp } from '../../kit/in-process-app'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'
import { describe, expect, it } from 'vitest'
import type { TraceEntry } from '../../../src/inspector/trace-buffer'

// blog.event_loop.active_ms: how long the event loop was busy while a span was open. The SDK
// runs in this test's own process (test/kit/in-process-sdk.ts), so a route registered only here
// can burn CPU on the same loop while a query waits.

const t = useInProcessApp((app) => {
  app.get('/_test/spin', async () => {
    const until = performance.now() + 50
    while (performance.now() < until); // 50 ms of CPU on the loop every span shares
    return 'spun'
  })
})

function traceOf(res: { headers: Record<string, unknown> }): TraceEntry {
  const traceId = String(res.headers.traceresponse).split('-')[1]!
  const entry = traces.get(traceId)
  expect(entry?.root, `trace ${traceId} in the buffer`).toBeDefined()
  return entry!
}
const loopMs = (entry: TraceEntry, name: string) => entry.spans.filter((s) => s.name === name).map((s) => Number(s.attrs['blog.event_loop.active_ms']))

describe('blog.event_loop.active_ms', () => {
  it('is small on the SQL and pool spans of a request alone on an idle loop', async () => {
    // Warm: a first request compiles the row parser and the templates inside its spans.
    for (let i = 0; i < 3; i++) await t.app.inject({ url: '/blogs/' })
    // The least of five: other test files share the machine's cores and can deschedule one.
    const selects: number[] = []
    const pools: number[] = []
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject({ url: '/blogs/' })
      expect(res.statusCode).toBe(200)
      const entry = traceOf(res)
      selects.push(loopMs(entry, 'SELECT')[0]!)
      pools.push(loopMs(entry, 'pool.acquire')[0]!)
      expect(Number(entry.root!.attrs['blog.event_loop.active_ms'])).toBeLessThan(entry.root!.duration + 1)
    }
    for (const ms of [...selects, ...pools]) expect(ms).toBeGreaterThanOrEqual(0)
    // Well under the 40 ms of the next test.
    expect(Math.min(...selects)).toBeLessThan(20)
    expect(Math.min(...pools)).toBeLessThan(20)
  })

  it('is >= 40 ms on a query that waited while another request burned 50 ms of CPU', async () => {
    // Hold the table so the list's SELECT is in flight for a while, then spin while it waits.
    const locker = await mysql.createConnection({ host: t.env.config.db.host, port: t.env.config.db.port, user: t.env.config.db.user, password: t.env.config.db.password, database: t.env.database })
    try {
      await locker.query('LOCK TABLES `blog` WRITE')
      const list = t.app.inject({ url: '/blogs/' })
      await sleep(30)
      expect((await t.app.inject({ url: '/_test/spin' })).body).toBe('spun')
      await locker.query('UNLOCK TABLES')
      const res = await list
      expect(res.statusCode).toBe(200)
      const entry = traceOf(res)
      const [select] = loopMs(entry, 'SELECT')
      const selectSpan = entry.spans.find((s) => s.name === 'SELECT')!
      expect(select).toBeGreaterThanOrEqual(40)
      // Busy time is part of the time the span was open.
      expect(select).toBeLessThanOrEqual(selectSpan.duration + 1)
      expect(Number(entry.root!.attrs['blog.event_loop.active_ms'])).toBeGreaterThanOrEqual(40)
    } finally {
      await locker.end()
    }
  })
})
