// Types for the remote jslib modules the scripts import (k6 fetches them at run time; tsc
// cannot). Written from the modules' sources at these exact versions; bump both together.

declare module 'https://jslib.k6.io/http-instrumentation-tempo/1.0.1/index.js' {
  import type { RefinedResponse, RequestBody, Params, ResponseType } from 'k6/http'

  export interface TracingOptions {
    /** Header format: `w3c` sends `traceparent`, `jaeger` sends `uber-trace-id`. */
    propagator: 'w3c' | 'jaeger'
    /** Share of requests marked sampled, 0..1 (default 1). */
    sampling?: number
  }

  /** An http-like client whose requests carry a trace context. */
  export class Client {
    constructor(opts: TracingOptions)
    configure(opts: TracingOptions): void
    request(method: string, url: string, body?: RequestBody | null, params?: Params | null): RefinedResponse<ResponseType | undefined>
    asyncRequest(method: string, url: string, body?: RequestBody | null, params?: Params | null): Promise<RefinedResponse<ResponseType | undefined>>
    get(url: string, params?: Params | null): RefinedResponse<ResponseType | undefined>
    post(url: string, body?: RequestBody | null, params?: Params | null): RefinedResponse<ResponseType | undefined>
  }

  /** Replaces the k6/http functions (on the module's default export) with traced ones. */
  export function instrumentHTTP(opts: TracingOptions): void

  const tempo: { Client: typeof Client; instrumentHTTP: typeof instrumentHTTP }
  export default tempo
}

declare module 'https://jslib.k6.io/k6-summary/0.1.0/index.js' {
  /** One metric in handleSummary's data (values depend on the metric type). */
  export interface SummaryMetric {
    type: 'counter' | 'gauge' | 'rate' | 'trend'
    contains: 'default' | 'time' | 'data'
    values: Record<string, number>
    thresholds?: Record<string, { ok: boolean }>
  }

  export interface SummaryGroup {
    name: string
    path: string
    id: string
    groups: SummaryGroup[]
    checks: { name: string; path: string; id: string; passes: number; fails: number }[]
  }

  /** The object k6 passes to handleSummary(). */
  export interface SummaryData {
    metrics: Record<string, SummaryMetric>
    root_group: SummaryGroup
    options: { summaryTrendStats: string[]; summaryTimeUnit: string; noColor: boolean }
    state: { isStdOutTTY: boolean; isStdErrTTY: boolean; testRunDurationMs: number }
    /** What setup() returned. */
    setup_data?: unknown
  }

  export interface TextSummaryOptions {
    indent?: string
    enableColors?: boolean
    summaryTimeUnit?: string | null
    summaryTrendStats?: string[] | null
  }

  export function textSummary(data: SummaryData, options?: TextSummaryOptions): string
  export function jUnit(data: SummaryData, options?: { name?: string; classname?: string }): string
  export function humanizeValue(value: number, metric: SummaryMetric, timeUnit?: string): string
}
