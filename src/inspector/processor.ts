import { SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api'
import { performance } from 'node:perf_hooks'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace'
import { isInspectorPath } from '../telemetry/constants'
import { TraceBuffer, type SpanRecord } from './trace-buffer'

/**
 * The only attributes the inspector keeps. Everything else (user agent, client address, any
 * attribute added later) stays out, so nothing a user typed or a secret header can reach the
 * buffer by accident. db.query.text is masked by the mysql2 instrumentation (maskStatement).
 */
export const KEPT_ATTRIBUTES = [
  'http.request.method',
  'http.route',
  'http.response.status_code',
  'url.path',
  'error.type',
  'db.system.name',
  'db.namespace',
  'db.operation.name',
  'db.query.text',
  'db.client.connection.pool.name',
  'server.address',
  'server.port',
  'blog.view.name',
  'blog.image.bytes',
  'blog.image.type',
  'blog.image.input_type',
  'blog.image.input_bytes',
  'blog.image.width',
  'blog.image.height',
  'blog.image.thumb_bytes',
  'blog.event_loop.active_ms',
  'blog.db.server_ms',
  'blog.db.lock_ms',
  'blog.db.rows_examined',
  'blog.db.rows_sent'
] as const

/** Long enough for any statement this app makes; a runaway IN (?, ?, ...) list is cut. */
const MAX_TEXT = 2000
/** Rough heap cost of a record without its strings (object, arrays, numbers, map slot). */
const RECORD_OVERHEAD = 240
const ATTRIBUTE_OVERHEAD = 40

const toMs = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6

// The SDK stamps a span's start with Date.now(), whole milliseconds (sdk-trace 3.1 Span.cjs),
// while durations come from performance.now(): in a 5 ms request a child could start up to
// 1 ms "before" its parent. The waterfall uses a monotonic start taken here instead.
const kStart = Symbol('blog_app.inspector.start')
type Stamped = { [kStart]?: number }

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

  onStart(span: Span): void {
    ;(span as unknown as Stamped)[kStart] = performance.timeOrigin + performance.now()
  }

  onEnd(span: ReadableSpan): void {
    const traceId = span.spanContext().traceId
    const parent = span.parentSpanContext
    const localRoot = parent === undefined || parent.isRemote === true
    const source = span.attributes
    if (span.kind === SpanKind.SERVER) {
      const path = source['url.path'] ?? source['http.route']
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
        if (key === 'url.path') {
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
      start: (span as unknown as Stamped)[kStart] ?? toMs(span.startTime),
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
