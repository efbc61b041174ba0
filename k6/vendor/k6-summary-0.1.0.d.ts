// Types for k6/vendor/k6-summary-0.1.0.js (jslib k6-summary 0.1.0, fetched by
// k6/vendor/fetch.sh; not committed: AGPL-3.0). Written from the module's source at this exact
// version; bump the file name, fetch.sh and the import together.
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
