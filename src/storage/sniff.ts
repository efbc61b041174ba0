import { Transform, type TransformCallback } from 'node:stream'

export type ImageType = 'png' | 'jpeg' | 'gif' | 'webp'

/** The extension a stored image of each type gets. */
export const EXTENSIONS: Record<ImageType, string> = { png: 'png', jpeg: 'jpg', gif: 'gif', webp: 'webp' }
/** Extensions a client's filename may carry (OWASP: allow-list extension as well as content). */
export const ALLOWED_CLIENT_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.jpe', '.gif', '.webp'])
/** Names a store generates (uuid + extension); anything else is never served or deleted. */
export const STORED_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(png|jpg|gif|webp)$/
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
export class Sniffer extends Transform {
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
