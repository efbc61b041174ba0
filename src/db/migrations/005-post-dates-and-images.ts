import type { MigrationFn } from 'umzug'
import type { QueryInterface } from 'sequelize'

// Issue 28. A post keeps its publication date when it is edited: `published_dt` orders the list
// (its index replaces the one on `modified_dt`, which now only says when it was last edited).
// Existing posts were published at their last change, as far as anyone knows. Each image keeps
// its size and its thumbnail's (the page reserves the box and offers both sizes), NULL for images
// stored before; and an optional description, the image's alt text.
export const up: MigrationFn<QueryInterface> = async ({ context }) => {
  const q = (sql: string) => context.sequelize.query(sql)
  await q(`
    ALTER TABLE \`blog\`
      ADD COLUMN \`image_width\` SMALLINT UNSIGNED NULL DEFAULT NULL AFTER \`thumb_loc\`,
      ADD COLUMN \`image_height\` SMALLINT UNSIGNED NULL DEFAULT NULL AFTER \`image_width\`,
      ADD COLUMN \`thumb_width\` SMALLINT UNSIGNED NULL DEFAULT NULL AFTER \`image_height\`,
      ADD COLUMN \`thumb_height\` SMALLINT UNSIGNED NULL DEFAULT NULL AFTER \`thumb_width\`,
      ADD COLUMN \`image_alt\` VARCHAR(250) NULL DEFAULT NULL AFTER \`thumb_height\`,
      ADD COLUMN \`published_dt\` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP AFTER \`image_alt\``)
  await q('UPDATE `blog` SET `published_dt` = `modified_dt`')
  await q('ALTER TABLE `blog` ADD KEY `idx_blog_published_dt_id` (`published_dt`, `id`), DROP KEY `idx_blog_modified_dt_id`')
}

export const down: MigrationFn<QueryInterface> = async ({ context }) => {
  await context.sequelize.query(`
    ALTER TABLE \`blog\`
      ADD KEY \`idx_blog_modified_dt_id\` (\`modified_dt\`, \`id\`),
      DROP KEY \`idx_blog_published_dt_id\`,
      DROP COLUMN \`published_dt\`, DROP COLUMN \`image_alt\`, DROP COLUMN \`thumb_height\`,
      DROP COLUMN \`thumb_width\`, DROP COLUMN \`image_height\`, DROP COLUMN \`image_width\``)
}
