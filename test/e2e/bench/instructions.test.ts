import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(__dirname, '..', '..', '..')

interface Result { variant: string; windows: { mainIr: number; helperIr: number }[] }

// npm run bench:instructions at small size, under the real valgrind: it must count, and its
// counts must be steady enough to price a feature of a few percent, which CPU time cannot here.
describe('npm run bench:instructions (smoke)', () => {
  it('counts the same for the same work and more for more work', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-instr-'))
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['dist/bench/instructions.js', '--variants', 'floor,floor=cookie,floor=helmet', '--requests', '200', '--warmup', '300', '--windows', '2', '--parallel', '3', '--out', out],
        { cwd: ROOT, timeout: 600_000, maxBuffer: 10 * 1024 * 1024 }
      )
      expect(stdout).toContain('| floor=helmet / floor |')
      const { results } = JSON.parse(await fs.readFile(path.join(out, 'results.json'), 'utf8')) as { results: Result[] }
      const total = (name: string) => results.find((r) => r.variant === name)!.windows.map((w) => w.mainIr + w.helperIr)
      const [floor, cookie, helmet] = [total('floor'), total('floor=cookie'), total('floor=helmet')]
      for (let i = 0; i < 2; i++) {
        // A page is 1-3 M instructions under callgrind.
        expect(floor[i]).toBeGreaterThan(500_000)
        // @fastify/cookie with no Cookie header does almost nothing: the same count within 2%
        // (1000-page windows put it at +0.2%; a short window may catch one more young-generation GC).
        expect(Math.abs(cookie[i]! / floor[i]! - 1)).toBeLessThan(0.02)
        // helmet's eleven headers on every response are more work, in every window.
        expect(helmet[i]! - floor[i]!).toBeGreaterThan(10_000)
      }
    } finally {
      await fs.rm(out, { recursive: true, force: true })
    }
  }, 620_000)
})
