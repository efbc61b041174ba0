import { describe, expect, it } from 'vitest'
import { worstAcceptedSide } from '../../bench/lib/memory'
import { memoryLines, memoryRows, type RunResult } from '../../bench/lib/report'
import { memoryNeeded } from '../../src/images/processor'

// The bench's memory table (npm run bench): idle, peak under load, and the worst accepted upload.

describe('the worst accepted upload', () => {
  it('is the largest square 16-bit RGBA PNG the budget admits, priced as the app prices it', () => {
    const budget = 192 * 1024 * 1024
    const side = worstAcceptedSide(budget, 40_000_000)
    const cost = (s: number) => memoryNeeded('png', { width: s, height: s, frames: 1, channels: 4, bytesPerSample: 2 })
    expect(cost(side)).toBeLessThanOrEqual(budget)
    expect(cost(side + 1)).toBeGreaterThan(budget)
    expect(side).toBe(4486)
  })

  it('stays within MAX_IMAGE_PIXELS when the budget would allow more', () => {
    expect(worstAcceptedSide(1024 * 1024 * 1024, 1_000_000)).toBe(1000)
  })
})

describe('the memory table', () => {
  const run = (variant: string, rssMb: number) => ({ variant, app: { rssMb } }) as RunResult

  it('has a row per variant: idle, the highest peak under load, the upload, and multiples of the floor', () => {
    const rows = memoryRows(
      [run('floor', 90), run('floor', 95), run('otel=on', 150), run('otel=on', 190)],
      ['floor', 'otel=on'],
      new Map([['floor', 60], ['otel=on', 120]]),
      new Map([['otel=on', { side: 4486, concurrency: 1, peakRssMb: 330, answers: { '303': 1 }, seconds: 7 }]])
    )
    expect(rows.map((r) => [r.variant, r.idleRssMb, r.loadPeakRssMb, r.upload?.peakRssMb ?? null])).toEqual([['floor', 60, 95, null], ['otel=on', 120, 190, 330]])
    const lines = memoryLines(rows)
    expect(lines).toContain('| floor | 60 | 95 | 1.00 | - | - | - | - |')
    expect(lines).toContain('| otel=on | 120 | 190 | 2.00 | 4486x4486 | 1 | 330 | 1x 303 |')
  })
})
