import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api'
import { hrTime } from '@opentelemetry/core'
import { emptyResource } from '@opentelemetry/resources'
import {
  AggregationTemporality, DataPointType,
  type CollectionResult, type DataPoint, type Histogram, type HistogramMetricData, type MetricProducer
} from '@opentelemetry/sdk-metrics'
import { SCOPE } from './names'

/**
 * The app's per-request histograms (http.server.request.duration, db.client.operation.duration,
 * db.client.connection.wait_time), aggregated here and handed to every metric reader as a
 * MetricProducer. sdk-metrics' Histogram.record sorts and JSON-stringifies the attributes on every
 * call to find the series: with three records per list page that was ~17K instructions, 1.2% of
 * the whole page (`npm run bench:instructions`, otel=nosample vs +metrics=off). Here a series is
 * found through nested Maps keyed by the attributes' own keys and values (strings the callers
 * reuse, numbers), with no string built, sorted or hashed. What is exported is the SDK's own
 * shape: explicit buckets with the same upper-inclusive bounds, sum, count, min and max, under
 * the same scope, cumulative or delta as each reader's exporter asks.
 */

export interface HistogramOptions {
  name: string
  unit: string
  description: string
  /** Upper-inclusive bucket bounds, ascending (OTel's explicit bucket histogram). */
  boundaries: number[]
}

/** What the app records into; a no-op one when no metric reader collects. */
export interface Recorder {
  record(value: number, attributes: Attributes): void
}

/** The SDK's default cardinality limit per metric: past it, points go to one overflow series. */
const MAX_SERIES = 2000
const OVERFLOW: Attributes = { 'otel.metric.overflow': true }

class Series {
  readonly counts: number[]
  sum = 0
  count = 0
  min = Infinity
  max = -Infinity
  readonly start: HrTime = hrTime()
  constructor(
    readonly attributes: Attributes,
    buckets: number
  ) {
    this.counts = new Array<number>(buckets).fill(0)
  }
}

/** A level of the lookup: per attribute key, per value, the next level; a series where the attributes end. */
interface Node {
  next: Map<string, Map<AttributeValue, Node>> | undefined
  series: Series | undefined
}

export class AppHistogram implements Recorder {
  private readonly root: Node = { next: undefined, series: undefined }
  readonly series: Series[] = []
  private readonly byKey = new Map<string, Series>()
  // Callers often pass the same attributes object (a constant per pool or per statement kind).
  private lastAttributes: Attributes | undefined
  private lastSeries: Series | undefined

  constructor(readonly options: HistogramOptions) {}

  record(value: number, attributes: Attributes): void {
    if (Number.isNaN(value)) return
    let s: Series
    if (attributes === this.lastAttributes) s = this.lastSeries!
    else {
      s = this.find(attributes)
      this.lastAttributes = attributes
      this.lastSeries = s
    }
    s.count++
    s.sum += value
    if (value < s.min) s.min = value
    if (value > s.max) s.max = value
    // The first bound at or above the value (bounds are upper-inclusive), as sdk-metrics counts.
    const b = this.options.boundaries
    let i = 0
    while (i < b.length && b[i]! < value) i++
    s.counts[i]!++
  }

  private find(attributes: Attributes): Series {
    let node = this.root
    for (const key in attributes) {
      const value = attributes[key]
      if (value === undefined) continue
      node.next ??= new Map()
      let byValue = node.next.get(key)
      if (!byValue) node.next.set(key, (byValue = new Map()))
      let child = byValue.get(value)
      if (!child) byValue.set(value, (child = { next: undefined, series: undefined }))
      node = child
    }
    if (!node.series) {
      // A new path; the same attributes in another key order are the same series.
      const own = definedOnly(attributes)
      const key = canonical(own)
      let s = this.byKey.get(key)
      if (!s) {
        if (this.series.length >= MAX_SERIES) return (node.series = this.overflow())
        s = new Series(own, this.options.boundaries.length + 1)
        this.series.push(s)
        this.byKey.set(key, s)
      }
      node.series = s
    }
    return node.series
  }

  private overflowSeries: Series | undefined
  private overflow(): Series {
    if (!this.overflowSeries) {
      this.overflowSeries = new Series(OVERFLOW, this.options.boundaries.length + 1)
      this.series.push(this.overflowSeries)
    }
    return this.overflowSeries
  }
}

function definedOnly(attributes: Attributes): Attributes {
  const out: Attributes = {}
  for (const key in attributes) if (attributes[key] !== undefined) out[key] = attributes[key]
  return out
}

const canonical = (attributes: Attributes) => JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]))

/** Where the app's histograms live; the SDK bootstrap turns it on when a metric reader exists. */
export class HistogramRegistry {
  private readonly histograms: AppHistogram[] = []
  enabled = false

  histogram(options: HistogramOptions): Recorder {
    if (!this.enabled) return NOOP
    const h = new AppHistogram(options)
    this.histograms.push(h)
    return h
  }

  /** A MetricProducer for one reader, in the temporality that reader's exporter asks for. */
  producer(temporality: AggregationTemporality): MetricProducer {
    return new HistogramProducer(this.histograms, temporality)
  }
}

const NOOP: Recorder = { record: () => undefined }

/** The process's histograms (one SDK per process, as the global MeterProvider). */
export const appHistograms = new HistogramRegistry()

interface Previous { counts: number[]; sum: number; count: number; at: HrTime }

class HistogramProducer implements MetricProducer {
  private readonly previous = new Map<Series, Previous>()

  constructor(
    private readonly histograms: AppHistogram[],
    private readonly temporality: AggregationTemporality
  ) {}

  async collect(): Promise<CollectionResult> {
    const end = hrTime()
    const metrics: HistogramMetricData[] = []
    for (const h of this.histograms) {
      const points: DataPoint<Histogram>[] = []
      for (const s of h.series) {
        const point = s.count === 0 ? undefined : this.point(s, end, h.options.boundaries)
        if (point) points.push(point)
      }
      if (points.length === 0) continue
      metrics.push({
        descriptor: { name: h.options.name, unit: h.options.unit, description: h.options.description, valueType: 1 /* DOUBLE */ },
        aggregationTemporality: this.temporality,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: points
      })
    }
    return {
      // The reader reports its MeterProvider's resource, not this one.
      resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length > 0 ? [{ scope: { name: SCOPE, version: '' }, metrics }] : [] },
      errors: []
    }
  }

  private point(s: Series, end: HrTime, boundaries: number[]): DataPoint<Histogram> | undefined {
    const counts = s.counts.slice()
    if (this.temporality === AggregationTemporality.CUMULATIVE) {
      return { attributes: s.attributes, startTime: s.start, endTime: end, value: { buckets: { boundaries, counts }, sum: s.sum, count: s.count, min: s.min, max: s.max } }
    }
    // Delta: what arrived since this reader's last collection (no min and max: those are of all time here).
    const last = this.previous.get(s)
    this.previous.set(s, { counts, sum: s.sum, count: s.count, at: end })
    if (!last) return { attributes: s.attributes, startTime: s.start, endTime: end, value: { buckets: { boundaries, counts }, sum: s.sum, count: s.count } }
    if (last.count === s.count) return undefined
    return {
      attributes: s.attributes,
      startTime: last.at,
      endTime: end,
      value: { buckets: { boundaries, counts: counts.map((c, i) => c - last.counts[i]!) }, sum: s.sum - last.sum, count: s.count - last.count }
    }
  }
}
