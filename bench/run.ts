// npm run bench -- [--variants otel=off,otel=on,otel=10pct] [--repeat 3] [--duration 10]
//   (--variants replicas=1,replicas=2,replicas=3: N app processes behind nginx, as in Compose)
//   [--scenario list|show|write] [--mode max|closed|rate] [--connections 100] [--think 100]
//   [--rate 500] [--posts 30] [--trivial] [--smoke] [--upload-worst 1]
// Memory: each app's resident set after start (idle), its peak under the load runs, and its peak
// while it processes the largest image the memory budget admits (--upload-worst N of them at once;
// 0 skips it, as --smoke does unless given).
// Starts one app per variant against the same fixed data set, runs the same load on each,
// interleaved (A B C, A B C, ...), and reports medians and spread side by side, with a per-phase
// breakdown of the traced requests (pool wait, SQL, render, image processing and writes, other).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { signUp, type BenchUser } from './lib/account'
import { ROOT, startApp, startOtlpSink } from './lib/app'
import { startBalancer } from '../harness/balancer'
import { connectionOptions, databaseUrl, dataSetKey, dropDatabases, prepareData, type DataSet } from './lib/data'
import { closedLoad, maxLoad, rateLoad, setPropagation, type LoadResult, type Scenario } from './lib/load'
import { idleRssMb, uploadPeak, worstAcceptedPng, worstAcceptedSide, type UploadPeak } from './lib/memory'
import { findPid, pidByPort, ProcGroupMonitor, ProcMonitor } from './lib/proc'
import { memoryLines, memoryRows, pairedRatioLines, pairedRatios, reportLines, slowestExported, summarise, summariseRun, type RunResult } from './lib/report'
import { loadConfig } from '../src/config'
import { LATE_KEEP_WITHIN_MS } from '../src/telemetry/keep'
import { decodeTraces } from './lib/spans'
import { renderSvg } from './lib/svg'
import { PRESETS, variantEnv } from './presets'


// The smallest valid PNG, as the k6 write script sends.
const PIXEL_PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000970485973000003e8000003e801b57b526b0000000d494441540899636060606000000005000187a14ed40000000049454e44ae426082',
  'hex'
)

/** The new-post form with a 1x1 PNG, sent as `user` (its session cookie and CSRF token). */
async function writeScenario(user: BenchUser): Promise<Scenario> {
  const fd = new FormData()
  fd.append('_csrf', user.csrf)
  fd.append('title', 'Benchmark post')
  fd.append('content', 'Written by npm run bench.')
  fd.append('image_file', new Blob([new Uint8Array(PIXEL_PNG)], { type: 'image/png' }), 'pixel.png')
  const res = new Response(fd)
  return { method: 'POST', path: '/blogs/new', body: Buffer.from(await res.arrayBuffer()), headers: { 'content-type': res.headers.get('content-type')!, cookie: user.cookie } }
}

