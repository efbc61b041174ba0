import underPressure from '@fastify/under-pressure'
import { context } from '@opentelemetry/api'
import { suppressTracing } from '@opentelemetry/core'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type mysql from 'mysql2/promise'
import type { DbConfig, LoadConfig } from '../config'
import { openConnection } from '../db/connection'
import { AppError, DB_DOWN_MESSAGE } from '../errors'
import { INSPECTOR_PREFIX } from '../inspector/prefix'

/** A 503 the app chose to give: logged as one warning line, no stack. */
const shed = (code: string, message: string, reason: string) => new AppError(503, code, message, { expected: true, reason })

const OVERLOADED = 'The server is too busy right now. Please try again in a few seconds.'

// Liveness must not fail because the process is busy or the database is down (an orchestrator
// would restart a healthy process); /ready and static files do not need the database.
const NEVER_SHED = new Set(['/health'])
const NO_DATABASE = new Set(['/health', '/ready', '/assets/*', '/static/uploads/*'])

/**
 * Pings the database over its own connection, outside the pool: a saturated pool is not a
 * database outage (the acquire timeout answers that), and the probe never waits behind requests.
 */
export class DbProbe {
  private conn: mysql.Connection | null = null
  private closed = false

  constructor(private readonly db: DbConfig) {}

  async check(): Promise<boolean> {
    // One retry on a new connection: the kept one may have been closed by wait_timeout.
    for (let attempt = 0; attempt < 2 && !this.closed; attempt++) {
      try {
        // The probe is not a request's work: no span every few seconds.
        await context.with(suppressTracing(context.active()), async () => {
          this.conn ??= await openConnection(this.db)
          await this.conn.query({ sql: 'SELECT 1', timeout: this.db.connectTimeoutMs })
        })
        if (this.closed) await this.close()
        return true
      } catch {
        this.conn?.destroy()
        this.conn = null
      }
    }
    return false
  }

  async close(): Promise<void> {
    this.closed = true
    const conn = this.conn
    this.conn = null
    await conn?.end().catch(() => conn.destroy())
  }
}

export interface LoadSheddingOptions {
  load: LoadConfig
  db: DbConfig
}

/**
 * Fast 503s instead of unbounded queueing: when the event loop lags (mean delay or
 * utilization over a sample interval past its threshold) or the database probe fails. The
 * 503 goes through the app's error handler, so it is the same page (or JSON) with Retry-After
 * and X-Process-Time as any other 503.
 */
export default fp<LoadSheddingOptions>(
  async (fastify, { load, db }) => {
    const probe = load.dbHealthCheckIntervalMs > 0 ? new DbProbe(db) : null
    let healthy = true

    const pressureHandler = (request: FastifyRequest, _reply: unknown, type: string, value: number | undefined) => {
      const route = request.routeOptions.url ?? ''
      if (type === underPressure.TYPE_HEALTH_CHECK) {
        // The request inspector reads its in-memory buffer only: useful exactly when the DB is down.
        if (NO_DATABASE.has(route) || route.startsWith(INSPECTOR_PREFIX)) return
        return Promise.reject(shed('DB_UNAVAILABLE', DB_DOWN_MESSAGE, 'database health check failing'))
      }
      if (NEVER_SHED.has(route)) return
      return Promise.reject(shed('OVERLOADED', OVERLOADED, `${type} ${value?.toFixed(3) ?? ''}`.trim()))
    }

    await fastify.register(underPressure, {
      maxEventLoopDelay: load.maxEventLoopDelayMs,
      maxEventLoopUtilization: load.maxEventLoopUtilization,
      // Utilization of the last interval, not the average since start (the plugin's default).
      eventLoopUtilizationMode: 'interval',
      sampleInterval: load.sampleIntervalMs,
      pressureHandler,
      ...(probe
        ? {
            healthCheckInterval: load.dbHealthCheckIntervalMs,
            healthCheck: async () => {
              const ok = await probe.check()
              if (ok !== healthy) {
                if (ok) fastify.log.info('database health check passing again')
                else fastify.log.warn({ host: db.host, port: db.port }, 'database health check failing; shedding database requests')
                healthy = ok
              }
              return ok
            }
          }
        : {})
    })

    if (probe) fastify.addHook('onClose', async () => probe.close())
  },
  { name: 'load-shedding', dependencies: ['db'] }
)
