import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'
import { freePort } from './server'

// A MariaDB server owned by one test file: its own datadir, port and socket, so a test can
// kill -9 it, restart it or start the app before it, without touching the shared server.

const run = promisify(execFile)

function findBinary(names: string[]): string {
  const dirs = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]
  for (const name of names) {
    for (const dir of dirs) {
      const p = path.join(dir, name)
      if (dir && existsSync(p)) return p
    }
  }
  throw new Error(`none of ${names.join(', ')} found: the reliability tests need the MariaDB server package (apt-get install mariadb-server)`)
}

// Small buffers and logs: starts in about a second and uses little memory and disk.
const SERVER_ARGS = ['--innodb-buffer-pool-size=16M', '--innodb-log-file-size=4M']

export interface MariaDbInstance {
  readonly port: number
  readonly datadir: string
  /** mysql://root@127.0.0.1:port/database (root with no password, over TCP). */
  url(database: string): string
  /** Starts (or restarts) the server on the same datadir and port; resolves once it answers. */
  start(): Promise<void>
  /** Graceful shutdown (SIGTERM), waits for the process to exit. */
  stop(): Promise<void>
  /** kill -9, waits for the process to be gone. */
  kill(): Promise<void>
  running(): boolean
  /** kill -STOP: the server keeps its sockets but answers nothing (a stalled disk, a frozen VM). */
  pause(): void
  /** kill -CONT after pause(). */
  resume(): void
  /** Runs SQL on a short-lived connection. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  /** The server's error log (for failure messages). */
  errorLog(): Promise<string>
  /** Kills the server and removes its files. */
  destroy(): Promise<void>
}

const instances = new Set<MariaDbInstance>()

// A crashed test runner must not leave servers behind: kill them synchronously on exit.
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** Creates a fresh datadir (mariadb-install-db) and starts a server on a free port, with `args` added. */
export async function startMariaDb(opts: { args?: string[] } = {}): Promise<MariaDbInstance> {
  const mariadbd = findBinary(['mariadbd', 'mysqld'])
  const installDb = findBinary(['mariadb-install-db', 'mysql_install_db'])
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-mariadb-'))
  const datadir = path.join(base, 'data')
  const socket = path.join(base, 'mysqld.sock')
  const logFile = path.join(base, 'error.log')
  const asRoot = process.getuid?.() === 0
  const user = asRoot ? ['--user=root'] : []

  try {
    await run(installDb, [
      '--no-defaults', `--datadir=${datadir}`, ...user, '--auth-root-authentication-method=normal',
      '--skip-test-db', ...SERVER_ARGS
    ], { timeout: 60_000 })
  } catch (err) {
    await fs.rm(base, { recursive: true, force: true })
    throw new Error(`mariadb-install-db failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`)
  }

  const port = await freePort()
  let proc: ChildProcess | null = null
  let exited: Promise<void> = Promise.resolve()

  const spawnServer = () => {
    const child = spawn(mariadbd, [
      '--no-defaults', `--datadir=${datadir}`, `--port=${port}`, '--bind-address=127.0.0.1',
      `--socket=${socket}`, `--pid-file=${path.join(base, 'mysqld.pid')}`, `--log-error=${logFile}`,
      '--skip-name-resolve', '--max-connections=300', ...user, ...SERVER_ARGS, ...(opts.args ?? [])
    ], { stdio: 'ignore' })
    children.add(child)
    proc = child
    exited = new Promise((resolve) => child.once('exit', () => {
      children.delete(child)
      if (proc === child) proc = null
      resolve()
    }))
  }

  const errorLog = async () => fs.readFile(logFile, 'utf8').catch(() => '')

  const waitReady = async () => {
    const deadline = Date.now() + 30_000
    let last: unknown
    while (Date.now() < deadline) {
      if (!proc) throw new Error(`mariadbd exited during start-up:\n${(await errorLog()).slice(-3000)}`)
      try {
        const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 })
        await conn.end()
        return
      } catch (err) {
        last = err
        await sleep(100)
      }
    }
    throw new Error(`mariadbd did not answer within 30 s (${(last as Error)?.message}):\n${(await errorLog()).slice(-3000)}`)
  }

  const signal = async (sig: NodeJS.Signals, timeoutMs: number) => {
    const p = proc
    if (!p) return
    const gone = exited
    p.kill('SIGCONT') // a paused server would not act on the signal
    p.kill(sig)
    const timedOut = await Promise.race([gone.then(() => false), sleep(timeoutMs).then(() => true)])
    if (timedOut) {
      p.kill('SIGKILL')
      await gone
    }
  }

  const instance: MariaDbInstance = {
    port,
    datadir,
    url: (database) => `mysql://root@127.0.0.1:${port}/${database}`,
    async start() {
      if (proc) return
      spawnServer()
      await waitReady()
    },
    stop: () => signal('SIGTERM', 30_000),
    kill: () => signal('SIGKILL', 10_000),
    running: () => proc !== null,
    pause: () => void (proc as ChildProcess | null)?.kill('SIGSTOP'),
    resume: () => void (proc as ChildProcess | null)?.kill('SIGCONT'),
    async query<T>(sql: string, params: unknown[] = []) {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', multipleStatements: true })
      try {
        const [rows] = await conn.query(sql, params)
        return rows as T[]
      } finally {
        await conn.end()
      }
    },
    errorLog,
    async destroy() {
      instances.delete(instance)
      await signal('SIGKILL', 10_000)
      await fs.rm(base, { recursive: true, force: true })
    }
  }
  instances.add(instance)
  try {
    await instance.start()
  } catch (err) {
    await instance.destroy()
    throw err
  }
  return instance
}

/** Kills and removes every instance this module started (for afterAll). */
export async function destroyAllMariaDb(): Promise<void> {
  await Promise.all([...instances].map((i) => i.destroy()))
}
