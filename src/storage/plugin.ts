import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { UPLOAD_CSP } from '../plugins/security'
import { LocalImageStorage, UPLOAD_URL_PREFIX } from './local'
import { STORED_NAME } from './sniff'
import type { S3ImageStorage } from './s3'
import type { ImageStorage } from './storage'
import type { StorageConfig } from '../config'

declare module 'fastify' {
  interface FastifyInstance {
    imageStore: ImageStorage
  }
}

export interface StoragePluginOptions {
  /** The local directory images are kept in. */
  dir: string
  /** STORAGE=s3 keeps them in a bucket instead (absent: local). */
  storage?: StorageConfig
}

/** The headers of every served image, whichever store holds it (@fastify/static's for local). */
const IMAGE_CACHE_CONTROL = 'public, max-age=604800, immutable'

/** The image store (`fastify.imageStore`) and, for the local directory, the route that serves it. */
export default fp<StoragePluginOptions>(
  async (fastify, { dir, storage }) => {
    if (storage?.kind === 's3') {
      // Loaded only for STORAGE=s3: the AWS SDK costs every process ~250 ms and ~34 MB at start.
      const { S3ImageStorage } = await import('./s3.js')
      return registerS3(fastify, new S3ImageStorage(storage.s3))
    }
    const store = new LocalImageStorage(dir)
    await store.init()
    fastify.decorate('imageStore', store)
    // A shutdown that drains normally removes what is left in onClose; one cut short by the
    // grace timer (slow uploads still in flight) exits the process, and 'exit' still runs.
    const onExit = () => store.removeStaged()
    process.once('exit', onExit)
    fastify.addHook('onClose', async () => {
      process.removeListener('exit', onExit)
      store.removeStaged()
    })
    await fastify.register(fastifyStatic, {
      root: dir,
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
  },
  { name: 'image-store' }
)

/**
 * Images from a bucket, streamed by the app under the same URL and with the same headers as the
 * local files (not a redirect to a presigned URL): the store stays private to the app's network,
 * no signed URL ends up in pages, caches or logs, and the CSP/nosniff headers stay the app's.
 */
async function registerS3(fastify: FastifyInstance, store: S3ImageStorage): Promise<void> {
  fastify.decorate('imageStore', store)
  fastify.addHook('onClose', async () => {
    await store.removeStaged()
    store.close()
  })
  fastify.get<{ Params: { name: string } }>(`${UPLOAD_URL_PREFIX}:name`, async (request, reply) => {
    const ifNoneMatch = request.headers['if-none-match']
    const ifModifiedSince = request.headers['if-modified-since']
    const range = request.headers.range
    const obj = await store.get(request.params.name, { ...(ifNoneMatch ? { ifNoneMatch } : {}), ...(ifModifiedSince ? { ifModifiedSince } : {}), ...(range ? { range } : {}) })
    if (!obj) return reply.callNotFound()
    reply
      .header('Cache-Control', IMAGE_CACHE_CONTROL)
      .header('Accept-Ranges', 'bytes')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Disposition', 'inline')
      .header('Content-Security-Policy', UPLOAD_CSP)
    if (obj.etag) reply.header('ETag', obj.etag)
    if (obj.lastModified) reply.header('Last-Modified', obj.lastModified.toUTCString())
    if (obj.status === 304) return reply.code(304).send()
    reply.code(obj.status).type(obj.contentType)
    if (obj.contentLength !== undefined) reply.header('Content-Length', obj.contentLength)
    if (obj.contentRange) reply.header('Content-Range', obj.contentRange)
    return reply.send(obj.body)
  })
}
