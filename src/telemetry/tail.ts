import type { Context } from '@opentelemetry/api'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace'

/** How long a decided trace is remembered, for spans that end after their request answered. */
const REMEMBER_MS = 60_000
/** Spans held for undecided traces, at most (the oldest go out undecided past it). */
const MAX_HELD = 10_000

/**
 * The spans of a trace not kept when its request answered but held for a second look: those that
 * ended by then, and those that end later (an S3 download streamed after the response), until it
 * is kept late (`passed`: from then on they go straight on) or let go with it.
 */
export interface SetAside {
  spans: ReadableSpan[]
  passed: boolean
}

/**
 * Spans of other instrumentations (the AWS SDK's S3 calls) are made while a request runs, before
 * the app has decided whether its trace is kept. This processor holds the spans of a trace whose
 * request is still running, then passes them on or drops them with the decision; a span that
 * ends later follows the remembered decision. The app's own spans of a kept trace are made after
 * the decision and pass straight through.
 */
export class TailSpanProcessor implements SpanProcessor {
  /** Running requests' traces: their ended spans, and how many of their spans are still open. */
  private readonly pending = new Map<string, { spans: ReadableSpan[]; open: number }>()
  /** Decided (or set aside) traces with spans still open: they end after the request answered. */
  private readonly late = new Map<string, { keep: boolean; open: number; at: number; aside?: SetAside }>()
  private held = 0

  constructor(private readonly next: SpanProcessor) {}

  /** A request with this trace id is running: hold its spans until `decide`. */
  open(traceId: string): void {
    this.pending.set(traceId, { spans: [], open: 0 })
  }

  decide(traceId: string, keep: boolean): void {
    const p = this.close(traceId, keep)
    if (keep && p) for (const s of p.spans) this.next.onEnd(s)
  }

  /**
   * Not kept when its request answered, but held for a second look (./keep.ts): its spans, ended
   * and still to end, wait in what this returns, for `pass` if the trace is kept late; if it is
   * let go, they go with it.
   */
  setAside(traceId: string): SetAside {
    const aside: SetAside = { spans: [], passed: false }
    const p = this.close(traceId, false, aside)
    if (p) aside.spans = p.spans
    return aside
  }

  /** A trace set aside was kept late: its spans go on, and so will those that end later. */
  pass(aside: SetAside): void {
    aside.passed = true
    for (const s of aside.spans) this.next.onEnd(s)
    aside.spans = []
  }

  /** Ends the wait of a running trace, remembering for its open spans what to do when they end. */
  private close(traceId: string, keep: boolean, aside?: SetAside): { spans: ReadableSpan[] } | undefined {
    const p = this.pending.get(traceId)
    if (p === undefined) return undefined
    this.pending.delete(traceId)
    this.held -= p.spans.length
    if (p.open > 0) {
      this.late.set(traceId, { keep, open: p.open, at: Date.now(), aside })
      this.prune()
    }
    return p
  }

  onStart(span: Span, parentContext: Context): void {
    const p = this.pending.get(span.spanContext().traceId)
    if (p) p.open++
    this.next.onStart(span, parentContext)
  }

  onEnding(span: Span): void {
    this.next.onEnding?.(span)
  }

  onEnd(span: ReadableSpan): void {
    const traceId = span.spanContext().traceId
    const p = this.pending.get(traceId)
    if (p !== undefined) {
      p.open--
      if (this.held < MAX_HELD) {
        p.spans.push(span)
        this.held++
        return
      }
    } else {
      const late = this.late.get(traceId)
      if (late) {
        if (--late.open <= 0) this.late.delete(traceId)
        if (late.aside) {
          // Set aside: waits with its trace until that is kept late, then goes straight on.
          if (!late.aside.passed) {
            late.aside.spans.push(span)
            return
          }
        } else if (!late.keep) return
      }
    }
    this.next.onEnd(span)
  }

  /** Forgets decisions whose open spans never ended (a leak elsewhere must not grow this). */
  private prune(): void {
    if (this.late.size < 1000) return
    const cutoff = Date.now() - REMEMBER_MS
    for (const [id, d] of this.late) {
      if (d.at >= cutoff) break
      this.late.delete(id)
    }
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush()
  }

  shutdown(): Promise<void> {
    return this.next.shutdown()
  }
}
