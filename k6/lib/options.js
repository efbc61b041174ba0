// @ts-check
// Shared by every script: target URL, run id and tags, trace propagation, summary output.
// The two jslib modules are local files: `sh k6/vendor/fetch.sh` once (README, "Running").
import exec from 'k6/execution'
import tempo from '../vendor/http-instrumentation-tempo-1.0.1.js'
import { textSummary } from '../vendor/k6-summary-0.1.0.js'
import { TESTID_BAGGAGE } from './app.js'

/** @typedef {import('k6/options').Options} Options */
/** @typedef {import('../vendor/k6-summary-0.1.0.js').SummaryData} SummaryData */

/** The app under test, without a trailing slash: the Compose balancer unless told. */
export const BASE_URL = (__ENV.BASE_URL || 'http://lb:8000').replace(/\/+$/, '')

/** Requests at least this slow (ms, as k6 measured them) are logged with their trace id. */
export const SLOW_MS = Number(__ENV.SLOW_MS || 500)

/** Slow requests logged per VU at most: a server in trouble would otherwise flood the log. */
export const SLOW_LOG_PER_VU = Number(__ENV.SLOW_LOG_PER_VU || 20)

/**
 * Share of requests whose traceparent is marked sampled (0..1). The app keeps every trace a
 * trusted caller marks sampled; 0 leaves the choice to the app (its slowest 1% per route, errors
 * and its sampler's baseline), which keeps a stress run's trace volume small.
 */
export const TRACE_SAMPLING = Number(__ENV.TRACE_SAMPLING || 1)

/** Where handleSummary writes summary-<testid>.json (the directory must exist). */
export const SUMMARY_DIR = (__ENV.SUMMARY_DIR || '.').replace(/\/+$/, '')

/**
 * k6's default system tags less `url`: every request sets a `name` per route, and a `url` label
 * per post id would make one Prometheus series per post.
 */
export const SYSTEM_TAGS = ['proto', 'subproto', 'status', 'method', 'name', 'group', 'check', 'error', 'error_code',
  'tls_version', 'scenario', 'service', 'expected_response']

/** Trend stats shown in the end-of-test summary and JSON (p99 included for tail latency). */
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count']

// From here on every k6/http call made through the module's default export (`http.get`, not a
// named import) sends a W3C `traceparent` (sampled for TRACE_SAMPLING of them) and records its
// trace id as the sample's `trace_id` metadata (k6/experimental/tracing, removed in k6 0.55,
// did this before).
tempo.instrumentHTTP({ propagator: 'w3c', sampling: TRACE_SAMPLING })

/** @type {string | undefined} */
let baggageValue

/**
 * The W3C `baggage` header every request sends: `testid=<run id>`, the tag k6 applied (a CLI
 * `--tag testid=...` included). The app copies it onto its server span as blog.load_test.id, so
 * one Tempo or Jaeger query finds a run's traces. Read once per VU.
 * @returns {string}
 */
export function runBaggage() {
  baggageValue ??= `${TESTID_BAGGAGE}=${encodeURIComponent(appliedTestId() ?? (__ENV.TESTID || 'unknown'))}`
  return baggageValue
}

/**
 * The options, setup() and handleSummary() every script exports.
 *
 * The run id: TESTID from the environment, else `<script>-<UTC time>`. Each VU evaluates its
 * own init code (its own clock), so handleSummary does not recompute it: setup() reads the tag
 * k6 actually applied (a CLI `--tag testid=...` wins over the script's) and handleSummary gets
 * it back through `data.setup_data`.
 * @param {string} script
 */
export function common(script) {
  const fallback = __ENV.TESTID || `${script}-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`

  /** @type {Options} */
  const options = { tags: { testid: fallback }, systemTags: SYSTEM_TAGS, summaryTrendStats: TREND_STATS }

  /** @returns {{ testid: string }} */
  function setup() {
    return { testid: appliedTestId() ?? fallback }
  }

  /** @param {SummaryData} data */
  function handleSummary(data) {
    // A file name: keep it to safe characters whatever the tag holds.
    const testid = (testIdOf(data.setup_data) ?? fallback).replace(/[^A-Za-z0-9._-]/g, '_')
    return {
      stdout: textSummary(data, { indent: ' ', enableColors: true }),
      [`${SUMMARY_DIR}/summary-${testid}.json`]: JSON.stringify(data, null, 2)
    }
  }

  return { testid: fallback, options, setup, handleSummary }
}

/** @returns {string | undefined} */
function appliedTestId() {
  try {
    return exec.test.options.tags?.testid
  } catch {
    return undefined
  }
}

/**
 * @param {unknown} setupData
 * @returns {string | undefined}
 */
function testIdOf(setupData) {
  if (setupData && typeof setupData === 'object' && 'testid' in setupData && typeof setupData.testid === 'string') {
    return setupData.testid
  }
  return undefined
}
