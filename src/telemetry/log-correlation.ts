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

/** What the mixin returns for a line that names its trace itself (the request's own line). */
const NONE: Record<string, string> = Object.freeze({}) as Record<string, string>

/**
 * pino options that put the trace ids on every line: the mixin, and a merge that leaves a line
 * naming its trace itself (`trace_id` set, as the request's line is, with the final keep
 * decision in its flags) as it is, instead of copying it into a new object.
 */
export const traceLogOptions = {
  mixin: (line: object): object => ('trace_id' in line ? NONE : traceLogFields()),
  mixinMergeStrategy: (line: object, fields: object): object => (fields === NONE ? line : Object.assign(fields, line))
}
