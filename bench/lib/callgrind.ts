// Self instructions by function from callgrind's dumps, with V8's JIT code named through node's
// --perf-basic-prof map (/tmp/perf-<pid>.map), and grouped by where they ran: a package, a file
// of the app's, a node: module, V8 builtins, V8 and node native code. bench:instructions uses it
// (with --dumps and --perf-basic-prof) to say where the difference between two variants goes.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

interface PerfMap { starts: number[]; ends: number[]; names: string[] }

function readPerfMap(pid: number): PerfMap {
  const file = `/tmp/perf-${pid}.map`
  const rows: [number, number, string][] = []
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'latin1').split('\n')) {
      const a = line.indexOf(' ')
      const b = line.indexOf(' ', a + 1)
      if (a < 0 || b < 0) continue
      const start = parseInt(line.slice(0, a), 16)
      const size = parseInt(line.slice(a + 1, b), 16)
      if (Number.isFinite(start) && Number.isFinite(size)) rows.push([start, start + size, line.slice(b + 1)])
    }
  }
  rows.sort((x, y) => x[0] - y[0])
  return { starts: rows.map((r) => r[0]), ends: rows.map((r) => r[1]), names: rows.map((r) => r[2]) }
}

function lookup(map: PerfMap, address: number): string | undefined {
  let lo = 0
  let hi = map.starts.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (map.starts[mid]! <= address) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found >= 0 && address < map.ends[found]! ? map.names[found] : undefined
}

/** Self cost (Ir) per function of one callgrind file; JIT addresses named from the perf map. */
function fileCosts(file: string, into: Map<string, number>): void {
  const text = readFileSync(file, 'latin1')
  const pid = Number(/^pid:\s*(\d+)/m.exec(text)?.[1])
  const map = Number.isFinite(pid) ? readPerfMap(pid) : { starts: [], ends: [], names: [] }
  const fnNames = new Map<string, string>()
  let fn: string | undefined
  let afterCall = false
  const own = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=') || line.startsWith('cfn=')) {
      const m = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line)
      if (!m) continue
      if (m[2] !== undefined) fnNames.set(m[1]!, m[2])
      if (line.startsWith('fn=')) fn = fnNames.get(m[1]!)
      continue
    }
    if (line.startsWith('calls=')) {
      afterCall = true
      continue
    }
    const c = line.charCodeAt(0)
    if ((c >= 48 && c <= 57) || line[0] === '+' || line[0] === '-' || line[0] === '*') {
      // The line after calls= is the call's inclusive cost, not the caller's own.
      if (afterCall) {
        afterCall = false
        continue
      }
      const parts = line.split(' ')
      if (fn !== undefined && parts.length >= 2) own.set(fn, (own.get(fn) ?? 0) + Number(parts[parts.length - 1]))
    }
  }
  for (const [name, ir] of own) {
    const hex = /^0x0*([0-9a-f]+)(?:'\d+)?$/.exec(name)
    const resolved = hex ? (lookup(map, parseInt(hex[1]!, 16)) ?? 'JIT code (not in the perf map)') : name.replace(/'\d+$/, '')
    into.set(resolved, (into.get(resolved) ?? 0) + ir)
  }
}

/** Self costs of every thread's file of one dump (`<base>.<pid>.<dump>-<thread>`). */
export function dumpCosts(dir: string, prefix: string): Map<string, number> {
  const costs = new Map<string, number>()
  for (const f of readdirSync(dir).filter((x) => x.startsWith(prefix))) fileCosts(path.join(dir, f), costs)
  return costs
}

/** Where a function ran, coarsely: the package or app file of JavaScript, or V8/node's kind of native code. */
export function groupOf(name: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(name)
  if (pkg) return pkg[1]!
  const app = /\/dist\/((?:src|otel|bench)\/[^: ]+?)(?:\.js)?:/.exec(name)
  if (app) return app[1]!
  const builtin = /^(node:[^: ]+)/.exec(name.replace(/^JS:[*+~^]?'?\S*\s+/, '')) ?? /\s(node:[^: ]+)/.exec(name)
  if (builtin) return builtin[1]!
  if (/^Builtins?_|^Builtin:|BytecodeHandler/.test(name)) return 'V8 builtins'
  if (name.startsWith('JS:') || name.startsWith('RegExp')) return 'JavaScript (other)'
  if (/Scavenge|MarkCompact|heap::|Heap::|Sweeper|GC/.test(name)) return 'V8 GC'
  if (/TurboFan|maglev|compiler::|Compiler|Parser|Scanner|Bytecode/.test(name)) return 'V8 compiler'
  if (name.startsWith('v8::')) return 'V8 runtime'
  if (name.startsWith('node::') || name.startsWith('uv_') || name.startsWith('simdutf')) return 'node native'
  return 'other native'
}

/** The groups whose instructions per page differ most between two dumps, largest first. */
export function differenceByGroup(a: Map<string, number>, b: Map<string, number>, pages: number, top = 10): { group: string; perPage: number }[] {
  const byGroup = new Map<string, number>()
  for (const [name, ir] of b) byGroup.set(groupOf(name), (byGroup.get(groupOf(name)) ?? 0) + ir)
  for (const [name, ir] of a) byGroup.set(groupOf(name), (byGroup.get(groupOf(name)) ?? 0) - ir)
  return [...byGroup]
    .map(([group, ir]) => ({ group, perPage: ir / pages }))
    .sort((x, y) => Math.abs(y.perPage) - Math.abs(x.perPage))
    .slice(0, top)
}
