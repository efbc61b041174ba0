import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import { UPLOAD_CSP } from '../plugins/security'
import { LocalImageStorage, UPLOAD_URL_PREFIX } from './local'
import { STORED_NAME } from './sniff'
import type { ImageStorage } from './storage'

declare module 'fastify' {
  interface FastifyInstance {
    imageStore: ImageStorage
  }
}

export interface StoragePluginOptions {
  /** The local directory images are kept in. */
  dir: string
}

/** The image store (`fastify.imageStore`) and, for the local directory, the route that serves it. */
export default fp<StoragePluginOptions>(
  async (fastify, { dir }) => {
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
