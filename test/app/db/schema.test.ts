import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import mysql from 'mysql2/promise'
import { samplePosts } from '../../../src/db/seeds/sample-posts'
import { DISPLAY_NAME_RULE } from '../../../src/accounts/fields'
import { FIELD_RULES } from '../../../src/posts/fields'
import { ROOT } from '../../../src/paths'
import { FORM_HEADERS, makeAdmin, signUp, urlencoded } from '../../kit/accounts'
import { useDisposableApps, type TestEnv } from '../../kit/app'

// Every database and app made here is closed and dropped after each test.
const { newEnv, newApp, closeApp } = useDisposableApps()

const INITIAL_DATA = path.join(ROOT, 'initial_data.sql')
const MIGRATIONS = [{ name: '001-create-blog' }, { name: '002-blog-thumb' }, { name: '003-accounts' }, { name: '004-identity' }, { name: '005-post-dates-and-images' }]
const migrationsRun = (env: TestEnv) => env.query('SELECT `name` FROM `schema_migrations` ORDER BY `name`')

/** Runs initial_data.sql the way `mysql < initial_data.sql` would, with blog_db renamed to env.database. */
async function runInitialData(env: TestEnv): Promise<void> {
  const sql = await fs.readFile(INITIAL_DATA, 'utf8')
  const renamed = sql.replaceAll('blog_db', env.database)
  // Guard against the file addressing some other database the replace did not catch.
  expect(renamed).not.toMatch(/blog_db/)
  expect(renamed).toContain(`USE \`${env.database}\``)
  const { host, port, user, password } = env.config.db
  const conn = await mysql.createConnection({ host, port, user, password, multipleStatements: true })
  try {
    await conn.query(renamed)
  } finally {
    await conn.end()
  }
}

async function showCreateTable(env: TestEnv, table = 'blog'): Promise<string> {
  const [row] = await env.query<{ 'Create Table': string }>(`SHOW CREATE TABLE \`${table}\``)
  // The counter depends on the rows inserted so far, not on the schema.
  return row!['Create Table'].replace(/ AUTO_INCREMENT=\d+/, '')
}

interface DumpedPost {
  id: number
  title: string
  author: string
  content: string
  content_hex: string
  image_loc: string | null
  modified_dt: string
}

/** All posts, with the content's stored bytes and the DATETIME as written (no driver time zone conversion). */
async function dumpPosts(env: TestEnv): Promise<DumpedPost[]> {
  return env.query<DumpedPost>(
    "SELECT `id`, `title`, `author`, `content`, HEX(`content`) AS `content_hex`, `image_loc`, " +
      "DATE_FORMAT(`modified_dt`, '%Y-%m-%d %H:%i:%s') AS `modified_dt` FROM `blog` ORDER BY `id`"
  )
}

const expectedPosts: DumpedPost[] = samplePosts.map((p) => ({
  id: p.id,
  title: p.title,
  author: p.author,
  content: p.content,
  content_hex: Buffer.from(p.content, 'utf8').toString('hex').toUpperCase(),
  image_loc: null,
  modified_dt: p.modified_dt
}))

async function countPosts(env: TestEnv): Promise<number> {
  const [row] = await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `blog`')
  return Number(row!.n)
}

const TABLES = ['blog', 'user', 'session', 'api_token', 'login_throttle', 'app_secret']

/** Users named after the sample authors, without email or password, own the sample posts. */
async function expectAdoptedAuthors(env: TestEnv): Promise<void> {
  const owners = await env.query<{ id: number; author: string; display_name: string; email: string | null; password_hash: string | null }>(
    'SELECT `blog`.`id`, `blog`.`author`, `user`.`display_name`, `user`.`email`, `user`.`password_hash` FROM `blog` JOIN `user` ON `user`.`id` = `blog`.`user_id` ORDER BY `blog`.`id`'
  )
  expect(owners.map((o) => o.id)).toEqual(samplePosts.map((p) => p.id))
  for (const o of owners) expect(o).toMatchObject({ display_name: o.author, email: null, password_hash: null })
}

