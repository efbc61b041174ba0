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
 * A route's counts are halved every this many requests. Long on purpose: the slowest requests of
 * a load test come in bursts (a queue builds), and an estimate that followed each burst would
 * call most of its requests ordinary (a 2,000-request half-life kept 51% of a run's slowest 1%).
 */
const HALF_LIFE = 20_000
/** Until a route has this many requests, each is kept: too few to know what slow is. */
const WARMUP = 100
/** The threshold is recomputed this often (requests per route). */
const REFRESH = 100

const bucketOf = (ms: number) => (ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / GROWTH)))
const lowerBound = (bucket: number) => MIN_MS * Math.exp(bucket * GROWTH)

/**
 * A running estimate of how slow a route's slowest requests are: a histogram of its recent
 * durations in 5% buckets, decayed by halving. `threshold` is the lower edge of the bucket that
 * holds the slowest `percent`%: a request at or over it is among the slowest (with the bucket's
 * 5% of slack on the side of keeping more).
 */
class RouteDurations {
  private readonly counts = new Float64Array(BUCKETS)
  private total = 0
  private seen = 0
  threshold = 0

  add(ms: number, percent: number): void {
    this.counts[bucketOf(ms)]! += 1
    this.total += 1
    this.seen += 1
    if (this.seen % HALF_LIFE === 0) {
      for (let i = 0; i < BUCKETS; i++) this.counts[i]! /= 2
      this.total /= 2
    }
    if (this.seen % REFRESH === 0 || this.seen === WARMUP) this.refresh(percent)
  }

  get warm(): boolean {
    return this.seen >= WARMUP
  }

  private refresh(percent: number): void {
    const tail = (this.total * percent) / 100
    let above = 0
    for (let b = BUCKETS - 1; b >= 0; b--) {
      above += this.counts[b]!
      if (above >= tail) {
        this.threshold = lowerBound(b)
        return
      }
    }
    this.threshold = 0
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

  decide(route: string, durationMs: number, status: number, parent: Context, trustedSampledParent: boolean, traceId: string, name: string): KeepReason | null {
    if (this.opts.off) return null
    const slow = this.isSlow(route, durationMs)
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
