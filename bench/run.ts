// npm run bench -- [--variants otel=off,otel=on,otel=10pct] [--repeat 3] [--duration 10]
//   [--scenario list|show|write] [--mode max|closed|rate] [--connections 100] [--think 100]
//   [--rate 500] [--posts 30] [--trivial] [--smoke]
// Starts one app per variant against the same fixed data set, runs the same load on each,
// interleaved (A B C, A B C, ...), and reports medians and spread side by side, with a per-phase
// breakdown of the traced requests (pool wait, SQL, render, image write, other).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { ROOT, startApp, startOtlpSink, type RunningApp } from './lib/app'
import { closedLoad, maxLoad, percentile, rateLoad, setPropagation, type LoadResult, type Scenario } from './lib/load'
import { findPid, ProcMonitor, type ProcSample } from './lib/proc'
import { breakdown, decodeTraces, meanBreakdown, PHASES, type BenchSpan, type Breakdown } from './lib/spans'
import { renderSvg } from './lib/svg'

/** Named environment sets; a variant joins them with '+', e.g. `otel=10pct+pool=5`. */
export const PRESETS: Record<string, Record<string, string>> = {
  'otel=off': { OTEL_SDK_DISABLED: 'true' },
  'otel=on': { OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
  'otel=10pct': { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  // Pieces, to find what tracing costs.
  'otel=httpinstr': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,mysql2,pino,runtime-node' },
  'otel=fastify': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'mysql2,pino,runtime-node' },
  'otel=sdkonly': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'runtime-node' },
  'otel=noexport': { OTEL_EXPORTER_OTLP_ENDPOINT: '' },
  'views=nocache': { VIEW_CACHE: 'false' },
  // Same code, a bigger table: the list and show pages should cost the same (growth target).
  'data=100k': { BENCH_POSTS: '100000' },
  'pool=5': { DB_POOL_MAX: '5' },
  'pool=40': { DB_POOL_MAX: '40' },
  // The request inspector's span processor (an in-memory copy of every span), next to the exporter.
  'inspector=on': { INSPECTOR_ENABLED: 'true' }
}

// The smallest valid PNG, as the k6 write script sends.
const PIXEL_PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5e9a2f30000000049454e44ae426082',
  'hex'
)

async function writeScenario(): Promise<Scenario> {
  const fd = new FormData()
  fd.append('title', 'Benchmark post')
  fd.append('author', 'bench')
  fd.append('content', 'Written by npm run bench.')
  fd.append('image_file', new Blob([new Uint8Array(PIXEL_PNG)], { type: 'image/png' }), 'pixel.png')
  const res = new Response(fd)
  return { method: 'POST', path: '/blogs/new', body: Buffer.from(await res.arrayBuffer()), headers: { 'content-type': res.headers.get('content-type')! } }
}

interface RunResult {
  variant: string
  round: number
  path: string
  requests: number
  rps: number
  latency: { avg: number; p50: number; p90: number; p95: number; p99: number; max: number }
  failures: number
  dropped: number
  app: ProcSample
  db: ProcSample
  traced: number
  phases: Breakdown | null
  p50Trace: (Breakdown & { traceId: string }) | null
  slowestTrace: (Breakdown & { traceId: string }) | null
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (n: number | undefined, digits = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-')

function connectionOptions(adminUrl: string) {
  const u = new URL(adminUrl)
  return { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username) || 'root', password: decodeURIComponent(u.password) }
}

async function prepareData(adminUrl: string, database: string, posts: number): Promise<void> {
  const conn = await mysql.createConnection(connectionOptions(adminUrl))
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  } finally {
    await conn.end()
  }
  // The app migrates and seeds the 12 sample posts; top up to `posts` with deterministic rows.
  const app = await startApp({ DATABASE_URL: `${adminUrl.replace(/\/$/, '')}/${database}`, OTEL_SDK_DISABLED: 'true' })
  await app.stop()
  const db = await mysql.createConnection({ ...connectionOptions(adminUrl), database })
  try {
    const extra = Math.max(0, posts - 12)
    for (let i = 0; i < extra; i += 2000) {
      const rows = []
      for (let j = i; j < Math.min(extra, i + 2000); j++) {
        rows.push([`Benchmark post ${j + 1}`, `Author ${j % 17}`, `Paragraph ${j}. `.repeat(40), null, new Date(Date.UTC(2026, 0, 1) + j * 60_000)])
      }
      await db.query('INSERT INTO blog (title, author, content, image_loc, modified_dt) VALUES ?', [rows])
    }
    await db.query('ANALYZE TABLE blog')
  } finally {
    await db.end()
  }
}

