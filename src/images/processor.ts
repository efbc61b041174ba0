import sharp, { type Sharp } from 'sharp'
import { ATTR, SPAN } from '../telemetry/names'
import { withSpan } from '../telemetry/tracer'
import { sniffImageType, type ImageType } from '../storage/sniff'

/** Longest side of a stored image: more than any page shows, and it bounds the stored bytes. */
export const MAX_IMAGE_SIDE = 4096
/** The list page shows 160x120 (180 px high on phones): 480 px covers both on dense screens. */
export const THUMB_SIDE = 480

/** An upload that is not a usable image: the form is re-rendered with this status and message. */
export class ImageRejected extends Error {
  override name = 'ImageRejected'
  constructor(
    readonly statusCode: 415 | 422,
    readonly code: 'NOT_AN_IMAGE' | 'IMAGE_UNREADABLE' | 'IMAGE_TOO_MANY_PIXELS',
    message: string,
    opts?: { cause?: unknown }
  ) {
    super(message, opts)
  }
}

export interface EncodedImage {
  data: Buffer
  width: number
  height: number
}

export interface ProcessedImage extends EncodedImage {
  type: ImageType
  /** A smaller WebP for the list page; null when the image is already no larger than one. */
  thumb: EncodedImage | null
}

export interface ImageProcessorOptions {
  /** Largest width x height (all frames of an animation together) that is decoded at all. */
  maxPixels: number
  /** Images decoded at once; more wait their turn (each can take width x height x 4 bytes). */
  concurrency: number
}

const NOT_AN_IMAGE = 'The image must be a PNG, JPEG, GIF or WebP file.'
const UNREADABLE = 'The image could not be read: send a complete PNG, JPEG, GIF or WebP file.'

/**
 * Decodes every upload and encodes it again, so what is stored is pixels the server made: the
 * decode proves it is an image (a signature followed by anything else is not), EXIF (GPS, camera),
 * XMP, IPTC, comments and the ICC profile are dropped (pixels are converted to sRGB first, so
 * colours stay right), the EXIF orientation is applied, and the pixel count is checked from the
 * header before anything is decoded (a small file declaring 20000x20000 is a decompression bomb).
 */
export class ImageProcessor {
  private running = 0
  private readonly waiting: (() => void)[] = []

  constructor(private readonly opts: ImageProcessorOptions) {}

  process(input: Buffer): Promise<ProcessedImage> {
    return withSpan(SPAN.imageProcess, { [ATTR.imageInputBytes]: input.length }, async (span) => {
      const type = sniffImageType(input.subarray(0, 12))
      span?.setAttribute(ATTR.imageInputType, type ?? 'unknown')
      if (!type) throw new ImageRejected(415, 'NOT_AN_IMAGE', NOT_AN_IMAGE)
      const out = await this.limited(() => this.encode(input, type))
      span?.setAttributes({
        [ATTR.imageWidth]: out.width,
        [ATTR.imageHeight]: out.height,
        [ATTR.imageBytes]: out.data.length,
        [ATTR.imageThumbBytes]: out.thumb?.data.length ?? 0
      })
      return out
    })
  }

  private async encode(input: Buffer, type: ImageType): Promise<ProcessedImage> {
    const animated = type === 'gif' || type === 'webp'
    // failOn 'error' refuses truncated and corrupt data; 'warning' would also refuse the
    // harmless quirks many cameras write. limitInputPixels counts every frame of an animation.
    const open = (data: Buffer, pages: boolean) => sharp(data, { failOn: 'error', limitInputPixels: this.opts.maxPixels, animated: pages && animated, autoOrient: true })
    try {
      const meta = await open(input, true).metadata()
      if (meta.format !== type) throw new ImageRejected(415, 'NOT_AN_IMAGE', NOT_AN_IMAGE)
      const full = await toFormat(open(input, true).resize({ width: MAX_IMAGE_SIDE, height: MAX_IMAGE_SIDE, fit: 'inside', withoutEnlargement: true }), type)
        .toBuffer({ resolveWithObject: true })
      const height = full.info.pageHeight ?? full.info.height
      let thumb: EncodedImage | null = null
      if (full.info.width > THUMB_SIDE || height > THUMB_SIDE) {
        // From the re-encoded image (already upright and stripped), first frame only.
        const t = await open(full.data, false).resize({ width: THUMB_SIDE, height: THUMB_SIDE, fit: 'inside' }).webp({ quality: 75 }).toBuffer({ resolveWithObject: true })
        thumb = { data: t.data, width: t.info.width, height: t.info.height }
      }
      return { type, data: full.data, width: full.info.width, height, thumb }
    } catch (err) {
      if (err instanceof ImageRejected) throw err
      const message = err instanceof Error ? err.message : String(err)
      if (message.includes('pixel limit')) {
        const mp = Math.floor(this.opts.maxPixels / 1e5) / 10
        throw new ImageRejected(422, 'IMAGE_TOO_MANY_PIXELS', `The image has too many pixels (the limit is ${mp} megapixels).`, { cause: err })
      }
      throw new ImageRejected(415, 'IMAGE_UNREADABLE', UNREADABLE, { cause: err })
    }
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.opts.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.running++
    try {
      return await work()
    } finally {
      // The slot passes straight to the next in line, so `running` never dips below the load.
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }
}

/** Same format family as the upload; GIF stays GIF so an animation keeps moving. */
function toFormat(image: Sharp, type: ImageType): Sharp {
  switch (type) {
    case 'jpeg':
      return image.jpeg({ quality: 85 })
    case 'png':
      return image.png()
    case 'webp':
      return image.webp({ quality: 85 })
    case 'gif':
      return image.gif()
  }
}
