import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../paths'
import { ATTRIBUTE_DOCS, CATEGORIES, METRIC_DOCS, SPAN_DOCS, type AttributeName } from '../telemetry/names'

/** docs/telemetry-reference.md: every span, attribute and metric, from src/telemetry/names.ts. */
export const TELEMETRY_REFERENCE_FILE = path.join(ROOT, 'docs', 'telemetry-reference.md')

const code = (s: string) => `\`${s}\``
const cell = (s: string) => s.replaceAll('|', '\\|')

/** The response headers the telemetry plugin writes (src/telemetry/plugin.ts). */
const HEADERS: [string, string][] = [
  ['X-Process-Time', '`12.34ms`: the request\'s server time, from its first hook to the moment its response is handed over; the server span\'s duration and its `blog.http.process_time_ms`'],
  ['Server-Timing', '`db;dur=…;desc="N queries", pool;dur=…, render;dur=…, total;dur=…`: the sums of the request\'s SQL, pool.acquire and view.render spans, and X-Process-Time (`SERVER_TIMING=false` leaves it out)'],
  ['traceresponse', '`00-<trace id>-<server span id>-<flags>` (W3C Trace Context level 2): the trace to look up; flags `01` when it was sampled']
]

export function renderTelemetryReference(): string {
  const usedOn = (a: AttributeName) => SPAN_DOCS.filter((s) => s.attributes.includes(a)).map((s) => code(s.name))
  const lines = [
    '# Telemetry reference',
    '',
    '<!-- Generated from src/telemetry/names.ts by `npm run gen:docs`: do not edit (a test checks it is current). -->',
    '',
    'Every span, attribute and metric the app emits, and the headers that point to them. The',
    'narrative (how a trace reads, how the database\'s own time is joined) is in',
    '[telemetry.md](telemetry.md). Stability: `stable` and `development` are OpenTelemetry semantic',
    'conventions at that status; `app` names are this project\'s own, under `blog.*`.',
    '',
    '## Response headers',
    '',
    '| Header | Meaning |',
    '| --- | --- |',
    ...HEADERS.map(([h, m]) => `| ${code(h)} | ${cell(m)} |`),
    '',
    '## Spans',
    '',
    '| Name | Kind | Made by | Meaning | Attributes |',
    '| --- | --- | --- | --- | --- |',
    ...SPAN_DOCS.map((s) => `| ${code(s.name)} | ${s.kind} | ${cell(s.madeBy)} | ${cell(s.brief)} | ${s.attributes.map(code).join(', ') || '(the instrumentation\'s)'} |`),
    '',
    '## Attributes',
    '',
    '| Attribute | Type | Stability | Meaning | On |',
    '| --- | --- | --- | --- | --- |',
    ...(Object.entries(ATTRIBUTE_DOCS) as [AttributeName, (typeof ATTRIBUTE_DOCS)[AttributeName]][]).map(
      ([name, d]) => `| ${code(name)} | ${d.type} | ${d.stability} | ${cell(d.brief)} | ${usedOn(name).join(', ') || 'metrics only'} |`
    ),
    '',
    '## Metrics',
    '',
    '| Metric | Instrument | Unit | Stability | Meaning | Attributes |',
    '| --- | --- | --- | --- | --- | --- |',
    ...Object.entries(METRIC_DOCS).map(
      ([name, d]) => `| ${code(name)} | ${d.instrument} | ${code(d.unit)} | ${d.stability} | ${cell(d.brief)} | ${d.attributes.map(code).join(', ')} |`
    ),
    '',
    'The runtime-node instrumentation adds the Node.js runtime metrics (event-loop delay and',
    'utilization, heap, GC). Exported only with an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`).',
    '',
    '## Kinds of work',
    '',
    'How the inspector colours spans and the bench splits a request\'s time (`spanCategory`):',
    '',
    '| Kind | Meaning |',
    '| --- | --- |',
    ...Object.values(CATEGORIES).map((c) => `| ${c.label} | ${cell(c.brief)} |`),
    ''
  ]
  return lines.join('\n')
}

// `npm run gen:docs`
if (require.main === module) writeFileSync(TELEMETRY_REFERENCE_FILE, renderTelemetryReference())
