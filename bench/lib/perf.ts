import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'

// On-CPU sampling with Linux perf (Debian's linux-perf): the `cpu-clock` software event fires on
// CPU time, so a thread that is descheduled (in a syscall, waiting for a core the load generator
// and the database share) is not sampled. V8's --cpu-prof samples wall time and charges such
// waits to whatever frame was running, e.g. a socket write. Works in VMs with no hardware counters.

/** One sample per this many µs of CPU time: a fixed period (-c), so samples x period = CPU time
 * (with -F, perf varies the period to reach a frequency, and counting samples misleads). */
export const PERF_PERIOD_US = 250

/** The node flags that let perf name JIT-compiled and interpreted JavaScript frames. */
export const PERF_NODE_OPTIONS = '--perf-basic-prof --interpreted-frames-native-stack'

export function perfAvailable(): boolean {
  return spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Records call stacks of process `pid` for `seconds` (resolves when perf has written `file`). */
export function recordPerf(pid: number, seconds: number, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const perf = spawn('perf', ['record', '-g', '-e', 'cpu-clock', '-c', String(PERF_PERIOD_US * 1000), '-p', String(pid), '-o', file, '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    perf.stderr.on('data', (d) => (err += d))
    perf.on('error', reject)
    perf.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited ${code}: ${err.trim()}`))))
  })
}

/** A frame perf names from node's perf map: `JS:*'name /path/file.js:12:3` (the marks say the tier). */
const JS_FRAME = /^JS:[*+~^]*'?(\S*) (\S*):\d+:\d+$/

export interface PerfGroups {
  /** Samples of the main thread by group, busiest first. */
  rows: [string, number][]
  /** Samples of the process's other threads (V8's GC and compiler helpers, libuv's pool). */
  helpers: number
}

/**
 * Reads `perf script` of `file` and charges each main-thread sample to `groupOf` of the innermost
 * JavaScript frame it gives a group (node internals are charged to their caller, as in the V8
 * profile). A sample taken in the kernel is marked so: ` [kernel]` after its group.
 */
export async function perfGroups(file: string, pid: number, groupOf: (url: string, fn: string) => string | null): Promise<PerfGroups> {
  const script = spawn('perf', ['script', '-i', file, '-F', 'tid,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const counts = new Map<string, number>()
  let helpers = 0
  let tid = -1
  let frames: { sym: string; kernel: boolean }[] = []
  const flush = () => {
    if (frames.length === 0) return
    if (tid !== pid) helpers++
    else {
      let group: string | null = null
      for (const f of frames) {
        const m = JS_FRAME.exec(f.sym)
        if (m && (group = groupOf(m[2]!, m[1]!))) {
          if (group === 'other') group = `other: ${m[1] || '(anonymous)'} ${m[2]}`.slice(0, 100)
          break
        }
      }
      if (!group) {
        // Node's own JavaScript only (the HTTP parser's callbacks, the microtask and nextTick
        // queues): named by the outermost function; no JavaScript at all: libuv, malloc, GC.
        const outer = frames.findLast((f) => f.sym.startsWith('JS:'))
        if (frames.some((f) => /Heap::|Scavenge|MarkCompact|Sweeper/.test(f.sym))) group = 'GC'
        else if (outer) group = `node internals: ${JS_FRAME.exec(outer.sym)?.[1] || '(anonymous)'}`
        else group = 'native: event loop, libuv, malloc'
      }
      const key = frames[0]!.kernel ? `${group} [kernel]` : group
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    frames = []
  }
  for await (const line of createInterface({ input: script.stdout })) {
    const head = /^\s*(\d+)\s*$/.exec(line)
    if (head) {
      flush()
      tid = Number(head[1])
      continue
    }
    const frame = /^\s+[0-9a-f]+ (.*) \((.*)\)$/.exec(line)
    if (frame) frames.push({ sym: frame[1]!, kernel: frame[2]!.includes('kernel') })
  }
  flush()
  return { rows: [...counts].sort((a, b) => b[1] - a[1]), helpers }
}
