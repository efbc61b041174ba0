// @ts-check
// Open model: k6 starts list requests at a rising rate whether or not earlier ones returned,
// so the offered load does not drop when the server slows down (a closed model with think
// time caps throughput at VUs / (latency + sleep): 30 VUs with 0.1 s sleep never offer more
// than 300 req/s, and offer less exactly when the server is struggling). The run stops itself
// once the latency or error budget is blown: the rate at that moment is the server's limit.
import { listPosts } from './lib/actions.js'
import { common } from './lib/options.js'

const run = common('arrival')

const START_RATE = Number(__ENV.START_RATE || 50)
const PEAK_RATE = Number(__ENV.PEAK_RATE || 2000)
// VUs needed = rate x latency: 2000 req/s at 100 ms is 200 VUs. Running out of VUs shows up
// as dropped_iterations (k6 could not start the requests it was told to).
const PRE_VUS = Number(__ENV.PRE_VUS || 100)
const MAX_VUS = Number(__ENV.MAX_VUS || 1000)

/** @param {number} share */
const rate = (share) => Math.max(1, Math.round(PEAK_RATE * share))

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  discardResponseBodies: true,
  scenarios: {
    list_open: {
      executor: 'ramping-arrival-rate',
      startRate: START_RATE,
      timeUnit: '1s',
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      stages: [
        { duration: '30s', target: rate(0.1) },
        { duration: '30s', target: rate(0.25) },
        { duration: '1m', target: rate(0.5) },
        { duration: '1m', target: rate(1) },
        { duration: '30s', target: rate(1) }
      ]
    }
  },
  thresholds: {
    // delayAbortEval: give percentiles a few seconds of samples before they may stop the run.
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '10s' }],
    http_req_duration: [{ threshold: 'p(95)<200', abortOnFail: true, delayAbortEval: '10s' }, 'p(99)<1000'],
    dropped_iterations: [{ threshold: 'count<100', abortOnFail: true, delayAbortEval: '10s' }],
    checks: ['rate>0.99']
  }
}

export const setup = run.setup
export const handleSummary = run.handleSummary

// No sleep: in an open model the executor paces the requests.
export default function () {
  listPosts()
}
