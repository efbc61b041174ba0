import { createContextKey, diag, trace, type Attributes, type Context, type Link, type SpanKind } from '@opentelemetry/api'
import {
  AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler, type SamplingResult
} from '@opentelemetry/sdk-trace'

/**
 * Marks a context whose remote parent came from a client outside TRUSTED_TRACE_SOURCES: the trace
 * id is continued (a caller can still join its trace), but its sampled flag is not obeyed.
 */
export const UNTRUSTED_PARENT = createContextKey('blog_app.untrusted_parent')

/**
 * Samples as `inner` does, except that a parent marked untrusted is decided by `inner`'s root
 * rule (for parentbased_traceidratio: the ratio, on the same trace id). Without this, any client
 * could send `traceparent: ...-01` and force full tracing (and fill the inspector's buffer).
 */
export class TrustAwareSampler implements Sampler {
  constructor(private readonly inner: Sampler) {}

  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (ctx.getValue(UNTRUSTED_PARENT) === true) return this.inner.shouldSample(trace.deleteSpan(ctx), traceId, name, kind, attributes, links)
    return this.inner.shouldSample(ctx, traceId, name, kind, attributes, links)
  }

  toString(): string {
    return `TrustAware{${this.inner.toString()}}`
  }
}

/**
 * The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (the spec's list, as the SDK
 * reads them); built here because the SDK only wraps what it is given, not what it builds.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  const ratio = () => {
    const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim()
    const r = raw ? Number(raw) : NaN
    if (Number.isFinite(r) && r >= 0 && r <= 1) return r
    diag.error(`OTEL_TRACES_SAMPLER_ARG=${raw ?? ''} is not a ratio in [0, 1]; using 1`)
    return 1
  }
  switch ((env.OTEL_TRACES_SAMPLER ?? '').trim()) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio())
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) })
    case '':
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    default:
      diag.error(`unknown OTEL_TRACES_SAMPLER value "${env.OTEL_TRACES_SAMPLER}"; using parentbased_always_on`)
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}
