// The floor: the list page from the same stack with nothing else. Fastify, one Sequelize pool
// running the app's own list query (raw rows), @fastify/view rendering the app's own templates
// with the same helpers, and no plugins, hooks, logging or telemetry. `npm run bench -- --variants
// floor,...` measures every other variant against it; FLOOR_FEATURES adds features back (helmet:
// the app's security headers, log: the app's logger and request line, cookie, timing: the
// telemetry plugin's hooks and DB timing without a tracer, pressure: under-pressure; floor=all: all five) so
// each one's price is visible on its own.
import path from 'node:path'
import view from '@fastify/view'
import ejs from 'ejs'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { QueryTypes, Sequelize } from 'sequelize'
import { parseDatabaseUrl } from '../../src/config'
import { ROOT } from '../../src/paths'
import { FIELD_RULES } from '../../src/posts/fields'
import { EXCERPT_CHARS, LIST_SQL, toSummary, type SummaryRow } from '../../src/repositories/blog-repository'
import requestLog, { requestLogOptions } from '../../src/plugins/request-log'
import security from '../../src/plugins/security'
import { ejsOptions } from '../../src/plugins/view'
import { instrumentSequelize } from '../../src/telemetry/db'
import telemetry from '../../src/telemetry/plugin'
import { viewHelpers } from '../../src/views'

const PAGE_SIZE = 20

async function main(): Promise<void> {
  const env = process.env
  const features = new Set((env.FLOOR_FEATURES ?? '').split(',').filter(Boolean))
  const db = parseDatabaseUrl(env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/blog_db')
  const sequelize = new Sequelize({
    dialect: 'mysql', host: db.host, port: db.port, username: db.user, password: db.password, database: db.database,
    logging: false, timezone: '+00:00', pool: { max: Number(env.DB_POOL_MAX ?? 40), min: 0 }
  })
  // log: the app's logger and its one line per request (buffered, LOG_FLUSH_MS's default 100 ms).
  const app = Fastify(features.has('log') ? requestLogOptions('info', 100) : { logger: false })
  await app.register(view, {
    engine: { ejs },
    root: path.join(ROOT, 'views'),
    layout: 'layout.ejs',
    viewExt: 'ejs',
    production: true,
    // The app's own ejs options (src/plugins/view.ts): the same stack, rendering the same way.
    options: ejsOptions(true),
    defaultContext: { ...viewHelpers, fields: FIELD_RULES, imageUrl: (name: string) => `/static/uploads/${encodeURIComponent(name)}` }
  })
  if (features.has('helmet')) await app.register(security)
  if (features.has('cookie')) await app.register((await import('@fastify/cookie')).default)
  // X-Process-Time, Server-Timing, traceresponse and the handler wrapper, without a tracer.
  if (features.has('timing')) {
    await app.register(telemetry, { runtime: null })
    // The DB side of Server-Timing (query time and count, pool wait), as the app's db plugin does.
    instrumentSequelize(sequelize)
    // Fastify times a reply (reply.elapsedTime, X-Process-Time) only with a logger or an
    // onResponse hook; the app always has both (its request log). Without `log`, an empty one.
    if (!features.has('log')) app.addHook('onResponse', (_request, _reply, done) => done())
  }
  if (features.has('log')) {
    // The request log names the trace ids the telemetry plugin finds, so it declares it a
    // dependency; without `timing` an empty plugin of that name stands in (no hooks, no cost).
    if (!features.has('timing')) await app.register(fp(async () => {}, { name: 'telemetry' }))
    await app.register(requestLog)
  }
  // The app's defaults and environment variables (src/config/), so both shed load alike.
  if (features.has('pressure')) {
    await app.register((await import('@fastify/under-pressure')).default, {
      maxEventLoopDelay: Number(env.LOAD_MAX_EVENT_LOOP_DELAY_MS ?? 500),
      sampleInterval: Number(env.LOAD_SAMPLE_INTERVAL_MS ?? 1000)
    })
  }

  app.get('/health', async () => ({ status: 'ok' }))
  app.get('/blogs/', async (_request, reply) => {
    const rows = await sequelize.query<SummaryRow>(LIST_SQL, { type: QueryTypes.SELECT, bind: [String(EXCERPT_CHARS), String(PAGE_SIZE + 1), '0'] })
    const page = { items: rows.slice(0, PAGE_SIZE).map(toSummary), page: 1, hasPrevious: false, hasNext: rows.length > PAGE_SIZE }
    return reply.viewAsync('blogs/index', { pageTitle: 'Posts', page, flash: null })
  })

  await app.listen({ host: env.HOST ?? '127.0.0.1', port: Number(env.PORT ?? 8000) })
  const stop = () => void app.close().then(() => sequelize.close()).then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`floor: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
