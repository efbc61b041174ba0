import { randomUUID } from 'node:crypto'
import { createWriteStream, rmSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ATTR, SPAN } from '../telemetry/names'
import { withSpan } from '../telemetry/tracer'
import { EXTENSIONS, Sniffer, STORED_NAME } from './sniff'
import type { ImageStorage, StagedImage } from './storage'

export const UPLOAD_URL_PREFIX = '/static/uploads/'
/** Staged uploads: a dot-directory, so the static file server never serves them. */
const INCOMING = '.incoming'

/**
 * Images in a local directory. Staged files are renamed into place (atomic on one file system),
 * so a row never points at a half-written file.
 */
export class LocalImageStorage implements ImageStorage {
  /** Staged files not yet promoted or discarded: what a shutdown must not leave behind. */
  private readonly staged = new Set<string>()

  constructor(readonly dir: string) {}

  /**
   * Empties the incoming area: when the process starts nothing in it is in flight (it is what a
   * killed or timed-out process left), so waiting for the sweep's grace period only wastes disk.
   */
  async init(): Promise<void> {
    const incoming = path.join(this.dir, INCOMING)
    await fs.rm(incoming, { recursive: true, force: true })
    await fs.mkdir(incoming, { recursive: true })
  }

  /**
   * Removes the staged files still open. Synchronous so it can run in a process 'exit' handler:
   * a shutdown that times out on slow uploads ends in process.exit, where no promise settles.
   */
  removeStaged(): void {
    for (const key of this.staged) rmSync(path.join(this.dir, key), { force: true })
    this.staged.clear()
  }

  async save(source: Readable): Promise<StagedImage> {
    const key = path.join(INCOMING, randomUUID())
    const file = path.join(this.dir, key)
    const sniffer = new Sniffer()
    this.staged.add(key)
    return withSpan(SPAN.imageWrite, {}, async (span) => {
      try {
        await pipeline(source, sniffer, createWriteStream(file, { flags: 'wx' }))
      } catch (err) {
        await fs.rm(file, { force: true })
        this.staged.delete(key)
        throw err
      } finally {
        span?.setAttributes({ [ATTR.imageBytes]: sniffer.bytes, [ATTR.imageType]: sniffer.type ?? 'rejected' })
      }
      return { key, bytes: sniffer.bytes, type: sniffer.rejected ? null : sniffer.type }
    })
  }

  async promote(image: StagedImage): Promise<string> {
    if (!image.type) throw new Error('refusing to store a file that is not an image')
    const name = `${randomUUID()}.${EXTENSIONS[image.type]}`
    await fs.rename(path.join(this.dir, image.key), path.join(this.dir, name))
    this.staged.delete(image.key)
    return name
  }

  async discard(image: StagedImage): Promise<void> {
    await fs.rm(path.join(this.dir, image.key), { force: true })
    this.staged.delete(image.key)
  }

  async delete(name: string): Promise<void> {
    // Never resolved as a path unless it is a name this store made.
    if (!STORED_NAME.test(name)) return
    await fs.rm(path.join(this.dir, name), { force: true })
  }

  url(name: string): string {
    return UPLOAD_URL_PREFIX + encodeURIComponent(name)
  }

  async sweep(referenced: ReadonlySet<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = []
    const removeIfOld = async (rel: string) => {
      const p = path.join(this.dir, rel)
      const old = await fs.stat(p).then((s) => now - s.mtimeMs > graceMs, () => false)
      if (!old) return
      await fs.rm(p, { force: true })
      removed.push(rel)
    }
    for (const name of await fs.readdir(this.dir)) {
      if (STORED_NAME.test(name) && !referenced.has(name)) await removeIfOld(name)
    }
    for (const name of await fs.readdir(path.join(this.dir, INCOMING)).catch(() => [] as string[])) {
      await removeIfOld(path.join(INCOMING, name))
    }
    return removed
  }
}
