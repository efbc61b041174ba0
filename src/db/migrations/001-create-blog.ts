import type { MigrationFn } from 'umzug'
import type { QueryInterface } from 'sequelize'

// Same DDL as initial_data.sql (a test compares the two, and the column lengths with
// src/posts/fields.ts: a migration is history, so it keeps its literals), with IF NOT EXISTS so a database
// first made by initial_data.sql (e.g. the Compose MySQL) migrates cleanly.
export const up: MigrationFn<QueryInterface> = async ({ context }) => {
  await context.sequelize.query(`
    CREATE TABLE IF NOT EXISTS \`blog\` (
      \`id\` INT NOT NULL AUTO_INCREMENT,
      \`title\` VARCHAR(200) NOT NULL,
      \`author\` VARCHAR(100) NOT NULL,
      \`content\` TEXT NOT NULL,
      \`image_loc\` VARCHAR(255) NULL DEFAULT NULL,
      \`modified_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY (\`id\`),
      KEY \`idx_blog_modified_dt_id\` (\`modified_dt\`, \`id\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
}

export const down: MigrationFn<QueryInterface> = async ({ context }) => {
  await context.dropTable('blog')
}
