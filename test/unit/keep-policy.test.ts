import { setImmediate as tick } from 'node:timers/promises'
import { ROOT_CONTEXT, SamplingDecision, type Sampler } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { KeepPolicy } from '../../src/telemetry/keep'

// The keep rule on its own, with durations it is handed (the app's test of the same rule with real
// requests is test/app/telemetry/keep.test.ts): the slowest of a route, and the second look at
// requests not kept when they answered, kept late when few of those after them were slower.

const never: Sampler = { shouldSample: () => ({ decision: SamplingDecision.NOT_RECORD }), toString: () => 'never' }
const ROUTE = 'GET /blogs/'

/** A policy on a clock the test moves: each request fed advances it by 1 ms. */
function policy(): { p: KeepPolicy; clock: { ms: number } } {
  const clock = { ms: 0 }
  return { p: new KeepPolicy({ slowestPercent: 1, slowerThanMs: 0, sampler: never, off: false, clock: () => clock.ms }), clock }
}
/** Feeds `ms` as one request; returns the reason it was kept now, and holds it for review like the plugin does. */
function feed({ p, clock }: ReturnType<typeof policy>, ms: number, late: Set<number>, id: number): string | null {
  clock.ms += 1
  const reason = p.decide(ROUTE, ms, 200, ROOT_CONTEXT, false, '0'.repeat(32))
  if (reason === null && p.worthReview(ROUTE, ms)) p.holdForReview(ROUTE, ms, clock.ms, () => late.add(id))
  return reason
}
const feedMany = (s: ReturnType<typeof policy>, n: number, ms: (i: number) => number, late: Set<number>, next: { id: number }) => {
  for (let i = 0; i < n; i++) feed(s, ms(i), late, next.id++)
}

