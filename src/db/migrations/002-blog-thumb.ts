import type { MigrationFn } from 'umzug'
import type { QueryInterface } from 'sequelize'

// The list page's thumbnail (issue 13). Skipped when the column exists, so a database made by the
// current initial_data.sql (which has it) migrates cleanly; MySQL has no ADD COLUMN IF NOT EXISTS.
export const up: MigrationFn<QueryInterface> = async ({ context }) => {
  const [rows] = await context.sequelize.query(
    "SELECT 1 FROM information_schema.`COLUMNS` WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = 'blog' AND `COLUMN_NAME` = 'thumb_loc'"
  )
  if ((rows as unknown[]).length > 0) return
  await context.sequelize.query('ALTER TABLE `blog` ADD COLUMN `thumb_loc` VARCHAR(255) NULL DEFAULT NULL AFTER `image_loc`')
}

export const down: MigrationFn<QueryInterface> = async ({ context }) => {
  await context.removeColumn('blog', 'thumb_loc')
}
