import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { freePort } from '../../harness/ports'
import { keepOutput, stopChild } from '../../harness/process'

export const ROOT = path.resolve(__dirname, '..', '..', '..')

export interface RunningApp {
  url: string
  pid: number
  child: ChildProcess
  stop(): Promise<void>
}

/**
 * Starts the compiled app as `npm start` does (OTel bootstrap, template cache on, info logs), or
 * with BENCH_SERVER=floor the bare floor server (bench/floor), or with BENCH_ROOT the same from
 * another checkout (a baseline build, for before/after in one run).
 */
export async function startApp(
  env: Record<string, string>,
  timeoutMs = 30_000,
  run: { wrapper?: string[]; nodeFlags?: string[] } = {}
): Promise<RunningApp> {
  const port = await freePort()
  const root = env.BENCH_ROOT || ROOT
  const args = env.BENCH_SERVER === 'floor' ? ['dist/bench/floor/server.js'] : ['--require', './dist/otel/bootstrap.js', 'dist/src/server.js']
  // `wrapper` runs node under another program (valgrind: bench/instructions.ts) in the same
  // process; `nodeFlags` are node's and V8's own (V8 flags cannot go through NODE_OPTIONS).
  const [command, ...rest] = [...(run.wrapper ?? []), process.execPath, ...(run.nodeFlags ?? []), ...args]
  const child = spawn(command!, rest, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = keepOutput(child, 4000)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`app exited with ${child.exitCode}:\n${output()}`)
    const ok = await new Promise<boolean>((resolve) => {
      http.get(url + '/health', (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      }).on('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`app did not start within ${timeoutMs} ms:\n${output()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    pid: child.pid!,
    child,
    stop: () => stopChild(child, 15_000)
  }
}

/**
 * An OTLP/HTTP endpoint the harness controls: accepts every export (the traced variants pay
 * the real export cost) and keeps trace bodies until take() for the phase breakdown.
 */
export async function startOtlpSink(): Promise<{ url: string; take(): Buffer[]; close(): Promise<void> }> {
  let bodies: Buffer[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks))
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    take: () => {
      const out = bodies
      bodies = []
      return out
    },
    close: () => new Promise((r) => server.close(() => r()))
  }
}
