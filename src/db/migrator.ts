import type { Sequelize } from 'sequelize'
import { Umzug, SequelizeStorage } from 'umzug'
import * as createBlog from './migrations/001-create-blog'
import * as blogThumb from './migrations/002-blog-thumb'
import * as accounts from './migrations/003-accounts'
import * as identity from './migrations/004-identity'
import * as postDatesAndImages from './migrations/005-post-dates-and-images'
import { samplePosts } from './seeds/sample-posts'

// Listed explicitly (no glob) so the same list runs from compiled JS and from the TS tests.
const migrations = [
  { name: '001-create-blog', ...createBlog },
  { name: '002-blog-thumb', ...blogThumb },
  { name: '003-accounts', ...accounts },
  { name: '004-identity', ...identity },
  { name: '005-post-dates-and-images', ...postDatesAndImages }
]

export function createMigrator(sequelize: Sequelize): Umzug<ReturnType<Sequelize['getQueryInterface']>> {
  return new Umzug({
    migrations: migrations.map((m) => ({ name: m.name, up: m.up, down: m.down })),
    context: sequelize.getQueryInterface(),
    // Distinct model names: SequelizeStorage reuses an already defined model of the same name
    // (default 'SequelizeMeta'), which would record seeds in schema_migrations.
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations', modelName: 'SchemaMigration' }),
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
        name: '001-sample-posts',
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
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_seeds', modelName: 'SchemaSeed' }),
    logger: undefined
  })
}
