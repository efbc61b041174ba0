import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { SpanStatusCode } from '@opentelemetry/api'
import fp from 'fastify-plugin'
import { tracer } from './request-timing'

export type ImageType = 'png' | 'jpeg' | 'gif' | 'webp'

const EXTENSIONS: Record<ImageType, string> = { png: 'png', jpeg: 'jpg', gif: 'gif', webp: 'webp' }
/** Extensions a client's filename may carry (OWASP: allow-list extension as well as content). */
export const ALLOWED_CLIENT_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.jpe', '.gif', '.webp'])
/** Names this store generates; anything else is never served or deleted. */
export const STORED_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(png|jpg|gif|webp)$/
export const UPLOAD_URL_PREFIX = '/static/uploads/'
const INCOMING = '.incoming'
const SNIFF_BYTES = 12

/** Decides the type from the first bytes; the client's filename and MIME type are ignored. */
export function sniffImageType(head: Buffer): ImageType | null {
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png'
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg'
  if (head.length >= 6 && (head.toString('latin1', 0, 6) === 'GIF87a' || head.toString('latin1', 0, 6) === 'GIF89a')) return 'gif'
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp'
  return null
}

/** Passes bytes through while it may still be an image; once it is known not to be, drains the rest. */
class Sniffer extends Transform {
  head = Buffer.alloc(0)
  type: ImageType | null = null
  rejected = false
  bytes = 0

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.rejected) return done()
    if (this.type === null) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, SNIFF_BYTES - this.head.length)])
      if (this.head.length < SNIFF_BYTES) return done(null, chunk)
      this.type = sniffImageType(this.head)
      if (this.type === null) {
        this.rejected = true
        return done()
      }
    }
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    if (!this.rejected && this.type === null && this.bytes > 0) {
      this.type = sniffImageType(this.head)
      this.rejected = this.type === null
    }
    done()
  }
}

/** An upload written to the incoming area, not yet part of the store. */
export interface ReceivedImage {
  tempPath: string
  bytes: number
  /** null when the content is not an allowed image (the bytes were not kept). */
  type: ImageType | null
}

/**
 * Where post images live. Files are written under a temporary name first and moved into place
 * inside the database transaction, so a row never points at a half-written file; names are
 * generated here, never taken from the client.
 */
export class ImageStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.dir, INCOMING), { recursive: true })
  }

  /** Streams an upload to disk; an oversize stream rejects with the multipart 413 error. */
  async receive(source: Readable): Promise<ReceivedImage> {
    const tempPath = path.join(this.dir, INCOMING, randomUUID())
    const sniffer = new Sniffer()
    const span = tracer.startSpan('blog.image.write')
    try {
      await pipeline(source, sniffer, createWriteStream(tempPath, { flags: 'wx' }))
    } catch (err) {
      span.recordException(err as Error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      span.setAttribute('error.type', (err as { code?: string }).code ?? (err as Error).name)
      await this.discard(tempPath)
      throw err
    } finally {
      span.setAttribute('blog.image.bytes', sniffer.bytes)
      span.setAttribute('blog.image.type', sniffer.type ?? 'rejected')
      span.end()
    }
    return { tempPath, bytes: sniffer.bytes, type: sniffer.rejected ? null : sniffer.type }
  }

  /** Moves a received image into the store under a new generated name and returns that name. */
  async adopt(image: ReceivedImage): Promise<string> {
    if (!image.type) throw new Error('refusing to store a file that is not an image')
    const name = `${randomUUID()}.${EXTENSIONS[image.type]}`
    await fs.rename(image.tempPath, path.join(this.dir, name))
    return name
  }

  async discard(tempPath: string): Promise<void> {
    await fs.rm(tempPath, { force: true })
  }

  /** Removes a stored image; unknown or foreign names are ignored, never resolved as paths. */
  async remove(name: string): Promise<void> {
    if (!STORED_NAME.test(name)) return
    await fs.rm(path.join(this.dir, name), { force: true })
  }

  url(name: string): string {
    return UPLOAD_URL_PREFIX + name
  }

  /**
   * Removes stored files that no row references and that are older than graceMs, and stale
   * incoming files. Files from a commit whose outcome was unknown end here once it is clear no
   * row points to them.
   */
  async sweep(referenced: Set<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = []
    const old = async (p: string) => now - (await fs.stat(p)).mtimeMs > graceMs
    for (const name of await fs.readdir(this.dir)) {
      if (!STORED_NAME.test(name) || referenced.has(name)) continue
      const p = path.join(this.dir, name)
      if (await old(p).catch(() => false)) {
        await fs.rm(p, { force: true })
        removed.push(name)
      }
    }
    const incoming = path.join(this.dir, INCOMING)
    for (const name of await fs.readdir(incoming).catch(() => [] as string[])) {
      const p = path.join(incoming, name)
      if (await old(p).catch(() => false)) {
        await fs.rm(p, { force: true })
        removed.push(path.join(INCOMING, name))
      }
    }
    return removed
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    imageStore: ImageStore
  }
}

export interface ImageStorePluginOptions {
  dir: string
  /** How long an unreferenced file is kept before the sweep removes it. */
  orphanGraceMs?: number
}

export default fp<ImageStorePluginOptions>(
  async (fastify, opts) => {
    const store = new ImageStore(opts.dir)
    await store.init()
    fastify.decorate('imageStore', store)

    const grace = opts.orphanGraceMs ?? 60 * 60 * 1000
    // Needs fastify.blogs, which is registered later: only called once the app is ready.
    const run = async () => {
      try {
        const removed = await store.sweep(await fastify.blogs.imageNames(), grace)
        if (removed.length > 0) fastify.log.info({ removed: removed.length }, 'removed unreferenced upload files')
      } catch (err) {
        fastify.log.warn({ err }, 'upload sweep failed; will retry')
      }
    }
    const timer = setInterval(run, Math.max(grace / 4, 60_000))
    timer.unref()
    fastify.addHook('onReady', async () => {
      void run()
    })
    fastify.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'image-store' }
)
