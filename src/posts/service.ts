import type { FastifyBaseLogger } from 'fastify'
import type { Transaction } from 'sequelize'
import type { Viewer } from '../accounts/service'
import { outcomeUnknown } from '../errors'
import type { Blog, BlogPage, BlogRepository, ImageNames } from '../repositories/blog-repository'
import type { ImageStorage } from '../storage/storage'
import { discardUpload, hasErrors, type ParsedForm, type StagedUpload } from './form'

/** How a write ended, for the route to answer; unexpected failures are thrown. */
export type WriteOutcome = { status: 'done'; id: number } | { status: 'invalid' } | { status: 'not_found' } | { status: 'forbidden' }

/** Anyone may read; only a post's owner or an admin may change or delete it. */
export const mayChange = (viewer: Viewer | null, post: { userId: number | null }): boolean =>
  viewer !== null && (viewer.isAdmin || (post.userId !== null && post.userId === viewer.id))

/** What a change inside the transaction did: the row it touched, and images it no longer needs. */
interface Change {
  id: number
  obsolete: (string | null)[]
}

/**
 * Posts, with their images: the only place a write's whole life is handled (staged upload,
 * transaction, image promotion, cleanup), so row and files live or die together. An upload is
 * two files (the image and its thumbnail), handled as one:
 * - invalid form, no such post, or the work fails: rollback, the staged or promoted files go;
 * - COMMIT fails: the outcome is unknown (the server may have committed), so the new files are
 *   kept and the orphan sweep removes them later if no row points to them;
 * - commit succeeds: files the change replaced or deleted are removed.
 */
export class PostsService {
  constructor(
    private readonly repo: BlogRepository,
    private readonly images: ImageStorage,
    private readonly log: FastifyBaseLogger
  ) {}

  list(page: number, pageSize: number): Promise<BlogPage> {
    return this.repo.listPage(page, pageSize)
  }

  get(id: number): Promise<Blog | null> {
    return this.repo.findById(id)
  }

  /** A new post by `author` (the signed-in user: their display name becomes the post's author). */
  async create(form: ParsedForm, author: Viewer): Promise<WriteOutcome> {
    if (await this.rejectInvalid(form)) return { status: 'invalid' }
    return this.write(form.image, async (t, images) => ({ id: await this.repo.create(form.values, author, images, t), obsolete: [] }))
  }

  /** A new image (and thumbnail) replaces the old pair; without one the old pair stays. */
  async update(id: number, form: ParsedForm, viewer: Viewer): Promise<WriteOutcome> {
    if (await this.rejectInvalid(form)) return { status: 'invalid' }
    return this.write(form.image, async (t, images) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(viewer, current)) return 'forbidden'
      await this.repo.update(id, form.values, images ?? undefined, t)
      return { id, obsolete: images ? [current.imageLoc, current.thumbLoc] : [] }
    })
  }

  async delete(id: number, viewer: Viewer): Promise<WriteOutcome> {
    return this.write(null, async (t) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(viewer, current)) return 'forbidden'
      await this.repo.delete(id, t)
      return { id, obsolete: [current.imageLoc, current.thumbLoc] }
    })
  }

  private async rejectInvalid(form: ParsedForm): Promise<boolean> {
    if (!hasErrors(form)) return false
    if (form.image) await discardUpload(this.images, form.image)
    return true
  }

  /** One transaction around `work`; `work` answers null for "no such post", 'forbidden' for "not yours". */
  private async write(staged: StagedUpload | null, work: (t: Transaction, images: ImageNames | null) => Promise<Change | null | 'forbidden'>): Promise<WriteOutcome> {
    let t: Transaction
    try {
      t = await this.repo.begin()
    } catch (err) {
      if (staged) await discardUpload(this.images, staged)
      throw err
    }
    // Names promoted so far: an undo deletes these and discards the rest of the upload.
    const promoted: string[] = []
    let change: Change | null | 'forbidden'
    try {
      let images: ImageNames | null = null
      if (staged) {
        const imageLoc = await this.images.promote(staged.image)
        promoted.push(imageLoc)
        const thumbLoc = staged.thumb ? await this.images.promote(staged.thumb) : null
        if (thumbLoc) promoted.push(thumbLoc)
        images = { imageLoc, thumbLoc }
      }
      change = await work(t, images)
    } catch (err) {
      await this.undo(t, staged, promoted)
      throw err
    }
    if (!change || change === 'forbidden') {
      await this.undo(t, staged, promoted)
      return { status: change ? 'forbidden' : 'not_found' }
    }
    try {
      await t.commit()
    } catch (err) {
      if (promoted.length > 0) this.log.warn({ images: promoted }, 'commit outcome unknown; keeping the new images for the orphan sweep')
      throw outcomeUnknown(err)
    }
    for (const name of change.obsolete) {
      if (name) await this.images.delete(name).catch((err: unknown) => this.log.warn({ err, image: name }, 'could not remove replaced image'))
    }
    return { status: 'done', id: change.id }
  }

  private async undo(t: Transaction, staged: StagedUpload | null, promoted: string[]): Promise<void> {
    await t.rollback().catch((err: unknown) => this.log.warn({ err }, 'rollback failed'))
    for (const name of promoted) await this.images.delete(name)
    if (!staged) return
    // What was not promoted yet is still staged (discarding a promoted key is a no-op).
    if (promoted.length === 0) await this.images.discard(staged.image)
    if (staged.thumb && promoted.length < 2) await this.images.discard(staged.thumb)
  }
}
