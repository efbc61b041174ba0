import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { startMariaDb, type MariaDbInstance } from '../../kit/mariadb-instance'

// The bench's verdict, both ways, on a MariaDB of the test's own with performance_schema on (so
// SQL spans carry the database's own time): a saturating read load is bound by the app's CPU; the
// same page without its index on 20,000 posts is bound by the database.

let db: MariaDbInstance
let out: string

beforeAll(async () => {
  db = await startMariaDb({
    args: ['--performance-schema=ON', '--performance-schema-consumer-events-statements-current=ON', '--performance-schema-consumer-events-statements-history-long=ON']
  })
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-verdict-'))
}, 120_000)

afterAll(async () => {
  await db?.destroy()
  if (out) await fs.rm(out, { recursive: true, force: true })
})

async function bench(variant: string, name: string): Promise<{ verdict: string; summary: { phases: { SQL: number; sqlServer: number; sqlJoined: number; sqlLoop: number } | null } }> {
  const dir = path.join(out, name)
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['dist/bench/run.js', '--admin-url', `mysql://root@127.0.0.1:${db.port}`, '--variants', variant, '--scenario', 'list', '--mode', 'max',
      '--connections', '40', '--duration', '4', '--warmup', '2', '--repeat', '1', '--out', dir],
    { cwd: ROOT, timeout: 240_000, maxBuffer: 10 * 1024 * 1024 }
  )
  const line = stdout.split('\n').find((l) => l.startsWith(`verdict ${variant} /blogs/:`))
  expect(line, stdout).toBeDefined()
  const { summary } = JSON.parse(await fs.readFile(path.join(dir, 'results.json'), 'utf8')) as { summary: { phases: { SQL: number; sqlServer: number; sqlJoined: number; sqlLoop: number } | null }[] }
  return { verdict: line!.slice(line!.indexOf(': ') + 2), summary: summary[0]! }
}

describe('npm run bench: the verdict', () => {
  it('says "app CPU" for a saturating read load, with the loop busy most of the SQL span time', async () => {
    const { verdict, summary } = await bench('otel=on', 'app-bound')
    console.log(verdict)
    expect(verdict).toMatch(/^bottleneck: app CPU \(loop busy \d+% of SQL span time, DB server time \d+\.\d+ ms per query, app CPU \d+%, DB CPU \d+%\)$/)
    const p = summary.phases!
    // The database's own time was joined for the traced statements, and it is the small part.
    expect(p.sqlJoined).toBeGreaterThan(0)
    expect(p.sqlServer / p.sqlJoined).toBeLessThan(0.3)
    expect(p.sqlLoop / p.SQL).toBeGreaterThanOrEqual(0.5)
  }, 300_000)

  it('says "database" when the list query has no index on 20,000 posts', async () => {
    const { verdict, summary } = await bench('otel=on+data=20k+index=none', 'db-bound')
    console.log(verdict)
    expect(verdict).toMatch(/^bottleneck: database \(DB server time \d+% of SQL span time/)
    const p = summary.phases!
    expect(p.sqlServer / p.sqlJoined).toBeGreaterThanOrEqual(0.5)
  }, 300_000)
})
