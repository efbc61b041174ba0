// @ts-check
// Smoke-sized read load: the post list under a closed model, 1 -> 30 VUs.
import { sleep } from 'k6'
import { listPosts } from './lib/actions.js'
import { common } from './lib/options.js'

const run = common('read')

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  stages: [
    { duration: '5s', target: 1 },
    { duration: '20s', target: 30 },
    { duration: '5s', target: 0 }
  ],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<200'],
    checks: ['rate>0.99']
  }
}

export const setup = run.setup
export const handleSummary = run.handleSummary

export default function () {
  listPosts()
  sleep(0.1)
}
