import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { stackTools, type Tools } from '../../kit/process'
import { expandCollectorEnv, ROOT } from '../../kit/stack'

// The collector binary (OpenTelemetry Collector Builder, otel/builder-config.yaml) against the
// config the stack runs, and Prometheus' own check of prometheus/prometheus.yml.

const COLLECTOR_CONFIG = path.join(ROOT, 'otel', 'collector.yaml')
let tools: Tools
let work: string

beforeAll(() => {
  tools = stackTools()
  work = mkdtempSync(path.join(os.tmpdir(), 'blog-collector-build-'))
}, 16 * 60_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('the collector build', () => {
  it('accepts otel/collector.yaml (otelcol validate)', () => {
    expect(() => execFileSync(tools.otelcol, ['validate', `--config=${COLLECTOR_CONFIG}`], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow()
  })

  it('rejects a config that names a component it was not built with (validate is not a no-op)', () => {
    const broken = path.join(work, 'broken.yaml')
    writeFileSync(broken, readFileSync(COLLECTOR_CONFIG, 'utf8').replace('exporters: [prometheus]', 'exporters: [prometheus, debug]').replace(/^exporters:\n/m, 'exporters:\n  debug: {}\n'))
    let stderr = ''
    try {
      execFileSync(tools.otelcol, ['validate', `--config=${broken}`], { encoding: 'utf8', stdio: 'pipe' })
    } catch (err) {
      stderr = String((err as { stderr?: string }).stderr)
    }
    expect(stderr).toMatch(/debug/)
  })

  it('contains exactly the components otel/collector.yaml uses', () => {
    const built = YAML.parse(execFileSync(tools.otelcol, ['components'], { encoding: 'utf8' })) as Record<string, { name: string }[] | unknown>
    const config = YAML.parse(expandCollectorEnv(readFileSync(COLLECTOR_CONFIG, 'utf8'))) as Record<string, Record<string, unknown>>
    for (const kind of ['receivers', 'processors', 'exporters', 'connectors', 'extensions']) {
      const used = [...new Set(Object.keys(config[kind] ?? {}).map((id) => id.split('/')[0]!))].sort()
      const have = ((built[kind] as { name: string }[] | undefined) ?? []).map((c) => c.name).sort()
      expect(have, kind).toEqual(used)
    }
  })

  it('lets Prometheus accept prometheus/prometheus.yml (promtool)', () => {
    expect(() => execFileSync(tools.promtool, ['check', 'config', path.join(ROOT, 'prometheus', 'prometheus.yml')], { stdio: 'pipe' })).not.toThrow()
  })
})
