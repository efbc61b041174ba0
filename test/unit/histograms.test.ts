import type { Attributes } from '@opentelemetry/api'
import {
  AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram, type HistogramMetricData, type MetricProducer
} from '@opentelemetry/sdk-metrics'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { HistogramRegistry } from '../../src/telemetry/histograms'

// The app's histograms (src/telemetry/histograms.ts) must export what sdk-metrics' own Histogram
// would for the same records: same buckets (upper-inclusive bounds), sum, count, min and max, one
// point per attribute set, in the reader's temporality.

class TestReader extends MetricReader {
  constructor(temporality: AggregationTemporality, producers: MetricProducer[]) {
    super({ aggregationTemporalitySelector: () => temporality, metricProducers: producers })
  }
  protected onForceFlush = async () => undefined
  protected onShutdown = async () => undefined
}

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1]

function pair(temporality: AggregationTemporality) {
  const registry = new HistogramRegistry()
  registry.enabled = true
  const ours = registry.histogram({ name: 'ours', unit: 's', description: 'd', boundaries: BOUNDS })
  const reader = new TestReader(temporality, [registry.producer(temporality)])
  const provider = new MeterProvider({ readers: [reader] })
  const sdk = provider.getMeter('blog_app').createHistogram('sdk', { unit: 's', description: 'd', advice: { explicitBucketBoundaries: BOUNDS } })
  const key = (p: DataPoint<Histogram>) => JSON.stringify(Object.entries(p.attributes).sort())
  /** Each side's points by attributes (empty when it exported none), and our metric as exported. */
  const collect = async () => {
    const { resourceMetrics } = await reader.collect()
    const found = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => ({ scope: s.scope.name, m: m as HistogramMetricData })))
    for (const f of found) expect(f.scope).toBe('blog_app')
    const points = (name: string) =>
      new Map((found.find((f) => f.m.descriptor.name === name)?.m.dataPoints ?? []).map((p) => [key(p), { counts: p.value.buckets.counts, boundaries: p.value.buckets.boundaries, count: p.value.count, sum: p.value.sum, min: p.value.min, max: p.value.max }]))
    return { sdk: points('sdk'), ours: points('ours'), metric: found.find((f) => f.m.descriptor.name === 'ours')?.m }
  }
  return { record: (v: number, a: Attributes) => { sdk.record(v, a); ours.record(v, a) }, collect }
}

const attrs = fc.oneof(
  fc.constant<Attributes>({ 'http.request.method': 'GET', 'http.route': '/blogs/', 'http.response.status_code': 200 }),
  // The same set in another key order is the same series.
  fc.constant<Attributes>({ 'http.response.status_code': 200, 'http.route': '/blogs/', 'http.request.method': 'GET' }),
  fc.constant<Attributes>({ 'http.request.method': 'GET', 'http.response.status_code': 404 }),
  fc.constant<Attributes>({ 'http.request.method': 'POST', 'http.route': '/blogs/new', 'http.response.status_code': 500, 'error.type': '500' }),
  fc.constant<Attributes>({})
)
// Values on the bounds themselves, between them and past the last.
const values = fc.oneof(fc.constantFrom(0, ...BOUNDS, 7), fc.double({ min: 0, max: 0.2, noNaN: true }))

describe('the app histograms', () => {
  it('export what sdk-metrics would, cumulative, for any records (property test)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(values, attrs), { minLength: 1, maxLength: 60 }), async (records) => {
        const { record, collect } = pair(AggregationTemporality.CUMULATIVE)
        for (const [v, a] of records) record(v, a)
        const { sdk, ours, metric } = await collect()
        expect(metric!.descriptor).toMatchObject({ name: 'ours', unit: 's', description: 'd' })
        expect(metric!.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE)
        expect(ours.size).toBeGreaterThan(0)
        expect(ours).toEqual(sdk)
      }),
      { numRuns: 200 }
    )
  })

  it('export deltas between collections as the SDK does (counts and sum; min and max left out)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.tuple(values, attrs), { maxLength: 20 }), { minLength: 2, maxLength: 4 }), async (rounds) => {
        const { record, collect } = pair(AggregationTemporality.DELTA)
        for (const round of rounds) {
          for (const [v, a] of round) record(v, a)
          const { sdk, ours } = await collect()
          // A series with no records in the window is left out, as the SDK leaves it out. Sums
          // are differences of running totals here: equal to rounding.
          expect([...ours.keys()].sort()).toEqual([...sdk.keys()].sort())
          for (const [k, o] of ours) {
            const { sum, min: _min, max: _max, ...rest } = sdk.get(k)!
            expect({ ...o, sum: undefined, min: undefined, max: undefined }).toEqual({ ...rest, sum: undefined, min: undefined, max: undefined })
            expect(Math.abs(o.sum! - sum!)).toBeLessThan(1e-9)
          }
        }
      }),
      { numRuns: 100 }
    )
  })

  it('records nothing and collects nothing when no reader turned the registry on', async () => {
    const registry = new HistogramRegistry()
    registry.histogram({ name: 'h', unit: 's', description: 'd', boundaries: BOUNDS }).record(1, {})
    const result = await registry.producer(AggregationTemporality.CUMULATIVE).collect()
    expect(result.resourceMetrics.scopeMetrics).toEqual([])
  })

  it('puts series past the cardinality limit (2000) into one overflow series, as the SDK does', async () => {
    const registry = new HistogramRegistry()
    registry.enabled = true
    const h = registry.histogram({ name: 'h', unit: 's', description: 'd', boundaries: BOUNDS })
    for (let i = 0; i < 2100; i++) h.record(0.001, { n: i })
    const result = await registry.producer(AggregationTemporality.CUMULATIVE).collect()
    const points = (result.resourceMetrics.scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints
    expect(points).toHaveLength(2001)
    expect(points.find((p) => p.attributes['otel.metric.overflow'] === true)?.value.count).toBe(100)
  })
})
