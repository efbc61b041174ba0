// What Grafana's Tempo datasource asks Prometheus for, outside anything this repo provisions:
// the Service Graph view's table (rate, errors, duration per span name) uses fixed metric and
// label names, so the collector's spanmetrics connector has to produce exactly these.

export const SERVICE_GRAPH_TABLE_METRICS = ['traces_spanmetrics_calls_total', 'traces_spanmetrics_duration_seconds_bucket'] as const

/**
 * The table's queries as Grafana 12 builds them with no Service Graph filter, `$__range`
 * replaced by `range`. The duration query is sent once per span name the rate query returned.
 */
export function serviceGraphTableQueries(range: string, spanName: string): { rate: string; errors: string; duration: string } {
  const server = 'span_kind="SPAN_KIND_SERVER"'
  return {
    rate: `topk(5, sum(rate(traces_spanmetrics_calls_total{${server}}[${range}])) by (span_name))`,
    errors: `topk(5, sum(rate(traces_spanmetrics_calls_total{${server},status_code="STATUS_CODE_ERROR"}[${range}])) by (span_name))`,
    duration: `histogram_quantile(.9, sum(rate(traces_spanmetrics_duration_seconds_bucket{${server},span_name=~"${spanName}"}[${range}])) by (le))`
  }
}
