import type { FastifyPluginAsync } from 'fastify'

const routes: FastifyPluginAsync = async (fastify) => {
  // Liveness: the process answers. Never touches the database, so a DB outage does not get
  // a healthy process restarted.
  fastify.get('/health', { config: { json: true } }, async () => ({ status: 'ok' }))

  // Readiness: the database answers a trivial query within the pool's acquire timeout.
  fastify.get('/ready', { config: { json: true } }, async (request, reply) => {
    try {
      await fastify.sequelize.query('SELECT 1', { logging: false })
      return { status: 'ready' }
    } catch (err) {
      request.log.warn({ reason: (err as Error).message }, 'readiness check failed')
      return reply.code(503).header('Retry-After', '5').send({ status: 'unavailable', message: 'Database unreachable' })
    }
  })
}

export default routes
