import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import type { BlogModel } from '../db/models/blog'

export const EXCERPT_CHARS = 200

export interface BlogSummary {
  id: number
  title: string
  author: string
  /** The content's first EXCERPT_CHARS characters, cut back to the end of a word when longer. */
  excerpt: string
  /** True when the content is longer than the excerpt. */
  truncated: boolean
  imageLoc: string | null
  /** The list page's smaller copy; null for posts without an image or stored before thumbnails. */
  thumbLoc: string | null
  /** When it was first published: ISO 8601 in UTC, e.g. 2026-09-01T09:15:00Z. Edits keep it. */
  publishedAt: string
  /** When it was last edited (ISO 8601 in UTC); null when never since it was published. */
  editedAt: string | null
}

export interface Blog {
  id: number
  title: string
  author: string
  content: string
  imageLoc: string | null
  thumbLoc: string | null
  /** Pixel sizes of the image and its thumbnail; null when unknown (stored before they were kept) or no thumbnail. */
  imageWidth: number | null
  imageHeight: number | null
  thumbWidth: number | null
  thumbHeight: number | null
  /** The image's description (alt text); null: none given. */
  imageAlt: string | null
  /** The user who may change it (besides admins); null: only admins. */
  userId: number | null
  /** ISO 8601 in UTC. */
  publishedAt: string
  editedAt: string | null
}

export interface BlogInput {
  title: string
  content: string
  /** The image's description; blank: none. */
  imageAlt: string
}

/** A post's stored image and its thumbnail (null when the image is as small as a thumbnail), with their sizes. */
export interface ImageNames {
  imageLoc: string
  thumbLoc: string | null
  width: number
  height: number
  thumbWidth: number | null
  thumbHeight: number | null
}

/** Who writes a new post: the row keeps both (the name as shown then, the id for ownership). */
export interface BlogAuthor {
  id: number
  displayName: string
}

export interface BlogPage {
  items: BlogSummary[]
  page: number
  hasPrevious: boolean
  hasNext: boolean
}

export interface SummaryRow {
  id: number
  title: string
  author: string
  excerpt: string
  truncated: number
  image_loc: string | null
  thumb_loc: string | null
  published_iso: string
  edited_iso: string | null
}

// A cut excerpt ends at a word: back to the last space, unless that would leave less than this
// share of it (one very long word).
const MIN_CUT = 0.6

/** The excerpt up to the last whole word (the SQL cuts it by characters). */
export function wordExcerpt(excerpt: string): string {
  const end = excerpt.search(/\s+\S*$/)
  return end >= excerpt.length * MIN_CUT ? excerpt.slice(0, end) : excerpt
}

export const toSummary = (r: SummaryRow): BlogSummary => ({
  id: r.id,
  title: r.title,
  author: r.author,
  excerpt: r.truncated === 1 ? wordExcerpt(r.excerpt) : r.excerpt,
  truncated: r.truncated === 1,
  imageLoc: r.image_loc,
  thumbLoc: r.thumb_loc,
  publishedAt: r.published_iso,
  editedAt: r.edited_iso
})

// The dates as text, formatted by the server: a DATETIME would be parsed by mysql2 and then again
// by Sequelize (moment-timezone, ~90 us a page) only for the view to format it once more. A post
// counts as edited when it was changed after the second it was published.
const ISO = "'%Y-%m-%dT%H:%i:%sZ'"
const DATES_ISO = `DATE_FORMAT(\`published_dt\`, ${ISO}) AS \`published_iso\`, IF(\`modified_dt\` > \`published_dt\`, DATE_FORMAT(\`modified_dt\`, ${ISO}), NULL) AS \`edited_iso\``

// Reads only what the list shows (the excerpt is cut by the server, which counts characters as
// the column does, so an emoji is never split; profiled: cutting it in JS was 5% of the page;
// only its end is moved back to a word here), walks idx_blog_published_dt_id backwards, and
// fetches one extra row to learn whether a next page exists (no COUNT(*) per page view).
export const LIST_SQL =
  'SELECT `id`, `title`, `author`, LEFT(`content`, $1) AS `excerpt`, CHAR_LENGTH(`content`) > $1 AS `truncated`, ' +
  `\`image_loc\`, \`thumb_loc\`, ${DATES_ISO} ` +
  'FROM `blog` ORDER BY `published_dt` DESC, `id` DESC LIMIT $2 OFFSET $3'

const SHOW_SQL =
  'SELECT `id`, `title`, `author`, `content`, `image_loc`, `thumb_loc`, `image_width`, `image_height`, `thumb_width`, `thumb_height`, `image_alt`, ' +
  `\`user_id\`, ${DATES_ISO} FROM \`blog\` WHERE \`id\` = $1`

