import { diag, SamplingDecision, SpanKind, type Context, type Sampler } from '@opentelemetry/api'

/** Why a request's trace is kept (the server span's blog.trace.kept). */
export type KeepReason = 'error' | 'slow' | 'slow_late' | 'warmup' | 'parent' | 'sampler'

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
/**
 * Hindsight: a request not kept but at least NEAR of its route's threshold is looked at again
 * each time the threshold is recomputed, for the next HINDSIGHT requests of its route, and kept
 * late if the threshold has come down to it. The estimate follows the load with a lag: when a
 * slower phase ends (a warm-up, a burst, the previous load), the bar stays high for a while and
 * the next phase's slowest requests fall under it (a 50-connection run kept 94% of its slowest
 * 1% without this). At most MAX_NEAR wait per route; past it the oldest goes.
 */
const NEAR = 0.6
const HINDSIGHT = 2_000
const MAX_NEAR = 256

/** A request held for a second look: its duration, its place in the route's count, how to keep it. */
interface NearMiss {
  ms: number
  seen: number
  keep: () => void
}

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

function runAll(fns: (() => void)[]): void {
  for (const fn of fns) {
    try {
      fn()
    } catch (err) {
      diag.error('blog_app: keeping a trace late failed', err)
    }
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
  private readonly near: NearMiss[] = []
  private seen = 0
  threshold = 0

  add(ms: number, percent: number): void {
    const b = bucketOf(ms)
    this.seen += 1
    this.short.add(b, this.seen)
    this.long.add(b, this.seen)
    // Twice the share: the estimate lags a distribution that drifts (a process still warming, a
    // load that changes), and a request must not be missed for being slow an instant too early.
    if (this.seen % REFRESH === 0 || this.seen === WARMUP) {
      this.threshold = Math.min(this.short.tailEdge(2 * percent), this.long.tailEdge(2 * percent))
      if (this.near.length > 0) this.review()
    }
  }

  /** True when a request of `ms` not kept now is worth a second look. */
  nearMiss(ms: number): boolean {
    return this.warm && ms >= NEAR * this.threshold
  }

  hold(ms: number, keep: () => void): void {
    if (this.near.length >= MAX_NEAR) this.near.shift()
    this.near.push({ ms, seen: this.seen, keep })
  }

  /** Keeps the held requests the new threshold calls slow; forgets those past their look-back. */
  private review(): void {
    const late: (() => void)[] = []
    let kept = 0
    for (const n of this.near) {
      if (n.ms >= this.threshold) late.push(n.keep)
      else if (this.seen - n.seen <= HINDSIGHT) this.near[kept++] = n
    }
    this.near.length = kept
    // After this request's own work: the spans are made outside its time.
    if (late.length > 0) setImmediate(runAll, late)
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

  /** Nothing can be kept (the sampler is always_off): requests need record no work. */
  get off(): boolean {
    return this.opts.off
  }

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

  /**
   * For a request `decide` did not keep: true when it is close enough to its route's slowest to be
   * looked at again (then `holdForReview` with how to keep it). Cheap: checked for every such request.
   */
  worthReview(name: string, durationMs: number): boolean {
    if (this.opts.off || this.opts.slowestPercent <= 0) return false
    return this.routes.get(name)?.nearMiss(durationMs) ?? false
  }

  /** Holds a request for its route's next reviews; `keep` runs (later, on its own) if the threshold comes down to it. */
  holdForReview(name: string, durationMs: number, keep: () => void): void {
    this.routes.get(name)?.hold(durationMs, keep)
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
