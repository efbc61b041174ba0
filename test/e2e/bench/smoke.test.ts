import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(__dirname, '..', '..', '..')

/** One `node dist/bench/run.js --smoke ...` into a temporary --out: its stdout, results.json and chart. */
async function smokeRun<Summary>(args: string[]): Promise<{ stdout: string; summary: Summary[]; chart: string }> {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-smoke-'))
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/run.js', '--smoke', ...args, '--out', out], {
      cwd: ROOT, timeout: 120_000, maxBuffer: 10 * 1024 * 1024
    })
    const { summary } = JSON.parse(await fs.readFile(path.join(out, 'results.json'), 'utf8')) as { summary: Summary[] }
    return { stdout, summary, chart: await fs.readFile(path.join(out, 'chart.svg'), 'utf8') }
  } finally {
    await fs.rm(out, { recursive: true, force: true })
  }
}

// The benchmark harness, at smoke size (1 s runs): it must produce its report; no speed thresholds.
describe('npm run bench (smoke)', () => {
  it('compares an untraced and a traced app and breaks the traced requests into phases', async () => {
    const { stdout, summary, chart } = await smokeRun<{ variant: string; rps: number; failPct: number; traced: number; phases: Record<string, number> | null }>(
      ['--variants', 'otel=off,otel=on', '--scenario', 'list']
    )
    expect(stdout).toContain('| otel=off | /blogs/ |')
    // The memory table: idle and peak RSS per variant (the upload step is skipped in smoke runs).
    expect(stdout).toMatch(/\| otel=on \| \d+ \| \d+ \| - \| - \| - \| - \|/)
    const off = summary.find((s) => s.variant === 'otel=off')!
    const on = summary.find((s) => s.variant === 'otel=on')!
    for (const s of [off, on]) {
      expect(s.rps).toBeGreaterThan(0)
      expect(s.failPct).toBe(0)
    }
    expect(off.phases).toBeNull()
    expect(on.traced).toBeGreaterThan(0)
    expect(on.phases!.SQL).toBeGreaterThan(0)
    expect(on.phases!.queries).toBeCloseTo(1, 0)
    expect(chart).toMatch(/^<svg[\s\S]*Server time by phase/)
  }, 150_000)

  it('runs the write scenario in the open model and leaves no failures', async () => {
    const { summary } = await smokeRun<{ rps: number; failPct: number; dropped: number; phases: Record<string, number> | null }>(
      ['--variants', 'otel=on', '--scenario', 'write', '--mode', 'rate', '--rate', '50']
    )
    expect(summary[0]!.failPct).toBe(0)
    expect(summary[0]!.rps).toBeGreaterThan(10)
    expect(summary[0]!.phases!['image write']).toBeGreaterThan(0)
  }, 150_000)

  it('targets N replicas behind nginx and reports CPU per request of the app, nginx and the database', async () => {
    const { stdout, summary } = await smokeRun<{ variant: string; rps: number; failPct: number; replicas?: number; appCpuMs: number; lbCpuMs?: number; dbCpuMs: number }>(
      ['--variants', 'replicas=1,replicas=2', '--scenario', 'list']
    )
    expect(stdout).toContain('Replicas behind nginx')
    expect(summary.map((s) => [s.variant, s.replicas])).toEqual([['replicas=1', 1], ['replicas=2', 2]])
    for (const s of summary) {
      expect(s.rps).toBeGreaterThan(0)
      expect(s.failPct).toBe(0)
      expect(s.appCpuMs).toBeGreaterThan(0)
      // nginx's worker does the proxying: its CPU is measured, not only the idle master's.
      expect(s.lbCpuMs).toBeGreaterThan(0)
    }
  }, 150_000)
})

// npm run bench:spans at smoke size: the telemetry pipeline measured alone must really run the
// SDK and export what each sampling setting says (no speed thresholds).
describe('npm run bench:spans (smoke)', () => {
  it('measures the SDK per page and exports 4 spans a page traced, about a tenth of that at 10%, none off', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['dist/bench/span-cost.js', '--repeat', '1', '--pages', '1000', '--warmup', '200', '--configs', 'off,10pct,on'],
      { cwd: ROOT, timeout: 120_000 }
    )
    const row = (name: string) => {
      const cells = new RegExp(`^\\| ${name} \\| ([\\d.]+) \\(.*\\| ([\\d.]+) \\|$`, 'm').exec(stdout)
      expect(cells, `${name} row in:\n${stdout}`).not.toBeNull()
      return { us: Number(cells![1]), spans: Number(cells![2]) }
    }
    const off = row('off')
    const tenth = row('10pct')
    const on = row('on')
    expect(off.spans).toBe(0)
    expect(on.spans).toBe(4)
    // 1200 pages at ratio 0.1: 0.4 spans a page, sd ~0.035.
    expect(tenth.spans).toBeGreaterThan(0.2)
    expect(tenth.spans).toBeLessThan(0.6)
    expect(on.us).toBeGreaterThan(off.us)
  }, 150_000)
})
