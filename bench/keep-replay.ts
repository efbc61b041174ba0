// npm run bench:keep-replay -- bench/results/<run> [--variant otel=10pct]
// (a run of `npm run bench -- --samples ...`)
// Replays a run's request durations (the `--samples` files, in the order the requests finished)
// through the app's keep rule (src/telemetry/keep.ts) with no baseline sampler, and says how many
// of each round's slowest 1% the rule keeps, when answering or late. The rule sees the durations
// in one process's order, so a change to it can be judged on the runs that showed a miss without
// running the load again. The bench's warm-up (round 0) is fed first and not counted; run the load
// with `--warmup 0` to have the process's cold start inside round 1.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { ROOT_CONTEXT, SamplingDecision, type Sampler } from '@opentelemetry/api'
import { KeepPolicy } from '../src/telemetry/keep'

const never: Sampler = { shouldSample: () => ({ decision: SamplingDecision.NOT_RECORD }), toString: () => 'never' }

export interface RoundKept {
  requests: number
  /** The round's slowest 1% (at least one), by duration. */
  slowest: number
  /** Of those, kept by the rule when answering or late. */
  slowestKept: number
  /** Every request of the round the rule kept. */
  kept: number
  /** How many requests were waiting for their second look, on average over the round's requests. */
  meanHeld: number
  /** The slowest the rule did not keep: place in the round (from 0) and duration. */
  missed: { index: number; ms: number }[]
}

/** The bench waits 1.5 s before and after each round's load. */
const PAUSE_MS = 3_000

/**
 * Feeds rounds of one route's durations (ms, in order) to a keep rule, after the warm-up's; counts
 * what it kept of each round. `rate`: the run's offered rate (requests per second); `gapMs`: the
 * time between two rounds of a variant (the other variants' rounds run in between).
 */
export async function replay(rounds: readonly (readonly number[])[], rate = 300, gapMs = PAUSE_MS, warmup: readonly number[] = [], slowestPercent = 1): Promise<RoundKept[]> {
  // The requests' own clock: one request every 1000/rate ms, as the bench's open model sends them.
  let clock = 0
  const policy = new KeepPolicy({ slowestPercent, slowerThanMs: 0, sampler: never, off: false, clock: () => clock })
  const route = 'GET /replayed'
  const kept = new Set<number>()
  let id = 0
  /** One request, as the plugin decides and holds it; its id. */
  const feed = (ms: number): number => {
    const me = id++
    clock += 1000 / rate
    if (policy.decide(route, ms, 200, ROOT_CONTEXT, false, me.toString(16).padStart(32, '1'), clock) !== null) kept.add(me)
    else if (policy.worthReview(route, ms)) policy.holdForReview(route, ms, clock, () => kept.add(me))
    return me
  }
  // The bench's warm-up requests, not counted: the rule's state at round 1 comes from them.
  for (const ms of warmup) feed(ms)
  const heldSum = rounds.map(() => 0)
  const ids = rounds.map((durations, r) => {
    // Between two rounds the app's timer judges what waited its limit, on what came so far.
    clock += gapMs
    policy.sweep()
    return durations.map((ms) => {
      const me = feed(ms)
      heldSum[r]! += policy.held(route)
      return me
    })
  })
  // The end of the load: what is still held is judged when it has waited long enough.
  clock += 3_600_000
  policy.sweep()
  // Late keeps run on their own, after the review that found them.
  await tick()
  return rounds.map((durations, r) => {
    const n = Math.max(1, Math.floor(durations.length / 100))
    const slowest = durations.map((ms, i) => ({ ms, id: ids[r]![i]!, index: i })).sort((a, b) => b.ms - a.ms).slice(0, n)
    return {
      requests: durations.length,
      slowest: n,
      slowestKept: slowest.filter((s) => kept.has(s.id)).length,
      kept: ids[r]!.filter((i) => kept.has(i)).length,
      meanHeld: heldSum[r]! / Math.max(1, durations.length),
      missed: slowest.filter((s) => !kept.has(s.id)).map(({ index, ms }) => ({ index, ms }))
    }
  })
}

/**
 * The durations of `samples-<variant>-<round>.csv` in a results directory, round by round; round 0
 * (the warm-up, written since the bench has) apart.
 */
export function readSamples(dir: string, variant: string): number[][] {
  return readRounds(dir, variant).filter((r) => r.round > 0).map((r) => r.durations)
}

/** The warm-up's durations (`samples-<variant>-0.csv`), or none for a run that did not write them. */
export function readWarmup(dir: string, variant: string): number[] {
  return readRounds(dir, variant).find((r) => r.round === 0)?.durations ?? []
}

function readRounds(dir: string, variant: string): { round: number; durations: number[] }[] {
  const prefix = `samples-${variant}-`
  const rounds = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.csv'))
    .map((f) => ({ f, round: Number(f.slice(prefix.length, -'.csv'.length)) }))
    .sort((a, b) => a.round - b.round)
  if (rounds.filter((r) => r.round > 0).length === 0) throw new Error(`no ${prefix}N.csv in ${dir}: run the bench with --samples`)
  return rounds.map(({ f, round }) => ({ round, durations: durationsOf(dir, f) }))
}

function durationsOf(dir: string, f: string): number[] {
  const [header, ...lines] = readFileSync(path.join(dir, f), 'utf8').trim().split('\n')
  const col = header!.split(',').indexOf('process_ms')
  if (col < 0) throw new Error(`${f}: no process_ms column`)
  return lines.map((l) => Number(l.split(',')[col]))
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { variant: { type: 'string', default: 'otel=10pct' } } })
  const dir = positionals[0]
  if (!dir) throw new Error('usage: npm run bench:keep-replay -- bench/results/<run> [--variant otel=10pct]')
  // The run's offered rate paces the replay's clock (the rule's time limit on a held request).
  const { config } = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as { config: { mode: string; rate: number; variants: string[]; duration: number } }
  const rounds = readSamples(dir, values.variant)
  // An open-model run's rate, or what a closed or saturated run's rounds did on average.
  const rate = config.mode === 'rate' ? config.rate : rounds.reduce((a, r) => a + r.length, 0) / rounds.length / config.duration
  const gapMs = (config.variants.length - 1) * (config.duration * 1000 + PAUSE_MS) + PAUSE_MS
  const result = await replay(rounds, rate, gapMs, readWarmup(dir, values.variant))
  console.log(`| round | requests | slowest 1% kept by the rule | all kept by the rule | requests waiting for a second look, mean |\n| --- | --- | --- | --- | --- |`)
  result.forEach((r, i) => console.log(`| ${i + 1} | ${r.requests} | ${r.slowestKept} of ${r.slowest} | ${r.kept} | ${r.meanHeld.toFixed(0)} |`))
  const total = result.reduce((a, r) => [a[0]! + r.slowestKept, a[1]! + r.slowest], [0, 0])
  console.log(`\nslowest 1% kept: ${total[0]} of ${total[1]} (without the baseline sampler's share)`)
  result.forEach((r, i) => {
    if (r.missed.length > 0) console.log(`round ${i + 1} missed (place in the round: ms): ${r.missed.map((m) => `${m.index}: ${m.ms}`).join(', ')}`)
  })
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}
