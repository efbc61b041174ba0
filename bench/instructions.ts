// npm run bench:instructions -- [--variants floor,floor=all,otel=off] [--requests 1000] [--warmup 1500] [--windows 3]
//   [--parallel 2] [--compare otel=off/floor] ["--node-flags=--predictable --perf-basic-prof"] [--dumps DIR] [--baseline DIR]
// Instructions per request, counted by valgrind's callgrind, for variants whose CPU time differs
// by less than this shared machine resolves (a few percent). Each variant runs under callgrind;
// after a warm-up, the counters are zeroed, N list pages are fetched one after another over one
// keep-alive connection, and the counters dumped, `--windows` times. An instruction count does not
// depend on what else the machine runs (CPU time per request swings by 10-30% here), and with
// node's --predictable (the default) two processes doing the same work count the same to ~0.1%.
// It does not see the kernel (syscalls, socket writes), cache misses or stalls: it prices code
// paths, and the CPU-per-request bench stays the judge of time.
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { ROOT, startApp, startOtlpSink } from './lib/app'
import { differenceByGroup, dumpCosts } from './lib/callgrind'
import { databaseUrl, dropDatabases, prepareData } from './lib/data'
import { median } from '../src/lib/stats'
import { variantEnv } from './presets'

const run = promisify(execFile)

/**
 * Zero (-z) or dump (-d) a callgrind process's counters. vgdb finds the process by a file named
 * after $USER and $HOST; the app runs with HOST=127.0.0.1 (its listen address), so must this.
 */
const control = (command: '-z' | '-d', pid: number) => run('callgrind_control', [command, String(pid)], { env: { ...process.env, HOST: '127.0.0.1' } })

interface Window { mainIr: number; helperIr: number; kept: number }
const total = (w: Window) => w.mainIr + w.helperIr
interface VariantResult { variant: string; requests: number; windows: Window[]; /** The last window's dump files: `<prefix><thread>`. */ lastDump?: string }

/** The counters of every thread in the dump callgrind wrote last: main thread (01) and the rest. */
export function readDump(dir: string, base: string): Omit<Window, 'kept'> {
  const files = readdirSync(dir).filter((f) => f.startsWith(`${base}.`))
  const parts = files.map((f) => /\.(\d+)-(\d+)$/.exec(f)).filter((m): m is RegExpExecArray => m !== null)
  if (parts.length === 0) throw new Error(`no callgrind dump named ${base}.N-T in ${dir} (${files.join(', ') || 'empty'})`)
  const dump = Math.max(...parts.map((m) => Number(m[1])))
  let mainIr = 0
  let helperIr = 0
  for (const m of parts.filter((p) => Number(p[1]) === dump)) {
    const text = readFileSync(path.join(dir, m.input), 'utf8')
    const summary = /^summary:\s+(\d+)/m.exec(text) ?? /^totals:\s+(\d+)/m.exec(text)
    const ir = summary ? Number(summary[1]) : 0
    if (Number(m[2]) === 1) mainIr += ir
    else helperIr += ir
  }
  return { mainIr, helperIr }
}

/**
 * `n` list pages, one after another over one keep-alive connection; throws on a non-200. Returns
 * how many the app said it kept (traceresponse `-01`): a traced variant's count per page is its
 * fixed cost plus that share times a kept trace's cost, and the share moves with timing.
 */
