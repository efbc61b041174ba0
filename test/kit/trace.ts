import { expect } from 'vitest'
import { ATTRIBUTE_DOCS, isKnownSpanName } from '../../src/telemetry/names'
import type { ReceivedSpan } from './otlp-receiver'

/**
 * The trace contract of one request, checked the same way whatever stored the trace (the
 * in-process OTLP receiver, a real Jaeger): one server span named `METHOD route`, every other
 * span its direct child and inside its time, the expected children, SQL texts in order and
 * masked, and ERROR status only for a server failure.
 */

/** A span as every source can give it. */
export interface ContractSpan {
  name: string
  spanId: string
  parentId: string | undefined
  kind: 'server' | 'client' | 'internal' | 'other'
  attributes: Record<string, unknown>
  /** Microseconds since the epoch. */
  startUs: number
  endUs: number
  error: boolean
  /** The order the source saw them end in, when it knows (OTLP export order); else the start. */
  order: number
}

const OTLP_KINDS: Record<number, ContractSpan['kind']> = { 1: 'internal', 2: 'server', 3: 'client' }

export function fromOtlp(spans: ReceivedSpan[]): ContractSpan[] {
  return spans.map((s) => ({
    name: s.name,
    spanId: s.spanId,
    parentId: s.parentSpanId,
    kind: OTLP_KINDS[s.kind] ?? 'other',
    attributes: s.attributes,
    startUs: Number(s.startNs / 1000n),
    endUs: Number(s.endNs / 1000n),
    error: s.status.code === 2,
    order: s.seq
  }))
}

/** Jaeger's query API (`/api/traces/{id}`) shape, the parts used here. */
export interface JaegerSpan {
  traceID: string
  spanID: string
  operationName: string
  references: { refType: string; traceID: string; spanID: string }[]
  tags: { key: string; type: string; value: string | number | boolean }[]
  processID: string
  startTime: number
  duration: number
}
export interface JaegerTrace {
  traceID: string
  spans: JaegerSpan[]
  processes: Record<string, { serviceName: string; tags: JaegerSpan['tags'] }>
}

export const jaegerTags = (s: JaegerSpan): Record<string, string | number | boolean> => Object.fromEntries(s.tags.map((t) => [t.key, t.value]))

export function fromJaeger(trace: JaegerTrace): ContractSpan[] {
  return trace.spans.map((s) => {
    const tags = jaegerTags(s)
    const kind = String(tags['span.kind'] ?? 'internal')
    return {
      name: s.operationName,
      spanId: s.spanID,
      parentId: s.references.find((r) => r.refType === 'CHILD_OF')?.spanID,
      kind: kind === 'server' || kind === 'client' || kind === 'internal' ? kind : 'other',
      attributes: tags,
      startUs: s.startTime,
      endUs: s.startTime + s.duration,
      error: tags['otel.status_code'] === 'ERROR' || tags.error === true,
      order: s.startTime
    }
  })
}

export interface RequestContract {
  /** The server span's name, e.g. `GET /blogs/show/:id` (`GET` alone for an unrouted 404). */
  name: string
  status: number
  /** Names of the server span's children, in any order, e.g. ['pool.acquire', 'SELECT', 'view.render']. */
  children?: string[]
  /** The `db.query.text` of the SQL children, each matched in the order they ran. */
  sql?: RegExp[]
  /** The template the request rendered (`blog.view.name` of its view.render span). */
  view?: string
  /** The server span is ERROR (a 5xx); otherwise it must not be. */
  error?: boolean
  /** The span id the response's traceresponse named. */
  spanId?: string
}

export function formatContractTree(spans: ContractSpan[]): string {
  return [...spans].sort((a, b) => a.startUs - b.startUs)
    .map((s) => `${s.parentId ? '  ' : ''}${s.name} [${s.kind}${s.error ? ' ERROR' : ''}] ${JSON.stringify(s.attributes)}`)
    .join('\n')
}

/** App-namespaced attributes (`blog.*`) must be ones src/telemetry/names.ts defines and documents. */
const APP_ATTRIBUTE = /^blog\./

/**
 * One name per signal: every span is named as src/telemetry/names.ts says spans are named, and
 * every app attribute on it is defined there (so docs/telemetry-reference.md lists it).
 */
export function expectNamedSignals(spans: ContractSpan[]): void {
  for (const s of spans) {
    expect(isKnownSpanName(s.name), `span name "${s.name}" is not defined in src/telemetry/names.ts`).toBe(true)
    for (const key of Object.keys(s.attributes)) {
      if (APP_ATTRIBUTE.test(key)) expect(key in ATTRIBUTE_DOCS, `attribute "${key}" on ${s.name} is not defined in src/telemetry/names.ts`).toBe(true)
    }
  }
}

/** Asserts the contract; returns the server span and its children for further checks. */
export function expectRequestTrace(spans: ContractSpan[], c: RequestContract): { server: ContractSpan; children: ContractSpan[]; sql: ContractSpan[] } {
  const tree = formatContractTree(spans)
  expectNamedSignals(spans)
  const servers = spans.filter((s) => s.kind === 'server')
  expect(servers.map((s) => s.name), tree).toEqual([c.name])
  const server = servers[0]!
  if (c.spanId) expect(server.spanId, 'traceresponse names the exported server span').toBe(c.spanId)
  const method = c.name.split(' ')[0]
  const route = c.name.includes(' ') ? c.name.slice(method!.length + 1) : undefined
  expect(server.attributes['http.request.method'], tree).toBe(method)
  expect(server.attributes['http.route'], tree).toBe(route)
  expect(Number(server.attributes['http.response.status_code']), tree).toBe(c.status)
  expect(server.error, tree).toBe(c.error ?? false)

  // Flat: nothing hangs off anything but the server span, and all of it happens inside it
  // (1 ms of slack: spans of the http and AWS SDK instrumentations stamp their start with Date.now()).
  const children = spans.filter((s) => s !== server)
  for (const s of children) {
    expect(s.parentId, `${s.name}\n${tree}`).toBe(server.spanId)
    expect(s.startUs + 1000, s.name).toBeGreaterThanOrEqual(server.startUs)
    expect(s.endUs, s.name).toBeLessThanOrEqual(server.endUs + 1000)
  }
  if (c.children) expect(children.map((s) => s.name).sort(), tree).toEqual([...c.children].sort())

  const sql = children.filter((s) => s.kind === 'client' && s.attributes['db.system.name'] === 'mysql').sort((a, b) => a.order - b.order)
  const texts = sql.map((s) => String(s.attributes['db.query.text']))
  if (c.sql) {
    expect(texts.length, tree).toBe(c.sql.length)
    c.sql.forEach((re, i) => expect(texts[i], `statement ${i + 1}\n${texts.join('\n')}`).toMatch(re))
  }
  // Masked: no literal value of any kind in any statement.
  for (const t of texts) expect(t).not.toMatch(/\b\d+\b|'[^']*'|"[^"]*"/)
  if (c.view !== undefined) {
    const renders = children.filter((s) => s.name === 'view.render')
    expect(renders.map((r) => r.attributes['blog.view.name']), tree).toEqual([c.view])
  }
  return { server, children, sql }
}
