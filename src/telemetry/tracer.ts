import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import { hrTime, now } from './clock'
import { ATTR, SCOPE, type SpanName } from './names'

export const tracer = trace.getTracer(SCOPE)

/** Marks a span as failed the way every span of this app does: exception event, ERROR, error.type. */
export function recordError(span: Span, err: unknown): void {
  const e = err as Error & { code?: string | number }
  span.recordException(e)
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message })
  span.setAttribute(ATTR.errorType, typeof e.code === 'string' ? e.code : e.name)
}

/**
 * Times `work` as a child span of the active one (pool wait, render, image write), on the
 * request's clock; `took` (if given) receives the span's duration from the same two instants,
 * traced or not. Outside a recorded trace (tracing off, an unsampled request, work outside any
 * request) no span is made at all: the cheap path. The span is a leaf: it is not made active, so
 * a statement the work happens to run stays a child of the request.
 */
export async function withSpan<T>(
  name: SpanName,
  attributes: Attributes,
  work: (span: Span | undefined) => Promise<T>,
  took?: (ms: number) => void
): Promise<T> {
  const start = now()
  const span = trace.getActiveSpan()?.isRecording() ? tracer.startSpan(name, { attributes, startTime: hrTime(start) }) : undefined
  try {
    return await work(span)
  } catch (err) {
    if (span) recordError(span, err)
    throw err
  } finally {
    const end = now()
    span?.end(hrTime(end))
    took?.(end - start)
  }
}
