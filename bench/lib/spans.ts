import protobuf from 'protobufjs'
import { ATTR, spanCategory, type SpanCategory } from '../../src/telemetry/names'

// Just the fields of OTLP's ExportTraceServiceRequest the breakdown needs; protobuf skips the
// rest. Lets the harness read the app's default (protobuf) exports without a collector.
const root = protobuf.parse(`
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { repeated ScopeSpans scope_spans = 2; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
}
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
`).root
const Request = root.lookupType('ExportTraceServiceRequest')

export interface BenchSpan {
  traceId: string
  spanId: string
  parentSpanId: string
  name: string
  /** SpanKind as the API numbers it (OTLP's is one more). */
  kind: number
  durationMs: number
  attributes: Record<string, unknown>
}

type Long = { toNumber(): number }
const num = (v: number | Long) => (typeof v === 'number' ? v : v.toNumber())

/** Decodes OTLP/protobuf trace export bodies into spans. */
export function decodeTraces(bodies: Buffer[]): BenchSpan[] {
  const out: BenchSpan[] = []
  for (const body of bodies) {
    const req = Request.toObject(Request.decode(body), { longs: Number, bytes: Buffer }) as {
      resourceSpans?: { scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]
    }
    for (const rs of req.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          const attrs: Record<string, unknown> = {}
          for (const kv of (s.attributes as { key: string; value?: Record<string, unknown> }[]) ?? []) {
            const v = kv.value ?? {}
            attrs[kv.key] = v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue
          }
          out.push({
            traceId: (s.traceId as Buffer).toString('hex'),
            spanId: (s.spanId as Buffer).toString('hex'),
            parentSpanId: s.parentSpanId ? (s.parentSpanId as Buffer).toString('hex') : '',
            name: s.name as string,
            kind: Math.max(0, Number(s.kind ?? 1) - 1),
            durationMs: (num(s.endTimeUnixNano as number) - num(s.startTimeUnixNano as number)) / 1e6,
            attributes: attrs
          })
        }
      }
    }
  }
  return out
}

export const PHASES = ['pool wait', 'SQL', 'render', 'image', 'image write', 'other'] as const
export type Phase = (typeof PHASES)[number]
/** Each kind of work (telemetry/names.ts) as the phase it is counted in. */
const PHASE_OF: Partial<Record<SpanCategory, Phase>> = { pool: 'pool wait', sql: 'SQL', render: 'render', image: 'image', store: 'image write' }
/**
 * A request's server time by phase, and its SQL time split (README "Truthful timings"):
 * sqlServer is the database's own time where performance_schema could be joined (sqlJoined is
 * the SQL span time those statements took), sqlLoop the event loop busy while SQL spans were open.
 */
export type Breakdown = Record<Phase, number> & { total: number; queries: number; sqlServer: number; sqlJoined: number; sqlLoop: number; loop: number }

const empty = (total = 0): Breakdown => ({ 'pool wait': 0, SQL: 0, render: 0, image: 0, 'image write': 0, other: 0, total, queries: 0, sqlServer: 0, sqlJoined: 0, sqlLoop: 0, loop: 0 })
const numberOr0 = (v: unknown) => (typeof v === 'number' ? v : 0)

/** Splits one trace's server time into phases (the app's spans under the server span are sequential). */
export function breakdown(spans: BenchSpan[]): Breakdown | null {
  const server = spans.find((s) => !s.parentSpanId || !spans.some((p) => p.spanId === s.parentSpanId))
  if (!server) return null
  const b = empty(server.durationMs)
  b.loop = numberOr0(server.attributes[ATTR.loopActiveMs])
  for (const s of spans) {
    if (s === server) continue
    const phase = PHASE_OF[spanCategory(s)]
    if (!phase) continue
    b[phase] += s.durationMs
    if (phase !== 'SQL') continue
    b.queries++
    // The database's time first; loop-busy time counts only for what is left of the span
    // (the loop working while the database works delays nothing), as the inspector splits it.
    const serverMs = s.attributes[ATTR.dbServerMs]
    const dbServer = typeof serverMs === 'number' ? Math.min(s.durationMs, serverMs) : undefined
    b.sqlLoop += Math.min(s.durationMs - (dbServer ?? 0), numberOr0(s.attributes[ATTR.loopActiveMs]))
    if (dbServer !== undefined) {
      b.sqlServer += dbServer
      b.sqlJoined += s.durationMs
    }
  }
  b.other = Math.max(0, b.total - b['pool wait'] - b.SQL - b.render - b.image - b['image write'])
  return b
}

/** Mean of each phase over many traces. */
export function meanBreakdown(items: Breakdown[]): Breakdown | null {
  if (items.length === 0) return null
  const m = empty()
  for (const b of items) for (const k of Object.keys(m) as (keyof Breakdown)[]) m[k] += b[k] / items.length
  return m
}
