// npm run bench -- [--variants otel=off,otel=on,otel=10pct] [--repeat 3] [--duration 10]
//                  [--connections 100] [--path /blogs/] [--posts 30] [--trivial] [--smoke]
// Starts one app per variant against the same fixed data set, runs the same autocannon load on
// each, interleaved (A B C, A B C, ...), and reports medians and spread side by side.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import mysql from 'mysql2/promise'
import { ROOT, startApp, startOtlpSink, type RunningApp } from './lib/app'
import { findPid, ProcMonitor, type ProcSample } from './lib/proc'

/** Named environment sets a variant can combine, e.g. `otel=10pct,pool=5`. */
const PRESETS: Record<string, Record<string, string>> = {
  'otel=off': { OTEL_SDK_DISABLED: 'true' },
  'otel=on': { OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
  'otel=10pct': { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  // Pieces, to find what tracing costs: no HTTP instrumentation / nothing but the SDK.
  'otel=fastify': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'mysql2,pino,runtime-node' },
  'otel=httpinstr': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,mysql2,pino,runtime-node' },
  'otel=fastify10pct': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'mysql2,pino,runtime-node', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  'otel=sdkonly': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'runtime-node' },
  'otel=noexport': { OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
  'views=nocache': { VIEW_CACHE: 'false' },
  'pool=5': { DB_POOL_MAX: '5' },
  'pool=40': { DB_POOL_MAX: '40' }
}

interface RunResult {
  variant: string
  round: number
  path: string
  requests: number
  rps: number
  latency: { avg: number; p50: number; p90: number; p99: number; max: number }
  errors: number
  non2xx: number
  app: ProcSample
  db: ProcSample
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function prepareData(adminUrl: string, database: string, posts: number): Promise<void> {
  const u = new URL(adminUrl)
  const conn = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username) || 'root', password: decodeURIComponent(u.password) })
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  } finally {
    await conn.end()
  }
  // The app migrates and seeds the 12 sample posts; top up to `posts` with deterministic rows.
  const app = await startApp({ DATABASE_URL: `${adminUrl.replace(/\/$/, '')}/${database}`, OTEL_SDK_DISABLED: 'true' })
  await app.stop()
  const db = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username) || 'root', password: decodeURIComponent(u.password), database })
  try {
    const extra = Math.max(0, posts - 12)
    for (let i = 0; i < extra; i += 1000) {
      const rows = []
      for (let j = i; j < Math.min(extra, i + 1000); j++) {
        rows.push([`Benchmark post ${j + 1}`, `Author ${j % 17}`, `Paragraph ${j}. `.repeat(40), null, new Date(Date.UTC(2026, 0, 1) + j * 60_000)])
      }
      await db.query('INSERT INTO blog (title, author, content, image_loc, modified_dt) VALUES ?', [rows])
    }
  } finally {
    await db.end()
  }
}

