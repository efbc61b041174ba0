import type { MigrationFn } from 'umzug'
import { QueryTypes, type QueryInterface, type Sequelize } from 'sequelize'
import { canonicalEmail, EMAIL_MAX, storedNameKey } from '../../accounts/fields'
import { characterCount } from '../../validation/text'

/**
 * Identity (issue 25): every email in its one canonical form (src/accounts/fields.ts
 * canonicalEmail) in a binary-collated column, so the unique key and every lookup compare exact
 * strings (utf8mb4_unicode_ci held `ｃｈｉｅｆ@` equal to `chief@` and every character beyond
 * U+FFFF equal to every other); a key per display name for look-alike names; and a table for the
 * secret that signs the forms' CSRF tokens before sign-in (shared by every replica).
 *
 * Two existing accounts whose emails become the same are not merged: the migration stops before
 * changing anything and names them (by id), for an operator to decide.
 */
export class IdentityCollisionError extends Error {
  override name = 'IdentityCollisionError'
}

interface UserRow {
  id: number
  email: string | null
}

/** The user ids whose emails collide once canonical (each group), or are too long in that form. */
export async function emailConflicts(sequelize: Sequelize): Promise<{ collisions: number[][]; tooLong: number[] }> {
  const rows = await sequelize.query<UserRow>('SELECT `id`, `email` FROM `user` WHERE `email` IS NOT NULL ORDER BY `id`', { type: QueryTypes.SELECT })
  const byEmail = new Map<string, number[]>()
  const tooLong: number[] = []
  for (const r of rows) {
    const { email } = canonicalEmail(r.email!)
    if (characterCount(email) > EMAIL_MAX) tooLong.push(r.id)
    byEmail.set(email, [...(byEmail.get(email) ?? []), r.id])
  }
  return { collisions: [...byEmail.values()].filter((ids) => ids.length > 1), tooLong }
}

export const up: MigrationFn<QueryInterface> = async ({ context }) => {
  const sequelize = context.sequelize
  const { collisions, tooLong } = await emailConflicts(sequelize)
  if (collisions.length > 0 || tooLong.length > 0) {
    const groups = collisions.map((ids) => `users ${ids.join(' and ')}`).join('; ')
    throw new IdentityCollisionError(
      'Migration 004-identity stopped before changing anything. ' +
        (collisions.length > 0 ? `These accounts have emails that are the same once canonical (NFKC and case folded): ${groups}. ` : '') +
        (tooLong.length > 0 ? `These accounts have emails longer than ${EMAIL_MAX} characters once canonical: users ${tooLong.join(', ')}. ` : '') +
        'Accounts are never merged: for each, keep one and clear the email of the others ' +
        '(UPDATE `user` SET `email` = NULL WHERE `id` = ...: that account can no longer sign in; its posts stay), then start again.'
    )
  }
  const q = (sql: string, bind: unknown[] = []) => sequelize.query(sql, { bind })
  // Binary first: the canonical values written next are distinct as bytes, not always as unicode_ci.
  await q('ALTER TABLE `user` MODIFY `email` VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL DEFAULT NULL')
  const rows = await sequelize.query<UserRow>('SELECT `id`, `email` FROM `user` WHERE `email` IS NOT NULL', { type: QueryTypes.SELECT })
  for (const r of rows) {
    const { email } = canonicalEmail(r.email!)
    if (email !== r.email) await q('UPDATE `user` SET `email` = $1 WHERE `id` = $2', [email, r.id])
  }
  await q(
    'ALTER TABLE `user` ADD COLUMN `display_name_key` CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL DEFAULT NULL AFTER `display_name`, ' +
      'ADD UNIQUE KEY `uq_user_display_name_key` (`display_name_key`)'
  )
  await fillDisplayNameKeys(sequelize)
  // Forms before sign-in no longer need a session row (signed double-submit tokens instead).
  await q('DELETE FROM `session` WHERE `user_id` IS NULL')
  await q(`
    CREATE TABLE \`app_secret\` (
      \`name\` VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`secret\` CHAR(43) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`created_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY (\`name\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
}

/**
 * Gives each user without one the key of their display name (src/accounts/fields.ts), oldest
 * first. A name that looks like an older user's keeps no key (UPDATE IGNORE skips the duplicate):
 * it stays as it was, and nobody new can take it. Also run after the sample-post seed adopts its
 * authors; safe to run again.
 */
export async function fillDisplayNameKeys(sequelize: Sequelize): Promise<void> {
  const rows = await sequelize.query<{ id: number; display_name: string }>(
    'SELECT `id`, `display_name` FROM `user` WHERE `display_name_key` IS NULL ORDER BY `id`',
    { type: QueryTypes.SELECT }
  )
  for (const r of rows) {
    await sequelize.query('UPDATE IGNORE `user` SET `display_name_key` = $1 WHERE `id` = $2', { bind: [storedNameKey(r.display_name), r.id] })
  }
}

export const down: MigrationFn<QueryInterface> = async ({ context }) => {
  const q = (sql: string) => context.sequelize.query(sql)
  await context.dropTable('app_secret')
  await q('ALTER TABLE `user` DROP KEY `uq_user_display_name_key`, DROP COLUMN `display_name_key`')
  // The emails stay canonical (the spellings they replaced are gone).
  await q('ALTER TABLE `user` MODIFY `email` VARCHAR(254) NULL DEFAULT NULL')
}
