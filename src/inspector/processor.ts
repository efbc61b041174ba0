import { SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api'
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace'
import { ATTR, type AttributeName } from '../telemetry/names'
import { isInspectorPath } from './prefix'
import { TraceBuffer, type SpanRecord } from './trace-buffer'

/**
 * The only attributes the inspector keeps: every attribute the app defines (telemetry/names.ts)
 * but the client's address and user agent. Anything else (another instrumentation's attributes,
 * any added later elsewhere) stays out, so nothing a user typed or a secret header can reach the
 * buffer by accident. db.query.text has every literal masked (telemetry/sql.ts).
 */
const LEFT_OUT: ReadonlySet<AttributeName> = new Set([ATTR.clientAddress, ATTR.userAgent, ATTR.urlScheme, ATTR.networkProtocolVersion])
export const KEPT_ATTRIBUTES: readonly AttributeName[] = Object.values(ATTR).filter((a) => !LEFT_OUT.has(a))

/** Long enough for any statement this app makes; a runaway IN (?, ?, ...) list is cut. */
const MAX_TEXT = 2000
/** Rough heap cost of a record without its strings (object, arrays, numbers, map slot). */
const RECORD_OVERHEAD = 240
const ATTRIBUTE_OVERHEAD = 40

// The app's spans take both instants from one monotonic clock (telemetry/clock.ts), so a
// child never seems to start before its parent.
const toMs = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6

/**
 * Keeps compact copies of the most recent request traces in memory for the /_inspect pages.
 * onEnd runs for every span: it copies a dozen fields and appends to the trace's list; the
 * grouping by trace id and the eviction are O(1).
 */
export class InspectorSpanProcessor implements SpanProcessor {
  readonly buffer: TraceBuffer

  constructor(maxTraces: number, maxBytes: number) {
    this.buffer = new TraceBuffer(maxTraces, maxBytes)
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const traceId = span.spanContext().traceId
    const parent = span.parentSpanContext
    const localRoot = parent === undefined || parent.isRemote === true
    const source = span.attributes
    if (span.kind === SpanKind.SERVER) {
      const path = source[ATTR.urlPath] ?? source[ATTR.httpRoute]
      // The inspector's own pages are not requests worth keeping (their children went in first).
      if (typeof path === 'string' && isInspectorPath(path)) return this.buffer.drop(traceId)
    } else if (localRoot) {
      // Work outside any request (migrations at start-up, timers): not what the pages show.
      return this.buffer.drop(traceId)
    }

    let bytes = RECORD_OVERHEAD + 2 * span.name.length
    const attrs: SpanRecord['attrs'] = {}
    for (const key of KEPT_ATTRIBUTES) {
      const value: unknown = source[key]
      if (typeof value === 'string') {
        let text = value
        if (key === ATTR.urlPath) {
          const q = text.indexOf('?')
          if (q !== -1) text = text.slice(0, q)
        }
        if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT) + '…'
        bytes += ATTRIBUTE_OVERHEAD + 2 * text.length
        attrs[key] = text
      } else if (typeof value === 'number' || typeof value === 'boolean') {
        bytes += ATTRIBUTE_OVERHEAD
        attrs[key] = value
      }
    }

    const record: SpanRecord = {
      spanId: span.spanContext().spanId,
      parentId: parent?.spanId,
      name: span.name,
      kind: span.kind,
      start: toMs(span.startTime),
      duration: toMs(span.duration),
      // The status message is left out: a driver's error text can quote the offending value.
      error: span.status.code === SpanStatusCode.ERROR,
      attrs
    }
    this.buffer.add(traceId, record, bytes, localRoot)
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