async function load(url: string, connections: number, duration: number) {
  return autocannon({ url, connections, duration, pipelining: 1 })
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-'
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'otel=off,otel=on,otel=10pct' },
      repeat: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '100' },
      path: { type: 'string', default: '/blogs/' },
      posts: { type: 'string', default: '30' },
      trivial: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      'admin-url': { type: 'string', default: process.env.BENCH_ADMIN_URL ?? 'mysql://root@127.0.0.1:3306' }
    }
  })
  const smoke = values.smoke
  const variants = values.variants.split(',').map((v) => v.trim()).filter(Boolean)
  for (const v of variants) for (const part of v.split('+')) if (!PRESETS[part]) throw new Error(`unknown variant ${part}; known: ${Object.keys(PRESETS).join(', ')}`)
  const repeat = smoke ? 1 : Number(values.repeat)
  const duration = smoke ? 1 : Number(values.duration)
  const warmup = smoke ? 1 : Number(values.warmup)
  const connections = smoke ? 10 : Number(values.connections)
  const database = `blog_bench_${process.pid}`
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = path.join(ROOT, 'bench', 'results', stamp)
  mkdirSync(outDir, { recursive: true })

  process.stderr.write(`preparing ${values.posts} posts in ${database}\n`)
  await prepareData(values['admin-url'], database, Number(values.posts))
  const sink = await startOtlpSink()
  const dbPid = findPid('mariadbd', 'mysqld')
  // All variants run at once against one server: keep processes x pool within max_connections
  // (151 by default), or the last variant measures "Too many connections" errors.
  const poolMax = String(Math.min(40, Math.floor(120 / variants.length)))
  const baseEnv = {
    DB_POOL_MAX: poolMax,
    DATABASE_URL: `${values['admin-url'].replace(/\/$/, '')}/${database}`,
    DB_SEED_ON_START: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_METRIC_EXPORT_INTERVAL: '10000'
  }
  const results: RunResult[] = []
  const apps = new Map<string, RunningApp>()
  try {
    // One process per variant for the whole run, so every round measures warm processes.
    for (const v of variants) {
      const env: Record<string, string> = { ...baseEnv }
      for (const part of v.split('+')) Object.assign(env, PRESETS[part])
      apps.set(v, await startApp(env))
    }
    for (const [, app] of apps) await load(app.url + values.path, connections, warmup)
    const targets = values.trivial ? [values.path, '/health'] : [values.path]
    const total = repeat * variants.length * targets.length
    let done = 0
    for (let round = 1; round <= repeat; round++) {
      for (const v of variants) {
        for (const target of targets) {
          const app = apps.get(v)!
          process.stderr.write(`\r[${++done}/${total}] round ${round} ${v} ${target} ...          `)
          const appMon = new ProcMonitor(app.pid)
          const dbMon = new ProcMonitor(dbPid)
          await Promise.all([appMon.start(), dbMon.start()])
          const r = await load(app.url + target, connections, duration)
          const [appS, dbS] = await Promise.all([appMon.stop(), dbMon.stop()])
          results.push({
            variant: v,
            round,
            path: target,
            requests: r.requests.total,
            rps: r.requests.total / r.duration,
            latency: { avg: r.latency.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
            errors: r.errors + r.timeouts,
            non2xx: r.non2xx,
            app: appS,
            db: dbS
          })
        }
      }
    }
    process.stderr.write('\n')
  } finally {
    await Promise.all([...apps.values()].map((a) => a.stop()))
    await sink.close()
  }

  // Summary: medians over rounds, spread as min-max of req/s, ratio to the first variant.
  const rows: string[] = []
  const summary: Record<string, unknown>[] = []
  const head = `| variant | path | req/s (median) | min-max | ratio | avg ms | p90 | p99 | max | fail % | app CPU % | app RSS MB | DB CPU % |`
  rows.push(head, '|' + ' --- |'.repeat(13))
  const firstRps = new Map<string, number>()
  for (const target of [...new Set(results.map((r) => r.path))]) {
    for (const v of variants) {
      const rs = results.filter((r) => r.variant === v && r.path === target)
      if (rs.length === 0) continue
      const rps = median(rs.map((r) => r.rps))
      if (!firstRps.has(target)) firstRps.set(target, rps)
      const s = {
        variant: v,
        path: target,
        rounds: rs.length,
        rps,
        rpsMin: Math.min(...rs.map((r) => r.rps)),
        rpsMax: Math.max(...rs.map((r) => r.rps)),
        ratio: rps / firstRps.get(target)!,
        avg: median(rs.map((r) => r.latency.avg)),
        p90: median(rs.map((r) => r.latency.p90)),
        p99: median(rs.map((r) => r.latency.p99)),
        max: Math.max(...rs.map((r) => r.latency.max)),
        failPct: (100 * rs.reduce((a, r) => a + r.errors + r.non2xx, 0)) / Math.max(1, rs.reduce((a, r) => a + r.requests, 0)),
        appCpu: median(rs.map((r) => r.app.cpuPercent)),
        appRss: Math.max(...rs.map((r) => r.app.rssMb)),
        dbCpu: median(rs.map((r) => r.db.cpuPercent))
      }
      summary.push(s)
      rows.push(
        `| ${v} | ${target} | ${fmt(s.rps, 0)} | ${fmt(s.rpsMin, 0)}-${fmt(s.rpsMax, 0)} | ${fmt(s.ratio, 2)} | ${fmt(s.avg)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${fmt(s.failPct, 2)} | ${fmt(s.appCpu, 0)} | ${fmt(s.appRss, 0)} | ${fmt(s.dbCpu, 0)} |`
      )
    }
  }
  const config = { poolMax: Number(poolMax), variants, repeat, duration, warmup, connections, path: values.path, posts: Number(values.posts), otlpBytes: sink.bytes(), otlpRequests: sink.requests() }
  writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ config, summary, runs: results }, null, 2))
  writeFileSync(path.join(outDir, 'table.md'), rows.join('\n') + '\n')
  process.stdout.write(rows.join('\n') + `\n\npool max per process: ${poolMax}; OTLP received: ${(sink.bytes() / 1e6).toFixed(1)} MB in ${sink.requests()} exports\nresults: ${path.relative(ROOT, outDir)}\n`)

  const u = new URL(values['admin-url'])
  const conn = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username) || 'root', password: decodeURIComponent(u.password) })
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await conn.end()
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
