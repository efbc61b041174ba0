import { median, percentile } from '../../src/lib/stats'
import type { LoadResult } from './load'
import type { UploadPeak } from './memory'
import type { ProcSample } from './proc'
import { breakdown, meanBreakdown, PHASES, type BenchSpan, type Breakdown } from './spans'

/** Milliseconds of CPU per request served, of `seconds` of CPU over a run. */
const perRequestMs = (seconds: number, r: RunResult) => (seconds * 1000) / Math.max(1, r.requests)
const cpuMs = (r: RunResult) => perRequestMs(r.app.cpuSeconds, r)

/** One load run of one variant. */
export interface RunResult {
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
  /** The balancer in front of a replicas=N variant; absent when the load hits one app directly. */
  lb?: ProcSample
  /** App processes behind the balancer (app is their sum). */
  replicas?: number
  traced: number
  phases: Breakdown | null
  p50Trace: (Breakdown & { traceId: string }) | null
  slowestTrace: (Breakdown & { traceId: string }) | null
  /** The slowest 1% of requests by their own X-Process-Time: how many, and how many of their traces were exported. */
  slowest: { count: number; exported: number; flagged: number } | null
}

/**
 * Of the slowest 1% of answered requests (by the X-Process-Time each reported), how many traces
 * reached the harness's OTLP sink: what a load test is run to find, and what head sampling loses.
 */
export function slowestExported(samples: LoadResult['samples'], exported: ReadonlySet<string>): { count: number; exported: number; flagged: number } | null {
  const timed = samples.filter((s) => Number.isFinite(s.processMs) && s.responseTraceId !== '').sort((a, b) => b.processMs - a.processMs)
  if (timed.length === 0) return null
  const slowest = timed.slice(0, Math.max(1, Math.floor(timed.length / 100)))
  return { count: slowest.length, exported: slowest.filter((s) => exported.has(s.responseTraceId)).length, flagged: slowest.filter((s) => s.kept).length }
}

export function summariseRun(variant: string, round: number, target: string, load: LoadResult, okStatus: (s: number) => boolean, app: ProcSample, db: ProcSample, spans: BenchSpan[]): RunResult {
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
    slowestTrace: pick(traced.length - 1),
    slowest: slowestExported(load.samples, new Set(byTrace.keys()))
  }
}

/** One variant and path over all rounds: medians, spread, and CPU time per request. */
export interface Summary {
  variant: string
  path: string
  rounds: number
  rps: number
  rpsMin: number
  rpsMax: number
  ratio: number
  avg: number
  p90: number
  p95: number
  p99: number
  max: number
  failPct: number
  dropped: number
  appCpu: number
  /** Milliseconds of app (and DB) CPU per request served, from /proc utime + stime. */
  appCpuMs: number
  cpuRatio: number
  /** appCpuMs by thread (ms/req, medians): main thread user and kernel time, helper threads. */
  cpuSplit?: { mainUser: number; mainSys: number; helpers: number }
  appRss: number
  dbCpu: number
  dbCpuMs: number
  dbRss: number
  /** replicas=N variants: the balancer's CPU per request and CPU %, and the replica count. */
  replicas?: number
  lbCpuMs?: number
  lbCpu?: number
  traced: number
  phases: Breakdown | null
  p50Trace: (Breakdown & { traceId: string }) | null
  slowestTrace: (Breakdown & { traceId: string }) | null
  /** Over all rounds: the slowest 1% of each round's requests, and how many of their traces were exported. */
  slowest: { count: number; exported: number; flagged: number } | null
  verdict: string
}

