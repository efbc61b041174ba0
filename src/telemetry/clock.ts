import { performance } from 'node:perf_hooks'
import type { HrTime } from '@opentelemetry/api'

/**
 * The one clock of a request's telemetry: monotonic milliseconds (performance.now()). The server
 * span, its children, the X-Process-Time and Server-Timing headers, the duration metrics and the
 * log line all take their instants from here, so a number the client sees is found exactly in
 * the trace. (The SDK's own default stamps a span's start with Date.now(): whole milliseconds,
 * so a child could seem to start before its parent.)
 */
export const now = (): number => performance.now()

/** An instant of `now()` as the HrTime a span takes (epoch seconds and nanoseconds). */
export function hrTime(instant: number): HrTime {
  const epochMs = performance.timeOrigin + instant
  let seconds = Math.floor(epochMs / 1000)
  let nanos = Math.round((epochMs - seconds * 1000) * 1e6)
  if (nanos >= 1e9) {
    seconds += 1
    nanos -= 1e9
  }
  return [seconds, nanos]
}

/** Milliseconds with two decimals, as the headers print them. */
export const ms2 = (n: number): string => n.toFixed(2)
