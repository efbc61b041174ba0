import path from 'node:path'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import fastifyStatic from '@fastify/static'
import view from '@fastify/view'
import ejs from 'ejs'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AppConfig } from './config'
import { classifyError } from './errors'
import inspector from './inspector/index'
import blogsPlugin from './plugins/blogs'
import dbPlugin from './plugins/db'
import flashPlugin from './plugins/flash'
import imageStorePlugin, { STORED_NAME, UPLOAD_URL_PREFIX } from './plugins/image-store'
import loadShedding from './plugins/load-shedding'
import processTime from './plugins/process-time'
import requestLog from './plugins/request-log'
import requestTiming from './plugins/request-timing'
import security, { UPLOAD_CSP } from './plugins/security'
import telemetry from './plugins/telemetry'
import blogRoutes from './routes/blogs/index'
import healthRoutes from './routes/health'
import { ROOT } from './paths'
import { viewHelpers } from './views'

declare module 'fastify' {
  interface FastifyInstance {
    appConfig: AppConfig
  }
  interface FastifyContextConfig {
    /** Routes that answer JSON, errors included. */
    json?: boolean
  }
}

export interface AppOptions {
  config: AppConfig
}

/** The whole blog as one plugin: tests register it on a bare Fastify, server.ts adds listen. */
const app: FastifyPluginAsync<AppOptions> = async (fastify, { config }) => {
  fastify.decorate('appConfig', config)

  // Handlers first: child contexts copy them when they are registered.
  const wantsJson = (request: FastifyRequest) =>
    request.routeOptions.config?.json === true || (request.headers.accept ?? '').startsWith('application/json')

  const sendError = async (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string) => {
    if (status === 503) reply.header('Retry-After', '5')
    reply.code(status)
    if (wantsJson(request)) return reply.send({ message, code })
    const pageTitle = status === 404 ? 'Not found' : status >= 500 ? 'Error' : 'Request not accepted'
    return reply.render('errors/error', { pageTitle, status, message })
  }

  fastify.setErrorHandler(async (err, request, reply) => {
    const e = classifyError(err)
    // Shed requests (overload, database known down) come in bursts: one short line each, no stack.
    if ((err as { shed?: boolean }).shed) request.log.warn({ code: e.code, reason: (err as { reason?: string }).reason }, 'request shed')
    else if (e.status >= 500) request.log.error({ err }, 'request failed')
    else request.log.info({ status: e.status, code: e.code, reason: (err as Error).message }, 'request rejected')
    const message =
      e.status === 413 ? `The upload is too large (the limit is ${(config.maxUploadBytes / 1048576).toFixed(1)} MiB).` : e.message
    return sendError(request, reply, e.status, e.code, message)
  })

  fastify.setNotFoundHandler(async (request, reply) =>
    sendError(request, reply, 404, 'NOT_FOUND', 'There is no such page.')
  )

  await fastify.register(processTime)
  await fastify.register(requestTiming)
  await fastify.register(security)

  await fastify.register(cookie)
  await fastify.register(flashPlugin)
  await fastify.register(formbody)
  await fastify.register(multipart, {
    limits: {
      fileSize: config.maxUploadBytes,
      files: 1,
      fields: 10,
      fieldSize: 64 * 1024,
      parts: 12,
      headerPairs: 50
    }
  })
  await fastify.register(view, {
    engine: { ejs },
    root: path.join(ROOT, 'views'),
    layout: 'layout.ejs',
    viewExt: 'ejs',
    production: config.viewCache,
    defaultContext: { ...viewHelpers, maxUploadMiB: +(config.maxUploadBytes / 1048576).toFixed(1) }
  })
  await fastify.register(fastifyStatic, {
    root: path.join(ROOT, 'public'),
    prefix: '/assets/',
    maxAge: '1h'
  })
  await fastify.register(imageStorePlugin, { dir: config.uploadDir })
  await fastify.register(fastifyStatic, {
    root: config.uploadDir,
    prefix: UPLOAD_URL_PREFIX,
    decorateReply: false,
    // Only names the store generated; dotfiles (the incoming area) and anything else are 404.
    allowedPath: (pathName) => STORED_NAME.test(pathName.slice(1)),
    dotfiles: 'deny',
    index: false,
    maxAge: '7d',
    immutable: true,
    setHeaders: (res) => {
      res.header('X-Content-Type-Options', 'nosniff')
      res.header('Content-Disposition', 'inline')
      // Opened directly, an upload is a document of its own: it may load nothing and run nothing.
      res.header('Content-Security-Policy', UPLOAD_CSP)
    }
  })

  await fastify.register(dbPlugin, { db: config.db })
  await fastify.register(blogsPlugin)
  await fastify.register(telemetry)
  await fastify.register(requestLog)
  await fastify.register(loadShedding, { load: config.load, db: config.db })

  await fastify.register(inspector, { config: config.inspector })

  fastify.get('/', async (_request, reply) => reply.redirect('/blogs/', 302))
  await fastify.register(healthRoutes)
  await fastify.register(blogRoutes, { prefix: '/blogs' })
}

export default fp(app, { name: 'blog-app' })
