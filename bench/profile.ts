// npm run bench:profile -- [--variant otel=off] [--seconds 10] [--connections 50 | --rate 400] [--traceparent sampled|none] [--sampler v8|perf]
// CPU profile of one variant under load, self time grouped by package and by the app's own
// files, in microseconds per request, with the node internals each one called charged to it.
// Where to attack next, measured rather than guessed. --sampler v8 (node --cpu-prof) samples the
// main thread's wall time; --sampler perf (Linux perf, cpu-clock) samples CPU time only, of every
// thread, and says which part was in the kernel.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { startApp, startOtlpSink } from './lib/app'
import { databaseUrl, prepareData, dropDatabases } from './lib/data'
import { maxLoad, rateLoad, setPropagation } from './lib/load'
import { PERF_PERIOD_US, PERF_NODE_OPTIONS, perfAvailable, perfGroups, recordPerf } from './lib/perf'
import { variantEnv } from './presets'

interface ProfileNode { id: number; callFrame: { url: string; functionName: string }; hitCount?: number; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** The group a frame's code belongs to: a package, an app folder, node internals, or GC. */
export function groupOf(url: string, fn: string): string | null {
  if (fn === '(garbage collector)') return 'GC'
  if (fn === '(idle)' || fn === '(program)' || fn === '(root)') return fn
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]!
  const app = /\/dist\/(src\/[^/]+(?:\/[^/.]+)?|bench\/[^/]+|otel)/.exec(url)
  if (app) return app[1]!
  if (url.startsWith('node:') || url === '') return null // charged to the caller
  return 'other'
}

/** Self time by group, of the samples taken between `fromUs` and `toUs` (monotonic clock). */
export function groupProfile(p: Profile, fromUs = -Infinity, toUs = Infinity): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const owner = (id: number): string => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!
      const g = groupOf(n.callFrame.url, n.callFrame.functionName)
      if (g) return g
    }
    return 'node internals'
  }
  const label = (id: number) => {
    const g = owner(id)
    if (g !== 'other') return g
    const n = byId.get(id)!
    return `other: ${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url}`.slice(0, 100)
  }
  const self = new Map<number, number>()
  let t = p.startTime
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0
    if (t >= fromUs && t <= toUs) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  })
  const out = new Map<string, number>()
  for (const [id, us] of self) out.set(label(id), (out.get(label(id)) ?? 0) + us)
  return out
}

/**
 * The one CPU profile node wrote into `dir` (--cpu-prof-dir), self time by group between `fromUs`
 * and `toUs`, busiest first, idle left out, with their sum.
 */
export function readProfileRows(dir: string, fromUs: number, toUs: number): { file: string; rows: [string, number][]; totalUs: number } {
  const file = readdirSync(dir).map((f) => path.join(dir, f)).find((f) => f.endsWith('.cpuprofile'))!
  const groups = groupProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile, fromUs, toUs)
  const rows = [...groups].filter(([g]) => g !== '(idle)').sort((a, b) => b[1] - a[1])
  return { file, rows, totalUs: rows.reduce((a, [, us]) => a + us, 0) }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', default: 'otel=off' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      // An open-model rate (req/s) instead of connections back to back: the bench's CPU-per-request
      // runs use one, and a fixed cost per request weighs differently there than at saturation.
      rate: { type: 'string' },
      // sampled: each request carries a sampled traceparent (every request traced); none: the
      // app's sampler decides (otel=10pct then profiles mostly unsampled requests).
      traceparent: { type: 'string', default: 'sampled' },
      sampler: { type: 'string', default: 'v8' },
      'admin-url': { type: 'string', default: process.env.BENCH_ADMIN_URL ?? 'mysql://root@127.0.0.1:3306' }
    }
  })
  if (values.sampler !== 'v8' && values.sampler !== 'perf') throw new Error(`--sampler is v8 or perf, not ${values.sampler}`)
  const perf = values.sampler === 'perf'
  if (perf && !perfAvailable()) throw new Error('--sampler perf needs Linux perf on PATH (Debian: apt-get install linux-perf)')
  setPropagation(values.traceparent !== 'none')
  const dir = path.join(os.tmpdir(), `blog-profile-${process.pid}`)
  const perfFile = `${dir}.perf`
  const database = `blog_profile_${process.pid}`
  await prepareData(values['admin-url'], database, { posts: 30, noIndex: false })
  // Spans and metrics go out of the process, as users run it (the sink accepts and drops them).
  const sink = await startOtlpSink()
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl(values['admin-url'], database), DB_SEED_ON_START: 'false', WRITE_RATE_LIMIT: '0',
    NODE_OPTIONS: perf ? PERF_NODE_OPTIONS : `--cpu-prof --cpu-prof-interval=97 --cpu-prof-dir=${dir}`,
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_BSP_SCHEDULE_DELAY: '500', OTEL_METRIC_EXPORT_INTERVAL: '10000'
  }
  Object.assign(env, variantEnv(values.variant))
  const app = await startApp(env)
  try {
    const scenario = { method: 'GET', path: '/blogs/' } as const
    const run = (seconds: number) =>
      values.rate ? rateLoad(app.url, scenario, Number(values.rate), seconds) : maxLoad(app.url, scenario, Number(values.connections), seconds)
    await run(3)
    const how = `${values.rate ? `${values.rate} req/s` : `${values.connections} connections`}, after a 3 s warm-up`
    const print = (requests: number, title: string, rows: [string, number][], totals: [string, number][]) => {
      process.stdout.write(`${values.variant}: ${requests} requests in ${values.seconds}s (${how}), ${title}\n`)
      for (const [g, us] of [...rows, ...totals]) process.stdout.write(`${(us / requests).toFixed(1).padStart(8)}  ${g}\n`)
    }
    if (perf) {
      // perf starts with the measured load and stops with it (same duration).
      const [load] = await Promise.all([run(Number(values.seconds)), recordPerf(app.pid, Number(values.seconds), perfFile)])
      const { rows, helpers } = await perfGroups(perfFile, app.pid, groupOf)
      const us = (samples: number) => samples * PERF_PERIOD_US
      const main = rows.reduce((a, [, n]) => a + n, 0)
      print(load.samples.length, 'µs of CPU per request (perf cpu-clock), main thread by group', rows.map(([g, n]) => [g, us(n)]), [
        ['main thread', us(main)],
        ['helper threads (GC, compilers, libuv pool)', us(helpers)],
        ['total', us(main + helpers)]
      ])
      return
    }
    // Only the samples of the measured load (V8's profile clock and hrtime are both monotonic).
    const from = Number(process.hrtime.bigint() / 1000n)
    const load = await run(Number(values.seconds))
    const to = Number(process.hrtime.bigint() / 1000n)
    await app.stop()
    const { file, rows, totalUs } = readProfileRows(dir, from, to)
    print(load.samples.length, 'µs per request by group (V8 profile: main thread, wall time)', rows, [[`total (profile: ${file})`, totalUs]])
  } finally {
    await app.stop()
    if (perf) {
      rmSync(perfFile, { force: true })
      rmSync(`/tmp/perf-${app.pid}.map`, { force: true })
    }
    await sink.close()
    await dropDatabases(values['admin-url'], [database])
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`profile failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
