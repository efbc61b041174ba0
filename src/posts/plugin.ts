import fp from 'fastify-plugin'
import { defineBlogModel } from '../db/models/blog'
import { BlogRepository } from '../repositories/blog-repository'
import { PostsService } from './service'

declare module 'fastify' {
  interface FastifyInstance {
    /** The blog table (reads and writes inside a caller's transaction). */
    blogs: BlogRepository
    /** Posts with their images: what the routes use. */
    posts: PostsService
  }
}

export interface PostsPluginOptions {
  /** How long an image no row references is kept before the sweep removes it. */
  orphanGraceMs?: number
}

/** `fastify.blogs` and `fastify.posts`, and the periodic sweep of images no row references. */
export default fp<PostsPluginOptions>(
  async (fastify, opts) => {
    const blogs = new BlogRepository(fastify.sequelize, defineBlogModel(fastify.sequelize))
    const posts = new PostsService(blogs, fastify.imageStore, fastify.imageProcessor, fastify.log)
    fastify.decorate('blogs', blogs)
    fastify.decorate('posts', posts)

    const grace = opts.orphanGraceMs ?? 60 * 60 * 1000
    const sweep = async () => {
      try {
        const removed = await fastify.imageStore.sweep(await blogs.imageNames(), grace)
        if (removed.length > 0) fastify.log.info({ removed: removed.length }, 'removed unreferenced upload files')
      } catch (err) {
        fastify.log.warn({ err }, 'upload sweep failed; will retry')
      }
    }
    const timer = setInterval(sweep, Math.max(grace / 4, 60_000))
    timer.unref()
    fastify.addHook('onReady', async () => {
      void sweep()
    })
    fastify.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'posts', dependencies: ['db', 'image-store', 'image-processor'] }
)
