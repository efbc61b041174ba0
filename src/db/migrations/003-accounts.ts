import type { MigrationFn } from 'umzug'
import type { QueryInterface, Sequelize } from 'sequelize'

// Accounts: users, server-side sessions, API tokens, sign-in throttling, and an owner for each
// post. Literal DDL (a migration is history). Existing posts keep their author: each distinct
// author becomes a user without email or password (nobody can sign in as them; an admin can
// still change their posts).
export const up: MigrationFn<QueryInterface> = async ({ context }) => {
  const q = (sql: string) => context.sequelize.query(sql)
  await q(`
    CREATE TABLE \`user\` (
      \`id\` INT NOT NULL AUTO_INCREMENT,
      \`email\` VARCHAR(254) NULL DEFAULT NULL,
      \`display_name\` VARCHAR(100) NOT NULL,
      \`password_hash\` VARCHAR(255) NULL DEFAULT NULL,
      \`is_admin\` TINYINT(1) NOT NULL DEFAULT 0,
      \`created_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY (\`id\`),
      UNIQUE KEY \`uq_user_email\` (\`email\`),
      UNIQUE KEY \`uq_user_display_name\` (\`display_name\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
  // The id is the SHA-256 of the cookie's token: a copy of this table opens no session.
  await q(`
    CREATE TABLE \`session\` (
      \`id\` CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`user_id\` INT NULL DEFAULT NULL,
      \`csrf_token\` CHAR(43) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`created_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      \`expires_dt\` DATETIME NOT NULL,
      PRIMARY KEY (\`id\`),
      KEY \`idx_session_expires_dt\` (\`expires_dt\`),
      KEY \`idx_session_user_id\` (\`user_id\`),
      CONSTRAINT \`fk_session_user\` FOREIGN KEY (\`user_id\`) REFERENCES \`user\` (\`id\`) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
  await q(`
    CREATE TABLE \`api_token\` (
      \`id\` INT NOT NULL AUTO_INCREMENT,
      \`user_id\` INT NOT NULL,
      \`name\` VARCHAR(100) NOT NULL,
      \`token_hash\` CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`created_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      \`last_used_dt\` DATETIME NULL DEFAULT NULL,
      PRIMARY KEY (\`id\`),
      UNIQUE KEY \`uq_api_token_hash\` (\`token_hash\`),
      KEY \`idx_api_token_user_id\` (\`user_id\`),
      CONSTRAINT \`fk_api_token_user\` FOREIGN KEY (\`user_id\`) REFERENCES \`user\` (\`id\`) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
  // Failed sign-ins per (email, client), shared by every replica.
  await q(`
    CREATE TABLE \`login_throttle\` (
      \`key_hash\` CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      \`failures\` INT NOT NULL,
      \`reset_dt\` DATETIME NOT NULL,
      PRIMARY KEY (\`key_hash\`),
      KEY \`idx_login_throttle_reset_dt\` (\`reset_dt\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
  await q(`
    ALTER TABLE \`blog\`
      ADD COLUMN \`user_id\` INT NULL DEFAULT NULL,
      ADD KEY \`idx_blog_user_id\` (\`user_id\`),
      ADD CONSTRAINT \`fk_blog_user\` FOREIGN KEY (\`user_id\`) REFERENCES \`user\` (\`id\`) ON DELETE SET NULL`)
  await adoptAuthors(context.sequelize)
}

/**
 * Gives every post without an owner a user named after its author (made without email or
 * password when missing). Also run by the sample-post seed, and safe to run again.
 */
export async function adoptAuthors(sequelize: Sequelize): Promise<void> {
  await sequelize.query(
    'INSERT IGNORE INTO `user` (`display_name`) SELECT DISTINCT `author` FROM `blog` WHERE `user_id` IS NULL'
  )
  await sequelize.query(
    'UPDATE `blog` JOIN `user` ON `user`.`display_name` = `blog`.`author` SET `blog`.`user_id` = `user`.`id` WHERE `blog`.`user_id` IS NULL'
  )
}

export const down: MigrationFn<QueryInterface> = async ({ context }) => {
  await context.sequelize.query('ALTER TABLE `blog` DROP FOREIGN KEY `fk_blog_user`, DROP KEY `idx_blog_user_id`, DROP COLUMN `user_id`')
  for (const table of ['login_throttle', 'api_token', 'session', 'user']) await context.dropTable(table)
}
