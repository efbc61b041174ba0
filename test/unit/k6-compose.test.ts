import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadCompose } from '../kit/compose'
import { ATTR } from '../../src/telemetry/names'
import { effectiveOutputs, hostPath, k6Args, k6Run, problems, shellLines, words, writtenPaths, type ComposeK6Service, type K6Run } from '../kit/k6-cli'
import { interpolateDeep, ROOT } from '../kit/stack'

// The k6 service of docker-compose.yml and every k6 command line the docs give: k6 cannot
// run here, so what breaks a user's run (a dropped output, a path k6 cannot write) is read off
// the text (test/kit/k6-cli.ts).

const { parsed, services } = loadCompose()

describe('k6 under Compose', () => {
  it('runs k6 against the app (through the balancer) with the Prometheus remote-write output and native histograms', () => {
    const k6 = services.k6!
    expect(k6.environment).toMatchObject({
      BASE_URL: 'http://lb:8000',
      K6_OUT: 'experimental-prometheus-rw',
      K6_PROMETHEUS_RW_SERVER_URL: 'http://prometheus:9090/api/v1/write',
      K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM: 'true',
      // Off by default in k6: a finished run's series would hold their last value for 5 minutes.
      K6_PROMETHEUS_RW_STALE_MARKERS: 'true'
    })
    expect(k6.command).toEqual(['run', '-o', 'experimental-prometheus-rw', '/scripts/mixed.js'])
    expect(k6.volumes).toEqual(['./k6:/scripts:ro', './k6/results:/results'])
    for (const script of ['read.js', 'write.js', 'stress.js', 'arrival.js', 'mixed.js']) {
      expect(existsSync(path.join(ROOT, 'k6', script)), script).toBe(true)
    }
    // TESTID reaches the scripts, which tag every metric with it (the dashboard's testid).
    expect(parsed.services.k6!.environment!.TESTID).toBe('${TESTID:-}')
    expect(interpolateDeep(parsed, { TESTID: 'read-1' }).services.k6!.environment!.TESTID).toBe('read-1')
    expect(readFileSync(path.join(ROOT, 'k6/lib/options.js'), 'utf8')).toMatch(/__ENV\.TESTID/)
  })

  it('writes k6 summaries to the mounted k6/results as root, or as K6_USER (the image user 12345 cannot write it)', () => {
    expect(services.k6!.user).toBe('0')
    expect(interpolateDeep(parsed, { K6_USER: '1000' }).services.k6!.user).toBe('1000')
    expect(services.k6!.environment!.SUMMARY_DIR).toBe('/results')
    const run = k6Run('docker compose --profile k6 run --rm k6', parsed as { services: Record<string, ComposeK6Service> })!
    expect(writtenPaths(run).map((f) => hostPath(run, f.path)?.host)).toEqual(['k6/results/summary-x.json'])
    expect(problems(run)).toEqual([])
    // The directory is in the repo (git keeps it through its .gitignore), so Docker does not make it root's.
    expect(existsSync(path.join(ROOT, 'k6/results/.gitignore'))).toBe(true)
  })

  // The two pages with k6 recipes must each give the slow-request one; README's lines are checked too.
  const RECIPES = ['docs/operations.md', 'k6/README.md']
  describe('the k6 command lines of README.md, docs/operations.md and k6/README.md', () => {
    const docs = ['README.md', ...RECIPES].map((f) => ({ file: f, lines: shellLines(readFileSync(path.join(ROOT, f), 'utf8')) }))
    const composeFile = parsed as { services: Record<string, ComposeK6Service> }
    const runs = docs.flatMap((d) => d.lines.map((l) => k6Run(l, composeFile)).filter((r): r is K6Run => r !== undefined).map((run) => ({ ...d, run })))

    it('keep the Prometheus output under Compose, write only where the run can, and run scripts that exist', () => {
      expect(runs.filter((r) => r.run.where === 'compose').length).toBeGreaterThanOrEqual(6)
      expect(runs.filter((r) => r.run.where === 'docker').length).toBe(2)
      expect(runs.filter((r) => r.run.where === 'local').length).toBeGreaterThanOrEqual(4)
      expect(Object.fromEntries(runs.map((r) => [`${r.file}: ${r.run.line}`, problems(r.run)]).filter(([, p]) => p!.length > 0))).toEqual({})
    })

    // Issue 27, item 5: the full json output (gigabytes at 2000 req/s) is no recipe for a stress run.
    it('give a Compose recipe that logs slow requests to a file the following grep reads on the host, then look the run up in Tempo', () => {
      for (const d of docs.filter((x) => RECIPES.includes(x.file))) {
        const logged = runs.filter((r) => r.file === d.file && r.run.where === 'compose' && k6Args(r.run.args).consoleOutput)
        expect(logged.length, d.file).toBeGreaterThan(0)
        // The file argument of each grep command (its last word before a pipe).
        const grepFiles = d.lines.map((l) => words(l)).filter((w) => w[0] === 'grep').map((w) => w.slice(0, w.includes('|') ? w.indexOf('|') : w.length).pop())
        for (const { run } of logged) {
          expect(effectiveOutputs(run), run.line).toContain('experimental-prometheus-rw')
          expect(grepFiles, `${d.file}: grep reading ${k6Args(run.args).consoleOutput}`).toContain(hostPath(run, k6Args(run.args).consoleOutput!)!.host)
        }
        // The run's traces by its id (the app's blog.load_test.id), and one trace, from Tempo's API.
        const text = d.lines.join('\n')
        expect(text, d.file).toMatch(new RegExp(`curl -sG http://localhost:3200/api/search .*span\\.${ATTR.loadTestId.replace(/\./g, '\\.')} = `))
        expect(text, d.file).toContain('http://localhost:3200/api/traces/')
        // And no run of these pages writes every sample as json.
        expect(runs.filter((r) => r.file === d.file && effectiveOutputs(r.run).some((o) => o.startsWith('json='))).map((r) => r.run.line), d.file).toEqual([])
      }
    })

    it('would catch the recipes that broke before (an -o dropping K6_OUT, a relative json path, uid 12345)', () => {
      const dropped = k6Run('docker compose --profile k6 run --rm k6 run --out json=k6/results/run.json /scripts/read.js', composeFile)!
      expect(problems(dropped)).toEqual([
        expect.stringMatching(/no experimental-prometheus-rw output .*replaces K6_OUT/),
        expect.stringMatching(/^-o json=k6\/results\/run.json: relative path/)
      ])
      const imageUser = structuredClone(composeFile)
      imageUser.services.k6!.user = '${K6_USER:-12345}'
      expect(problems(k6Run('docker compose --profile k6 run --rm k6', imageUser)!)).toEqual([expect.stringMatching(/user 12345 cannot write/)])
      expect(problems(k6Run('K6_USER=$(id -u) docker compose --profile k6 run --rm k6', imageUser)!)).toEqual([])
      const noUser = k6Run('docker run --rm -v "$PWD/k6:/scripts" -e SUMMARY_DIR=/scripts/results grafana/k6 run /scripts/read.js', composeFile)!
      expect(problems(noUser)).toEqual([expect.stringMatching(/user 12345 cannot write/)])
    })
  })
})
