import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app from './app'
import { ConfigError, loadConfig } from './config'

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

  const fastify = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]'], remove: true }
    },
    // src/plugins/request-log.ts writes one line per request instead.
    disableRequestLogging: true,
    // Deliberate timeouts (Node's requestTimeout default is 0 in Fastify: a slow client could
    // hold a socket forever). Keep-alive outlives a typical 60 s proxy idle timeout.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: config.requestTimeoutMs + 5000,
    // Answer 503 to requests that arrive on kept-alive sockets after close() started.
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  })

  await fastify.register(app, { config })

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
    for (const socket of unused) socket.destroy()
  })

  // SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the pool (onClose), exit 0.
  closeWithGrace({ delay: config.shutdownGraceMs, logger: fastify.log }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    await fastify.close()
  })

  try {
    await fastify.listen({ host: config.host, port: config.port })
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
