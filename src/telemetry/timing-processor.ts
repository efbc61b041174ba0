import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import type { Context, HrTime } from '@opentelemetry/api'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace'
import { connectionIdIn, type DbServerTimings, type ServerTiming, type TimedSpan } from './db-server'
import { anchorToClock, msAttr } from './clock'
import { ATTR, spanCategory } from './names'

/** Spans held for their server timings: past this many, the oldest go out without them. */
const MAX_HELD = 20_000

const kTiming = Symbol('blog_app.timing')
interface Timing {
  /** undefined when the span arrived with its loop time (made from a request's record). */
  elu: EventLoopUtilization | undefined
  /** Set for a mysql2 span whose connection is known. */
  sql?: TimedSpan
}
type Tracked = Span & { [kTiming]?: Timing }

/** Spans whose time is split (docs/telemetry.md "Truthful timings"): requests, pool waits, SQL. */
const TIMED = new Set(['server', 'pool', 'sql'])

/**
 * Makes each SQL, pool-wait and server span say how much of its time was the event loop busy
 * (`blog.event_loop.active_ms`, from event-loop utilization deltas) and, with `DbServerTimings`
 * on, how much was the database itself (`blog.db.server_ms`, lock time, rows). The server's
 * numbers arrive after the span ends, so while they are on, ended spans are held in end order and
 * passed to the exporters (and the inspector) once their poll has run, at most ~2 polls later.
 */
export class TimingSpanProcessor implements SpanProcessor {
  private held: { span: ReadableSpan; timed?: TimedSpan }[] = []
  private timer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined

  constructor(
    private readonly next: SpanProcessor[],
    private readonly db: DbServerTimings | null
  ) {}

  onStart(span: Span, parentContext: Context): void {
    anchorToClock(span)
    const category = spanCategory(span)
    if (TIMED.has(category)) {
      // A span written from a kept request's record (./kept-spans.ts) carries its loop time already.
      const recorded = span.attributes[ATTR.loopActiveMs] !== undefined
      const timing: Timing = { elu: recorded ? undefined : performance.eventLoopUtilization() }
      if (this.db?.enabled && category === 'sql') {
        const connectionId = connectionIdIn(parentContext)
        if (connectionId !== undefined) {
          const t = epochMs(span.startTime)
          timing.sql = { connectionId, start: t, end: t }
        }
      }
      ;(span as Tracked)[kTiming] = timing
    }
    for (const p of this.next) p.onStart(span, parentContext)
  }

  onEnding(span: Span): void {
    const timing = (span as Tracked)[kTiming]
    if (timing) {
      // Loop time spent while this span was open: its own callbacks and everyone else's.
      if (timing.elu) span.setAttribute(ATTR.loopActiveMs, msAttr(performance.eventLoopUtilization(timing.elu).active))
      // The span's own instants (the SDK sets endTime before onEnding): the same clock as the request's.
      if (timing.sql) timing.sql.end = epochMs(span.endTime)
    }
    for (const p of this.next) p.onEnding?.(span)
  }

  onEnd(span: ReadableSpan): void {
    if (!this.db?.enabled) {
      if (this.held.length > 0) this.release(this.held.length, new Map())
      for (const p of this.next) p.onEnd(span)
      return
    }
    this.held.push({ span, timed: (span as Tracked)[kTiming]?.sql })
    if (this.held.length > MAX_HELD) this.release(this.held.length - MAX_HELD, new Map())
    this.timer ??= setTimeout(() => void this.poll(), this.db.pollMs).unref()
  }

  /** One poll: joins what ended before it started, passes those spans on in end order. */
  private poll(): Promise<void> {
    this.timer = undefined
    this.polling ??= (async () => {
      const count = this.held.length
      const timed = this.held.slice(0, count).flatMap((h) => (h.timed ? [h.timed] : []))
      const timings = await this.db!.resolve(timed).catch(() => new Map<TimedSpan, ServerTiming>())
      this.release(count, timings)
    })().finally(() => {
      this.polling = undefined
      if (this.held.length > 0) this.timer ??= setTimeout(() => void this.poll(), this.db!.pollMs).unref()
    })
    return this.polling
  }

  private release(count: number, timings: Map<TimedSpan, ServerTiming>): void {
    for (const { span, timed } of this.held.splice(0, count)) {
      const t = timed && timings.get(timed)
      const out = t
        ? withAttributes(span, {
            [ATTR.dbServerMs]: msAttr(t.serverMs),
            [ATTR.dbLockMs]: msAttr(t.lockMs),
            [ATTR.dbRowsExamined]: t.rowsExamined,
            [ATTR.dbRowsSent]: t.rowsSent
          })
        : span
      for (const p of this.next) p.onEnd(out)
    }
  }

  async forceFlush(): Promise<void> {
    if (this.held.length > 0) await this.poll()
    await this.polling
    await Promise.all(this.next.map((p) => p.forceFlush()))
  }

  async shutdown(): Promise<void> {
    await this.forceFlush().catch(() => undefined)
    clearTimeout(this.timer)
    await this.db?.close()
    await Promise.all(this.next.map((p) => p.shutdown()))
  }
}

const epochMs = (t: HrTime) => t[0] * 1000 + t[1] / 1e6

/** The ended span with attributes added (an ended span's own attributes can no longer change). */
function withAttributes(span: ReadableSpan, extra: Record<string, number>): ReadableSpan {
  return Object.create(span, { attributes: { value: { ...span.attributes, ...extra }, enumerable: true } }) as ReadableSpan
}
