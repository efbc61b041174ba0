import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { LOAD_TEST_BAGGAGE } from '../../src/telemetry/names'
import { loadCompose } from '../kit/compose'
import { ROOT } from '../kit/stack'

// The k6 scripts without k6: what they import (no module fetched over the internet at run
// time), where they send by default, and what they tell the app and the operator about each
// request (the run id as baggage, slow requests' trace ids). test/app/k6 replays their requests.

const K6 = path.join(ROOT, 'k6')
const sources = new Map(['', 'lib'].flatMap((dir) => readdirSync(path.join(K6, dir)).filter((f) => f.endsWith('.js'))
  .map((f) => [path.posix.join(dir, f), readFileSync(path.join(K6, dir, f), 'utf8')] as const)))

/** `fetch <file> <url> <sha256>` lines of k6/vendor/fetch.sh. */
const vendored = [...readFileSync(path.join(K6, 'vendor', 'fetch.sh'), 'utf8').matchAll(/^fetch (\S+) (\S+) (\S+)$/gm)]
  .map((m) => ({ file: m[1]!, url: m[2]!, sha256: m[3]! }))

interface K6App {
  TESTID_BAGGAGE: string
  keptOf(value: string | undefined): boolean | undefined
  slowLine(r: { name: string; ms: number; status: number; traceId: string | undefined; kept: boolean | undefined; testid: string }): string
}
const loadApp = async () => (await import(pathToFileURL(path.join(K6, 'lib', 'app.js')).href)) as K6App

describe('k6 scripts: imports', () => {
  it('import no module over the network: the jslib modules are local files that k6/vendor/fetch.sh fetches once', () => {
    const imports = [...sources].flatMap(([file, src]) => [...src.matchAll(/^import [^'"]*['"]([^'"]+)['"]/gm)].map((m) => ({ file, spec: m[1]! })))
    expect(imports.length).toBeGreaterThan(5)
    expect(imports.filter((i) => /^https?:/.test(i.spec))).toEqual([])
    const local = imports.filter((i) => i.spec.includes('/vendor/')).map((i) => path.posix.basename(i.spec))
    expect([...new Set(local)].sort()).toEqual(vendored.map((v) => v.file).sort())
    for (const v of vendored) {
      // Pinned by content, named by version, typed for tsc (k6/tsconfig.json), and never committed.
      expect(v.sha256, v.file).toMatch(/^[0-9a-f]{64}$/)
      const m = /^https:\/\/jslib\.k6\.io\/([a-z0-9-]+)\/(\d+\.\d+\.\d+)\/index\.js$/.exec(v.url)
      expect(m, v.url).not.toBeNull()
      expect(v.file).toBe(`${m![1]}-${m![2]}.js`)
      expect(existsSync(path.join(K6, 'vendor', v.file.replace(/\.js$/, '.d.ts'))), `${v.file}: types`).toBe(true)
      expect(spawnSync('git', ['check-ignore', '-q', path.join(K6, 'vendor', v.file)], { cwd: ROOT }).status, `${v.file} is not git-ignored`).toBe(0)
    }
    const tsconfig = readFileSync(path.join(K6, 'tsconfig.json'), 'utf8')
    expect(tsconfig).toContain('"vendor/*.d.ts"')
  })

  it('say where the vendored modules come from and why they are not committed (AGPL-3.0)', () => {
    const fetch = readFileSync(path.join(K6, 'vendor', 'fetch.sh'), 'utf8')
    expect(fetch).toMatch(/AGPL-3\.0/)
    expect(fetch).toMatch(/sha256sum -c/)
    for (const doc of ['k6/README.md', 'docs/operations.md']) expect(readFileSync(path.join(ROOT, doc), 'utf8'), doc).toContain('sh k6/vendor/fetch.sh')
  })
})

describe('k6 scripts: where they send and what they say', () => {
  it('default BASE_URL to the Compose balancer, as k6/README and the compose service say', () => {
    const def = /__ENV\.BASE_URL \|\| '([^']+)'/.exec(sources.get('lib/options.js')!)?.[1]
    expect(def).toBe('http://lb:8000')
    expect(loadCompose().services.k6!.environment!.BASE_URL).toBe(def)
    const readme = readFileSync(path.join(K6, 'README.md'), 'utf8')
    expect(/^\| `BASE_URL` \| `([^`]+)`/m.exec(readme)?.[1]).toBe(def)
  })

  it('send the run id as the baggage member the app reads (blog.load_test.id), on every request', async () => {
    expect((await loadApp()).TESTID_BAGGAGE).toBe(LOAD_TEST_BAGGAGE)
    const actions = sources.get('lib/actions.js')!
    const calls = actions.match(/\bhttp\.(get|post)\(/g) ?? []
    expect(calls.length).toBeGreaterThanOrEqual(5)
    // Each call's params name the headers (the tempo jslib adds traceparent to the same object).
    expect((actions.match(/headers: headers\(\)/g) ?? []).length).toBe(calls.length)
  })

  it('log a slow request as one grep-able line with its trace id and whether the app kept the trace', async () => {
    const k6 = await loadApp()
    const trace = 'dc0718' + '0123456789abcdef0123456789'
    expect(k6.keptOf(`00-${trace}-0123456789abcdef-01`)).toBe(true)
    expect(k6.keptOf(`00-${trace}-0123456789abcdef-00`)).toBe(false)
    expect(k6.keptOf('garbage')).toBeUndefined()
    const line = k6.slowLine({ name: 'GET /blogs/', ms: 812.4, status: 200, traceId: trace, kept: true, testid: 'arrival-1' })
    expect(line).toBe(`slow_request name="GET /blogs/" ms=812 status=200 trace_id=${trace} kept=true testid=arrival-1`)
    // The recipe's grep finds it, also inside k6's logfmt wrapping (msg="...", quotes escaped).
    const wrapped = `time="2026-12-06T10:15:00Z" level=warning msg="${line.replace(/"/g, '\\"')}" source=console`
    for (const l of [line, wrapped]) expect(/trace_id=([0-9a-f]{32}) kept=true/.exec(l)?.[1]).toBe(trace)
    const actions = sources.get('lib/actions.js')!
    expect(actions).toMatch(/res\.timings\.duration < SLOW_MS/)
    expect(sources.get('lib/options.js')).toMatch(/SLOW_MS = Number\(__ENV\.SLOW_MS \|\| 500\)/)
  })
})
