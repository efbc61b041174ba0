import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readSamples, readWarmup, replay } from '../../bench/keep-replay'

// The offline replay of a run's durations through the keep rule (bench/keep-replay.ts).

const steady = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + seed) % 1000) / 1000)

describe('bench:keep-replay', () => {
  it('counts a steady route\'s slowest 1% as kept, round by round', async () => {
    const result = await replay([steady(3000, 1), steady(3000, 2)])
    expect(result.map((r) => [r.requests, r.slowest])).toEqual([[3000, 30], [3000, 30]])
    for (const r of result) expect(r.slowestKept).toBe(30)
  })

  it('counts a cold start\'s slowest, kept late: a burst under the bar the first requests set', async () => {
    // The first 100 (the warm-up, all kept) hold 10 cold ones at 60 ms: the bar is set there, and
    // a burst of 25 at 20 ms that follows is under it. Nothing after the burst is slower.
    const round = [...Array<number>(10).fill(60), ...steady(90, 3), ...steady(50, 4), ...Array<number>(25).fill(20), ...steady(2825, 5)]
    const [r] = await replay([round])
    expect(r!.slowest).toBe(30)
    expect(r!.slowestKept).toBe(30)
  })

  it('counts a miss: a request the rule lets go is not counted as kept', async () => {
    // Round 2 runs faster than rounds 1 and 3. Its slowest 1%, a burst of 30 at 3 ms near its end,
    // is under the bar round 1 left, and round 3's requests (all slower) follow it: not kept.
    const slower = (seed: number) => steady(3000, seed).map((ms) => ms + 4)
    const faster = [...steady(2900, 8), ...Array<number>(30).fill(3), ...steady(70, 9)]
    const result = await replay([slower(6), faster, slower(7)])
    expect(result[1]!.slowest).toBe(30)
    expect(result[1]!.slowestKept).toBe(0)
  })

  it("feeds the bench's warm-up first: the rule's state at round 1 comes from it", async () => {
    const [cold] = await replay([steady(3000, 10)])
    const [warm] = await replay([steady(3000, 10)], 300, 3000, steady(3000, 11))
    // Without it, the round's first 100 are the route's first (all kept); with it, only those
    // over the bar are (a few percent).
    expect(cold!.kept - warm!.kept).toBeGreaterThan(80)
  })

  it('reads the samples files of a run in round order', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keep-replay-'))
    try {
      writeFileSync(path.join(dir, 'samples-otel=10pct-10.csv'), 'process_ms,status,kept,exported\n3.5,200,0,0\n')
      writeFileSync(path.join(dir, 'samples-otel=10pct-2.csv'), 'process_ms,status,kept,exported\n1.25,200,1,1\n2,200,0,0\n')
      expect(readSamples(dir, 'otel=10pct')).toEqual([[1.25, 2], [3.5]])
      expect(readWarmup(dir, 'otel=10pct')).toEqual([])
      // Round 0 is the warm-up: fed to the rule first, not counted as a round.
      writeFileSync(path.join(dir, 'samples-otel=10pct-0.csv'), 'process_ms,status,kept,exported\n9,200,1,1\n')
      expect(readSamples(dir, 'otel=10pct')).toEqual([[1.25, 2], [3.5]])
      expect(readWarmup(dir, 'otel=10pct')).toEqual([9])
      expect(() => readSamples(dir, 'otel=on')).toThrow(/--samples/)
    } finally {
      rmSync(dir, { recursive: true })
    }
  })
})
