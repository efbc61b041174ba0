import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'

const TICKS = 100 // USER_HZ on Linux
const PAGE_KB = 4

export interface ProcSample {
  /** Of one core, over the run. */
  cpuPercent: number
  /** utime + stime over the run (for CPU time per request). */
  cpuSeconds: number
  /** Peak resident set over the run. */
  rssMb: number
}

async function cpuTicks(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime
  } catch {
    return null
  }
}

async function rssMb(pid: number): Promise<number> {
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
  private startAt = 0
  private peakRss = 0
  private timer: NodeJS.Timeout | undefined

  constructor(readonly pid: number | null) {}

  async start(): Promise<void> {
    if (!this.pid) return
    this.startTicks = await cpuTicks(this.pid)
    this.startAt = performance.now()
    this.timer = setInterval(() => {
      void rssMb(this.pid!).then((r) => (this.peakRss = Math.max(this.peakRss, r)))
    }, 250)
  }

  async stop(): Promise<ProcSample> {
    clearInterval(this.timer)
    if (!this.pid || this.startTicks === null) return { cpuPercent: NaN, cpuSeconds: NaN, rssMb: NaN }
    const end = await cpuTicks(this.pid)
    const seconds = (performance.now() - this.startAt) / 1000
    this.peakRss = Math.max(this.peakRss, await rssMb(this.pid))
    const cpuSeconds = end === null ? NaN : (end - this.startTicks) / TICKS
    return { cpuPercent: (cpuSeconds / seconds) * 100, cpuSeconds, rssMb: this.peakRss }
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

  constructor(pids: number[]) {
    this.monitors = pids.map((p) => new ProcMonitor(p))
  }

  async start(): Promise<void> {
    await Promise.all(this.monitors.map((m) => m.start()))
  }

  async stop(): Promise<ProcSample> {
    const samples = await Promise.all(this.monitors.map((m) => m.stop()))
    const sum = (k: keyof ProcSample) => samples.reduce((a, s) => a + s[k], 0)
    return { cpuPercent: sum('cpuPercent'), cpuSeconds: sum('cpuSeconds'), rssMb: sum('rssMb') }
  }
}