export function summarise(results: RunResult[], variants: string[]): Summary[] {
  const out: Summary[] = []
  const first = new Map<string, { rps: number; cpuMs: number }>()
  for (const target of [...new Set(results.map((r) => r.path))]) {
    for (const v of variants) {
      const rs = results.filter((r) => r.variant === v && r.path === target)
      if (rs.length === 0) continue
      const rps = median(rs.map((r) => r.rps))
      const appCpuMs = median(rs.map(cpuMs))
      if (!first.has(target)) first.set(target, { rps, cpuMs: appCpuMs })
      const phaseRuns = rs.map((r) => r.phases).filter((p): p is Breakdown => p !== null)
      const s: Omit<Summary, 'verdict'> = {
        variant: v,
        path: target,
        rounds: rs.length,
        rps,
        rpsMin: Math.min(...rs.map((r) => r.rps)),
        rpsMax: Math.max(...rs.map((r) => r.rps)),
        ratio: rps / first.get(target)!.rps,
        avg: median(rs.map((r) => r.latency.avg)),
        p90: median(rs.map((r) => r.latency.p90)),
        p95: median(rs.map((r) => r.latency.p95)),
        p99: median(rs.map((r) => r.latency.p99)),
        max: Math.max(...rs.map((r) => r.latency.max)),
        failPct: (100 * rs.reduce((a, r) => a + r.failures, 0)) / Math.max(1, rs.reduce((a, r) => a + r.requests, 0)),
        dropped: rs.reduce((a, r) => a + r.dropped, 0),
        appCpu: median(rs.map((r) => r.app.cpuPercent)),
        appCpuMs,
        cpuRatio: appCpuMs / first.get(target)!.cpuMs,
        ...(rs.every((r) => r.app.split) ? {
          cpuSplit: {
            mainUser: median(rs.map((r) => perRequestMs(r.app.split!.mainUser, r))),
            mainSys: median(rs.map((r) => perRequestMs(r.app.split!.mainSys, r))),
            helpers: median(rs.map((r) => perRequestMs(r.app.split!.helpers, r)))
          }
        } : {}),
        appRss: Math.max(...rs.map((r) => r.app.rssMb)),
        dbCpu: median(rs.map((r) => r.db.cpuPercent)),
        dbCpuMs: median(rs.map((r) => perRequestMs(r.db.cpuSeconds, r))),
        dbRss: Math.max(...rs.map((r) => r.db.rssMb)),
        ...(rs[0]!.lb ? {
          replicas: rs[0]!.replicas ?? 1,
          lbCpuMs: median(rs.map((r) => perRequestMs(r.lb!.cpuSeconds, r))),
          lbCpu: median(rs.map((r) => r.lb!.cpuPercent))
        } : {}),
        traced: rs.reduce((a, r) => a + r.traced, 0),
        phases: meanBreakdown(phaseRuns),
        p50Trace: rs[rs.length - 1]!.p50Trace,
        slowestTrace: rs.map((r) => r.slowestTrace).filter((t) => t !== null).sort((a, b) => b!.total - a!.total)[0] ?? null,
        slowest: rs.some((r) => r.slowest)
          ? {
              count: rs.reduce((a, r) => a + (r.slowest?.count ?? 0), 0),
              exported: rs.reduce((a, r) => a + (r.slowest?.exported ?? 0), 0),
              flagged: rs.reduce((a, r) => a + (r.slowest?.flagged ?? 0), 0)
            }
          : null
      }
      // Replicas: the verdict's CPU thresholds are per process (a core each), so the mean of them.
      out.push({ ...s, verdict: verdict({ ...s, appCpu: s.appCpu / (s.replicas ?? 1) }) })
    }
  }
  return out
}

const pct = (x: number) => `${Math.round(x * 100)}%`

/**
 * Where the limit is, from the run's own numbers: the split of SQL span time (the database's
 * own time from performance_schema, the event loop busy with other work, the rest) and the CPU
 * of the app and database processes. Each rule says why in the line it prints.
 */
