import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../harness/ports'
import { ROOT } from '../../src/paths'

export { freePort, freePorts } from '../../harness/ports'

// Children run the compiled server the way `npm start` does (`npm test` builds first).
export const SERVER = path.join(ROOT, 'dist', 'src', 'server.js')
export const OTEL_BOOTSTRAP = path.join(ROOT, 'dist', 'otel', 'bootstrap.js')

/** Fails fast when dist/ is missing or older than src/ or otel/ (the children would run stale code). */
export function assertBuilt(): void {
  for (const file of [SERVER, OTEL_BOOTSTRAP]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`)
  }
  const stale: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const js = path.join(ROOT, 'dist', path.relative(ROOT, p)).replace(/\.ts$/, '.js')
        if (!existsSync(js) || statSync(js).mtimeMs < statSync(p).mtimeMs) stale.push(path.relative(ROOT, p))
      }
    }
  }
  walk(path.join(ROOT, 'src'))
  walk(path.join(ROOT, 'otel'))
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\` first (npm test does)`)
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ServerChild {
  proc: ChildProcess
  port: number
  stdout(): string
  stderr(): string
  /** Parsed JSON (pino) lines written to stdout so far. */
  logs(): Record<string, unknown>[]
  exited: Promise<Exit>
  hasExited(): boolean
  /** SIGKILLs the process (if still running) and waits for it to be gone. */
  kill(): Promise<void>
}

export interface StartOptions {
  /** Load the OpenTelemetry SDK first (`node --require dist/otel/bootstrap.js`), as `npm start` does. */
  telemetry?: boolean
  /** A free port is picked when omitted. */
  port?: number
  /** Run under this open-file limit (soft and hard, with prlimit), as `ulimit -n` would. */
  openFiles?: number
}

const running = new Set<ServerChild>()

/**
 * Spawns the compiled server with exactly `env` (plus HOST and PORT): no variable of the test
 * runner's environment (OTEL_* included) leaks into it.
 */
export async function startServer(env: Record<string, string>, opts: StartOptions = {}): Promise<ServerChild> {
  const port = opts.port ?? (await freePort())
  const args = opts.telemetry ? ['--require', OTEL_BOOTSTRAP, SERVER] : [SERVER]
  const command = opts.openFiles ? ['prlimit', `--nofile=${opts.openFiles}:${opts.openFiles}`, process.execPath] : [process.execPath]
  const proc = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: ROOT,
    // A test posts from one address far faster than the per-client write limit allows, and
    // reads the log as soon as a response arrives: lines unbuffered (test/app/lifecycle/logging
    // covers the buffered default).
    env: { HOST: '127.0.0.1', PORT: String(port), WRITE_RATE_LIMIT: '0', LOG_FLUSH_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  let done = false
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<Exit>((resolve) =>
    proc.on('close', (code, signal) => {
      done = true
      resolve({ code, signal })
    })
  )
  const child: ServerChild = {
    proc,
    port,
    stdout: () => out,
    stderr: () => err,
    logs: () => parseJsonLines(out),
    exited,
    hasExited: () => done,
    async kill() {
      if (!done) proc.kill('SIGKILL')
      await exited
    }
  }
  running.add(child)
  void exited.then(() => running.delete(child))
  return child
}

/** SIGKILLs every server this module started that is still running (for afterEach/afterAll). */
export async function killAllServers(): Promise<void> {
  await Promise.all([...running].map((c) => c.kill()))
}

export function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>
      } catch {
        return {}
      }
    })
}

export interface HttpResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** The response's X-Process-Time (`12.34ms`) in milliseconds. */
export const processTimeOf = (res: { headers: http.IncomingHttpHeaders }): number => Number(String(res.headers['x-process-time']).replace(/ms$/, ''))

export interface HttpRequest {
  method?: string
  path: string
  headers?: Record<string, string>
  body?: Buffer | string
  /** Defaults to no agent (a new connection per request). */
  agent?: http.Agent | false
}

/** One HTTP request to 127.0.0.1:port; resolves with the whole body as text. */
export function request(port: number, req: HttpRequest | string): Promise<HttpResponse> {
  const r = typeof req === 'string' ? { path: req } : req
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers }
    if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body))
    const outgoing = http.request(
      { host: '127.0.0.1', port, method: r.method ?? 'GET', path: r.path, headers, agent: r.agent ?? false },
      (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on('error', reject)
      }
    )
    outgoing.on('error', reject)
    outgoing.end(r.body)
  })
}

/** Waits for the 'Server listening' log line (LOG_LEVEL info or lower) or a 200 from /health. */
export async function waitUntilListening(child: ServerChild, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      throw new Error(`server exited before listening\nstdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`)
    }
    if (/Server listening at/.test(child.stdout())) return
    const ok = await request(child.port, '/health').then((r) => r.status === 200, () => false)
    if (ok) return
    await sleep(100)
  }
  throw new Error(`server did not listen within ${timeoutMs} ms\nstdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`)
}

/** Waits for the process to exit; fails with its output after `timeoutMs`. */
export async function waitForExit(child: ServerChild, timeoutMs: number): Promise<Exit> {
  const timeout = sleep(timeoutMs).then(() => {
    throw new Error(`server did not exit within ${timeoutMs} ms\nstdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`)
  })
  return Promise.race([child.exited, timeout])
}

/** Starts the server and waits until it answers. */
export async function startListening(env: Record<string, string>, opts: StartOptions = {}): Promise<ServerChild> {
  const child = await startServer(env, opts)
  try {
    await waitUntilListening(child)
  } catch (err) {
    await child.kill()
    throw err
  }
  return child
}

/** Runs `fn` over `items` with at most `concurrency` calls in flight; results in item order. */
export async function mapConcurrent<T, R>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
