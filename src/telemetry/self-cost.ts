import { metrics } from '@opentelemetry/api'
import { ATTR, METRIC, SCOPE } from './names'

/** What the telemetry spends main-thread CPU on: making (and encoding) a kept trace's spans, assembling exports. */
export type TelemetryWork = 'spans' | 'encode'

/** Seconds so far, by kind of work: read by the metric reader at each collection, not counted per call. */
const spent: Record<TelemetryWork, number> = { spans: 0, encode: 0 }
let registered = false

/**
 * Runs synchronous telemetry work and counts the main thread's CPU it took
 * (blog.telemetry.cpu_time), so a load test can subtract the observer from what it measured.
 * process.threadCpuUsage: this thread only, user and system, ~1 µs a call. The counter is
 * observable: a sum kept here and reported at each export (a counter's add hashed its
 * attributes on every kept request).
 */
export function measured<T>(work: TelemetryWork, fn: () => T): T {
  if (!registered) register()
  const before = process.threadCpuUsage()
  try {
    return fn()
  } finally {
    const d = process.threadCpuUsage(before)
    spent[work] += (d.user + d.system) / 1e6
  }
}

function register(): void {
  registered = true
  metrics
    .getMeter(SCOPE)
    .createObservableCounter(METRIC.telemetryCpuTime, {
      unit: 's',
      description: "Main-thread CPU the app's telemetry spent on kept traces' spans and their export encoding"
    })
    .addCallback((result) => {
      for (const work of ['spans', 'encode'] as const) result.observe(spent[work], { [ATTR.telemetryWork]: work })
    })
}
