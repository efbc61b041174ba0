import type { FastifyBaseLogger } from 'fastify'
import type { Transaction } from 'sequelize'
import type { Viewer } from '../accounts/service'
import type { Blog, BlogPage, BlogRepository } from '../repositories/blog-repository'
import type { ImageStorage, StagedImage } from '../storage/storage'
import { hasErrors, type ParsedForm } from './form'

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
 * transaction, image promotion, cleanup), so row and file live or die together:
 * - invalid form, no such post, or the work fails: rollback, the staged or promoted image goes;
 * - COMMIT fails: the outcome is unknown (the server may have committed), so the new image is
 *   kept and the orphan sweep removes it later if no row points to it;
 * - commit succeeds: images the change replaced or deleted are removed.
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
    return this.write(form.image, async (t, image) => ({ id: await this.repo.create(form.values, author, image, t), obsolete: [] }))
  }

  /** A new image replaces the old one; without one the old image stays. */
  async update(id: number, form: ParsedForm, viewer: Viewer): Promise<WriteOutcome> {
    if (await this.rejectInvalid(form)) return { status: 'invalid' }
    return this.write(form.image, async (t, image) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(viewer, current)) return 'forbidden'
      await this.repo.update(id, form.values, image ?? undefined, t)
      return { id, obsolete: image ? [current.imageLoc] : [] }
    })
  }

  async delete(id: number, viewer: Viewer): Promise<WriteOutcome> {
    return this.write(null, async (t) => {
      const current = await this.repo.lockForChange(id, t)
      if (!current) return null
      if (!mayChange(viewer, current)) return 'forbidden'
      await this.repo.delete(id, t)
      return { id, obsolete: [current.imageLoc] }
    })
  }

  private async rejectInvalid(form: ParsedForm): Promise<boolean> {
    if (!hasErrors(form)) return false
    if (form.image) await this.images.discard(form.image)
    return true
  }

  /** One transaction around `work`; `work` answers null for "no such post", 'forbidden' for "not yours". */
  private async write(staged: StagedImage | null, work: (t: Transaction, image: string | null) => Promise<Change | null | 'forbidden'>): Promise<WriteOutcome> {
    let t: Transaction
    try {
      t = await this.repo.begin()
    } catch (err) {
      if (staged) await this.images.discard(staged)
      throw err
    }
    let image: string | null = null
    let change: Change | null | 'forbidden'
    try {
      if (staged) image = await this.images.promote(staged)
      change = await work(t, image)
    } catch (err) {
      await this.undo(t, staged, image)
      throw err
    }
    if (!change || change === 'forbidden') {
      await this.undo(t, staged, image)
      return { status: change ? 'forbidden' : 'not_found' }
    }
    try {
      await t.commit()
    } catch (err) {
      if (image) this.log.warn({ image }, 'commit outcome unknown; keeping the new image for the orphan sweep')
      throw err
    }
    for (const name of change.obsolete) {
      if (name) await this.images.delete(name).catch((err: unknown) => this.log.warn({ err, image: name }, 'could not remove replaced image'))
    }
    return { status: 'done', id: change.id }
  }

  private async undo(t: Transaction, staged: StagedImage | null, image: string | null): Promise<void> {
    await t.rollback().catch((err: unknown) => this.log.warn({ err }, 'rollback failed'))
    if (image) await this.images.delete(image)
    else if (staged) await this.images.discard(staged)
  }
}
