// @ts-check
// Write load: the new-post form with a 1x1 PNG, up to 10 VUs, each signed in as its own user
// (signed up in setup()). Every iteration adds a row and an image file: run it against a
// database you can throw away.
import { sleep } from 'k6'
import { createPost, signUpUsers } from './lib/actions.js'
import { userOf } from './lib/app.js'
import { common } from './lib/options.js'

const run = common('write')
const VUS = 10

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  stages: [
    { duration: '10s', target: VUS },
    { duration: '30s', target: VUS },
    { duration: '5s', target: 0 }
  ],
  thresholds: {
    http_req_failed: ['rate<0.02'],
    http_req_duration: ['p(95)<800'],
    checks: ['rate>0.98']
  }
}

/** @typedef {{ testid: string, users: import('./lib/app.js').User[] }} SetupData */

/** @returns {SetupData} */
export function setup() {
  const base = run.setup()
  return { ...base, users: signUpUsers(VUS, base.testid) }
}

export const handleSummary = run.handleSummary

/** @param {SetupData} data */
export default function (data) {
  createPost(`${run.testid} vu${__VU} it${__ITER}`, userOf(data.users, __VU))
  sleep(0.2)
}