export function verdict(s: Pick<Summary, 'appCpu' | 'appCpuMs' | 'dbCpu' | 'phases'>): string {
  const p = s.phases
  const cpu = `app CPU ${Math.round(s.appCpu)}%, DB CPU ${Math.round(s.dbCpu)}%`
  if (!p || p.queries === 0 || p.SQL <= 0) return `no verdict: no traced SQL in this run (${cpu})`
  const loopShare = p.sqlLoop / p.SQL
  const serverShare = p.sqlJoined > 0 ? p.sqlServer / p.sqlJoined : undefined
  const perQuery = p.sqlJoined > 0 ? `DB server time ${(p.sqlServer / p.queries).toFixed(2)} ms per query` : 'DB server time not joined (performance_schema off)'
  const sqlShare = p.SQL / Math.max(p.total, 1e-9)
  if (serverShare !== undefined && serverShare >= 0.5 && sqlShare >= 0.3) {
    return `bottleneck: database (DB server time ${pct(serverShare)} of SQL span time, ${perQuery.replace('DB server time ', '')}, SQL ${pct(sqlShare)} of server time, ${cpu})`
  }
  if (s.dbCpu >= 90) return `bottleneck: database CPU (${cpu}, ${perQuery})`
  if (loopShare >= 0.5 && (serverShare === undefined || serverShare < 0.3)) {
    // Saturated: the process is at a core, or requests spend far longer open than the CPU they
    // need (the process is starved: other work on the machine takes its core). Short of that,
    // the same signature is queueing behind the app's own work, not yet a wall.
    const waitsOnCpu = s.appCpuMs > 0 && p.total / s.appCpuMs >= 10
    if (s.appCpu < 80 && !waitsOnCpu) return `no bottleneck yet, but SQL spans wait on the busy event loop (loop busy ${pct(loopShare)} of SQL span time, ${perQuery}, ${cpu})`
    return `bottleneck: app CPU (loop busy ${pct(loopShare)} of SQL span time, ${perQuery}, ${cpu})`
  }
  if (p['pool wait'] / Math.max(p.total, 1e-9) >= 0.3) return `bottleneck: connection pool (pool wait ${pct(p['pool wait'] / p.total)} of server time, ${cpu})`
  return `no bottleneck at this load (loop busy ${pct(loopShare)} of SQL span time, ${perQuery}, ${cpu})`
}

