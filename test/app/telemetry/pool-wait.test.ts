// First: starts the SDK before anything below loads mysql2.
import { traces } from '../../kit/in-process-sdk'
import { useInProcessApp } from '../../kit/in-process-app'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'

// pool.acquire comes from Sequelize's public pool hooks, which see a wait begin and succeed but
// not fail: a wait that times out must still end, as an ERROR span of the right length, and
// count in Server-Timing's pool entry (the same instants).

const ACQUIRE_MS = 300
const t = useInProcessApp((app) => {
  // Holds the only pooled connection for a while.
  app.get('/_test/hold', async () => {
    await app.sequelize.transaction(async () => sleep(1500))
    return 'held'
  })
}, { DB_POOL_MAX: '1', DB_POOL_ACQUIRE_MS: String(ACQUIRE_MS) })

const poolMs = (header: unknown) => Number(/pool;dur=([\d.]+)/.exec(String(header))?.[1])

describe('a pool wait', () => {
  it('that succeeds is a pool.acquire span whose duration is the Server-Timing pool entry', async () => {
    const res = await t.app.inject({ url: '/blogs/' })
    expect(res.statusCode).toBe(200)
    const entry = traces.get(String(res.headers.traceresponse).split('-')[1]!)!
    const waits = entry.spans.filter((s) => s.name === 'pool.acquire')
    expect(waits).toHaveLength(1)
    expect(waits[0]!.error).toBe(false)
    expect(Math.abs(waits[0]!.duration - poolMs(res.headers['server-timing']))).toBeLessThanOrEqual(0.01)
  })

  it('that times out ends as an ERROR span of DB_POOL_ACQUIRE_MS, counted in Server-Timing, and the request gets 503', async () => {
    const holding = t.app.inject({ url: '/_test/hold' })
    await sleep(100)
    const res = await t.app.inject({ url: '/blogs/' })
    expect(res.statusCode).toBe(503)
    const entry = traces.get(String(res.headers.traceresponse).split('-')[1]!)!
    const waits = entry.spans.filter((s) => s.name === 'pool.acquire')
    expect(waits, JSON.stringify(entry.spans.map((s) => s.name))).toHaveLength(1)
    const wait = waits[0]!
    expect(wait.error).toBe(true)
    expect(wait.attrs['error.type']).toBe('ConnectionAcquireTimeoutError')
    expect(wait.duration).toBeGreaterThanOrEqual(ACQUIRE_MS - 5)
    expect(wait.duration).toBeLessThan(ACQUIRE_MS + 200)
    expect(Math.abs(wait.duration - poolMs(res.headers['server-timing']))).toBeLessThanOrEqual(0.01)
    // Inside its request.
    expect(wait.start + wait.duration).toBeLessThanOrEqual(entry.root!.start + entry.root!.duration)
    expect((await holding).statusCode).toBe(200)
  })
})
