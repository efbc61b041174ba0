import { setImmediate as tick } from 'node:timers/promises'
import { ROOT_CONTEXT, SamplingDecision, type Sampler } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { KeepPolicy } from '../../src/telemetry/keep'

// The keep rule on its own, with durations it is handed (the app's test of the same rule with real
// requests is test/app/telemetry/keep.test.ts): the slowest of a route, and the second look at
// requests that were nearly slow when the estimate was still high.

const never: Sampler = { shouldSample: () => ({ decision: SamplingDecision.NOT_RECORD }), toString: () => 'never' }
const ROUTE = 'GET /blogs/'

function policy(): KeepPolicy {
  return new KeepPolicy({ slowestPercent: 1, slowerThanMs: 0, sampler: never, off: false })
}
/** Feeds `ms` as one request; returns the reason it was kept now, and holds it for review like the plugin does. */
function feed(p: KeepPolicy, ms: number, late: Set<number>, id: number): string | null {
  const reason = p.decide(ROUTE, ms, 200, ROOT_CONTEXT, false, '0'.repeat(32))
  if (reason === null && p.worthReview(ROUTE, ms)) p.holdForReview(ROUTE, ms, () => late.add(id))
  return reason
}

describe('KeepPolicy', () => {
  it("keeps a route's first 100, then about its slowest 2%", () => {
    const p = policy()
    const late = new Set<number>()
    const reasons = Array.from({ length: 2100 }, (_, i) => feed(p, 10 + (i % 100) / 10, late, i))
    expect(reasons.slice(0, 100).every((r) => r === 'warmup')).toBe(true)
    const kept = reasons.slice(1100).filter((r) => r !== null).length
    // 1,000 requests spread evenly over 10-19.9 ms: the top 2% plus a 5% bucket's slack.
    expect(kept).toBeGreaterThanOrEqual(20)
    expect(kept).toBeLessThanOrEqual(80)
  })

  it('keeps late a request that was under a bar raised by a slower phase, once the bar comes down', async () => {
    const p = policy()
    const late = new Set<number>()
    let id = 0
    for (let i = 0; i < 600; i++) feed(p, 5, late, id++)
    // A slow burst (3% of what the route has seen) raises the bar to ~300 ms...
    for (let i = 0; i < 20; i++) feed(p, 300, late, id++)
    for (let i = 0; i < 100; i++) feed(p, 5, late, id++)
    // ...so a 200 ms request is not kept when it answers, but held: it is within 60% of the bar.
    const held = id++
    expect(feed(p, 200, late, held)).toBeNull()
    // A 100 ms one is too far under the bar to be held.
    const ignored = id++
    expect(feed(p, 100, late, ignored)).toBeNull()
    expect(p.worthReview(ROUTE, 100)).toBe(false)
    // As the route goes on fast, the burst becomes less than 2% of it and the bar comes down.
    for (let i = 0; i < 1000; i++) feed(p, 5, late, id++)
    await tick() // late keeps run on their own, after the request that triggered the review
    expect([...late]).toContain(held)
    expect(late.has(ignored)).toBe(false)
    // Kept once: later reviews do not call it again.
    late.clear()
    for (let i = 0; i < 300; i++) feed(p, 5, late, id++)
    await tick()
    expect(late.size).toBe(0)
  })

  it('forgets a held request after 2,000 more of its route, kept or not', async () => {
    const p = policy()
    const late = new Set<number>()
    let id = 0
    // A steady route: a request just under the bar stays under it.
    for (let i = 0; i < 1000; i++) feed(p, 10 + (i % 100) / 10, late, id++)
    const bar = [...Array(200).keys()].map((i) => 10 + i / 10).find((ms) => p.decide(ROUTE, ms, 200, ROOT_CONTEXT, false, '0'.repeat(32)) !== null)!
    const held = id++
    expect(feed(p, bar * 0.9, late, held)).toBeNull()
    for (let i = 0; i < 2100; i++) feed(p, 10 + (i % 100) / 10, late, id++)
    // Now make the bar fall far: the forgotten request is not kept.
    for (let i = 0; i < 3000; i++) feed(p, 1, late, id++)
    await tick()
    expect(late.has(held)).toBe(false)
  })

  it('holds nothing with always_off or without the slowest rule', () => {
    for (const opts of [
      { slowestPercent: 1, slowerThanMs: 0, sampler: never, off: true },
      { slowestPercent: 0, slowerThanMs: 100, sampler: never, off: false }
    ]) {
      const p = new KeepPolicy(opts)
      for (let i = 0; i < 300; i++) p.decide(ROUTE, 10, 200, ROOT_CONTEXT, false, '0'.repeat(32))
      expect(p.worthReview(ROUTE, 50)).toBe(false)
    }
  })
})
