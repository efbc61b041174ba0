import { setImmediate as tick } from 'node:timers/promises'
import { ROOT_CONTEXT, SamplingDecision, type Sampler } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { KeepPolicy } from '../../src/telemetry/keep'

// The keep rule on its own, with durations it is handed (the app's test of the same rule with real
// requests is test/app/telemetry/keep.test.ts): the slowest of a route, and the second look at
// requests not kept when they answered, kept late when few of those after them were slower.

const never: Sampler = { shouldSample: () => ({ decision: SamplingDecision.NOT_RECORD }), toString: () => 'never' }
const ROUTE = 'GET /blogs/'

/**
 * A route fed requests the way the plugin feeds them, on a clock the test moves (1 ms per
 * request): each is decided when it answers and, if not kept, held for review; `late` collects
 * the ids kept late.
 */
function route() {
  const clock = { ms: 0 }
  const p = new KeepPolicy({ slowestPercent: 1, slowerThanMs: 0, sampler: never, off: false, clock: () => clock.ms })
  const late = new Set<number>()
  let next = 0
  /** One request of `ms`: its id, and the reason it was kept when it answered (null: not kept then). */
  const feed = (ms: number): { id: number; reason: string | null } => {
    const id = next++
    clock.ms += 1
    const reason = p.decide(ROUTE, ms, 200, ROOT_CONTEXT, false, '0'.repeat(32), clock.ms)
    if (reason === null && p.worthReview(ROUTE, ms)) p.holdForReview(ROUTE, ms, clock.ms, () => late.add(id))
    return { id, reason }
  }
  /** `n` requests, the i-th of `ms(i)`; their ids. */
  const feedMany = (n: number, ms: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => feed(ms(i)).id)
  /** `n` requests of `ms`, each asserted not kept when it answered; their ids. */
  const feedNotKept = (n: number, ms: number): number[] =>
    Array.from({ length: n }, () => {
      const { id, reason } = feed(ms)
      expect(reason).toBeNull()
      return id
    })
  return { p, clock, late, feed, feedMany, feedNotKept }
}