/** One line per request in the order it finished: X-Process-Time, status, said kept, trace exported. */
function writeSamples(file: string, load: LoadResult, exported: ReadonlySet<string>): void {
  const rows = load.samples.map((s) => `${s.processMs},${s.status},${s.kept ? 1 : 0},${exported.has(s.responseTraceId) ? 1 : 0}`)
  writeFileSync(file, ['process_ms,status,kept,exported', ...rows].join('\n') + '\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'otel=off,otel=on,otel=10pct' },
      repeat: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      scenario: { type: 'string', default: 'list' },
      path: { type: 'string' },
      mode: { type: 'string', default: 'max' },
      connections: { type: 'string', default: '100' },
      think: { type: 'string', default: '100' },
      rate: { type: 'string', default: '500' },
      posts: { type: 'string', default: '30' },
      trivial: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      traceparent: { type: 'string', default: 'sampled' },
      out: { type: 'string' },
      baseline: { type: 'string' },
      // a/b pairs of variants whose CPU per request is compared round by round (default: each against the first)
      compare: { type: 'string' },
      'upload-worst': { type: 'string' },
      // Each run's requests in the order they finished (X-Process-Time, status, said kept, exported), for studying the keep rule offline
      samples: { type: 'boolean', default: false },
      'admin-url': { type: 'string', default: process.env.BENCH_ADMIN_URL ?? 'mysql://root@127.0.0.1:3306' }
    }
  })
  const smoke = values.smoke
  const variants = values.variants.split(',').map((v) => v.trim()).filter(Boolean)
  for (const v of variants) variantEnv(v) // throws on an unknown preset, before anything starts
  const pairs = values.compare
    ? values.compare.split(',').map((p) => p.trim().split('/') as [string, string])
    : variants.slice(1).map((v): [string, string] => [v, variants[0]!])
  for (const pair of pairs) {
    if (pair.length !== 2 || !pair.every((v) => variants.includes(v))) throw new Error(`--compare ${pair.join('/')}: each pair is a/b of two --variants`)
  }
  const uploadsAtOnce = Number(values['upload-worst'] ?? (smoke ? 0 : 1))
  const repeat = smoke ? 1 : Number(values.repeat)
  const duration = smoke ? 1 : Number(values.duration)
  const warmup = smoke ? 1 : Number(values.warmup)
  const connections = smoke ? 5 : Number(values.connections)
  const mode = values.mode
  if (!['sampled', 'none'].includes(values.traceparent)) throw new Error('--traceparent is sampled or none')
  setPropagation(values.traceparent === 'sampled')
  if (!['max', 'closed', 'rate'].includes(mode)) throw new Error('--mode is max, closed or rate')

  const write = values.scenario === 'write'
  // The write scenario is made per app, once its user has signed up (below).
  const readScenario: Scenario = { method: 'GET', path: values.path ?? (values.scenario === 'show' ? '/blogs/show/1' : '/blogs/') }
  const okStatus = (s: number) => (write ? s === 303 : s >= 200 && s < 400)

  const database = `blog_bench_${process.pid}`
  // Variants may ask for their own data set (BENCH_POSTS, BENCH_NO_INDEX); each gets its own database.
  const presetOf = (v: string, key: string) => v.split('+').map((p) => PRESETS[p]![key]).find(Boolean)
  const dataOf = (v: string): DataSet => ({ posts: Number(presetOf(v, 'BENCH_POSTS') ?? values.posts), noIndex: presetOf(v, 'BENCH_NO_INDEX') === 'true' })
  const base: DataSet = { posts: Number(values.posts), noIndex: false }
  const dbFor = (d: DataSet) => (dataSetKey(d) === dataSetKey(base) ? database : `${database}_${dataSetKey(d)}`)
  const dataSets = new Map(variants.map((v) => [dbFor(dataOf(v)), dataOf(v)]))
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = values.out ? path.resolve(values.out) : path.join(ROOT, 'bench', 'results', stamp)
  mkdirSync(outDir, { recursive: true })

  for (const [name, data] of dataSets) {
    process.stderr.write(`preparing ${data.posts} posts${data.noIndex ? ' (no list index)' : ''} in ${name}\n`)
    await prepareData(values['admin-url'], name, data)
  }
  const sink = await startOtlpSink()
  // By its port: several database servers may run here (the tests start their own).
  const dbPid = pidByPort(connectionOptions(values['admin-url']).port) ?? findPid('mariadbd', 'mysqld')
  // All variants run at once against one server: keep processes x pool within max_connections
  // (151 by default), or the last variant measures "Too many connections" errors.
  const replicasOf = (v: string) => Math.max(1, Number(presetOf(v, 'BENCH_REPLICAS') ?? 1))
  const processes = variants.reduce((n, v) => n + replicasOf(v), 0)
  const poolMax = String(Math.min(40, Math.floor(120 / processes)))
  const baseEnv = {
    DB_POOL_MAX: poolMax,
    DATABASE_URL: databaseUrl(values['admin-url'], database),
    DB_SEED_ON_START: 'false',
    // The load generator is one client: a per-client write limit would measure 429s.
    WRITE_RATE_LIMIT: '0',
    UPLOAD_DIR: path.join(outDir, 'uploads'),
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_BSP_SCHEDULE_DELAY: '500',
    OTEL_METRIC_EXPORT_INTERVAL: '10000'
  }
  /** A variant's app environment, before the run gives it its database and checkout. */
  const envOf = (v: string): Record<string, string> => ({ ...baseEnv, ...variantEnv(v) })

  const run = (url: string, target: Scenario, seconds: number) =>
    mode === 'closed'
      ? closedLoad(url, target, connections, seconds, Number(values.think))
      : mode === 'rate'
        ? rateLoad(url, target, Number(values.rate), seconds)
        : maxLoad(url, target, connections, seconds)

  const results: RunResult[] = []
  const idle = new Map<string, number>()
  const uploads = new Map<string, UploadPeak>()
  // A variant is one app, or N replicas behind a balancer (its url is then the balancer's).
  interface Target { url: string; pids: number[]; lbPids: number[]; stop(): Promise<void> }
  const apps = new Map<string, Target>()
  try {
    // One process per variant for the whole run, so every round measures warm processes.
    for (const v of variants) {
      const env = envOf(v)
      if (env.BENCH_ROOT === 'baseline') {
        if (!values.baseline) throw new Error(`variant ${v} needs --baseline DIR (a built checkout)`)
        env.BENCH_ROOT = path.resolve(values.baseline)
      }
      env.DATABASE_URL = databaseUrl(values['admin-url'], dbFor(dataOf(v)))
      const n = replicasOf(v)
      if (!env.BENCH_REPLICAS) {
        const app = await startApp(env)
        apps.set(v, { url: app.url, pids: [app.pid], lbPids: [], stop: app.stop })
        continue
      }
      const replicas = await Promise.all(Array.from({ length: n }, () => startApp(env)))
      const lb = await startBalancer(replicas.map((r) => Number(new URL(r.url).port)))
      apps.set(v, {
        url: lb.url,
        pids: replicas.map((r) => r.pid),
        lbPids: lb.pids(),
        stop: async () => {
          await lb.stop()
          await Promise.all(replicas.map((r) => r.stop()))
        }
      })
    }
    // At rest: every app started, none loaded yet.
    await Promise.all([...apps].map(async ([v, app]) => idle.set(v, await idleRssMb(app.pids))))
    // Writes need a signed-in user: one per app (its own database), signed up before the load.
    const scenarios = new Map<string, Scenario>()
    for (const [v, app] of apps) scenarios.set(v, write ? await writeScenario(await signUp(app.url)) : readScenario)
    const samplesFile = (v: string, round: number) => `samples-${v.replace(/[^\w=.-]+/g, '_')}-${round}.csv`
    // The warm-up's requests too (round 0): the keep rule's state at round 1 comes from them.
    const warmups: { load: LoadResult; samples: string }[] = []
    for (const [v, app] of apps) warmups.push({ load: await run(app.url, scenarios.get(v)!, warmup), samples: samplesFile(v, 0) })
    const exportedIds = new Set<string>()
    const loads: { result: RunResult; load: LoadResult; samples: string }[] = []
    const total = repeat * variants.length * (values.trivial ? 2 : 1)
    let done = 0
    for (let round = 1; round <= repeat; round++) {
      for (const v of variants) {
        const scenario = scenarios.get(v)!
        const targets: Scenario[] = values.trivial ? [scenario, { method: 'GET', path: '/health' }] : [scenario]
        for (const target of targets) {
          const app = apps.get(v)!
          const appMon = new ProcGroupMonitor(app.pids)
          const lbMon = app.lbPids.length > 0 ? new ProcGroupMonitor(app.lbPids) : null
          const dbMon = new ProcMonitor(dbPid)
          await new Promise((r) => setTimeout(r, 1500)) // let the previous run's spans drain
          sink.take()
          process.stderr.write(`\r[${++done}/${total}] round ${round}/${repeat} ${v} ${target.method} ${target.path} (${mode}, ${duration}s) ...      `)
          await Promise.all([appMon.start(), dbMon.start(), lbMon?.start()])
          const load = await run(app.url, target, duration)
          const [appS, dbS, lbS] = await Promise.all([appMon.stop(), dbMon.stop(), lbMon?.stop()])
          await new Promise((r) => setTimeout(r, 1500))
          const spans = decodeTraces(sink.take())
          for (const s of spans) exportedIds.add(s.traceId)
          const result = summariseRun(v, round, target.path, load, target === scenario ? okStatus : (s) => s === 200, appS, dbS, spans)
          loads.push({ result, load, samples: samplesFile(v, round) })
          if (lbS) Object.assign(result, { lb: lbS, replicas: app.pids.length })
          results.push(result)
        }
      }
    }
    process.stderr.write('\n')
    // A trace kept late (its route's slowest of what came after it) is exported up to
    // LATE_KEEP_WITHIN_MS after its request, perhaps during a later round: a request's trace counts
    // as exported if it arrived at any time in the run, as it would be in Jaeger after a load test.
    // (Only when some variant can keep a trace at all: not the floor, tracing off or always_off.)
    const mayKeep = variants.some((v) => {
      const env = envOf(v)
      return env.BENCH_SERVER !== 'floor' && env.OTEL_SDK_DISABLED !== 'true' && env.OTEL_TRACES_SAMPLER !== 'always_off'
    })
    if (mayKeep) await new Promise((r) => setTimeout(r, LATE_KEEP_WITHIN_MS + 2500))
    for (const s of decodeTraces(sink.take())) exportedIds.add(s.traceId)
    for (const { result, load, samples } of loads) {
      result.slowest = slowestExported(load.samples, exportedIds)
      if (values.samples) writeSamples(path.join(outDir, samples), load, exportedIds)
    }
    if (values.samples) for (const { load, samples } of warmups) writeSamples(path.join(outDir, samples), load, exportedIds)
    // Last, so that its memory does not weigh on the load runs: the worst accepted upload.
    for (const [v, app] of apps) {
      const env = envOf(v)
      if (uploadsAtOnce <= 0 || env.BENCH_SERVER === 'floor') continue
      const config = loadConfig(env)
      const side = worstAcceptedSide(config.imageMemoryBudgetBytes, config.maxImagePixels)
      process.stderr.write(`${v}: ${uploadsAtOnce} upload(s) of a ${side}x${side} 16-bit PNG ...\n`)
      const image = await worstAcceptedPng(side)
      await new Promise((r) => setTimeout(r, 1500))
      uploads.set(v, await uploadPeak(app.url, await signUp(app.url), image, side, uploadsAtOnce, app.pids))
    }
  } finally {
    await Promise.all([...apps.values()].map((a) => a.stop()))
    await sink.close()
  }

  // Medians over rounds; spread is min-max of req/s; ratios are to the first variant's medians.
  const summary = summarise(results, variants)
  const ratios = pairedRatios(results, pairs)
  const memory = memoryRows(results, variants, idle, uploads)
  const lines = [
    ...reportLines(
      summary,
      `mode ${mode}${mode === 'closed' ? ` (think ${values.think} ms)` : mode === 'rate' ? ` (${values.rate} req/s)` : ''}, ${connections} connections, ${duration}s x ${repeat} rounds, ${values.posts} posts, pool max ${poolMax} per process`
    ),
    ...pairedRatioLines(ratios),
    ...memoryLines(memory)
  ]
  const config = { mode, scenario: values.scenario, uploadsAtOnce, connections, think: Number(values.think), rate: Number(values.rate), poolMax: Number(poolMax), variants, repeat, duration, warmup, posts: Number(values.posts) }
  writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ config, summary, ratios, memory, runs: results }, null, 2))
  writeFileSync(path.join(outDir, 'table.md'), lines.join('\n') + '\n')
  writeFileSync(path.join(outDir, 'chart.svg'), renderSvg(summary))
  process.stdout.write(lines.join('\n') + `\n\nresults: ${path.relative(ROOT, outDir) || outDir}/{table.md,results.json,chart.svg}\n`)

  if (write) {
    // Row and file live or die together: after a write run no row lacks its image and no image lacks its row.
    const files = new Set(readdirSync(baseEnv.UPLOAD_DIR).filter((n) => !n.startsWith('.')))
    const incoming = readdirSync(path.join(baseEnv.UPLOAD_DIR, '.incoming'))
    const db = await mysql.createConnection({ ...connectionOptions(values['admin-url']), database })
    const [rows] = await db.query('SELECT image_loc FROM blog WHERE image_loc IS NOT NULL')
    await db.end()
    const referenced = new Set((rows as { image_loc: string }[]).map((r) => r.image_loc))
    const rowsWithoutFile = [...referenced].filter((n) => !files.has(n)).length
    const filesWithoutRow = [...files].filter((n) => !referenced.has(n)).length
    const check = `integrity: ${referenced.size} rows with images, ${files.size} files, ${rowsWithoutFile} rows without their file, ${filesWithoutRow} files without a row, ${incoming.length} partial uploads left`
    writeFileSync(path.join(outDir, 'integrity.txt'), check + '\n')
    process.stdout.write(check + '\n')
  }

  await dropDatabases(values['admin-url'], [...dataSets.keys()])
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
