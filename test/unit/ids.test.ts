import { describe, expect, it } from 'vitest'
import { PooledIdGenerator } from '../../src/telemetry/ids'

describe('the pooled trace and span id generator', () => {
  it('gives valid W3C ids (lowercase hex, right length), distinct across pool refills', () => {
    const g = new PooledIdGenerator()
    const spans = new Set<string>()
    const traces = new Set<string>()
    // 20,000 of each spans many 4 KiB refills.
    for (let i = 0; i < 20_000; i++) {
      const t = g.generateTraceId()
      const s = g.generateSpanId()
      expect(t).toMatch(/^[0-9a-f]{32}$/)
      expect(s).toMatch(/^[0-9a-f]{16}$/)
      expect(t).not.toMatch(/^0+$/)
      traces.add(t)
      spans.add(s)
    }
    expect(traces.size).toBe(20_000)
    expect(spans.size).toBe(20_000)
  })
})
