import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { keepOutput, stopChild } from '../../harness/process'
import { ROOT } from '../../src/paths'

// Programs the tests run next to the app: the real binaries (Jaeger, the Collector, Prometheus)
// and the ports they listen on. The app itself is started by ./server.ts.

export { freePort, freePorts } from '../../harness/ports'

export interface Tools {
  otelcol: string
  jaeger: string
  prometheus: string
  promtool: string
}

let tools: Tools | undefined

/**
 * The binaries the stack tests run. scripts/install-tools.sh builds the collector and Jaeger
 * into its cache (a no-op once built) and installs Debian's prometheus; it prints the cache
 * directory as its last line. Throws saying what is missing: these tests never pass without
 * the real programs.
 */
export function stackTools(): Tools {
  if (tools) return tools
  let stdout: string
  try {
    stdout = execFileSync('bash', [path.join(ROOT, 'scripts', 'install-tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60_000 })
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`\`bash scripts/install-tools.sh\` failed, so there is no collector, Jaeger or Prometheus to test with.\n${e.message}\n${e.stderr ?? ''}`)
  }
  const dir = stdout.trim().split('\n').pop() ?? path.join(os.homedir(), '.cache', 'blog_app', 'tools')
  const found: Tools = {
    otelcol: path.join(dir, 'otelcol-blog'),
    jaeger: path.join(dir, 'jaeger'),
    prometheus: '/usr/bin/prometheus',
    promtool: '/usr/bin/promtool'
  }
  for (const [name, bin] of Object.entries(found)) {
    if (!existsSync(bin)) throw new Error(`no ${name} at ${bin}: run \`bash scripts/install-tools.sh\` (needs Go and apt) before these tests`)
  }
  return (tools = found)
}

export interface Proc {
  name: string
  proc: ChildProcess
  /** stdout and stderr so far (the last 64 kB). */
  output(): string
  stop(): Promise<void>
}

const running = new Set<Proc>()
// A worker that dies without running afterAll must not leave servers behind.
process.once('exit', () => {
  for (const p of running) p.proc.kill('SIGKILL')
})

/** Starts a program with exactly `env` (plus PATH); `stop()` sends SIGTERM, then SIGKILL after 5 s. */
export function startProcess(name: string, command: string, args: string[], env: Record<string, string>, cwd = ROOT): Proc {
  const proc = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const p: Proc = {
    name,
    proc,
    output: keepOutput(proc, 65_536),
    async stop() {
      await stopChild(proc, 5000)
      running.delete(p)
    }
  }
  running.add(p)
  return p
}

/** Polls `check` until it returns a value other than undefined, or throws with the last error. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await sleep(everyMs)
  }
}

/** Waits until GET `url` answers 200 while `proc` still runs. */
export async function waitHealthy(proc: Proc, url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${proc.name} at ${url}`, async () => {
    if (proc.proc.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.proc.exitCode}:\n${proc.output()}`)
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${proc.name} output ---\n${proc.output()}`)
  })
}
