import {
  SpanKind, SpanStatusCode, TraceFlags, trace,
  type Attributes, type AttributeValue, type Context, type HrTime, type Link, type SpanContext, type SpanStatus
} from '@opentelemetry/api'
import { cleanAttributes, hrTimeDuration, type InstrumentationScope } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, Span, SpanLimits, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace'
import { ATTR_EXCEPTION_MESSAGE, ATTR_EXCEPTION_STACKTRACE, ATTR_EXCEPTION_TYPE } from '@opentelemetry/semantic-conventions'
import { busyMs, hrTime, idleMs, msAttr } from './clock'
import { CONNECTION_ID } from './db-server'
import { ATTR } from './names'
import type { RequestTrace, ServerSpanData } from './request-trace'
import { maskSql } from './sql'

/** What makes a span the SDK's tracer would have made: its provider's resource and limits, its scope. */
export interface SpanOrigin {
  resource: Resource
  scope: InstrumentationScope
  /** The limits the environment set (OTEL_*_LIMIT); undefined where it set none. */
  limits: SpanLimits
}

const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[]
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[]
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET })
const ERROR: SpanStatus = Object.freeze({ code: SpanStatusCode.ERROR })

/**
 * A span of a kept trace, written from the request's record (./request-trace.ts) with its ids and
 * instants already known: what the span processors and exporters read of an SDK span
 * (ReadableSpan), and setAttribute for a processor that adds one before it ends. The SDK's span
 * would copy and check every attribute twice, ask the sampler, read three clocks and go through
 * the provider's processor fan-out; none of that says anything about a request that is over.
 */
export class KeptSpan implements ReadableSpan {
  readonly links = NO_LINKS
  events = NO_EVENTS
  status = UNSET
  endTime: HrTime = [0, 0]
  duration: HrTime = [0, 0]
  ended = false
  droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0

  constructor(
    private readonly context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly name: string,
    readonly kind: SpanKind,
    readonly startTime: HrTime,
    /** The span's own object (never a caller's shared one): processors may add to it. */
    public attributes: Attributes,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope
  ) {}

  spanContext(): SpanContext {
    return this.context
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.ended) this.attributes[key] = value
    return this
  }

  /** The exception event as the SDK's recordException writes it (exception.type, message, stacktrace). */
  recordException(err: Error, time: HrTime, limits?: Limits): void {
    let attributes: Attributes = {}
    const code = (err as { code?: unknown }).code
    if (code) attributes[ATTR_EXCEPTION_TYPE] = String(code)
    else if (err.name) attributes[ATTR_EXCEPTION_TYPE] = err.name
    if (err.message) attributes[ATTR_EXCEPTION_MESSAGE] = err.message
    if (err.stack) attributes[ATTR_EXCEPTION_STACKTRACE] = err.stack
    let dropped = 0
    if (limits) ({ attributes = {}, droppedAttributesCount: dropped = 0 } = cleanAttributes(attributes, limits.event))
    this.events = [{ name: 'exception', time, attributes, droppedAttributesCount: dropped }]
  }
}

/** Attribute limits of a span and of its events, as the SDK applies them. */
interface Limits {
  span: { attributeCountLimit: number; attributeValueLengthLimit: number }
  event: { attributeCountLimit: number; attributeValueLengthLimit: number }
}

/**
 * Writes a kept request's spans from its record, with the ids its response and log line already
 * gave out, and hands them to the span processors behind the SDK's tail (timing join, exporters,
 * inspector) as the SDK would: onStart, onEnding, onEnd. A request whose trace is not kept costs
 * nothing here; one that is pays for a handful of plain objects.
 */
export class KeptSpans {
  /** Set when the environment limits attributes: then they are cleaned as the SDK cleans them. */
  private readonly limits: Limits | undefined