function summarise(variant: string, round: number, target: string, load: LoadResult, okStatus: (s: number) => boolean, app: ProcSample, db: ProcSample, spans: BenchSpan[]): RunResult {
  const lat = load.samples.map((s) => s.latencyMs).sort((a, b) => a - b)
  const ok = load.samples.filter((s) => okStatus(s.status)).length
  const byTrace = new Map<string, BenchSpan[]>()
  for (const s of spans) {
    let list = byTrace.get(s.traceId)
    if (!list) byTrace.set(s.traceId, (list = []))
    list.push(s)
  }
  // Without our own traceparent the samples carry no trace id: break down every exported trace.
  const unjoined = load.samples.every((s) => s.traceId === '')
  const allTraces = unjoined ? [...byTrace.values()].map(breakdown).filter((b): b is Breakdown => b !== null) : []
  // Only requests whose whole trace arrived (the span queue drops under heavy load).
  const traced = load.samples
    .map((s) => ({ s, b: byTrace.has(s.traceId) ? breakdown(byTrace.get(s.traceId)!) : null }))
    .filter((x): x is { s: (typeof load.samples)[number]; b: Breakdown } => x.b !== null)
    .sort((a, b) => a.s.latencyMs - b.s.latencyMs)
  const pick = (i: number) => (traced[i] ? { ...traced[i]!.b, traceId: traced[i]!.s.traceId } : null)
  return {
    variant,
    round,
    path: target,
    requests: load.samples.length,
    rps: ok / load.durationS,
    latency: {
      avg: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
      p50: percentile(lat, 50),
      p90: percentile(lat, 90),
      p95: percentile(lat, 95),
      p99: percentile(lat, 99),
      max: lat[lat.length - 1] ?? NaN
    },
    failures: load.samples.length - ok + load.errors,
    dropped: load.dropped,
    app,
    db,
    traced: unjoined ? allTraces.length : traced.length,
    phases: meanBreakdown(unjoined ? allTraces : traced.map((x) => x.b)),
    p50Trace: pick(Math.floor(traced.length / 2)),
    slowestTrace: pick(traced.length - 1)
  }
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
      'admin-url': { type: 'string', default: process.env.BENCH_ADMIN_URL ?? 'mysql://root@127.0.0.1:3306' }
    }
  })
  const smoke = values.smoke
  const variants = values.variants.split(',').map((v) => v.trim()).filter(Boolean)
  for (const v of variants) for (const part of v.split('+')) if (!PRESETS[part]) throw new Error(`unknown variant ${part}; known: ${Object.keys(PRESETS).join(', ')}`)
  const repeat = smoke ? 1 : Number(values.repeat)
  const duration = smoke ? 1 : Number(values.duration)
  const warmup = smoke ? 1 : Number(values.warmup)
  const connections = smoke ? 5 : Number(values.connections)
  const mode = values.mode
  if (!['sampled', 'none'].includes(values.traceparent)) throw new Error('--traceparent is sampled or none')
  setPropagation(values.traceparent === 'sampled')
  if (!['max', 'closed', 'rate'].includes(mode)) throw new Error('--mode is max, closed or rate')

  const write = values.scenario === 'write'
  const scenario: Scenario = write
    ? await writeScenario()
    : { method: 'GET', path: values.path ?? (values.scenario === 'show' ? '/blogs/show/1' : '/blogs/') }
  const okStatus = (s: number) => (write ? s === 303 : s >= 200 && s < 400)

  const database = `blog_bench_${process.pid}`
  // Variants may ask for their own data set size (BENCH_POSTS); each size gets its own database.
  const postsOf = (v: string) => Number(v.split('+').map((p) => PRESETS[p]!.BENCH_POSTS).find(Boolean) ?? values.posts)
  const dbFor = (posts: number) => (posts === Number(values.posts) ? database : `${database}_${posts}`)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = values.out ? path.resolve(values.out) : path.join(ROOT, 'bench', 'results', stamp)
  mkdirSync(outDir, { recursive: true })

  for (const posts of new Set(variants.map(postsOf))) {
    process.stderr.write(`preparing ${posts} posts in ${dbFor(posts)}\n`)
    await prepareData(values['admin-url'], dbFor(posts), posts)
  }
  const sink = await startOtlpSink()
  const dbPid = findPid('mariadbd', 'mysqld')
  // All variants run at once against one server: keep processes x pool within max_connections
  // (151 by default), or the last variant measures "Too many connections" errors.
  const poolMax = String(Math.min(40, Math.floor(120 / variants.length)))
  const baseEnv = {
    DB_POOL_MAX: poolMax,
    DATABASE_URL: `${values['admin-url'].replace(/\/$/, '')}/${database}`,
    DB_SEED_ON_START: 'false',
    UPLOAD_DIR: path.join(outDir, 'uploads'),
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_BSP_SCHEDULE_DELAY: '500',
    OTEL_METRIC_EXPORT_INTERVAL: '10000'
  }

  const run = (url: string, target: Scenario, seconds: number) =>
    mode === 'closed'
      ? closedLoad(url, target, connections, seconds, Number(values.think))
      : mode === 'rate'
        ? rateLoad(url, target, Number(values.rate), seconds)
        : maxLoad(url, target, connections, seconds)

  const results: RunResult[] = []
  const apps = new Map<string, RunningApp>()
  try {
    // One process per variant for the whole run, so every round measures warm processes.
    for (const v of variants) {
      const env: Record<string, string> = { ...baseEnv }
      for (const part of v.split('+')) Object.assign(env, PRESETS[part])
      env.DATABASE_URL = `${values['admin-url'].replace(/\/$/, '')}/${dbFor(postsOf(v))}`
      apps.set(v, await startApp(env))
    }
    for (const [, app] of apps) await run(app.url, scenario, warmup)
    const targets: Scenario[] = values.trivial ? [scenario, { method: 'GET', path: '/health' }] : [scenario]
    const total = repeat * variants.length * targets.length
    let done = 0
    for (let round = 1; round <= repeat; round++) {
      for (const v of variants) {
        for (const target of targets) {
          const app = apps.get(v)!
          const appMon = new ProcMonitor(app.pid)
          const dbMon = new ProcMonitor(dbPid)
          await new Promise((r) => setTimeout(r, 1500)) // let the previous run's spans drain
          sink.take()
          process.stderr.write(`\r[${++done}/${total}] round ${round}/${repeat} ${v} ${target.method} ${target.path} (${mode}, ${duration}s) ...      `)
          await Promise.all([appMon.start(), dbMon.start()])
          const load = await run(app.url, target, duration)
          const [appS, dbS] = await Promise.all([appMon.stop(), dbMon.stop()])
          await new Promise((r) => setTimeout(r, 1500))
          const spans = decodeTraces(sink.take())
          results.push(summarise(v, round, target.path, load, target === scenario ? okStatus : (s) => s === 200, appS, dbS, spans))
        }
      }
    }
    process.stderr.write('\n')
  } finally {
    await Promise.all([...apps.values()].map((a) => a.stop()))
    await sink.close()
  }

  // Medians over rounds; spread is min-max of req/s; ratio is to the first variant's median.
  const summary = []
  const firstRps = new Map<string, number>()
  for (const target of [...new Set(results.map((r) => r.path))]) {
    for (const v of variants) {
      const rs = results.filter((r) => r.variant === v && r.path === target)
      if (rs.length === 0) continue
      const rps = median(rs.map((r) => r.rps))
      if (!firstRps.has(target)) firstRps.set(target, rps)
      const phaseRuns = rs.map((r) => r.phases).filter((p): p is Breakdown => p !== null)
      summary.push({
        variant: v,
        path: target,
        rounds: rs.length,
        rps,
        rpsMin: Math.min(...rs.map((r) => r.rps)),
        rpsMax: Math.max(...rs.map((r) => r.rps)),
        ratio: rps / firstRps.get(target)!,
        avg: median(rs.map((r) => r.latency.avg)),
        p90: median(rs.map((r) => r.latency.p90)),
        p95: median(rs.map((r) => r.latency.p95)),
        p99: median(rs.map((r) => r.latency.p99)),
        max: Math.max(...rs.map((r) => r.latency.max)),
        failPct: (100 * rs.reduce((a, r) => a + r.failures, 0)) / Math.max(1, rs.reduce((a, r) => a + r.requests, 0)),
        dropped: rs.reduce((a, r) => a + r.dropped, 0),
        appCpu: median(rs.map((r) => r.app.cpuPercent)),
        appRss: Math.max(...rs.map((r) => r.app.rssMb)),
        dbCpu: median(rs.map((r) => r.db.cpuPercent)),
        dbRss: Math.max(...rs.map((r) => r.db.rssMb)),
        traced: rs.reduce((a, r) => a + r.traced, 0),
        phases: meanBreakdown(phaseRuns),
        p50Trace: rs[rs.length - 1]!.p50Trace,
        slowestTrace: rs.map((r) => r.slowestTrace).filter((t) => t !== null).sort((a, b) => b!.total - a!.total)[0] ?? null
      })
    }
  }

  const lines: string[] = []
  lines.push(`mode ${mode}${mode === 'closed' ? ` (think ${values.think} ms)` : mode === 'rate' ? ` (${values.rate} req/s)` : ''}, ${connections} connections, ${duration}s x ${repeat} rounds, ${values.posts} posts, pool max ${poolMax} per process`)
  lines.push('')
  lines.push('| variant | path | req/s (median) | min-max | ratio | avg ms | p90 | p95 | p99 | max | fail % | app CPU % | app RSS MB | DB CPU % | DB RSS MB |')
  lines.push('|' + ' --- |'.repeat(15))
  for (const s of summary) {
    lines.push(
      `| ${s.variant} | ${s.path} | ${fmt(s.rps, 0)} | ${fmt(s.rpsMin, 0)}-${fmt(s.rpsMax, 0)} | ${fmt(s.ratio, 2)} | ${fmt(s.avg)} | ${fmt(s.p90)} | ${fmt(s.p95)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${fmt(s.failPct, 2)} | ${fmt(s.appCpu, 0)} | ${fmt(s.appRss, 0)} | ${fmt(s.dbCpu, 0)} | ${fmt(s.dbRss, 0)} |`
    )
  }
  const withPhases = summary.filter((s) => s.phases)
  if (withPhases.length > 0) {
    lines.push('', 'Where the server time went (ms, mean over traced requests; the p50 and slowest trace by client latency):', '')
    lines.push(`| variant | path | traces | ${PHASES.join(' | ')} | server total | queries | p50 trace | slowest trace |`)
    lines.push('|' + ' --- |'.repeat(PHASES.length + 7))
    for (const s of withPhases) {
      const p = s.phases!
      const t = (b: (Breakdown & { traceId: string }) | null) => (b ? `${fmt(b.total, 2)} ms (SQL ${fmt(b.SQL, 2)}, pool ${fmt(b['pool wait'], 2)}, render ${fmt(b.render, 2)}) ${b.traceId.slice(0, 12)}…` : '-')
      lines.push(`| ${s.variant} | ${s.path} | ${s.traced} | ${PHASES.map((ph) => fmt(p[ph], 2)).join(' | ')} | ${fmt(p.total, 2)} | ${fmt(p.queries, 1)} | ${t(s.p50Trace)} | ${t(s.slowestTrace)} |`)
    }
  }
  const config = { mode, scenario: values.scenario, connections, think: Number(values.think), rate: Number(values.rate), poolMax: Number(poolMax), variants, repeat, duration, warmup, posts: Number(values.posts) }
  writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ config, summary, runs: results }, null, 2))
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

  const conn = await mysql.createConnection(connectionOptions(values['admin-url']))
  for (const posts of new Set(variants.map(postsOf))) await conn.query(`DROP DATABASE IF EXISTS \`${dbFor(posts)}\``)
  await conn.end()
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
