import fp from 'fastify-plugin'
import { defineBlogModel } from '../db/models/blog'
import { BlogRepository } from '../repositories/blog-repository'

declare module 'fastify' {
  interface FastifyInstance {
    blogs: BlogRepository
  }
}

export default fp(
  async (fastify) => {
    fastify.decorate('blogs', new BlogRepository(fastify.sequelize, defineBlogModel(fastify.sequelize)))
  },
  { name: 'blogs', dependencies: ['db'] }
)