describe('initial_data.sql and the migrations', () => {
  it('initial_data.sql and then the migrations make the same tables as the migrations alone (SHOW CREATE TABLE is identical)', async () => {
    const fromSql = await newEnv()
    const fromApp = await newEnv()
    expect(fromSql.database).not.toBe(fromApp.database)

    await runInitialData(fromSql)
    const original = await showCreateTable(fromSql)
    expect(original).toContain('KEY `idx_blog_modified_dt_id` (`modified_dt`,`id`)')
    expect(original).toContain('PRIMARY KEY (`id`)')
    await newApp(fromSql)
    await newApp(fromApp)

    for (const table of TABLES) expect(await showCreateTable(fromSql, table), table).toBe(await showCreateTable(fromApp, table))
    expect(await showCreateTable(fromApp)).toContain('CONSTRAINT `fk_blog_user` FOREIGN KEY (`user_id`) REFERENCES `user` (`id`) ON DELETE SET NULL')
  })

  it('size the text columns by the form rules of src/posts/fields.ts (a longer value would be cut or refused)', async () => {
    const env = await newEnv()
    await newApp(env)
    const columns = await env.query<{ name: string; type: string; max: number | null }>(
      'SELECT `COLUMN_NAME` AS `name`, `DATA_TYPE` AS `type`, `CHARACTER_MAXIMUM_LENGTH` AS `max` FROM information_schema.`COLUMNS` WHERE `TABLE_SCHEMA` = ? AND `TABLE_NAME` = ?',
      [env.database, 'blog']
    )
    const byName = new Map(columns.map((c) => [c.name, c]))
    expect(byName.get('title')).toMatchObject({ type: 'varchar', max: FIELD_RULES.title.maxLength })
    expect(byName.get('author')).toMatchObject({ type: 'varchar', max: DISPLAY_NAME_RULE.maxLength })
    // TEXT holds 65,535 bytes: the longest content in 4-byte characters must fit.
    expect(byName.get('content')!.type).toBe('text')
    expect(FIELD_RULES.content.maxLength * 4).toBeLessThanOrEqual(65_535)
  })

  it('create the database with the same character set and collation', async () => {
    const fromSql = await newEnv()
    const fromApp = await newEnv()
    await runInitialData(fromSql)
    await newApp(fromApp)
    const charset = async (env: TestEnv) =>
      env.query<{ cs: string; co: string }>(
        'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [env.database]
      )
    expect(await charset(fromSql)).toEqual([{ cs: 'utf8mb4', co: 'utf8mb4_unicode_ci' }])
    expect(await charset(fromApp)).toEqual(await charset(fromSql))
  })

  it('initial_data.sql inserts exactly the sample posts of the seed, byte for byte', async () => {
    const env = await newEnv()
    await runInitialData(env)
    const rows = await dumpPosts(env)
    expect(rows).toHaveLength(samplePosts.length)
    expect(rows).toEqual(expectedPosts)
  })

  it('the app seed stores the same rows as initial_data.sql, with the same adopted authors', async () => {
    const fromSql = await newEnv()
    const fromApp = await newEnv()
    await runInitialData(fromSql)
    await newApp(fromApp)
    expect(await dumpPosts(fromApp)).toEqual(await dumpPosts(fromSql))
    await expectAdoptedAuthors(fromApp)
  })

  it('running initial_data.sql twice changes nothing and duplicates nothing', async () => {
    const env = await newEnv()
    await runInitialData(env)
    const first = await dumpPosts(env)
    await runInitialData(env)
    expect(await countPosts(env)).toBe(samplePosts.length)
    expect(await dumpPosts(env)).toEqual(first)
  })

  it('running initial_data.sql again keeps posts edited since and adds nothing', async () => {
    const env = await newEnv()
    await runInitialData(env)
    await env.query("UPDATE `blog` SET `title` = 'Edited' WHERE `id` = 3")
    await env.query("INSERT INTO `blog` (`title`, `author`, `content`) VALUES ('Mine', 'Me', 'My own post')")
    await runInitialData(env)
    expect(await countPosts(env)).toBe(samplePosts.length + 1)
    const [row] = await env.query<{ title: string }>('SELECT `title` FROM `blog` WHERE `id` = 3')
    expect(row!.title).toBe('Edited')
  })
})

