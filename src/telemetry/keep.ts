import { SamplingDecision, SpanKind, type Context, type Sampler } from '@opentelemetry/api'

/** Why a request's trace is kept (the server span's blog.trace.kept). */
export type KeepReason = 'error' | 'slow' | 'warmup' | 'parent' | 'sampler'

export interface KeepOptions {
  /** Keep the slowest this-many percent of each route's requests (0: no such rule). */
  slowestPercent: number
  /** Keep every request at least this slow, whatever its route (0: no such rule). */
  slowerThanMs: number
  /**
   * The configured sampler (OTEL_TRACES_SAMPLER): the baseline. Its yes keeps a trace; its no
   * leaves it to the rules above. `always_off` turns tracing off altogether.
   */
  sampler: Sampler
  /** True when the sampler is always_off: nothing is kept, not even errors. */
  off: boolean
}

// Durations are counted in buckets growing by 5%, from 10 µs up: 360 buckets reach ~7 hours.
const GROWTH = Math.log(1.05)
const MIN_MS = 0.01
const BUCKETS = 360
/**
 * Two memories of a route's durations, halved every this many requests. The slowest requests of a
 * load test come in bursts (a queue builds): an estimate that follows each burst calls most of
 * its requests ordinary (a 2,000-request half-life alone kept 51% of a run's slowest 1%). A long
 * memory alone stays inflated by the process's slow start (JIT, cold pool: 57%). The threshold is
 * the lower of the two: a burst cannot raise it fast, a warm-up does not hold it up.
 */
const SHORT_HALF_LIFE = 1_000
const LONG_HALF_LIFE = 20_000
/** Until a route has this many requests, each is kept: too few to know what slow is. */
const WARMUP = 100
/** The threshold is recomputed this often (requests per route). */
const REFRESH = 100

const bucketOf = (ms: number) => (ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / GROWTH)))
const lowerBound = (bucket: number) => MIN_MS * Math.exp(bucket * GROWTH)

/** A histogram of durations in 5% buckets, decayed by halving every `halfLife` additions. */
class DecayingHistogram {
  private readonly counts = new Float64Array(BUCKETS)
  private total = 0

  constructor(private readonly halfLife: number) {}

  add(bucket: number, seen: number): void {
    this.counts[bucket]! += 1
    this.total += 1
    if (seen % this.halfLife === 0) {
      for (let i = 0; i < BUCKETS; i++) this.counts[i]! /= 2
      this.total /= 2
    }
  }

  /** The lower edge of the bucket holding the slowest `percent`%. */
  tailEdge(percent: number): number {
    const tail = (this.total * percent) / 100
    let above = 0
    for (let b = BUCKETS - 1; b >= 0; b--) {
      above += this.counts[b]!
      if (above >= tail) return lowerBound(b)
    }
    return 0
  }
}

/**
 * A running estimate of how slow a route's slowest requests are. `threshold`: a request at or
 * over it is among the slowest `percent`%, with margin on the side of keeping more (about twice
 * the share, and a bucket's 5%).
 */
class RouteDurations {
  private readonly short = new DecayingHistogram(SHORT_HALF_LIFE)
  private readonly long = new DecayingHistogram(LONG_HALF_LIFE)
  private seen = 0
  threshold = 0

  add(ms: number, percent: number): void {
    const b = bucketOf(ms)
    this.seen += 1
    this.short.add(b, this.seen)
    this.long.add(b, this.seen)
    // Twice the share: the estimate lags a distribution that drifts (a process still warming, a
    // load that changes), and a request must not be missed for being slow an instant too early.
    if (this.seen % REFRESH === 0 || this.seen === WARMUP) this.threshold = Math.min(this.short.tailEdge(2 * percent), this.long.tailEdge(2 * percent))
  }

  get warm(): boolean {
    return this.seen >= WARMUP
  }
}

/**
 * Decides at the end of a request whether its trace is kept: it failed (5xx), it was slow for its
 * route or over the absolute threshold, a trusted caller sent a sampled parent (a load test
 * joining its requests), or the configured sampler says yes (the baseline ratio). Every request
 * is timed either way; only kept ones become spans.
 */
export class KeepPolicy {
  private readonly routes = new Map<string, RouteDurations>()

  constructor(readonly opts: KeepOptions) {}

  /** `name` is the server span's (`METHOD route`): the sampler's argument and the route's key. */
  decide(name: string, durationMs: number, status: number, parent: Context, trustedSampledParent: boolean, traceId: string): KeepReason | null {
    if (this.opts.off) return null
    const slow = this.isSlow(name, durationMs)
    if (status >= 500) return 'error'
    if (slow) return slow
    if (trustedSampledParent) return 'parent'
    const baseline = this.opts.sampler.shouldSample(parent, traceId, name, SpanKind.SERVER, {}, [])
    return baseline.decision === SamplingDecision.RECORD_AND_SAMPLED ? 'sampler' : null
  }

  /** Counts the request into its route's estimate, and says whether it is among the slowest. */
  private isSlow(route: string, ms: number): 'slow' | 'warmup' | null {
    const { slowestPercent, slowerThanMs } = this.opts
    let slow: 'slow' | 'warmup' | null = slowerThanMs > 0 && ms >= slowerThanMs ? 'slow' : null
    if (slowestPercent > 0) {
      let r = this.routes.get(route)
      // Routes are the app's templates (a few dozen); unrouted requests count under their method.
      if (!r) this.routes.set(route, (r = new RouteDurations()))
      if (!slow) slow = !r.warm ? 'warmup' : ms >= r.threshold ? 'slow' : null
      r.add(ms, slowestPercent)
    }
    return slow
  }
}
