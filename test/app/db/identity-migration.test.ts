import { afterEach, describe, expect, it } from 'vitest'
import type { Sequelize } from 'sequelize'
import { prepareDatabase } from '../../../src/db/bootstrap'
import { createMigrator } from '../../../src/db/migrator'
import { createSequelize } from '../../../src/db/sequelize'
import { createTestEnv, type TestEnv } from '../../kit/app'

// Migration 004-identity on a database that has accounts from before it: emails become canonical
// in a binary column; two accounts whose emails become the same are reported, never merged.

const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child() { return silent }, level: 'silent', silent() {} }
let env: TestEnv | undefined
let sequelize: Sequelize | undefined
afterEach(async () => {
  await sequelize?.close()
  await env?.cleanup()
  sequelize = env = undefined
})

/** A database migrated up to the accounts as first shipped (003), and its migrator. */
async function before004() {
  env = await createTestEnv()
  await prepareDatabase(env.config.db, silent as never)
  sequelize = createSequelize(env.config.db)
  const migrator = createMigrator(sequelize)
  await migrator.up({ to: '003-accounts' })
  return migrator
}

const addUser = (email: string, name: string) => env!.query('INSERT INTO `user` (`email`, `display_name`) VALUES (?, ?)', [email, name])
const emails = async () => (await env!.query<{ id: number; email: string | null }>('SELECT `id`, `email` FROM `user` ORDER BY `id`')).map((r) => r.email)

describe('migration 004-identity', () => {
  it('stops before changing anything when two accounts collide once canonical, naming them by id; runs once one is cleared', async () => {
    const migrator = await before004()
    // utf8mb4_unicode_ci weighs every character beyond U+FFFF the same: both rows fit its unique key.
    await addUser('alice@example.test', 'Alice')
    await addUser('\u{1D41A}lice@example.test', 'Mallory')
    await addUser('ＢＯＢ@example.test', 'Bob')
    const [alice, mallory] = await env!.query<{ id: number }>('SELECT `id` FROM `user` WHERE `display_name` IN (?, ?) ORDER BY `id`', ['Alice', 'Mallory'])
    const before = await emails()

    const failed = await migrator.up().then(() => null, (err: Error) => err)
    expect(failed, 'the migration should refuse').not.toBeNull()
    const message = String(failed!.message) + String((failed as { cause?: Error }).cause?.message ?? '')
    expect(message).toContain(`users ${alice!.id} and ${mallory!.id}`)
    expect(message).toContain('never merged')
    // No email in the message (it reaches the log), and nothing changed.
    expect(message).not.toContain('example.test')
    expect(await emails()).toEqual(before)
    expect(await env!.query("SELECT `name` FROM `schema_migrations` WHERE `name` = '004-identity'")).toEqual([])

    await env!.query('UPDATE `user` SET `email` = NULL WHERE `id` = ?', [mallory!.id])
    await migrator.up()
    expect(await emails()).toEqual(['alice@example.test', null, 'bob@example.test'])
    const [column] = await env!.query<{ COLLATION_NAME: string }>(
      "SELECT `COLLATION_NAME` FROM information_schema.`COLUMNS` WHERE `TABLE_SCHEMA` = ? AND `TABLE_NAME` = 'user' AND `COLUMN_NAME` = 'email'",
      [env!.database]
    )
    expect(column!.COLLATION_NAME).toBe('utf8mb4_bin')
    // Every display name got its look-alike key.
    expect(await env!.query('SELECT `id` FROM `user` WHERE `display_name_key` IS NULL')).toEqual([])
  })

  it('keeps the key of the older of two look-alike display names; the newer keeps its name and no key', async () => {
    const migrator = await before004()
    await addUser('first@example.test', 'Alice')
    await addUser('second@example.test', '\u{1D400}lice')
    await migrator.up()
    const rows = await env!.query<{ display_name: string; has_key: number }>('SELECT `display_name`, `display_name_key` IS NOT NULL AS `has_key` FROM `user` ORDER BY `id`')
    expect(rows).toEqual([{ display_name: 'Alice', has_key: 1 }, { display_name: '\u{1D400}lice', has_key: 0 }])
  })

  it('drops the anonymous sessions the forms used to need', async () => {
    const migrator = await before004()
    await env!.query("INSERT INTO `session` (`id`, `user_id`, `csrf_token`, `expires_dt`) VALUES (REPEAT('a', 64), NULL, REPEAT('b', 43), UTC_TIMESTAMP() + INTERVAL 1 HOUR)")
    await migrator.up()
    expect(await env!.query('SELECT `id` FROM `session`')).toEqual([])
  })
})
