import { diag, SamplingDecision, SpanKind, type Context, type Sampler } from '@opentelemetry/api'
import { now } from './clock'

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
  /** Milliseconds on a monotonic clock (the app's `now`; replays and tests give their own). */
  clock?: () => number
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
 * Hindsight: a request not kept when it answered may be held (see NEAR), and kept late when few
 * of the requests of its route that came after it were as slow (in its 5% bucket or above):
 * fewer than twice the share (40 of the next 2,000 at 1%). This rank does not lean on the
 * estimate, which lags a load that changes: after a process's cold start, a burst or a heavier
 * load, the bar stays high for thousands of requests and the slowest of what follows fall under
 * it (a fresh process's first round kept 20 of its slowest 30 with a look at the bar alone). It is
 * also kept when the bar comes down to it: a burst of more than 40 alike (a collector pause
 * delays every connection's request the same) is each as slow as the rest of it.
 */
const WINDOW = 2_000
/**
 * A held request is judged at the latest this long after it answered, on the requests that came
 * after it so far (at least REFRESH of them; with fewer, by the bar of the moment), so a route
 * with little traffic and the end of a load test do not hold records for ever.
 */
const MAX_WAIT_MS = 10_000
/**
 * Which requests not kept are held. While the bar does its job it is right about most of them: a
 * request under NEAR of it is held only when the bar is stale, which the bar tells itself: of the
 * route's last 200 requests (two REFRESH blocks) none was at or over it, where about 4 would be
 * (twice the share; none has a chance of e^-4, 2%, by luck). Then every request is held, as after
 * a process's cold start or a slower phase; otherwise only those within NEAR of the bar. Holding
 * every request all the time kept the same (replayed on two bench runs) with five times the
 * requests waiting, each with its record: +31K to +114K instructions per page at 10% in two
 * `npm run bench:instructions` runs, in garbage collection and V8's runtime (decision 0009).
 */
const NEAR = 0.6
/** A route without requests this long (ms) counts its bar as stale. */
const IDLE_MS = 1_000
/** At most this many held per route; past it the fastest held one goes. */
const MAX_HELD = 512
/** How often held requests are judged when their route has no requests to bring the reviews. */
const SWEEP_MS = 1_000
/** A trace kept late is kept at the latest this long after its request answered. */
export const LATE_KEEP_WITHIN_MS = MAX_WAIT_MS + SWEEP_MS

/** A request held for a second look: its duration, its place in the route's count, how to keep it. */
interface Held {
  ms: number
  bucket: number
  /** The route's count when it answered, and how many of those were in its bucket or above (itself too). */
  seen: number
  asSlowBefore: number
  at: number
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

/**
 * How many of a route's requests so far fell in each bucket, never decayed (a Fenwick tree): how
 * many were at least as slow as a held request since it answered is two reads of it. Its own
 * bucket counts (a tie is not a request it was slower than): a route whose requests all take
 * the same time keeps none of them this way.
 */
class Counts {
  private readonly tree = new Float64Array(BUCKETS + 1)
  private total = 0

  add(bucket: number): void {
    this.total += 1
    for (let i = bucket + 1; i <= BUCKETS; i += i & -i) this.tree[i]! += 1
  }

  /** How many counted so far were in `bucket` or above. */
  atLeast(bucket: number): number {
    let below = 0
    for (let i = bucket; i > 0; i -= i & -i) below += this.tree[i]!
    return this.total - below
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
 * A running estimate of how slow a route's slowest requests are, and the requests held for a
 * second look. `threshold`: a request at or over it is among the slowest `percent`%, with margin
 * on the side of keeping more (about twice the share, and a bucket's 5%).
 */
class RouteDurations {
  private readonly short = new DecayingHistogram(SHORT_HALF_LIFE)
  private readonly long = new DecayingHistogram(LONG_HALF_LIFE)
  private readonly counts = new Counts()
  private readonly held: Held[] = []
  private seen = 0
  threshold = 0
  /** Requests at or over the bar they were judged by, in this REFRESH block and the one before. */
  private over = 0
  private overBefore = 0
  /** False until two blocks after the warm-up showed requests over the bar, and whenever two show none. */
  private trusted = false
  private lastAt = -Infinity

  constructor(
    private readonly share: number,
    private readonly clock: () => number
  ) {}

  /** Counts a request of `ms` that answered at `at` (the clock's ms). */
  add(ms: number, at: number): void {
    const b = bucketOf(ms)
    // After a pause the route's bar was set by a load that ended: its next requests (the first of
    // a new load, slow from idle caches and connections) are held until two blocks reach the bar.
    if (at - this.lastAt >= IDLE_MS) {
      this.trusted = false
      this.over = this.overBefore = 0
    }
    this.lastAt = at
    if (this.warm && ms >= this.threshold) this.over += 1
    this.seen += 1
    this.short.add(b, this.seen)
    this.long.add(b, this.seen)
    this.counts.add(b)
    // Twice the share: the estimate lags a distribution that drifts (a process still warming, a
    // load that changes), and a request must not be missed for being slow an instant too early.
    if (this.seen % REFRESH === 0 || this.seen === WARMUP) {
      if (this.seen > WARMUP) {
        this.trusted = this.over + this.overBefore > 0
        this.overBefore = this.over
        this.over = 0
      }
      this.threshold = Math.min(this.short.tailEdge(100 * this.share), this.long.tailEdge(100 * this.share))
      if (this.held.length > 0) this.review(this.clock())
    }
  }

  /** Holds the request just counted (not kept when it answered) for the reviews that follow. */
  hold(ms: number, at: number, keep: () => void): void {
    if (this.held.length >= MAX_HELD) {
      let fastest = 0
      for (let i = 1; i < this.held.length; i++) if (this.held[i]!.ms < this.held[fastest]!.ms) fastest = i
      if (this.held[fastest]!.ms >= ms) return
      this.held.splice(fastest, 1)
    }
    const bucket = bucketOf(ms)
    this.held.push({ ms, bucket, seen: this.seen, asSlowBefore: this.counts.atLeast(bucket), at, keep })
  }

  /** True when a request of `ms` not kept when it answered is held for the second look. */
  worthHolding(ms: number): boolean {
    return this.warm && (!this.trusted || ms >= NEAR * this.threshold)
  }

  /** How many wait for their second look. */
  get holds(): number {
    return this.held.length
  }

  /**
   * Keeps the held requests the bar has come down to, and those few of the requests after them
   * were as slow as once WINDOW came after (or MAX_WAIT_MS passed); lets go of those that too many
   * were and that are not near the bar.
   */
  review(at: number): void {
    const late: (() => void)[] = []
    const beaten = this.share * WINDOW
    let n = 0
    for (const h of this.held) {
      // The bar came down to it: the estimate, caught up, calls it slow.
      if (h.ms >= this.threshold) {
        late.push(h.keep)
        continue
      }
      const after = this.seen - h.seen
      const asSlow = this.counts.atLeast(h.bucket) - h.asSlowBefore
      if (after >= WINDOW || at - h.at >= MAX_WAIT_MS) {
        if (after >= WINDOW ? asSlow < beaten : after >= REFRESH && asSlow < this.share * after) late.push(h.keep)
      } else if (asSlow < beaten || h.ms >= NEAR * this.threshold) {
        // Still possibly among the slowest of what follows it, or near enough to the bar that
        // the bar may come down to it: a burst wider than the rank allows (a collector pause
        // delays every connection's request alike) is each as slow as the rest of it.
        this.held[n++] = h
      }
    }
    this.held.length = n
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
  private readonly clock: () => number
  private sweeper: NodeJS.Timeout | undefined

  constructor(readonly opts: KeepOptions) {
    this.clock = opts.clock ?? now
  }

  /** Nothing can be kept (the sampler is always_off): requests need record no work. */
  get off(): boolean {
    return this.opts.off
  }

  /**
   * `name` is the server span's (`METHOD route`): the sampler's argument and the route's key.
   * `at`: when the request answered, on the policy's clock.
   */
  decide(name: string, durationMs: number, status: number, parent: Context, trustedSampledParent: boolean, traceId: string, at = this.clock()): KeepReason | null {
    if (this.opts.off) return null
    const slow = this.isSlow(name, durationMs, at)
    if (status >= 500) return 'error'
    if (slow) return slow
    if (trustedSampledParent) return 'parent'
    const baseline = this.opts.sampler.shouldSample(parent, traceId, name, SpanKind.SERVER, {}, [])
    return baseline.decision === SamplingDecision.RECORD_AND_SAMPLED ? 'sampler' : null
  }

  /**
   * For a request `decide` did not keep: true when it is held for a second look (then
   * `holdForReview` with how to keep it): within 60% of its route's bar, or any while the bar is
   * stale. Cheap: checked for every such request.
   */
  worthReview(name: string, durationMs: number): boolean {
    if (this.opts.off || this.opts.slowestPercent <= 0) return false
    return this.routes.get(name)?.worthHolding(durationMs) ?? false
  }

  /**
   * Holds a request that answered at `at` (the clock's ms) for its route's next reviews; `keep`
   * runs (later, on its own) if few of the requests after it were as slow.
   */
  holdForReview(name: string, durationMs: number, at: number, keep: () => void): void {
    const r = this.routes.get(name)
    if (!r) return
    r.hold(durationMs, at, keep)
    // Reviews come with the route's requests; when they stop (the end of a load test, a quiet
    // route), a timer judges what waited MAX_WAIT_MS.
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref()
  }

  /** How many requests of the route wait for their second look (what holding costs: bench:keep-replay). */
  held(name: string): number {
    return this.routes.get(name)?.holds ?? 0
  }

  /** Reviews every route holding requests: those that waited MAX_WAIT_MS are judged now. */
  sweep(): void {
    const at = this.clock()
    let holding = false
    for (const r of this.routes.values()) {
      if (r.holds === 0) continue
      r.review(at)
      holding ||= r.holds > 0
    }
    if (!holding && this.sweeper) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** Counts the request into its route's estimate, and says whether it is among the slowest. */
  private isSlow(route: string, ms: number, at: number): 'slow' | 'warmup' | null {
    const { slowestPercent, slowerThanMs } = this.opts
    let slow: 'slow' | 'warmup' | null = slowerThanMs > 0 && ms >= slowerThanMs ? 'slow' : null
    if (slowestPercent > 0) {
      let r = this.routes.get(route)
      // Routes are the app's templates (a few dozen); unrouted requests count under their method.
      if (!r) this.routes.set(route, (r = new RouteDurations((2 * slowestPercent) / 100, this.clock)))
      if (!slow) slow = !r.warm ? 'warmup' : ms >= r.threshold ? 'slow' : null
      r.add(ms, at)
    }
    return slow
  }
}
