import type { Sequelize } from 'sequelize'
import { Umzug, SequelizeStorage } from 'umzug'
import { MIGRATIONS as migrations, MIGRATIONS_TABLE, SEED_NAMES, SEEDS_TABLE } from './migration-list'
import * as accounts from './migrations/003-accounts'
import * as identity from './migrations/004-identity'
import { samplePosts } from './seeds/sample-posts'

export function createMigrator(sequelize: Sequelize): Umzug<ReturnType<Sequelize['getQueryInterface']>> {
  return new Umzug({
    migrations: migrations.map((m) => ({ name: m.name, up: m.up, down: m.down })),
    context: sequelize.getQueryInterface(),
    // Distinct model names: SequelizeStorage reuses an already defined model of the same name
    // (default 'SequelizeMeta'), which would record seeds in schema_migrations.
    storage: new SequelizeStorage({ sequelize, tableName: MIGRATIONS_TABLE, modelName: 'SchemaMigration' }),
    logger: undefined
  })
}

/**
 * Loads the sample posts once: the seed is recorded in `schema_seeds`, so posts deleted later
 * do not come back on the next start, and a table already filled (e.g. by initial_data.sql)
 * is left alone.
 */
export function createSeeder(sequelize: Sequelize): Umzug<Sequelize> {
  return new Umzug({
    migrations: [
      {
        name: SEED_NAMES[0],
        up: async ({ context }) => {
          const [rows] = await context.query('SELECT 1 FROM `blog` LIMIT 1')
          if ((rows as unknown[]).length > 0) return
          const qi = context.getQueryInterface()
          await qi.bulkInsert('blog', samplePosts.map((p) => ({ ...p, image_loc: null, published_dt: p.modified_dt })))
          // Their authors become users who cannot sign in, as migration 003 does for old rows.
          await accounts.adoptAuthors(context)
          await identity.fillDisplayNameKeys(context)
        }
      }
    ],
    context: sequelize,
    storage: new SequelizeStorage({ sequelize, tableName: SEEDS_TABLE, modelName: 'SchemaSeed' }),
    logger: undefined
  })
}
