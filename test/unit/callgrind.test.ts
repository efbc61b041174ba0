import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { differenceByGroup, dumpCosts, groupOf } from '../../bench/lib/callgrind'

// bench:instructions' attribution: callgrind's self costs per function (not the inclusive cost
// of calls), JIT code named through node's perf map, grouped by package or kind of code.

const dir = mkdtempSync(path.join(os.tmpdir(), 'callgrind-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
// A pid no process has: the map file is written here for it.
const pid = 4_000_000 + (process.pid % 100_000)
afterAll(() => rmSync(`/tmp/perf-${pid}.map`, { force: true }))

function dump(name: string, body: string): void {
  writeFileSync(path.join(dir, name), `# callgrind format\nversion: 1\npid: ${pid}\nevents: Ir\n\n${body}`)
}

describe('callgrind self costs', () => {
  it('counts a function its own lines, not what it called, and names JIT code from the perf map', () => {
    writeFileSync(`/tmp/perf-${pid}.map`, `1000 100 JS:*record /work/main/dist/src/telemetry/histograms.js:35:11\n2000 50 JS:*_asJson /x/node_modules/pino/lib/tools.js:144:18\n`)
    dump('cg-a.1.1-01', [
      'ob=(1) /node', 'fn=(1) 0x0000000000001010', '0 300', 'cfn=(2) Builtins_StringAdd_CheckNone', 'calls=1 0', '0 5000', '+1 200',
      'fn=(2)', '0 700',
      'fn=(3) 0x0000000000002000\'2', '0 40',
      'fn=(4) v8::internal::Scavenger::ScavengePage(int)', '0 60',
      'fn=(5) 0x0000000000009999', '0 9'
    ].join('\n'))
    dump('cg-a.1.1-02', ['fn=(1) node::fs::Read', '0 11'].join('\n'))
    const costs = dumpCosts(dir, 'cg-a.1.1-')
    expect(costs.get('JS:*record /work/main/dist/src/telemetry/histograms.js:35:11')).toBe(500)
    expect(costs.get('Builtins_StringAdd_CheckNone')).toBe(700)
    expect(costs.get('JS:*_asJson /x/node_modules/pino/lib/tools.js:144:18')).toBe(40)
    expect(costs.get('JIT code (not in the perf map)')).toBe(9)
    expect(costs.get('node::fs::Read')).toBe(11)

    dump('cg-b.2.1-01', ['fn=(1) Builtins_StringAdd_CheckNone', '0 100'].join('\n'))
    const diff = differenceByGroup(dumpCosts(dir, 'cg-b.2.1-'), costs, 10)
    expect(Object.fromEntries(diff.map((d) => [d.group, d.perPage]))).toEqual({
      'V8 builtins': 60, 'src/telemetry/histograms': 50, pino: 4, 'V8 GC': 6, 'node native': 1.1, 'other native': 0.9
    })
  })

  it('groups code by package, app file, node module or kind', () => {
    expect(groupOf('JS:*x /a/node_modules/@opentelemetry/api/dist/x.cjs:1:2')).toBe('@opentelemetry/api')
    expect(groupOf('JS:~y node:internal/streams/readable:10:3')).toBe('node:internal/streams/readable')
    expect(groupOf('v8::internal::Runtime_SetProperty(int)')).toBe('V8 runtime')
  })
})