describe('KeepPolicy', () => {
  it("keeps a route's first 100, then about its slowest 2% when they answer", () => {
    const s = policy()
    const late = new Set<number>()
    const reasons = Array.from({ length: 2100 }, (_, i) => feed(s, 10 + (i % 100) / 10, late, i))
    expect(reasons.slice(0, 100).every((r) => r === 'warmup')).toBe(true)
    const kept = reasons.slice(1100).filter((r) => r !== null).length
    // 1,000 requests spread evenly over 10-19.9 ms: the top 2% plus a 5% bucket's slack.
    expect(kept).toBeGreaterThanOrEqual(20)
    expect(kept).toBeLessThanOrEqual(80)
  })

  it('keeps late the slowest of what came after a slower phase, under the bar that phase left', async () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    // A cold start: the first 100 (kept) are slow and set the bar...
    feedMany(s, 100, () => 60, late, next)
    feedMany(s, 400, () => 5, late, next)
    // ...so a burst at 20 ms is not kept when it answers: the bar is still near 60 ms.
    const burst = Array.from({ length: 25 }, () => next.id++)
    for (const id of burst) expect(feed(s, 20, late, id)).toBeNull()
    // Nothing after it is slower: once 2,000 requests came after (seen at the review of every
    // 100th), each is kept late.
    feedMany(s, 2100, () => 5, late, next)
    await tick() // late keeps run on their own, after the request that brought the review
    expect(burst.filter((id) => late.has(id))).toEqual(burst)
    // Kept once: later reviews do not call it again.
    late.clear()
    feedMany(s, 300, () => 5, late, next)
    await tick()
    expect(burst.filter((id) => late.has(id))).toEqual([])
  })

  it('keeps late a burst wider than the rank allows, near a bar that comes down to it', async () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    feedMany(s, 600, () => 5, late, next)
    // A slow burst (3% of the route so far) raises the bar to ~300 ms...
    feedMany(s, 20, () => 300, late, next)
    feedMany(s, 100, () => 5, late, next)
    // ...then 60 alike at 200 ms: under the bar, and each as slow as the rest of the burst
    // (60 > 2% of 2,000), so the rank alone lets most of them go.
    const burst = Array.from({ length: 60 }, () => next.id++)
    for (const id of burst) expect(feed(s, 200, late, id)).toBeNull()
    // As the route goes on fast, the bar comes down to them.
    feedMany(s, 1000, () => 5, late, next)
    await tick()
    expect(burst.filter((id) => late.has(id))).toEqual(burst)
  })

  it('lets go of a request that 2% of the next 2,000 were slower than', async () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    feedMany(s, 1000, (i) => 10 + (i % 100) / 10, late, next)
    const held = next.id++
    expect(feed(s, 15, late, held)).toBeNull()
    // One in 40 of what follows is slower (50 of 2,000): not among the slowest 2% of it.
    feedMany(s, 2100, (i) => (i % 40 === 0 ? 16 : 12), late, next)
    await tick()
    expect(late.has(held)).toBe(false)
    // One in 80 (25 of 2,000) is: a request at 15 ms in the same place is kept.
    const kept = next.id++
    expect(feed(s, 15, late, kept)).toBeNull()
    feedMany(s, 2100, (i) => (i % 80 === 0 ? 16 : 12), late, next)
    await tick()
    expect(late.has(kept)).toBe(true)
  })

  it('judges what is held when the requests stop: after 10 s, on what came after it so far', async () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    // A route whose bar is near 15 ms: the requests below are not kept when they answer.
    feedMany(s, 1000, (i) => 5 + (i % 100) / 10, late, next)
    // 300 follow each: one was the slowest of them, the other was passed by 10 (over 2% of 300).
    const slowest = next.id++
    feed(s, 12, late, slowest)
    const passed = next.id++
    feed(s, 9, late, passed)
    feedMany(s, 300, (i) => (i < 10 ? 9.5 : 5), late, next)
    // With too few after it to judge by rank (under 100), the bar of the moment decides: not kept.
    const lastOne = next.id++
    feed(s, 10, late, lastOne)
    s.p.sweep()
    await tick()
    expect(late.size).toBe(0) // not yet: less than 10 s since they answered
    s.clock.ms += 10_000
    s.p.sweep()
    await tick()
    expect(late.has(slowest)).toBe(true)
    expect(late.has(passed)).toBe(false)
    expect(late.has(lastOne)).toBe(false)
  })

  it('holds only what is within 60% of a bar that requests still reach, and every request while none does or after a pause', () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    // A steady route (10-19.9 ms): about 2% of each 100 reach its bar (~19.5 ms).
    feedMany(s, 1000, (i) => 10 + (i % 100) / 10, late, next)
    expect(s.p.worthReview(ROUTE, 12)).toBe(true)
    expect(s.p.worthReview(ROUTE, 11)).toBe(false)
    // After a pause of a second, a new load begins: its first requests are held whatever their time.
    s.clock.ms += 1000
    feed(s, 11, late, next.id++)
    expect(s.p.worthReview(ROUTE, 11)).toBe(true)
    feedMany(s, 200, (i) => 10 + (i % 100) / 10, late, next)
    expect(s.p.worthReview(ROUTE, 11)).toBe(false)
    // Then faster: after 200 requests none of which reached the bar, the bar is stale and every
    // request is held for its rank among those after it.
    feedMany(s, 150, () => 2, late, next)
    expect(s.p.worthReview(ROUTE, 2)).toBe(false)
    feedMany(s, 150, () => 2, late, next)
    expect(s.p.worthReview(ROUTE, 2)).toBe(true)
  })

  it('holds at most 512 per route, letting the fastest go', async () => {
    const s = policy()
    const late = new Set<number>()
    const next = { id: 0 }
    feedMany(s, 100, () => 1000, late, next)
    // 700 requests each 1% slower than the next (a few to a 5% bucket): none is passed by 2% of
    // what follows, all wait.
    const first = next.id
    feedMany(s, 700, (i) => 900 * 0.99 ** i, late, next)
    feedMany(s, 2100, () => 0.5, late, next)
    await tick()
    const kept = [...late].sort((a, b) => a - b)
    expect(kept.length).toBeLessThanOrEqual(512)
    expect(kept.length).toBeGreaterThan(400)
    // The slowest ones (the first of the 700) are among those kept.
    expect(kept.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => first + i))
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
