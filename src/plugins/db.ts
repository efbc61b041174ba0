import fp from 'fastify-plugin'
import type { Sequelize } from 'sequelize'
import type { DbConfig } from '../config'
import { createSequelize, setStatementTimeout } from '../db/sequelize'
import { migrate, prepareDatabase, seed, withMigrationLock } from '../db/bootstrap'
import { instrumentSequelize } from '../telemetry/db'
import type { DbServerTimings } from '../telemetry/db-server'

declare module 'fastify' {
  interface FastifyInstance {
    sequelize: Sequelize
  }
}

export interface DbPluginOptions {
  db: DbConfig
  /** The OTel bootstrap's performance_schema reader, started here on this database. */
  serverTimings?: DbServerTimings | null
}

/** Connects (with bounded retries), migrates and seeds, instruments the pool; closes it on app close. */
export default fp<DbPluginOptions>(
  async (fastify, { db, serverTimings = null }) => {
    await prepareDatabase(db, fastify.log)
    const sequelize = createSequelize(db)
    try {
      await sequelize.authenticate({ logging: false })
      // Replicas starting together would race to create the same tables: one at a time.
      if (db.migrateOnStart || db.seedOnStart) {
        await withMigrationLock(db, fastify.log, async () => {
          if (db.migrateOnStart) await migrate(sequelize, fastify.log)
          if (db.seedOnStart) await seed(sequelize, fastify.log)
        })
      }
    } catch (err) {
      await sequelize.close()
      throw err
    }
    setStatementTimeout(sequelize, db.queryTimeoutMs)
    const joinServerTimings = serverTimings ? await serverTimings.start(db, fastify.log) : false
    instrumentSequelize(sequelize, { connectionIds: joinServerTimings })
    fastify.decorate('sequelize', sequelize)
    fastify.addHook('onClose', async () => {
      await sequelize.close()
    })
  },
  { name: 'db' }
)
