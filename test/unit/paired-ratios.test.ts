import { describe, expect, it } from 'vitest'
import { pairedRatios, slowestExported, type RunResult } from '../../bench/lib/report'

// The bench's round-by-round comparison (README "Performance"): each round runs every variant
// back to back, so a ratio inside a round cancels what the machine's neighbours did to both.

const run = (variant: string, round: number, cpuMsPerReq: number): RunResult => ({
  variant, round, path: '/blogs/', requests: 1000, rps: 400,
  latency: { avg: 1, p50: 1, p90: 1, p95: 1, p99: 1, max: 1 }, failures: 0, dropped: 0,
  app: { cpuPercent: 40, cpuSeconds: cpuMsPerReq, rssMb: 100 }, db: { cpuPercent: 5, cpuSeconds: 0.1, rssMb: 100 },
  traced: 0, phases: null, p50Trace: null, slowestTrace: null, slowest: null
})

describe('paired CPU ratios', () => {
  it('takes the ratio inside each round, and its median, min and max', () => {
    // Round 2 ran on a slow machine: both variants slower, the ratio the same as round 1.
    const results = [run('floor', 1, 1.0), run('off', 1, 1.2), run('floor', 2, 2.0), run('off', 2, 2.4), run('floor', 3, 1.0), run('off', 3, 1.5)]
    const [r] = pairedRatios(results, [['off', 'floor']])
    expect(r!.perRound.rounds).toBe(3)
    expect(r!.perRound.median).toBeCloseTo(1.2, 6)
    expect(r!.perRound.min).toBeCloseTo(1.2, 6)
    expect(r!.perRound.max).toBeCloseTo(1.5, 6)
    // Medians of each side: 1.5 / 1.0.
    expect(r!.ofMedians).toBeCloseTo(1.5, 6)
  })

  it('skips rounds one side did not run, and pairs absent from the run', () => {
    const results = [run('a', 1, 1), run('b', 1, 2), run('a', 2, 1)]
    const out = pairedRatios(results, [['b', 'a'], ['c', 'a']])
    expect(out).toHaveLength(1)
    expect(out[0]!.perRound.rounds).toBe(1)
    expect(out[0]!.perRound.median).toBeCloseTo(2, 6)
  })
})

describe("the bench's share of the slowest requests whose trace was exported", () => {
  const sample = (processMs: number, id: string) => ({ latencyMs: processMs, status: 200, traceId: '', processMs, responseTraceId: id, kept: false })

  it('takes the slowest 1% by X-Process-Time and counts the ones the sink received', () => {
    const samples = Array.from({ length: 300 }, (_, i) => sample(i + 1, `t${i}`))
    // The three slowest are t299, t298, t297; two of them were exported, and plenty of fast ones.
    const got = slowestExported(samples, new Set(['t299', 't297', 't1', 't2', 't3']))
    expect(got).toEqual({ count: 3, exported: 2, flagged: 0 })
  })

  it('ignores requests that carried no timing or trace header', () => {
    expect(slowestExported([{ ...sample(NaN, 'x') }, { ...sample(5, '') }], new Set(['x']))).toBeNull()
  })
})
