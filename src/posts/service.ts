import { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { Transaction } from 'sequelize'
import type { Viewer } from '../accounts/service'
import { outcomeUnknown } from '../errors'
import type { WorkLimit } from '../lib/work-limit'
import { ImageRejected, type ImageProcessor, type ProcessedImage } from '../images/processor'
import type { Blog, BlogInput, BlogPage, BlogRepository, ImageNames } from '../repositories/blog-repository'
import type { ImageStorage, StagedImage } from '../storage/storage'
import { checkPostForm, rejectedForm, type FormPage, type PostForm } from './form'

/** Who is writing, as the route knows them: the signed-in user, and the check of a form's CSRF token against their session. */
export interface Writer {
  viewer: Viewer
  /** Throws (403) unless `given` is the CSRF token of the writer's session. */
  checkCsrf(given: unknown): void
  /** The request's deadline and client: past the one or without the other, nothing is written. */
  limit: WorkLimit
}

/** How a write ended, for the route to answer; unexpected failures are thrown. */
export type WriteOutcome =
  | { status: 'done'; id: number }
  | { status: 'invalid'; form: FormPage; post: Blog | null }
  | { status: 'not_found' }
  | { status: 'forbidden' }

/** Anyone may read; only a post's owner or an admin may change or delete it. */
export const mayChange = (viewer: Viewer | null, post: { userId: number | null }): boolean =>
  viewer !== null && (viewer.isAdmin || (post.userId !== null && post.userId === viewer.id))

/** What a change inside the transaction did: the row it touched, and images it no longer needs. */
interface Change {
  id: number
  obsolete: (string | null)[]
}

type Work = (t: Transaction, images: ImageNames | null) => Promise<Change | null | 'forbidden'>

/** What the row stores from a checked form. */
const input = (form: PostForm): BlogInput => ({ title: form.values.title, content: form.values.content, imageAlt: form.values.image_alt })

/**
 * Posts, with their images: the only place a write's whole life is handled, in this order:
 * authorize (the form's CSRF token; for an edit, who may change the post) -> check the fields ->
 * process the image (decode and re-encode) -> stage it (image and thumbnail, written to the
 * store's staging area) -> transaction: promote, write the row -> commit -> clean up. Nothing is
 * decoded or written for a form that fails the first two steps. Row and files live or die together:
 * - the image is refused, no such post, or the work fails: rollback, staged or promoted files go;
 * - COMMIT fails: the outcome is unknown (the server may have committed), so the new files are
 *   kept and the orphan sweep removes them later if no row points to them;
 * - commit succeeds: files the change replaced or deleted are removed.
 */
export class PostsService {
  constructor(
    private readonly repo: BlogRepository,
    private readonly images: ImageStorage,
    private readonly processor: ImageProcessor,
    private readonly log: FastifyBaseLogger
  ) {}

  list(page: number, pageSize: number): Promise<BlogPage> {
    return this.repo.listPage(page, pageSize)
  }

  get(id: number): Promise<Blog | null> {
    return this.repo.findById(id)
  }

  /** A new post by the writer (their display name becomes the post's author). */
  async create(writer: Writer, form: PostForm): Promise<WriteOutcome> {
    writer.checkCsrf(form.csrf)
    const invalid = checkPostForm(form)
    if (invalid) return { status: 'invalid', form: invalid, post: null }
    return this.write(form, writer.limit, null, async (t, images) => ({ id: await this.repo.create(input(form), writer.viewer, images, t), obsolete: [] }))
  }

  /** A new image (and thumbnail) replaces the old pair; without one the old pair stays. */
  async update(writer: Writer, id: number, form: PostForm): Promise<WriteOutcome> {
    writer.checkCsrf(form.csrf)
    const post = await this.repo.findById(id)
    if (!post) return { status: 'not_found' }
    // A form with errors from someone who may not change the post learns nothing more.
    if (!mayChange(writer.viewer, post)) return { status: 'forbidden' }
    const invalid = checkPostForm(form)
    if (invalid) return { status: 'invalid', form: invalid, post }
    // Checked again under the row lock: the post may have gone or changed hands meanwhile.
    return this.write(form, writer.limit, post, async (t, images) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(writer.viewer, current)) return 'forbidden'
      await this.repo.update(id, input(form), images ?? undefined, t)
      return { id, obsolete: images ? [current.imageLoc, current.thumbLoc] : [] }
    })
  }

  async delete(id: number, viewer: Viewer): Promise<WriteOutcome> {
    return this.write(null, null, null, async (t) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(viewer, current)) return 'forbidden'
      await this.repo.delete(id, t)
      return { id, obsolete: [current.imageLoc, current.thumbLoc] }
    })
  }

  /**
   * Processes and stages the form's image (if any), then runs `work` in a transaction that first
   * promotes what was staged (image, then thumbnail). `work` answers null for "no such post",
   * 'forbidden' for "not yours". Past the limit's deadline or without its client, the write stops
   * before staging or before COMMIT, and its signal's reason is thrown: nothing is kept.
   */
  private async write(form: PostForm | null, limit: WorkLimit | null, post: Blog | null, work: Work): Promise<WriteOutcome> {
    const staged: StagedImage[] = []
    // Names promoted so far: a failure deletes these and discards the rest of what was staged.
    const promoted: string[] = []
    let keep = false
    let image: ProcessedImage | undefined
    try {
      if (form?.upload) {
        try {
          image = await this.processor.process(form.upload.data, limit ?? undefined)
        } catch (err) {
          if (!(err instanceof ImageRejected)) throw err
          return { status: 'invalid', form: rejectedForm(form, { image_file: err.message }, err.statusCode), post }
        }
        limit?.signal.throwIfAborted()
        staged.push(await this.images.save(Readable.from([image.data])))
        if (image.thumb) staged.push(await this.images.save(Readable.from([image.thumb.data])))
      }
      const t = await this.repo.begin()
      let change: Change | null | 'forbidden'
      try {
        for (const file of staged) promoted.push(await this.images.promote(file))
        const images: ImageNames | null =
          image && promoted.length > 0
            ? { imageLoc: promoted[0]!, thumbLoc: promoted[1] ?? null, width: image.width, height: image.height, thumbWidth: image.thumb?.width ?? null, thumbHeight: image.thumb?.height ?? null }
            : null
        change = await work(t, images)
        if (change && change !== 'forbidden') limit?.signal.throwIfAborted()
      } catch (err) {
        await this.rollback(t)
        throw err
      }
      if (!change || change === 'forbidden') {
        await this.rollback(t)
        return { status: change ? 'forbidden' : 'not_found' }
      }
      try {
        await t.commit()
      } catch (err) {
        keep = true
        if (promoted.length > 0) this.log.warn({ images: promoted }, 'commit outcome unknown; keeping the new images for the orphan sweep')
        throw outcomeUnknown(err)
      }
      keep = true
      for (const name of change.obsolete) {
        if (name) await this.images.delete(name).catch((err: unknown) => this.log.warn({ err, image: name }, 'could not remove replaced image'))
      }
      return { status: 'done', id: change.id }
    } finally {
      if (!keep) await this.discard(staged, promoted)
    }
  }

  private async rollback(t: Transaction): Promise<void> {
    await t.rollback().catch((err: unknown) => this.log.warn({ err }, 'rollback failed'))
  }

  /**
   * The one clean-up of a write that did not happen: promoted files are deleted, the rest of what
   * was staged is discarded. A failure here is logged, not thrown (the write's own error is what
   * the client is answered); the orphan sweep removes what is left.
   */
  private async discard(staged: StagedImage[], promoted: string[]): Promise<void> {
    for (const name of promoted) await this.images.delete(name).catch((err: unknown) => this.log.warn({ err, image: name }, 'could not remove an image of a failed write'))
    for (const file of staged.slice(promoted.length)) await this.images.discard(file).catch((err: unknown) => this.log.warn({ err, key: file.key }, 'could not discard a staged upload'))
  }
}