describe('starting the app on a database made by initial_data.sql', () => {
  it('migrates cleanly (the posts get owners: a user per author, who cannot sign in), records the migrations and the seed, and does not duplicate the sample posts', async () => {
    const env = await newEnv()
    await runInitialData(env)

    const app = await newApp(env)

    expect(await dumpPosts(env)).toEqual(expectedPosts)
    await expectAdoptedAuthors(env)
    expect(await migrationsRun(env)).toEqual(MIGRATIONS)
    expect(await env.query('SELECT `name` FROM `schema_seeds`')).toEqual([{ name: '001-sample-posts' }])

    // The app works on that table: the list shows the posts.
    const res = await app.inject('/blogs/')
    expect(res.statusCode).toBe(200)
    for (const p of samplePosts) expect(res.body).toContain(p.title.replaceAll("'", '&#39;'))
  })

  it('adds thumb_loc to a table made before thumbnails (NULL for every existing post), giving the current schema', async () => {
    const current = await newEnv()
    await newApp(current)
    const env = await newEnv()
    await runInitialData(env)
    await env.query('ALTER TABLE `blog` DROP COLUMN `thumb_loc`')

    await newApp(env)

    expect(await showCreateTable(env)).toBe(await showCreateTable(current))
    expect(await env.query('SELECT `id` FROM `blog` WHERE `thumb_loc` IS NOT NULL')).toEqual([])
    expect(await dumpPosts(env)).toEqual(expectedPosts)
  })

  it('keeps the dates of existing posts: each was published at its last change, and none reads as edited; image sizes unknown', async () => {
    const env = await newEnv()
    await runInitialData(env)
    await newApp(env)
    const rows = await env.query<{ id: number; published: string; modified: string; sizes: number }>(
      "SELECT `id`, DATE_FORMAT(`published_dt`, '%Y-%m-%d %H:%i:%s') AS `published`, DATE_FORMAT(`modified_dt`, '%Y-%m-%d %H:%i:%s') AS `modified`, " +
        'COUNT(`image_width`) + COUNT(`thumb_width`) + COUNT(`image_alt`) AS `sizes` FROM `blog` GROUP BY `id` ORDER BY `id`'
    )
    expect(rows.map((r) => r.published)).toEqual(samplePosts.map((p) => p.modified_dt))
    for (const r of rows) expect(r).toMatchObject({ modified: r.published, sizes: 0 })
    expect(await showCreateTable(env)).toContain('KEY `idx_blog_published_dt_id` (`published_dt`,`id`)')
    expect(await showCreateTable(env)).not.toContain('idx_blog_modified_dt_id')
  })

  it('can be restarted on the same database without changes', async () => {
    const env = await newEnv()
    await runInitialData(env)
    await closeApp(await newApp(env))
    await newApp(env)
    expect(await countPosts(env)).toBe(samplePosts.length)
    expect(await migrationsRun(env)).toEqual(MIGRATIONS)
    expect(await env.query('SELECT `name` FROM `schema_seeds`')).toHaveLength(1)
  })

  it('gives new posts ids after the sample ids', async () => {
    const env = await newEnv()
    await runInitialData(env)
    const app = await newApp(env)
    const author = await signUp(app)
    const res = await app.inject({
      method: 'POST',
      url: '/blogs/new',
      payload: urlencoded({ _csrf: author.csrf, title: 'After the samples', content: 'Next id please' }),
      headers: { ...FORM_HEADERS, cookie: author.cookie }
    })
    expect(res.statusCode).toBe(303)
    const rows = await env.query<{ id: number }>("SELECT `id` FROM `blog` WHERE `title` = 'After the samples'")
    expect(rows).toEqual([{ id: samplePosts.length + 1 }])
  })
})

describe('the sample-post seed', () => {
  it('fills a fresh database with the sample posts on first start', async () => {
    const env = await newEnv()
    await newApp(env)
    expect(await dumpPosts(env)).toEqual(expectedPosts)
    expect(await env.query('SELECT `name` FROM `schema_seeds`')).toEqual([{ name: '001-sample-posts' }])
  })

  it('loads only once: posts deleted after the first start do not come back on the next', async () => {
    const env = await newEnv()
    const first = await newApp(env)
    expect(await countPosts(env)).toBe(samplePosts.length)

    // Delete through the app, the way an admin would.
    const admin = await signUp(first)
    await makeAdmin(env, admin)
    for (const p of samplePosts) {
      const res = await first.inject({ method: 'DELETE', url: `/blogs/delete/${p.id}`, headers: { cookie: admin.cookie } })
      expect(res.statusCode).toBe(200)
    }
    expect(await countPosts(env)).toBe(0)
    await closeApp(first)

    const second = await newApp(env)
    expect(await countPosts(env)).toBe(0)
    expect(await env.query('SELECT `name` FROM `schema_seeds`')).toEqual([{ name: '001-sample-posts' }])
    const res = await second.inject('/blogs/')
    expect(res.statusCode).toBe(200)
    expect(res.body).not.toContain(samplePosts[0]!.title)
  })

  it('does not load when DB_SEED_ON_START=false: a fresh database gets the table and no posts', async () => {
    const env = await newEnv({ DB_SEED_ON_START: 'false' })
    expect(env.config.db.seedOnStart).toBe(false)
    await newApp(env)
    expect(await countPosts(env)).toBe(0)
    expect(await migrationsRun(env)).toEqual(MIGRATIONS)
    // The seed did not run, so it is not recorded either (a later start with seeding on may load it).
    const seeds = await env.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [env.database, 'schema_seeds']
    )
    expect(Number(seeds[0]!.n)).toBe(0)
  })
})