async function fetchPages(url: string, n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  let kept = 0
  try {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => {
        http
          .get(url, { agent }, (res) => {
            if (String(res.headers.traceresponse ?? '').endsWith('-01')) kept++
            res.resume()
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`))))
          })
          .on('error', reject)
      })
    }
  } finally {
    agent.destroy()
  }
  return kept
}

async function measure(variant: string, baseEnv: Record<string, string>, o: { requests: number; warmup: number; windows: number; dir: string; nodeFlags: string[]; baseline?: string }): Promise<VariantResult> {
  const env: Record<string, string> = { ...baseEnv, ...variantEnv(variant) }
  if (env.BENCH_REPLICAS) throw new Error(`${variant}: not supported here (one process)`)
  if (env.BENCH_ROOT === 'baseline') {
    if (!o.baseline) throw new Error(`variant ${variant} needs --baseline DIR (a built checkout)`)
    env.BENCH_ROOT = o.baseline
  }
  const base = `cg-${variant.replace(/[^a-z0-9]+/gi, '_')}`
  const wrapper = [
    'valgrind', '--tool=callgrind', '--separate-threads=yes', '--dump-instr=no', '--dump-line=no', '--collect-jumps=no',
    `--callgrind-out-file=${path.join(o.dir, base)}.%p`
  ]
  // Start-up under callgrind takes 30-120 s (every module's code is translated once).
  const app = await startApp(env, 300_000, { wrapper, nodeFlags: o.nodeFlags })
  const windows: Window[] = []
  let lastDump: string | undefined
  try {
    const url = `${app.url}/blogs/`
    await fetchPages(url, o.warmup)
    for (let w = 0; w < o.windows; w++) {
      await control('-z', app.pid)
      const kept = (await fetchPages(url, o.requests)) / o.requests
      await control('-d', app.pid)
      const { mainIr, helperIr } = readDump(o.dir, `${base}.${app.pid}`)
      windows.push({ mainIr: mainIr / o.requests, helperIr: helperIr / o.requests, kept })
      lastDump = `${base}.${app.pid}.${w + 1}-`
      process.stderr.write(`  ${variant} window ${w + 1}: ${(mainIr / o.requests / 1e6).toFixed(3)} M main, ${(helperIr / o.requests / 1e6).toFixed(3)} M helpers per request, ${(kept * 100).toFixed(1)}% kept\n`)
    }
  } finally {
    await app.stop()
  }
  return { variant, requests: o.requests, windows, lastDump }
}

const M = (n: number) => (n / 1e6).toFixed(3)

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'floor,floor=all,otel=off' },
      requests: { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '1500' },
      windows: { type: 'string', default: '3' },
      // Variants run side by side: a count of instructions does not depend on the other one.
      parallel: { type: 'string', default: '2' },
      compare: { type: 'string' },
      'node-flags': { type: 'string', default: '--predictable' },
      'admin-url': { type: 'string', default: process.env.BENCH_ADMIN_URL ?? 'mysql://root@127.0.0.1:3306' },
      out: { type: 'string' },
      // Keep callgrind's dump files there (for callgrind_annotate) instead of a removed temp dir.
      dumps: { type: 'string' },
      // A built checkout for the `baseline` preset (before/after in one run).
      baseline: { type: 'string' }
    }
  })
  await run('valgrind', ['--version']).catch(() => {
    throw new Error('bench:instructions needs valgrind (Debian: apt-get install valgrind)')
  })
  const variants = values.variants.split(',').filter(Boolean)
  const pairs = (values.compare ?? variants.slice(1).map((v) => `${v}/${variants[0]}`).join(','))
    .split(',').filter(Boolean).map((p) => p.split('/') as [string, string])
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = values.out ? path.resolve(values.out) : path.join(ROOT, 'bench', 'results', `instructions-${stamp}`)
  const dir = values.dumps ? path.resolve(values.dumps) : path.join(os.tmpdir(), `blog-instructions-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  mkdirSync(outDir, { recursive: true })
  const database = `blog_instr_${process.pid}`
  await prepareData(values['admin-url'], database, { posts: 30, noIndex: false })
  const sink = await startOtlpSink()
  // As `npm run bench` runs the app, except the periodic work that a wall clock drives: under
  // callgrind a page takes ~50x longer, so a timer firing per second would weigh 50x more per
  // page. Log lines go out by size (4 KiB), spans in full batches, metrics not inside a window.
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl(values['admin-url'], database), DB_SEED_ON_START: 'false', WRITE_RATE_LIMIT: '0',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_BSP_SCHEDULE_DELAY: '30000', OTEL_METRIC_EXPORT_INTERVAL: '3600000', LOG_FLUSH_MS: '10000',
    DB_HEALTH_CHECK_INTERVAL_MS: '3600000', LOAD_SAMPLE_INTERVAL_MS: '60000',
    // The pool replaces its connections every 5 minutes (new connection, statements prepared and
    // row parsers compiled again): every ~6000 pages here, every ~120,000 at 400 req/s.
    DB_POOL_IDLE_MS: '3600000', DB_POOL_MAX_LIFETIME_MS: '3600000',
    // A callgrind GC pause or compile blocks the loop for seconds: shedding stays on, its limit up.
    LOAD_MAX_EVENT_LOOP_DELAY_MS: '600000'
  }
  const o = { requests: Number(values.requests), warmup: Number(values.warmup), windows: Number(values.windows), dir, nodeFlags: values['node-flags'].split(' ').filter(Boolean), baseline: values.baseline ? path.resolve(values.baseline) : undefined }
  const results: VariantResult[] = []
  try {
    const queue = [...variants]
    const worker = async () => {
      try {
        for (let v = queue.shift(); v !== undefined; v = queue.shift()) results.push(await measure(v, env, o))
      } catch (err) {
        queue.length = 0 // the other worker stops after its current variant
        throw err
      }
    }
    // Every worker finishes (and stops its app) before a failure is reported.
    const settled = await Promise.allSettled(Array.from({ length: Math.max(1, Number(values.parallel)) }, worker))
    for (const s of settled) if (s.status === 'rejected') throw s.reason
  } finally {
    await sink.close()
    await dropDatabases(values['admin-url'], [database])
    if (!values.dumps) rmSync(dir, { recursive: true, force: true })
  }
  const byName = new Map(results.map((r) => [r.variant, r]))
  const lines = [
    `Instructions per list page (callgrind, node ${o.nodeFlags.join(' ') || '(no flags)'}), ${o.windows} windows of ${o.requests} pages after ${o.warmup} warm-up pages, one keep-alive connection.`,
    '',
    '| variant | all threads, M instr/page, window by window | of which helper threads (GC, compilers, libuv) | pages kept (traceresponse -01), window by window |',
    '| --- | --- | --- | --- |',
    ...variants.map((v) => {
      const w = byName.get(v)!.windows
      return `| ${v} | ${w.map((x) => M(total(x))).join(', ')} | ${w.map((x) => M(x.helperIr)).join(', ')} | ${w.map((x) => `${(x.kept * 100).toFixed(1)}%`).join(', ')} |`
    }),
    '',
    '| pair | ratio, median of windows | difference, K instr/page, window by window |',
    '| --- | --- | --- |',
    ...pairs.map(([a, b]) => {
      // Window i of one variant against window i of the other: with --predictable (no concurrent
      // compilation or GC threads, fixed seeds) a process's count is a function of its work, and
      // the warm-up drift from window to window is shared.
      const wa = byName.get(a)!.windows
      const wb = byName.get(b)!.windows
      const n = Math.min(wa.length, wb.length)
      const ratios = Array.from({ length: n }, (_, i) => total(wa[i]!) / total(wb[i]!))
      const diffs = Array.from({ length: n }, (_, i) => ((total(wa[i]!) - total(wb[i]!)) / 1e3).toFixed(0))
      return `| ${a} / ${b} | ${median(ratios).toFixed(3)} | ${diffs.join(', ')} |`
    })
  ]
  // With the dumps kept and JIT code named (--perf-basic-prof): where each pair's difference went.
  if (values.dumps && o.nodeFlags.includes('--perf-basic-prof')) {
    for (const [a, b] of pairs) {
      const ra = byName.get(a)!
      const rb = byName.get(b)!
      if (!ra.lastDump || !rb.lastDump) continue
      const diff = differenceByGroup(dumpCosts(dir, rb.lastDump), dumpCosts(dir, ra.lastDump), o.requests, 12)
      lines.push('', `${a} over ${b}, last window, by where the instructions ran (K per page):`, '', '| where | K instr/page |', '| --- | --- |')
      for (const d of diff) lines.push(`| ${d.group} | ${d.perPage >= 0 ? '+' : ''}${(d.perPage / 1e3).toFixed(1)} |`)
    }
  }
  const table = lines.join('\n') + '\n'
  process.stdout.write(`\n${table}\nresults: ${outDir}\n`)
  writeFileSync(path.join(outDir, 'table.md'), table)
  writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ args: values, results }, null, 2))
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:instructions failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
