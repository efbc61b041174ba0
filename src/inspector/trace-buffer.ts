/**
 * The request inspector's trace buffer: the most recent traces, bounded by count and by an
 * estimate of their size, oldest dropped first. The span processor (./processor.ts) writes it;
 * the app reads it through the TraceSource the OTel bootstrap hands over (telemetry/runtime.ts).
 */

/** A compact copy of one ended span: no events, no links, only allow-listed attributes. */
export interface SpanRecord {
  spanId: string
  /** Parent span id; undefined for a root. */
  parentId: string | undefined
  name: string
  /** SpanKind: 0 internal, 1 server, 2 client, 3 producer, 4 consumer. */
  kind: number
  /** Epoch milliseconds (fractional). */
  start: number
  /** Milliseconds. */
  duration: number
  error: boolean
  attrs: Record<string, string | number | boolean>
}

export interface TraceEntry {
  traceId: string
  spans: SpanRecord[]
  /** The request's server span once it has ended (it ends after its children). */
  root: SpanRecord | undefined
  /** Estimated bytes of this trace's records. */
  bytes: number
}

export interface BufferStats {
  traces: number
  bytes: number
  maxTraces: number
  maxBytes: number
  /** Traces evicted to stay within the bounds since start. */
  evicted: number
}

/** What the app may call; the processor holds the full TraceBuffer. */
export interface TraceSource {
  /** Traces whose server span has ended, newest first. */
  requests(): TraceEntry[]
  get(traceId: string): TraceEntry | undefined
  stats(): BufferStats
}

export class TraceBuffer implements TraceSource {
  // A Map iterates in insertion order: the first key is the oldest trace.
  private readonly traces = new Map<string, TraceEntry>()
  private bytes = 0
  private evicted = 0

  constructor(
    readonly maxTraces: number,
    readonly maxBytes: number
  ) {}

  add(traceId: string, span: SpanRecord, bytes: number, isRoot: boolean): void {
    let entry = this.traces.get(traceId)
    if (entry === undefined) {
      if (this.traces.size >= this.maxTraces) this.evictOldest()
      entry = { traceId, spans: [], root: undefined, bytes: 0 }
      this.traces.set(traceId, entry)
    }
    entry.spans.push(span)
    entry.bytes += bytes
    if (isRoot) entry.root = span
    this.bytes += bytes
    while (this.bytes > this.maxBytes && this.traces.size > 0) this.evictOldest()
  }

  /** Forgets a trace (the inspector's own requests, spans outside any request). */
  drop(traceId: string): void {
    const entry = this.traces.get(traceId)
    if (entry === undefined) return
    this.traces.delete(traceId)
    this.bytes -= entry.bytes
  }

  private evictOldest(): void {
    const oldest = this.traces.keys().next()
    if (oldest.done) return
    this.drop(oldest.value)
    this.evicted++
  }

  requests(): TraceEntry[] {
    const out: TraceEntry[] = []
    for (const entry of this.traces.values()) if (entry.root) out.push(entry)
    return out.reverse()
  }

  get(traceId: string): TraceEntry | undefined {
    return this.traces.get(traceId)
  }

  stats(): BufferStats {
    return { traces: this.traces.size, bytes: this.bytes, maxTraces: this.maxTraces, maxBytes: this.maxBytes, evicted: this.evicted }
  }
}