const fmt = (n: number | undefined, digits = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-')

/** The Markdown report: results, where the time went, and one verdict per variant. */
export function reportLines(summary: Summary[], heading: string): string[] {
  const lines: string[] = [heading, '']
  lines.push('| variant | path | req/s (median) | min-max | ratio | app CPU ms/req | CPU ratio | DB CPU ms/req | avg ms | p99 | fail % | app CPU % | app RSS MB | DB CPU % |')
  lines.push('|' + ' --- |'.repeat(14))
  for (const s of summary) {
    lines.push(
      `| ${s.variant} | ${s.path} | ${fmt(s.rps, 0)} | ${fmt(s.rpsMin, 0)}-${fmt(s.rpsMax, 0)} | ${fmt(s.ratio, 2)} | ${fmt(s.appCpuMs, 3)} | ${fmt(s.cpuRatio, 2)} | ${fmt(s.dbCpuMs, 3)} | ${fmt(s.avg)} | ${fmt(s.p99)} | ${fmt(s.failPct, 2)} | ${fmt(s.appCpu, 0)} | ${fmt(s.appRss, 0)} | ${fmt(s.dbCpu, 0)} |`
    )
  }
  const split = summary.filter((s) => s.cpuSplit)
  if (split.length > 0) {
    lines.push('', "The app's CPU by thread (ms/req, medians; a CPU profile sees only the main thread's JavaScript): main thread in user space and in the kernel (socket reads and writes, log writes), and V8's and libuv's helper threads (concurrent GC, compilers, the thread pool):", '')
    lines.push('| variant | path | main user | main kernel | helper threads | total |')
    lines.push('|' + ' --- |'.repeat(6))
    for (const s of split) {
      const c = s.cpuSplit!
      lines.push(`| ${s.variant} | ${s.path} | ${fmt(c.mainUser, 3)} | ${fmt(c.mainSys, 3)} | ${fmt(c.helpers, 3)} | ${fmt(s.appCpuMs, 3)} |`)
    }
  }
  const scaled = summary.filter((s) => s.replicas !== undefined)
  if (scaled.length > 0) {
    lines.push('', 'Replicas behind nginx: CPU per request of the whole serving tier (app = sum over the replicas; app CPU % is that sum, 100 = one core):', '')
    lines.push('| variant | path | replicas | req/s | app CPU ms/req | nginx CPU ms/req | DB CPU ms/req | total CPU ms/req | app CPU % | nginx CPU % | DB CPU % |')
    lines.push('|' + ' --- |'.repeat(11))
    for (const s of scaled) {
      const total = s.appCpuMs + (s.lbCpuMs ?? 0) + s.dbCpuMs
      lines.push(`| ${s.variant} | ${s.path} | ${s.replicas} | ${fmt(s.rps, 0)} | ${fmt(s.appCpuMs, 3)} | ${fmt(s.lbCpuMs, 3)} | ${fmt(s.dbCpuMs, 3)} | ${fmt(total, 3)} | ${fmt(s.appCpu, 0)} | ${fmt(s.lbCpu, 0)} | ${fmt(s.dbCpu, 0)} |`)
    }
  }
  const withSlowest = summary.filter((s) => s.slowest)
  if (withSlowest.length > 0) {
    lines.push('', 'The slowest 1% of requests (by their own X-Process-Time, per round): how many of their traces were exported:', '')
    lines.push('| variant | path | slowest requests | said kept (traceresponse -01) | traces exported | share exported |')
    lines.push('|' + ' --- |'.repeat(6))
    for (const s of withSlowest) {
      const k = s.slowest!
      lines.push(`| ${s.variant} | ${s.path} | ${k.count} | ${k.flagged} | ${k.exported} | ${pct(k.exported / Math.max(1, k.count))} |`)
    }
  }
  const withPhases = summary.filter((s) => s.phases)
  if (withPhases.length > 0) {
    lines.push('', 'Where the server time went (ms, mean over traced requests); SQL split into the database itself (performance_schema), the event loop busy with other work, and the rest (network, driver, waiting):', '')
    lines.push(`| variant | path | traces | ${PHASES.join(' | ')} | SQL: DB server | SQL: loop busy | SQL: rest | server total | queries | slowest trace |`)
    lines.push('|' + ' --- |'.repeat(PHASES.length + 8))
    for (const s of withPhases) {
      const p = s.phases!
      const server = p.sqlJoined > 0 ? fmt(p.sqlServer * (p.SQL / p.sqlJoined), 2) : '-'
      const rest = Math.max(0, p.SQL - p.sqlLoop - (p.sqlJoined > 0 ? p.sqlServer * (p.SQL / p.sqlJoined) : 0))
      const t = s.slowestTrace ? `${fmt(s.slowestTrace.total, 2)} ms ${s.slowestTrace.traceId.slice(0, 12)}…` : '-'
      lines.push(`| ${s.variant} | ${s.path} | ${s.traced} | ${PHASES.map((ph) => fmt(p[ph], 2)).join(' | ')} | ${server} | ${fmt(p.sqlLoop, 2)} | ${fmt(rest, 2)} | ${fmt(p.total, 2)} | ${fmt(p.queries, 1)} | ${t} |`)
    }
  }
  lines.push('')
  for (const s of summary) lines.push(`verdict ${s.variant} ${s.path}: ${s.verdict}`)
  return lines
}

/** CPU per request of variant `a` over `b`, from the medians and round by round (a round runs every variant back to back). */
export interface PairedRatio {
  a: string
  b: string
  path: string
  ofMedians: number
  /** Median, min and max of the per-round ratios; rounds where both ran. */
  perRound: { median: number; min: number; max: number; rounds: number }
}

/**
 * Pairs `a/b` of variants (default: each variant against the first). On a shared machine the
 * per-round ratio is the steadier one: both sides of it ran under the same neighbours.
 */
export function pairedRatios(results: RunResult[], pairs: [string, string][]): PairedRatio[] {
  const out: PairedRatio[] = []
  for (const target of [...new Set(results.map((r) => r.path))]) {
    const at = results.filter((r) => r.path === target)
    for (const [a, b] of pairs) {
      const ra = at.filter((r) => r.variant === a)
      const rb = at.filter((r) => r.variant === b)
      if (ra.length === 0 || rb.length === 0) continue
      const ratios = ra.flatMap((x) => {
        const y = rb.find((r) => r.round === x.round)
        return y ? [cpuMs(x) / cpuMs(y)] : []
      })
      out.push({
        a, b, path: target,
        ofMedians: median(ra.map(cpuMs)) / median(rb.map(cpuMs)),
        perRound: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), rounds: ratios.length }
      })
    }
  }
  return out
}

