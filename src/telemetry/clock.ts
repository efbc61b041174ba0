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

const nodeTiming = performance.nodeTiming

/** The event loop's idle time so far (ms); it grows only while the loop waits for I/O. */
export const idleMs = (): number => nodeTiming.idleTime

/**
 * How long the event loop was busy between two instants of `now()`, given `idleMs()` read in the
 * same tick as the first (idle time cannot grow inside a tick): what
 * performance.eventLoopUtilization(earlier).active says, with one native call instead of three
 * and no objects.
 */
export const busyMs = (start: number, idleAtStart: number, end: number, idleAtEnd: number): number =>
  Math.max(0, end - start - (idleAtEnd - idleAtStart))

/** Milliseconds rounded to the microsecond, as span attributes carry them. */
export const msAttr = (ms: number): number => Math.round(ms * 1000) / 1000

/** Milliseconds with two decimals, as the headers print them. */
export const ms2 = (n: number): string => n.toFixed(2)

/** The SDK span's own fields that say when, on the performance clock, it was made. */
interface SdkSpanClock {
  startTime: HrTime
  _startTimeProvided?: boolean
  _performanceStartTime?: number
}

/**
 * Puts a span started without a time (the http instrumentation's server span) on this clock. The
 * SDK stamps such a span with Date.now(), whole milliseconds on the wall clock, and ends it at that
 * start plus a performance.now() duration, so the span sat up to a millisecond (more as the wall
 * clock drifts) before the children timed here: a child could seem to end after its request. The
 * SDK's performance instant of the span's creation gives the precise start; its end follows.
 */
export function anchorToClock(span: object): void {
  const s = span as SdkSpanClock
  if (s._startTimeProvided === false && typeof s._performanceStartTime === 'number') s.startTime = hrTime(s._performanceStartTime)
}