  constructor(
    private readonly origin: SpanOrigin,
    private readonly processor: SpanProcessor,
    private readonly spanId: () => string
  ) {
    const { attributeCountLimit, attributeValueLengthLimit, attributePerEventCountLimit } = origin.limits
    // The SDK's defaults: 128 attributes, any length.
    const length = attributeValueLengthLimit ?? Infinity
    this.limits =
      attributeCountLimit === undefined && attributeValueLengthLimit === undefined && attributePerEventCountLimit === undefined
        ? undefined
        : {
            span: { attributeCountLimit: attributeCountLimit ?? 128, attributeValueLengthLimit: length },
            event: { attributeCountLimit: attributePerEventCountLimit ?? 128, attributeValueLengthLimit: length }
          }
  }

  /** The server span and each piece of work as its child, each with its own recorded instants. */
  write(rt: RequestTrace, server: ServerSpanData): void {
    const remote = trace.getSpanContext(rt.parent)
    const context: SpanContext = { traceId: rt.traceId, spanId: rt.spanId, traceFlags: TraceFlags.SAMPLED, traceState: remote?.traceState }
    const loopMs = rt.loopMs ?? busyMs(server.start, rt.idleAtStart, server.end, idleMs())
    const root = this.span(context, remote, server.name, SpanKind.SERVER, server.start, {
      ...server.attributes,
      [ATTR.loopActiveMs]: msAttr(loopMs),
      [ATTR.traceKept]: rt.kept ?? ''
    })
    // error.type stays the status (HTTP semantic conventions); the exception's own type is on its event.
    if (rt.exception) root.recordException(rt.exception, hrTime(server.end), this.limits)
    if (server.error) root.status = ERROR
    this.processor.onStart(root as unknown as Span, rt.parent)

    for (const w of rt.work) {
      const attrs: Attributes = w.sql === undefined ? { ...w.attributes } : { ...w.attributes, [ATTR.dbQueryText]: maskSql(w.sql) }
      if (w.loopMs !== undefined) attrs[ATTR.loopActiveMs] = msAttr(w.loopMs)
      if (w.errorType !== undefined) attrs[ATTR.errorType] = w.errorType
      const child = this.span({ traceId: rt.traceId, spanId: this.spanId(), traceFlags: TraceFlags.SAMPLED, traceState: context.traceState }, context, w.name, w.kind, w.start, attrs)
      // Work still open when the request answered (it ends after the response) ends with it.
      const end = Number.isNaN(w.end) ? server.end : w.end
      if (w.exception) child.recordException(w.exception, hrTime(end), this.limits)
      if (w.errorType !== undefined) child.status = ERROR
      // The statement's connection, for the performance_schema join (only recorded when that is on).
      const ctx: Context = w.connectionId === undefined ? rt.parent : rt.parent.setValue(CONNECTION_ID, w.connectionId)
      this.processor.onStart(child as unknown as Span, ctx)
      this.end(child, end)
    }
    this.end(root, server.end)
  }

  private span(context: SpanContext, parent: SpanContext | undefined, name: string, kind: SpanKind, start: number, attributes: Attributes): KeptSpan {
    let dropped = 0
    if (this.limits) {
      const cleaned = cleanAttributes(attributes, this.limits.span)
      attributes = cleaned.attributes ?? {}
      dropped = cleaned.droppedAttributesCount ?? 0
    }
    const span = new KeptSpan(context, parent, name, kind, hrTime(start), attributes, this.origin.resource, this.origin.scope)
    span.droppedAttributesCount = dropped
    return span
  }

  private end(span: KeptSpan, end: number): void {
    span.endTime = hrTime(end)
    span.duration = hrTimeDuration(span.startTime, span.endTime)
    // A clock cannot run backwards, but a record's end could predate its start if it were misused.
    if (span.duration[0] < 0) {
      span.endTime = span.startTime
      span.duration = [0, 0]
    }
    this.processor.onEnding?.(span as unknown as Span)
    span.ended = true
    this.processor.onEnd(span)
  }
}