export function pairedRatioLines(ratios: PairedRatio[]): string[] {
  if (ratios.length === 0) return []
  const lines = ['', 'App CPU per request, variant a over variant b: ratio of the medians, and the median (min-max) of the ratios taken round by round:', '']
  lines.push('| a | b | path | ratio of medians | per-round ratio | rounds |')
  lines.push('|' + ' --- |'.repeat(6))
  for (const r of ratios) {
    lines.push(`| ${r.a} | ${r.b} | ${r.path} | ${fmt(r.ofMedians, 2)} | ${fmt(r.perRound.median, 2)} (${fmt(r.perRound.min, 2)}-${fmt(r.perRound.max, 2)}) | ${r.perRound.rounds} |`)
  }
  return lines
}

/** A variant's memory: at rest after start, at its peak under the load runs, and while the worst accepted upload is processed. */
export interface MemoryRow {
  variant: string
  /** Resident set after start, before any load (summed over replicas). */
  idleRssMb: number
  /** The highest of the variant's runs (every path and round). */
  loadPeakRssMb: number
  /** The worst accepted upload (bench/lib/memory.ts); null when skipped (floor, --upload-worst 0). */
  upload: UploadPeak | null
}

export function memoryRows(results: RunResult[], variants: string[], idle: ReadonlyMap<string, number>, uploads: ReadonlyMap<string, UploadPeak>): MemoryRow[] {
  return variants.map((v) => {
    const runs = results.filter((r) => r.variant === v)
    return {
      variant: v,
      idleRssMb: idle.get(v) ?? NaN,
      loadPeakRssMb: runs.length > 0 ? Math.max(...runs.map((r) => r.app.rssMb)) : NaN,
      upload: uploads.get(v) ?? null
    }
  })
}

/** The memory table; with a `floor` variant, each peak under load is also given as a multiple of the floor's. */
export function memoryLines(rows: MemoryRow[]): string[] {
  if (rows.length === 0) return []
  const floor = rows.find((r) => r.variant === 'floor')
  const lines = ['', 'Memory (resident set, MB): after start before any load, the peak under the load runs, and the peak while the largest image IMAGE_MEMORY_BUDGET_BYTES admits is processed (a 16-bit RGBA interlaced PNG of side x side; several at once: the budget plus the waiting line):', '']
  lines.push(`| variant | idle RSS | peak RSS under load |${floor ? ' x floor |' : ''} worst upload: image | at once | peak RSS | answers |`)
  lines.push('|' + ' --- |'.repeat(floor ? 8 : 7))
  for (const r of rows) {
    const u = r.upload
    const answers = u ? Object.entries(u.answers).map(([status, n]) => `${n}x ${status}`).join(', ') : '-'
    lines.push(
      `| ${r.variant} | ${fmt(r.idleRssMb, 0)} | ${fmt(r.loadPeakRssMb, 0)} |${floor ? ` ${fmt(r.loadPeakRssMb / floor.loadPeakRssMb, 2)} |` : ''} ${u ? `${u.side}x${u.side}` : '-'} | ${u ? u.concurrency : '-'} | ${fmt(u?.peakRssMb, 0)} | ${answers} |`
    )
  }
  return lines
}