type ShowRow = SummaryRow & {
  content: string
  user_id: number | null
  image_width: number | null
  image_height: number | null
  thumb_width: number | null
  thumb_height: number | null
  image_alt: string | null
}

const imageColumns = (images: ImageNames) => ({
  image_loc: images.imageLoc,
  thumb_loc: images.thumbLoc,
  image_width: images.width,
  image_height: images.height,
  thumb_width: images.thumbWidth,
  thumb_height: images.thumbHeight
})

/** Blank is no description. */
const altColumn = (imageAlt: string) => (imageAlt.trim() === '' ? null : imageAlt)

/**
 * The only code that touches the blog table. Plain objects in and out; reads go through
 * prepared statements with plain rows (no model instances on the hot path), writes through the
 * model inside the caller's transaction.
 */
export class BlogRepository {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly Blog: typeof BlogModel
  ) {}

  async listPage(page: number, pageSize: number): Promise<BlogPage> {
    const rows = await this.sequelize.query<SummaryRow>(LIST_SQL, {
      type: QueryTypes.SELECT,
      // As strings: mysql2 sends JS numbers as DOUBLE, which MySQL 8 rejects in LIMIT.
      bind: [String(EXCERPT_CHARS), String(pageSize + 1), String((page - 1) * pageSize)]
    })
    const items = rows.slice(0, pageSize).map(toSummary)
    return { items, page, hasPrevious: page > 1, hasNext: rows.length > pageSize }
  }

  async findById(id: number, transaction?: Transaction): Promise<Blog | null> {
    const rows = await this.sequelize.query<ShowRow>(SHOW_SQL, {
      type: QueryTypes.SELECT,
      bind: [id],
      ...(transaction ? { transaction } : {})
    })
    const r = rows[0]
    if (!r) return null
    return {
      id: r.id,
      title: r.title,
      author: r.author,
      content: r.content,
      imageLoc: r.image_loc,
      thumbLoc: r.thumb_loc,
      imageWidth: r.image_width,
      imageHeight: r.image_height,
      thumbWidth: r.thumb_width,
      thumbHeight: r.thumb_height,
      imageAlt: r.image_alt,
      userId: r.user_id,
      publishedAt: r.published_iso,
      editedAt: r.edited_iso
    }
  }

  async create(input: BlogInput, author: BlogAuthor, images: ImageNames | null, transaction: Transaction): Promise<number> {
    // Published and last changed at the same instant: not "edited".
    const now = new Date()
    const row = await this.Blog.create(
      {
        title: input.title,
        author: author.displayName,
        user_id: author.id,
        content: input.content,
        image_loc: null,
        ...(images ? imageColumns(images) : {}),
        image_alt: altColumn(input.imageAlt),
        published_dt: now,
        modified_dt: now
      },
      { transaction }
    )
    return row.id
  }

  /**
   * Locks a post's row for the rest of the transaction and reads what a change needs to know:
   * its images and its owner (null: no such post). Two concurrent edits cannot both think they
   * own the old images, and the owner cannot change between the check and the write.
   */
  async lockForChange(id: number, transaction: Transaction): Promise<{ imageLoc: string | null; thumbLoc: string | null; userId: number | null } | null> {
    const row = await this.Blog.findByPk(id, { attributes: ['id', 'image_loc', 'thumb_loc', 'user_id'], transaction, lock: transaction.LOCK.UPDATE, raw: true })
    return row && { imageLoc: row.image_loc, thumbLoc: row.thumb_loc, userId: row.user_id }
  }

  /**
   * Updates a locked post: title, content, the image's description, and the image pair when a new
   * one is given. The author and the publication date stay.
   */
  async update(id: number, input: BlogInput, images: ImageNames | undefined, transaction: Transaction): Promise<void> {
    await this.Blog.update(
      {
        title: input.title,
        content: input.content,
        image_alt: altColumn(input.imageAlt),
        modified_dt: new Date(),
        ...(images !== undefined ? imageColumns(images) : {})
      },
      { where: { id }, transaction }
    )
  }

  async delete(id: number, transaction: Transaction): Promise<void> {
    await this.Blog.destroy({ where: { id }, transaction })
  }

  /** Every image and thumbnail name a row points to (for the orphan-file sweep). */
  async imageNames(): Promise<Set<string>> {
    const rows = await this.sequelize.query<{ name: string }>(
      'SELECT `image_loc` AS `name` FROM `blog` WHERE `image_loc` IS NOT NULL UNION ALL SELECT `thumb_loc` FROM `blog` WHERE `thumb_loc` IS NOT NULL',
      { type: QueryTypes.SELECT }
    )
    return new Set(rows.map((r) => r.name))
  }

  /** Starts the transaction a write's owner (the posts service) commits or rolls back itself. */
  begin(): Promise<Transaction> {
    return this.sequelize.transaction()
  }
}
