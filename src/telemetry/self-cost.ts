import { metrics, type Attributes, type Counter } from '@opentelemetry/api'
import { ATTR, METRIC, SCOPE } from './names'

/** What the telemetry spends main-thread CPU on: making a kept trace's spans, encoding exports. */
export type TelemetryWork = 'spans' | 'encode'

let counter: Counter | undefined
const attributes: Record<TelemetryWork, Attributes> = {
  spans: { [ATTR.telemetryWork]: 'spans' },
  encode: { [ATTR.telemetryWork]: 'encode' }
}

/**
 * Runs synchronous telemetry work and counts the main thread's CPU it took
 * (blog.telemetry.cpu_time), so a load test can subtract the observer from what it measured.
 * process.threadCpuUsage: this thread only, user and system, ~1 µs a call.
 */
export function measured<T>(work: TelemetryWork, fn: () => T): T {
  const before = process.threadCpuUsage()
  try {
    return fn()
  } finally {
    const d = process.threadCpuUsage(before)
    counter ??= metrics.getMeter(SCOPE).createCounter(METRIC.telemetryCpuTime, {
      unit: 's',
      description: "Main-thread CPU the app's telemetry spent on kept traces' spans and their export encoding"
    })
    counter.add((d.user + d.system) / 1e6, attributes[work])
  }
}
