import type { Attributes, AttributeValue, Context, SpanKind } from '@opentelemetry/api'
import { busyMs, idleMs } from './clock'
import type { KeepReason } from './keep'
import type { SetAside } from './tail'

/**
 * One piece of a request's work (a pool wait, a statement, a render, an image step), recorded as
 * plain data while the request runs. It becomes a span only if the request's trace is kept. Code
 * that adds attributes as the work goes (withSpan's callback) calls the same two methods a span has.
 */
export class Work {
  /** NaN until it ends. */
  end = NaN
  /** A statement's text: masked into db.query.text only when the trace is kept. */
  sql: string | undefined
  /** A statement's server-side connection id, for the performance_schema join. */
  connectionId: number | undefined
  /** The loop's idle time when timed work began (NaN: not timed); loopMs once it ended. */
  idleAtStart = NaN
  loopMs: number | undefined
  errorType: string | undefined
  exception: Error | undefined
  /** The attributes object is the caller's (often a shared constant) until one is set here. */
  private own = false

  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    readonly start: number,
    public attributes: Attributes
  ) {}

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.own) {
      this.attributes = { ...this.attributes }
      this.own = true
    }
    this.attributes[key] = value
    return this
  }

  setAttributes(attributes: Attributes): this {
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) this.setAttribute(k, v)
    return this
  }
}

/**
 * The cheap record of a request's trace: its ids (given out at once, for traceresponse and the
 * logs) and the work done under it. The server span and its children are made from it at the
 * end, only when KeepPolicy keeps the trace, so a request whose trace is dropped pays for no span
 * object, sampler call, attribute copy or export.
 */
export class RequestTrace {
  readonly work: Work[] = []
  /** The loop's idle time at the request's start (read in the tick of its start instant). */
  readonly idleAtStart: number
  /** Loop-busy time from the request's start to its end instant (set with the decision). */
  loopMs: number | undefined
  /** undefined until decided; null: dropped. */
  kept: KeepReason | null | undefined = undefined
  /**
   * Not kept when it answered but held for a second look (./keep.ts): other instrumentations'
   * spans (S3 calls), to export with it if it is kept late. Else undefined.
   */
  review: SetAside | undefined = undefined
  exception: Error | undefined

  constructor(
    readonly traceId: string,
    readonly spanId: string,
    /** The extracted remote parent (or ROOT_CONTEXT), with the untrusted mark if any. */
    readonly parent: Context,
    readonly trustedSampledParent: boolean,
    /** False when no trace can be kept (sampler always_off): the request records no work. */
    readonly recording = true
  ) {
    this.idleAtStart = recording ? idleMs() : NaN
  }

  /** Starts a piece of work; `timed` work (pool waits, statements) records loop-busy time. */
  begin(name: string, kind: SpanKind, start: number, attributes: Attributes, timed: boolean): Work | undefined {
    if (!this.recording) return undefined
    const w = new Work(name, kind, start, attributes)
    if (timed) w.idleAtStart = idleMs()
    this.work.push(w)
    return w
  }

  finish(w: Work, end: number, errorType?: string, exception?: Error): void {
    w.end = end
    if (!Number.isNaN(w.idleAtStart)) w.loopMs = busyMs(w.start, w.idleAtStart, end, idleMs())
    if (errorType !== undefined) w.errorType = errorType
    if (exception) w.exception = exception
  }
}

export interface ServerSpanData {
  name: string
  start: number
  end: number
  attributes: Attributes
  error: boolean
}
