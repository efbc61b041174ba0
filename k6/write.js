// @ts-check
// Write load: the new-post form with a 1x1 PNG, up to 10 VUs. Every iteration adds a row and
// an image file: run it against a database you can throw away.
import { sleep } from 'k6'
import { createPost } from './lib/actions.js'
import { common } from './lib/options.js'

const run = common('write')

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  stages: [
    { duration: '10s', target: 10 },
    { duration: '30s', target: 10 },
    { duration: '5s', target: 0 }
  ],
  thresholds: {
    http_req_failed: ['rate<0.02'],
    http_req_duration: ['p(95)<800'],
    checks: ['rate>0.98']
  }
}

export const setup = run.setup
export const handleSummary = run.handleSummary

export default function () {
  createPost(`${run.testid} vu${__VU} it${__ITER}`)
  sleep(0.2)
}
