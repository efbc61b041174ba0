// @ts-check
// A reader-heavy mix at a fixed total rate (open model, one scenario per kind of request):
// 80% list, 15% show of a post found on the list pages, 5% create. See README.md.
import { fail } from 'k6'
import { createPost, discoverIds, listPosts, showPost, signUpUsers } from './lib/actions.js'
import { userOf } from './lib/app.js'
import { common } from './lib/options.js'

const run = common('mixed')

const RATE = Number(__ENV.RATE || 100) // requests per second, all scenarios together
const DURATION = __ENV.DURATION || '2m'
const MIX = { list: 0.8, show: 0.15, create: 0.05 }
const DISCOVER_PAGES = Number(__ENV.DISCOVER_PAGES || 3)

/**
 * A constant-arrival-rate scenario running `exec` at its share of RATE. Per minute, so small
 * shares stay whole (5% of 10 req/s is 30 per minute).
 * @param {keyof typeof MIX} exec
 * @returns {import('k6/options').ConstantArrivalRateScenario}
 */
function scenario(exec) {
  const perSecond = RATE * MIX[exec]
  return {
    executor: 'constant-arrival-rate',
    exec,
    rate: Math.max(1, Math.round(perSecond * 60)),
    timeUnit: '1m',
    duration: DURATION,
    preAllocatedVUs: Math.max(2, Math.ceil(perSecond * 0.2)),
    maxVUs: Math.max(10, Math.ceil(perSecond * 2))
  }
}

/** @type {import('k6/options').Options} */
export const options = {
  ...run.options,
  scenarios: { list: scenario('list'), show: scenario('show'), create: scenario('create') },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{scenario:list}': ['p(95)<200'],
    'http_req_duration{scenario:show}': ['p(95)<200'],
    'http_req_duration{scenario:create}': ['p(95)<800'],
    checks: ['rate>0.99'],
    dropped_iterations: ['count<10']
  }
}

/** @typedef {{ testid: string, ids: number[], users: import('./lib/app.js').User[] }} SetupData */

/** @returns {SetupData} */
export function setup() {
  const ids = discoverIds(DISCOVER_PAGES)
  if (ids.length === 0) fail('no post links on /blogs/: seed the database first (npm run db:seed)')
  const base = run.setup()
  // As many writers as the create scenario may run VUs (VU numbers are global: userOf wraps).
  const writers = options.scenarios?.create && 'maxVUs' in options.scenarios.create ? Number(options.scenarios.create.maxVUs) : 10
  return { ...base, ids, users: signUpUsers(writers, base.testid) }
}

export const handleSummary = run.handleSummary

export function list() {
  listPosts()
}

/** @param {SetupData} data */
export function show(data) {
  const id = data.ids[Math.floor(Math.random() * data.ids.length)]
  if (id !== undefined) showPost(id)
}

/** @param {SetupData} data */
export function create(data) {
  createPost(`${run.testid} vu${__VU} it${__ITER}`, userOf(data.users, __VU))
}
