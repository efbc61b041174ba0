import fp from 'fastify-plugin'

/** `X-Process-Time: 3.27ms` on every response: pages, errors, redirects, static files. */
export default fp(
  async (fastify) => {
    // Callback style: this runs on every response, an async hook would add a promise per request.
    fastify.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('X-Process-Time', `${reply.elapsedTime.toFixed(2)}ms`)
      done(null, payload)
    })
  },
  { name: 'process-time' }
)
