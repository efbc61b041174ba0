// @ts-check
// The read path past its comfortable load: 100 VUs, then 200. Thresholds report p95 and p99;
// a failed threshold here marks the load where the latency budget broke, it is not a bug.
import { sleep } from 'k6'
import { listPosts } from './lib/actions.js'
import { common } from './lib/options.js'

const run = common('stress')

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  // Only statuses are checked; skipping the bodies keeps k6 itself off the critical path.
  discardResponseBodies: true,
  stages: [
    { duration: '30s', target: 100 },
    { duration: '1m', target: 100 },
    { duration: '30s', target: 200 },
    { duration: '1m', target: 200 },
    { duration: '30s', target: 0 }
  ],
  thresholds: {
    http_req_failed: ['rate<0.05'],
    http_req_duration: ['p(95)<500', 'p(99)<1500'],
    checks: ['rate>0.95']
  }
}

export const setup = run.setup
export const handleSummary = run.handleSummary

export default function () {
  listPosts()
  sleep(0.1)
}
