import { metrics } from '@opentelemetry/api'
import { now } from './clock'
import { ATTR, METRIC, SCOPE } from './names'

/** What the telemetry spends main-thread CPU on: making (and encoding) a kept trace's spans, assembling exports. */
export type TelemetryWork = 'spans' | 'encode'

/** Seconds so far, by kind of work: read by the metric reader at each collection, not counted per call. */
const spent: Record<TelemetryWork, number> = { spans: 0, encode: 0 }
let registered = false

/**
 * Runs synchronous telemetry work and counts the main thread's time it took
 * (blog.telemetry.cpu_time), so a load test can subtract the observer from what it measured.
 * Synchronous work holds the main thread for its whole duration, so its elapsed time on the
 * monotonic clock is the thread's CPU time (plus any preemption). Not the thread's own CPU
 * counter: Linux advances that at scheduler ticks, and work of ~50 µs a request mostly read as
 * zero (a test that a few kept requests counted any time failed on CI). The counter is
 * observable: a sum kept here and reported at each export (a counter's add hashed its
 * attributes on every kept request).
 */
export function measured<T>(work: TelemetryWork, fn: () => T): T {
  if (!registered) register()
  const start = now()
  try {
    return fn()
  } finally {
    spent[work] += (now() - start) / 1000
  }
}

function register(): void {
  registered = true
  metrics
    .getMeter(SCOPE)
    .createObservableCounter(METRIC.telemetryCpuTime, {
      unit: 's',
      description: "Main-thread time the app's telemetry spent on kept traces' spans and their export encoding"
    })
    .addCallback((result) => {
      for (const work of ['spans', 'encode'] as const) result.observe(spent[work], { [ATTR.telemetryWork]: work })
    })
}
