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

// npm run bench:handoff at smoke size: a kept list page's spans are really written, encoded and
// posted to a worker in each way (no speed thresholds).
describe('npm run bench:handoff (smoke)', () => {
  it('prices each way of handing a kept trace of 4 spans to a worker', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/handoff.js', '--traces', '2000', '--repeat', '1'], {
      cwd: ROOT,
      timeout: 120_000
    })
    expect(stdout).toMatch(/^4 spans per trace, 2000 traces x 1 runs/m)
    for (const way of ['encode', 'post-plain', 'post-batch', 'post-bytes', 'serialize']) {
      const cells = new RegExp(`^  ${way} +([\\d.]+) us .* ([\\d.]+)x +([\\d.]+) us$`, 'm').exec(stdout)
      expect(cells, `${way} row in:\n${stdout}`).not.toBeNull()
      expect(Number(cells![1])).toBeGreaterThan(0)
      expect(Number(cells![3])).toBeGreaterThan(0)
    }
  }, 150_000)
})
