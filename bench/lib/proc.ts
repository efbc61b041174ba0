import { execFileSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'

const TICKS = 100 // USER_HZ on Linux
const PAGE_KB = 4

export interface ProcSample {
  /** Of one core, over the run. */
  cpuPercent: number
  /** utime + stime over the run (for CPU time per request). */
  cpuSeconds: number
  /** Peak resident set over the run. */
  rssMb: number
  /**
   * cpuSeconds split by thread: the main thread's user and kernel time, and every other thread
   * (V8's workers: concurrent GC and compilers; libuv's pool). A CPU profile sees only the first.
   */
  split?: CpuSplit
}

export interface CpuSplit {
  mainUser: number
  mainSys: number
  helpers: number
}

const fieldsOf = (stat: string) => stat.slice(stat.lastIndexOf(')') + 2).split(' ')

/** Ticks per thread group, from /proc/<pid>/task/<tid>/stat; threads that ended are lost. */
async function threadTicks(pid: number): Promise<CpuSplit | null> {
  try {
    const tids = await readdir(`/proc/${pid}/task`)
    const split: CpuSplit = { mainUser: 0, mainSys: 0, helpers: 0 }
    await Promise.all(tids.map(async (tid) => {
      const f = fieldsOf(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => ''))
      const user = Number(f[11] ?? 0), sys = Number(f[12] ?? 0)
      if (Number(tid) === pid) {
        split.mainUser += user
        split.mainSys += sys
      } else split.helpers += (user + sys) || 0
    }))
    return split
  } catch {
    return null
  }
}

async function cpuTicks(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = fieldsOf(stat)
    return Number(fields[11]) + Number(fields[12]) // utime + stime
  } catch {
    return null
  }
}

/** The resident set of a process now, in MiB (0 when it is gone). */
export async function rssMb(pid: number): Promise<number> {
  try {
    const statm = await readFile(`/proc/${pid}/statm`, 'utf8')
    return (Number(statm.split(' ')[1]) * PAGE_KB) / 1024
  } catch {
    return 0
  }
}

/** Samples CPU% (of one core) and peak RSS of a process while a run lasts. */
export class ProcMonitor {
  private startTicks: number | null = null
  private startSplit: CpuSplit | null = null
  private startAt = 0
  private peakRss = 0
  private timer: NodeJS.Timeout | undefined

  constructor(readonly pid: number | null, private readonly intervalMs = 250) {}

  async start(): Promise<void> {
    if (!this.pid) return
    this.startTicks = await cpuTicks(this.pid)
    this.startSplit = await threadTicks(this.pid)
    this.startAt = performance.now()
    this.timer = setInterval(() => {
      void rssMb(this.pid!).then((r) => (this.peakRss = Math.max(this.peakRss, r)))
    }, this.intervalMs)
  }

  async stop(): Promise<ProcSample> {
    clearInterval(this.timer)
    if (!this.pid || this.startTicks === null) return { cpuPercent: NaN, cpuSeconds: NaN, rssMb: NaN }
    const end = await cpuTicks(this.pid)
    const endSplit = await threadTicks(this.pid)
    const seconds = (performance.now() - this.startAt) / 1000
    this.peakRss = Math.max(this.peakRss, await rssMb(this.pid))
    const cpuSeconds = end === null ? NaN : (end - this.startTicks) / TICKS
    const a = this.startSplit, b = endSplit
    const split = a && b
      ? { mainUser: (b.mainUser - a.mainUser) / TICKS, mainSys: (b.mainSys - a.mainSys) / TICKS, helpers: (b.helpers - a.helpers) / TICKS }
      : undefined
    return { cpuPercent: (cpuSeconds / seconds) * 100, cpuSeconds, rssMb: this.peakRss, split }
  }
}

/** The process listening on a TCP port (several database servers may run: the name is not enough). */
export function pidByPort(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' })
    const m = /pid=(\d+)/.exec(out)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

export function findPid(...names: string[]): number | null {
  for (const name of names) {
    try {
      const out = execFileSync('pidof', ['-s', name], { encoding: 'utf8' }).trim()
      if (out) return Number(out)
    } catch {
      // not running under this name
    }
  }
  return null
}

/** Several processes as one (the replicas of a scaled variant): CPU and RSS added up. */
export class ProcGroupMonitor {
  private readonly monitors: ProcMonitor[]

  constructor(pids: number[], intervalMs?: number) {
    this.monitors = pids.map((p) => new ProcMonitor(p, intervalMs))
  }

  async start(): Promise<void> {
    await Promise.all(this.monitors.map((m) => m.start()))
  }

  async stop(): Promise<ProcSample> {
    const samples = await Promise.all(this.monitors.map((m) => m.stop()))
    const sum = (k: 'cpuPercent' | 'cpuSeconds' | 'rssMb') => samples.reduce((a, s) => a + s[k], 0)
    const splits = samples.map((s) => s.split)
    const split = splits.every((x) => x !== undefined)
      ? splits.reduce((a, x) => ({ mainUser: a.mainUser + x.mainUser, mainSys: a.mainSys + x.mainSys, helpers: a.helpers + x.helpers }), { mainUser: 0, mainSys: 0, helpers: 0 })
      : undefined
    return { cpuPercent: sum('cpuPercent'), cpuSeconds: sum('cpuSeconds'), rssMb: sum('rssMb'), split }
  }
}