describe('KeepPolicy', () => {
  it("keeps a route's first 100, then about its slowest 2% when they answer", () => {
    const r = route()
    const reasons = Array.from({ length: 2100 }, (_, i) => r.feed(10 + (i % 100) / 10).reason)
    expect(reasons.slice(0, 100).every((x) => x === 'warmup')).toBe(true)
    const kept = reasons.slice(1100).filter((x) => x !== null).length
    // 1,000 requests spread evenly over 10-19.9 ms: the top 2% plus a 5% bucket's slack.
    expect(kept).toBeGreaterThanOrEqual(20)
    expect(kept).toBeLessThanOrEqual(80)
  })

  it('keeps late the slowest of what came after a slower phase, under the bar that phase left', async () => {
    const r = route()
    // A cold start: the first 100 (kept) are slow and set the bar...
    r.feedMany(100, () => 60)
    r.feedMany(400, () => 5)
    // ...so a burst at 20 ms is not kept when it answers: the bar is still near 60 ms.
    const burst = r.feedNotKept(25, 20)
    // Nothing after it is slower: once 2,000 requests came after (seen at the review of every
    // 100th), each is kept late.
    r.feedMany(2100, () => 5)
    await tick() // late keeps run on their own, after the request that brought the review
    expect(burst.filter((id) => r.late.has(id))).toEqual(burst)
    // Kept once: later reviews do not call it again.
    r.late.clear()
    r.feedMany(300, () => 5)
    await tick()
    expect(burst.filter((id) => r.late.has(id))).toEqual([])
  })

  it('keeps late a burst wider than the rank allows, near a bar that comes down to it', async () => {
    const r = route()
    r.feedMany(600, () => 5)
    // A slow burst (3% of the route so far) raises the bar to ~300 ms...
    r.feedMany(20, () => 300)
    r.feedMany(100, () => 5)
    // ...then 60 alike at 200 ms: under the bar, and each as slow as the rest of the burst
    // (60 > 2% of 2,000), so the rank alone lets most of them go.
    const burst = r.feedNotKept(60, 200)
    // As the route goes on fast, the bar comes down to them.
    r.feedMany(1000, () => 5)
    await tick()
    expect(burst.filter((id) => r.late.has(id))).toEqual(burst)
  })

  it('lets go of a request that 2% of the next 2,000 were slower than', async () => {
    const r = route()
    r.feedMany(1000, (i) => 10 + (i % 100) / 10)
    const [held] = r.feedNotKept(1, 15)
    // One in 40 of what follows is slower (50 of 2,000): not among the slowest 2% of it.
    r.feedMany(2100, (i) => (i % 40 === 0 ? 16 : 12))
    await tick()
    expect(r.late.has(held!)).toBe(false)
    // One in 80 (25 of 2,000) is: a request at 15 ms in the same place is kept.
    const [kept] = r.feedNotKept(1, 15)
    r.feedMany(2100, (i) => (i % 80 === 0 ? 16 : 12))
    await tick()
    expect(r.late.has(kept!)).toBe(true)
  })

  it('judges what is held when the requests stop: after 10 s, on what came after it so far', async () => {
    const r = route()
    // A route whose bar is near 15 ms: the requests below are not kept when they answer.
    r.feedMany(1000, (i) => 5 + (i % 100) / 10)
    // 300 follow each: one was the slowest of them, the other was passed by 10 (over 2% of 300).
    const slowest = r.feed(12).id
    const passed = r.feed(9).id
    r.feedMany(300, (i) => (i < 10 ? 9.5 : 5))
    // With too few after it to judge by rank (under 100), the bar of the moment decides: not kept.
    const lastOne = r.feed(10).id
    r.p.sweep()
    await tick()
    expect(r.late.size).toBe(0) // not yet: less than 10 s since they answered
    r.clock.ms += 10_000
    r.p.sweep()
    await tick()
    expect(r.late.has(slowest)).toBe(true)
    expect(r.late.has(passed)).toBe(false)
    expect(r.late.has(lastOne)).toBe(false)
  })

  it('holds only what is within 60% of a bar that requests still reach, and every request while none does or after a pause', () => {
    const r = route()
    // A steady route (10-19.9 ms): about 2% of each 100 reach its bar (~19.5 ms).
    r.feedMany(1000, (i) => 10 + (i % 100) / 10)
    expect(r.p.worthReview(ROUTE, 12)).toBe(true)
    expect(r.p.worthReview(ROUTE, 11)).toBe(false)
    // After a pause of a second, a new load begins: its first requests are held whatever their time.
    r.clock.ms += 1000
    r.feed(11)
    expect(r.p.worthReview(ROUTE, 11)).toBe(true)
    r.feedMany(200, (i) => 10 + (i % 100) / 10)
    expect(r.p.worthReview(ROUTE, 11)).toBe(false)
    // Then faster: after 200 requests none of which reached the bar, the bar is stale and every
    // request is held for its rank among those after it.
    r.feedMany(150, () => 2)
    expect(r.p.worthReview(ROUTE, 2)).toBe(false)
    r.feedMany(150, () => 2)
    expect(r.p.worthReview(ROUTE, 2)).toBe(true)
  })

  it('holds at most 512 per route, letting the fastest go', async () => {
    const r = route()
    r.feedMany(100, () => 1000)
    // 700 requests each 1% slower than the next (a few to a 5% bucket): none is passed by 2% of
    // what follows, all wait.
    const descending = r.feedMany(700, (i) => 900 * 0.99 ** i)
    r.feedMany(2100, () => 0.5)
    await tick()
    const kept = [...r.late].sort((a, b) => a - b)
    expect(kept.length).toBeLessThanOrEqual(512)
    expect(kept.length).toBeGreaterThan(400)
    // The slowest ones (the first of the 700) are among those kept.
    expect(kept.slice(0, 100)).toEqual(descending.slice(0, 100))
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
