import path from 'node:path'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import accountsPlugin from './accounts/plugin'
import type { AppConfig } from './config'
import inspector from './inspector/index'
import { ROOT } from './paths'
import { clientErrorHandler } from './plugins/client-errors'
import dbPlugin from './plugins/db'
import errors from './plugins/errors'
import flashPlugin from './plugins/flash'
import loadShedding from './plugins/load-shedding'
import requestGuard, { serverOptions } from './plugins/request-guard'
import requestLog from './plugins/request-log'
import security from './plugins/security'
import viewPlugin from './plugins/view'
import { FORM_LIMITS } from './validation/forms'
import postsPlugin from './posts/plugin'
import rateLimit from './plugins/rate-limit'
import accountRoutes from './routes/account/index'
import blogRoutes from './routes/blogs/index'
import healthRoutes from './routes/health'
import imageProcessor from './images/plugin'
import storage from './storage/plugin'
import telemetry from './telemetry/plugin'
import type { TraceSource } from './inspector/trace-buffer'
import type { TelemetryRuntime } from './telemetry/runtime'
import { isUntraced } from './untraced'

declare module 'fastify' {
  interface FastifyInstance {
    appConfig: AppConfig
  }
}

export interface AppOptions {
  config: AppConfig
  /** What the OpenTelemetry bootstrap started (server.ts passes it); null or absent: untraced. */
  telemetry?: TelemetryRuntime | null
  /** The inspector's trace buffer the bootstrap fills (src/observability.ts); null or absent: none. */
  traces?: TraceSource | null
}

/**
 * The WHATWG urlencoded parser, as browsers encode: an escape that is not UTF-8 (`%FF`) becomes
 * U+FFFD, which the form then refuses, where the default parser kept the raw `%FF` text. A name
 * sent twice becomes an array (the form answers "send this field only once").
 */
function parseUrlEncoded(body: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null)
  for (const [name, value] of new URLSearchParams(body)) {
    const seen = out[name]
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value]
  }
  return out
}

/** Options the app needs on the Fastify() call itself: spread them into it (server.ts, test kit). */
export const appServerOptions: Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> = {
  ...serverOptions,
  clientErrorHandler
}

/** The whole blog as one plugin: tests register it on a bare Fastify, server.ts adds listen. */
const app: FastifyPluginAsync<AppOptions> = async (fastify, { config, telemetry: runtime = null, traces = null }) => {
  fastify.decorate('appConfig', config)

  // Hooks and handlers before any route: a route keeps the ones present when it is added.
  await fastify.register(telemetry, {
    runtime,
    serverTiming: config.serverTiming,
    trustedTraceSource: config.trustedTraceSource,
    isUntraced,
    poolAcquireMs: config.db.pool.acquireMs
  })
  await fastify.register(viewPlugin, { cache: config.viewCache, maxUploadBytes: config.maxUploadBytes })
  await fastify.register(errors, { maxUploadBytes: config.maxUploadBytes })
  await fastify.register(security)
  await fastify.register(requestGuard, { allowedHosts: config.allowedHosts, maxUploadBytes: config.maxUploadBytes })

  await fastify.register(rateLimit, { writesPerMinute: config.writeRateLimit })
  await fastify.register(cookie)
  await fastify.register(flashPlugin)
  await fastify.register(formbody, { parser: parseUrlEncoded })
  await fastify.register(multipart, {
    limits: { fileSize: config.maxUploadBytes, ...FORM_LIMITS }
  })
  await fastify.register(fastifyStatic, {
    root: path.join(ROOT, 'public'),
    prefix: '/assets/',
    maxAge: '1h'
  })
  await fastify.register(storage, { dir: config.uploadDir, storage: config.storage })
  await fastify.register(imageProcessor, {
    maxPixels: config.maxImagePixels,
    maxFrames: config.maxImageFrames,
    memoryBudgetBytes: config.imageMemoryBudgetBytes,
    queueLength: config.imageQueueLength
  })

  await fastify.register(dbPlugin, { db: config.db, serverTimings: runtime?.serverTimings ?? null })
  await fastify.register(postsPlugin)
  await fastify.register(accountsPlugin, { config: config.accounts })
  await fastify.register(requestLog)
  await fastify.register(loadShedding, { load: config.load, db: config.db })

  await fastify.register(inspector, { config: config.inspector, traces, serverTimings: runtime?.serverTimings ?? null })

  fastify.get('/', async (_request, reply) => reply.redirect('/blogs/', 302))
  await fastify.register(healthRoutes)
  await fastify.register(blogRoutes, { prefix: '/blogs' })
  await fastify.register(accountRoutes, { prefix: '/account' })
}

export default fp(app, { name: 'blog-app' })
