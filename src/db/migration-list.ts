import * as createBlog from './migrations/001-create-blog'
import * as blogThumb from './migrations/002-blog-thumb'
import * as accounts from './migrations/003-accounts'
import * as identity from './migrations/004-identity'
import * as postDatesAndImages from './migrations/005-post-dates-and-images'

// Listed explicitly (no glob) so the same list runs from compiled JS and from the TS tests. Apart
// from ./migrator.ts (umzug), so that a start with nothing to do never loads umzug (./bootstrap.ts).
export const MIGRATIONS = [
  { name: '001-create-blog', ...createBlog },
  { name: '002-blog-thumb', ...blogThumb },
  { name: '003-accounts', ...accounts },
  { name: '004-identity', ...identity },
  { name: '005-post-dates-and-images', ...postDatesAndImages }
]

/** The seeds ./migrator.ts records in `schema_seeds`. */
export const SEED_NAMES = ['001-sample-posts'] as const

/** umzug's SequelizeStorage tables (column `name`), as ./migrator.ts names them. */
export const MIGRATIONS_TABLE = 'schema_migrations'
export const SEEDS_TABLE = 'schema_seeds'
