import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api'
import { AlwaysOnSampler, ParentBasedSampler, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace'
import { startTelemetry } from '../../src/telemetry/sdk'
import { telemetryRuntime } from '../../src/telemetry/runtime'

// Import this FIRST in a test file: it starts the OpenTelemetry SDK in the test's own process (as
// otel/bootstrap does with --require), before anything loads mysql2, so the instrumentation patches
// it. Spans go to the inspector's in-memory buffer (`runtime.traces`).

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

export const sdk = startTelemetry({
  inspector: { enabled: true, maxTraces: 100, maxBytes: 4 << 20 },
  serverTimings: { enabled: false, pollMs: 250 },
  sdk: { sampler: counting }
})
export const runtime = telemetryRuntime()!
