import type { FastifyPluginAsync } from 'fastify'

const routes: FastifyPluginAsync = async (fastify) => {
  // Liveness: the process answers. Never touches the database, so a DB outage does not get
  // a healthy process restarted.
  fastify.get('/health', { config: { json: true } }, async () => ({ status: 'ok' }))

  // Readiness: the database answers a trivial query within the pool's acquire timeout, and the
  // image store (STORAGE=s3) answers a HeadBucket within 2 s (cached 2 s).
  fastify.get('/ready', { config: { json: true } }, async (request, reply) => {
    const unavailable = (message: string, err: unknown) => {
      request.log.warn({ reason: (err as Error).message, cause: ((err as Error).cause as Error | undefined)?.message }, 'readiness check failed')
      return reply.code(503).header('Retry-After', '5').send({ status: 'unavailable', message })
    }
    try {
      await fastify.sequelize.query('SELECT 1', { logging: false })
    } catch (err) {
      return unavailable('Database unreachable', err)
    }
    try {
      await fastify.imageStore.check?.()
    } catch (err) {
      return unavailable('Image store unreachable', err)
    }
    return { status: 'ready' }
  })
}

export default routes
