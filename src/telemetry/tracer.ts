import { SpanKind, SpanStatusCode, trace, type Attributes, type AttributeValue, type Span } from '@opentelemetry/api'
import { now } from './clock'
import { ATTR, SCOPE, type SpanName } from './names'
import { timingStore } from './timing'

export const tracer = trace.getTracer(SCOPE)

/** Marks a span as failed the way every span of this app does: exception event, ERROR, error.type. */
export function recordError(span: Span, err: unknown): void {
  const e = err as Error
  span.recordException(e)
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message })
  span.setAttribute(ATTR.errorType, errorTypeOf(err))
}

/** What work may do to its span as it goes: add attributes. */
export interface SpanAttributes {
  setAttribute(key: string, value: AttributeValue): unknown
  setAttributes(attributes: Attributes): unknown
}

/** error.type of a failure: its code when it has one (a driver's `ER_...`), else its class. */
export function errorTypeOf(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null | undefined
  return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'Error'
}

/**
 * Times `work` as a child of the request (pool wait, render, image write), on the request's
 * clock; `took` (if given) receives its duration from the same two instants, traced or not.
 * Inside a request whose spans are deferred it is recorded as plain data (a span only if the
 * trace is kept); under a recording span (the http instrumentation's) it is a span at once;
 * otherwise (tracing off, work outside any request) nothing is made. It is a leaf: a statement
 * the work happens to run stays a child of the request.
 */
export async function withSpan<T>(
  name: SpanName,
  attributes: Attributes,
  work: (span: SpanAttributes | undefined) => Promise<T>,
  took?: (ms: number) => void
): Promise<T> {
  const start = now()
  const deferred = timingStore.getStore()?.trace
  const record = deferred?.begin(name, SpanKind.INTERNAL, start, attributes, false)
  // Under another instrumentation's span (http), the SDK's clock, as that span has.
  const span = record ? undefined : trace.getActiveSpan()?.isRecording() ? tracer.startSpan(name, { attributes }) : undefined
  let failed: unknown
  try {
    return await work(record ?? span)
  } catch (err) {
    failed = err
    if (span) recordError(span, err)
    throw err
  } finally {
    const end = now()
    if (record) deferred!.finish(record, end, failed === undefined ? undefined : errorTypeOf(failed), failed instanceof Error ? failed : undefined)
    span?.end()
    took?.(end - start)
  }
}
