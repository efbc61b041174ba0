import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api'
import { AlwaysOnSampler, ParentBasedSampler, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace'
import { startObservability } from '../../src/observability'

// Import this FIRST in a test file: it starts the OpenTelemetry SDK in the test's own process (as
// otel/bootstrap does with --require), before anything loads mysql2. Spans go to the inspector's
// in-memory buffer (`traces`).

/** Every span name the sampler was asked about, sampled or not: a span object was made for each. */
export const askedToSample: string[] = []

const parentBased = new ParentBasedSampler({ root: new AlwaysOnSampler() })
const counting: Sampler = {
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    askedToSample.push(name)
    return parentBased.shouldSample(context, traceId, name, kind, attributes, links)
  },
  toString: () => 'counting(parentbased_always_on)'
}

const started = startObservability(
  { inspector: { enabled: true, token: '', badge: false, maxTraces: 100, maxBytes: 4 << 20, sessionTtlMs: 0, jaegerUrl: '' }, otlpProtobufEncoder: 'app', db: { serverTimings: { enabled: false, pollMs: 250 } },
    // The sampler alone decides here (no slow-request rule): the tests count what it is asked.
    traceKeep: { slowestPercent: 0, slowerThanMs: 0 } },
  { sampler: counting }
)
export const runtime = started.telemetry!
export const traces = started.traces!
export const sdk = { shutdown: () => runtime.shutdown() }
