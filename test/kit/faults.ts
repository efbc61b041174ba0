import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type { MariaDbInstance } from './mariadb-instance'

// For the database-fault suites (test/e2e/reliability): apps on a MariaDB server the test file
// owns, and requests that report a hang instead of hanging the test.

export interface FaultAppEnv {
  env: Record<string, string>
  database: string
  uploadDir: string
}

/**
 * Makes a database name and upload dir per app on `db()` (the app creates and migrates the
 * database); `cleanup` removes the upload dirs.
 */
export function faultAppEnvs(db: () => MariaDbInstance, prefix: string): { appEnv(extra?: Record<string, string>): Promise<FaultAppEnv>; cleanup(): Promise<void> } {
  const dirs: string[] = []
  return {
    async appEnv(extra = {}) {
      const database = `${prefix}_${randomBytes(4).toString('hex')}`
      const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-uploads-`))
      dirs.push(uploadDir)
      return {
        database,
        uploadDir,
        env: { DATABASE_URL: db().url(database), UPLOAD_DIR: uploadDir, LOG_LEVEL: 'warn', DB_SEED_ON_START: 'false', ...extra }
      }
    },
    async cleanup() {
      for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true })
    }
  }
}

export interface Outcome {
  op: string
  /** HTTP status, or the error code when there was no answer ('TIMEOUT' after the client's limit). */
  status: number | string
  ms: number
  body: string
  retryAfter?: string
}

/** One request with a client-side limit, so a hung request shows up as TIMEOUT instead of hanging the test. */
export function timed(port: number, op: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer }, limitMs = 15_000): Promise<Outcome> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const headers = { ...opts.headers }
    if (opts.body) headers['content-length'] = String(opts.body.length)
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ op, status: res.statusCode ?? 0, ms: performance.now() - t0, body, retryAfter: res.headers['retry-after'] as string | undefined }))
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ op, status: e.code ?? e.message, ms: performance.now() - t0, body }))
    })
    req.setTimeout(limitMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ op, status: e.code ?? e.message, ms: performance.now() - t0, body: '' }))
    req.end(opts.body)
  })
}
