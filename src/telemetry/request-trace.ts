import { SpanKind, SpanStatusCode, trace, type Attributes, type AttributeValue, type Context, type Tracer } from '@opentelemetry/api'
import { busyMs, hrTime, idleMs } from './clock'
import { CONNECTION_ID } from './db-server'
import type { KeepReason } from './keep'
import { ATTR } from './names'
import { maskSql } from './sql'
import { KEPT } from './trust'

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

/** Rounded as the timing processor rounds its attributes. */
const round3 = (ms: number) => Math.round(ms * 1000) / 1000

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

export interface IdPresets {
  presetNext(traceId: string | undefined, spanId: string): void
}

/**
 * Makes the spans of a kept trace: the server span with the ids the request gave out, then each
 * piece of work as its child, each with its own recorded start and end. The span processors
 * (timing join, exporters, inspector) see them as any other spans.
 */
export function materialize(rt: RequestTrace, server: ServerSpanData, tracer: Tracer, ids: IdPresets): void {
  const root = rt.parent.setValue(KEPT, rt.kept)
  // The server span's id is the one traceresponse and the log line already named; a new trace's
  // id too (a continued trace takes its parent's).
  ids.presetNext(trace.getSpanContext(rt.parent) ? undefined : rt.traceId, rt.spanId)
  const loopMs = rt.loopMs ?? busyMs(server.start, rt.idleAtStart, server.end, idleMs())
  const attributes: Attributes = { ...server.attributes, [ATTR.loopActiveMs]: round3(loopMs), [ATTR.traceKept]: rt.kept ?? '' }
  const span = tracer.startSpan(server.name, { kind: SpanKind.SERVER, startTime: hrTime(server.start), attributes }, root)
  // error.type stays the status (HTTP semantic conventions); the exception's own type is on its event.
  if (rt.exception) span.recordException(rt.exception)
  if (server.error) span.setStatus({ code: SpanStatusCode.ERROR })
  // The children's parent context carries the decision too: the sampler answers at once instead
  // of asking the parent-based sampler, which re-validates the parent's ids (~12K instructions
  // per kept page).
  const parent = trace.setSpan(root, span)
  for (const w of rt.work) {
    const attrs: Attributes = w.sql === undefined ? { ...w.attributes } : { ...w.attributes, [ATTR.dbQueryText]: maskSql(w.sql) }
    if (w.loopMs !== undefined) attrs[ATTR.loopActiveMs] = round3(w.loopMs)
    const ctx = w.connectionId === undefined ? parent : parent.setValue(CONNECTION_ID, w.connectionId)
    const child = tracer.startSpan(w.name, { kind: w.kind, startTime: hrTime(w.start), attributes: attrs }, ctx)
    if (w.exception) child.recordException(w.exception, hrTime(w.end))
    if (w.errorType !== undefined) {
      child.setStatus({ code: SpanStatusCode.ERROR })
      child.setAttribute(ATTR.errorType, w.errorType)
    }
    // Work still open when the request answered (it ends after the response) ends with it.
    child.end(hrTime(Number.isNaN(w.end) ? server.end : w.end))
  }
  span.end(hrTime(server.end))
}
