import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { setImmediate as nextPoll, setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { appServerOptions } from './app'
import { ConfigError, loadConfig } from './config'
import { migrationLockWaitMs } from './db/bootstrap'
import { defaultMaxConnections, survivableMemoryUsage } from './lib/open-files'
import { requestLogOptions } from './plugins/request-log'
import { startedObservability } from './observability'
import { traceLogOptions } from './telemetry/log-correlation'

// The only file that listens. Everything else is the app plugin, which tests build directly.
async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`blog_app: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }

  survivableMemoryUsage()
  const { telemetry, traces } = startedObservability()
  const fastify = Fastify({
    ...appServerOptions,
    trustProxy: config.trustProxy,
    ...requestLogOptions(config.logLevel, config.logFlushMs, telemetry?.logCorrelation ? traceLogOptions : undefined),
    // Deliberate timeouts (Node's requestTimeout default is 0 in Fastify: a slow client could
    // hold a socket forever). Keep-alive outlives a typical 60 s proxy idle timeout.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: config.requestTimeoutMs + 5000,
    // Node cuts a slow request only when it checks its connections (every 30 s by default) and,
    // measured, after its headersTimeout (60 s default) even while the body is still arriving:
    // slow uploads ran 64-90 s under a 30 s timeout. Check every second, with both timeouts equal.
    http: { connectionsCheckingInterval: 1000, headersTimeout: Math.min(config.requestTimeoutMs, 60_000) },
    // A request that reaches the server after close() started (on a kept-alive socket, or sent
    // just before the signal) is served, with Connection: close, rather than bounced with a 503:
    // each socket carries at most one more request, and SHUTDOWN_GRACE_MS bounds the drain.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Fastify gives each plugin 10 s to load, and the app plugin waits for the database: up to
    // DB_STARTUP_TIMEOUT_MS for the server, then for the migration lock. Those waits have their
    // own bounds and messages, which the 10 s cut short; 90 s more for the migrations themselves.
    pluginTimeout: config.db.startupTimeoutMs + migrationLockWaitMs(config.db) + 90_000
  })

  await fastify.register(app, { config, telemetry, traces })

  // Past the cap Node closes a new connection at once: descriptors for the pool, uploads and
  // logs stay available however many sockets a client opens.
  const maxConnections = config.maxConnections || defaultMaxConnections(config.db.pool.max)
  if (maxConnections > 0) fastify.server.maxConnections = maxConnections
  let dropped = 0
  let lastDropLog = 0
  fastify.server.on('drop', () => {
    dropped++
    if (Date.now() - lastDropLog < 60_000) return
    lastDropLog = Date.now()
    fastify.log.warn({ maxConnections, droppedSoFar: dropped }, 'connection cap reached: new connections are closed (MAX_CONNECTIONS)')
  })

  // A socket that connected but never sent a request (browser preconnect, TCP health check) is
  // not "idle" to Node's closeIdleConnections: it would hold close() open until the grace timer
  // kills the process with exit 1. Drop such sockets when shutdown starts.
  const unused = new Set<Socket>()
  fastify.server.on('connection', (socket: Socket) => {
    unused.add(socket)
    socket.once('close', () => unused.delete(socket))
  })
  fastify.server.on('request', (req: IncomingMessage) => unused.delete(req.socket))
  fastify.addHook('preClose', async () => {
    // Connections made just before the signal may still wait in the accept queue, where closing
    // the listener would reset them: let the loop accept and read them (a timer, then a poll).
    await sleep(25)
    await nextPoll()
    // A socket still without a request gets a moment to send one (it is then served), then goes.
    // The check runs after one more poll phase (setImmediate from the timer): on a starved loop
    // a request already in the socket's buffer is read there, not reset unread.
    for (const socket of unused) {
      setTimeout(() => {
        setImmediate(() => {
          if (unused.has(socket)) socket.destroy()
        })
      }, 500).unref()
    }
  })

  // SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the pool (onClose), exit 0.
  closeWithGrace({ delay: config.shutdownGraceMs, logger: fastify.log }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    await fastify.close()
  })

  try {
    await fastify.listen({ host: config.host, port: config.port })
    fastify.log.info({ maxConnections }, 'connection cap')
  } catch (err) {
    fastify.log.fatal({ err }, 'could not start')
    await fastify.close().catch(() => undefined)
    process.exit(1)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`blog_app: failed to start: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
