import { readFileSync } from 'node:fs'

/** The soft limit on open files (RLIMIT_NOFILE) from /proc; null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
    return soft && /^\d+$/.test(soft) ? Number(soft) : null
  } catch {
    return null
  }
}

/**
 * Connections to accept at once when MAX_CONNECTIONS is 0: the open-file limit less what the
 * process needs besides client sockets (the pool, the DB probe, staged uploads, static files,
 * the telemetry exporter, stdio), so a flood of idle sockets cannot take the last descriptor.
 */
export function defaultMaxConnections(poolMax: number, limit = openFileLimit()): number {
  if (limit === null) return 0 // unknown: leave Node's default (no cap)
  const reserve = poolMax + 128
  return Math.max(Math.min(64, Math.floor(limit / 2)), limit - reserve)
}

/**
 * process.memoryUsage() reads /proc/self/stat and throws EMFILE when no descriptor is left.
 * @fastify/under-pressure calls it on a timer, where a throw is an uncaught exception that ends
 * the process (seen: ~1100 idle sockets under `ulimit -n 1024` killed the app in ~3 s). Answer
 * the last good reading instead; the samplers stay alive and the process keeps serving.
 * under-pressure has no option to skip the sampling; test/app/internals-canary.test.ts fails if
 * it stops calling process.memoryUsage through the property.
 */
export function survivableMemoryUsage(): void {
  const original = process.memoryUsage
  let last: NodeJS.MemoryUsage = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
  const safe = (() => {
    try {
      last = original.call(process)
    } catch (err) {
      if (!isOutOfFiles(err)) throw err
    }
    return last
  }) as typeof process.memoryUsage
  safe.rss = () => {
    try {
      return original.rss()
    } catch (err) {
      if (!isOutOfFiles(err)) throw err
      return last.rss
    }
  }
  process.memoryUsage = safe
}

function isOutOfFiles(err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === 'EMFILE' || code === 'ENFILE'
}
