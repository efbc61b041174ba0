import { context, INVALID_TRACEID, trace } from '@opentelemetry/api'

/**
 * pino's mixin: the active span's ids on every log line, under the keys instrumentation-pino
 * writes (trace_id, span_id, trace_flags). That instrumentation's own mixin re-validated both ids
 * with regular expressions on every line and cost ~10K instructions per list page
 * (`npm run bench:instructions`, otel=nosample vs +otel=sdkonly); the ids in the context are the
 * app's own, the SDK's, or a parent the propagator has already validated. pino merges the
 * returned object into the line (and writes into it), so each call returns a new one.
 */
export function traceLogFields(): Record<string, string> {
  const sc = trace.getSpanContext(context.active())
  if (sc === undefined || sc.traceId === INVALID_TRACEID) return {}
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: sc.traceFlags === 1 ? '01' : sc.traceFlags.toString(16).padStart(2, '0') }
}
