import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import { SCOPE } from './constants'

export const tracer = trace.getTracer(SCOPE)

/** Marks a span as failed the way every span of this app does: exception event, ERROR, error.type. */
export function recordError(span: Span, err: unknown): void {
  const e = err as Error & { code?: string | number }
  span.recordException(e)
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message })
  span.setAttribute('error.type', typeof e.code === 'string' ? e.code : e.name)
}

/**
 * Times `work` as a child span of the active one (pool wait, render, image write). Outside a
 * recorded trace (tracing off, an unsampled request, work outside any request) no span is made
 * at all: the cheap path. The span is a leaf: it is not made active, so a statement the work
 * happens to run (a new connection's set-up during a pool wait) stays a child of the request.
 */
export async function withSpan<T>(name: string, attributes: Attributes, work: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!trace.getActiveSpan()?.isRecording()) return work(undefined)
  const span = tracer.startSpan(name, { attributes })
  try {
    return await work(span)
  } catch (err) {
    recordError(span, err)
    throw err
  } finally {
    span.end()
  }
}
