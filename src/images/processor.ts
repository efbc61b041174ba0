import { performance } from 'node:perf_hooks'
import type { Sharp } from 'sharp'
import { deadlinePassed } from '../errors'
import { sniffImageType, type ImageType } from '../storage/sniff'
import { ATTR, SPAN } from '../telemetry/names'
import { withSpan } from '../telemetry/tracer'
import type { WorkLimit } from '../lib/work-limit'
import { Admission } from './admission'
import { sharp } from './sharp'

/** Longest side of a stored image: more than any page shows, and it bounds the stored bytes. */
export const MAX_IMAGE_SIDE = 4096
/** The list page shows 160x120 (180 px high on phones): 480 px covers both on dense screens. */
export const THUMB_SIDE = 480

/** An upload that is not a usable image: the form is re-rendered with this status and message. */
export class ImageRejected extends Error {
  override name = 'ImageRejected'
  constructor(
    readonly statusCode: 415 | 422,
    readonly code: 'NOT_AN_IMAGE' | 'IMAGE_UNREADABLE' | 'IMAGE_TOO_MANY_PIXELS' | 'IMAGE_TOO_MANY_FRAMES' | 'IMAGE_TOO_MUCH_MEMORY',
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
  /** Most frames an animation may have (each costs its own decode and encode, however small). */
  maxFrames: number
  /** Bytes the images being processed at once may need together (memoryNeeded); a bigger one is refused. */
  memoryBudgetBytes: number
  /** Images processed at once at most, however small (each holds a libuv thread). */
  concurrency: number
  /** Images waiting for their turn at most; past it the upload gets a 503 at once. */
  queueLength: number
}

/** What an image's header says: enough to price its decoding before any of it is done. */
export interface ImageHeader {
  width: number
  /** Of one frame. */
  height: number
  frames: number
  channels: number
  bytesPerSample: number
}

/** Said of the content: a file named holiday.jpg looks right to the person who chose it. */
export const NOT_AN_IMAGE = 'This file is not a readable image: its content is not PNG, JPEG, GIF or WebP, whatever its name says.'
const UNREADABLE = 'The image could not be read: send a complete PNG, JPEG, GIF or WebP file.'

// libvips band formats (sharp's `depth`) in bytes per sample.
const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 }

// Measured peak RSS over a process's baseline while one image is processed (sharp 0.34, one
// libvips thread): PNG and JPEG stay within 1.25x the decoded input (16-bit interlaced PNG 5000x5000:
// 236 MiB for 191 decoded; a 40 MP 8-bit interlaced PNG in the running app: +188 MiB for 191;
// non-interlaced PNG streams, ~0.5x), while the GIF and WebP encoders hold the whole output with
// their own buffers: up to ~11 (GIF) and ~21 (WebP, noise: the worst content) bytes per output
// pixel of a frame on top of the decoded input.
const DECODE_FACTOR = 1.25
const ENCODE_BYTES_PER_PIXEL: Record<ImageType, number> = { png: 0, jpeg: 0, gif: 16, webp: 24 }

/**
 * The memory processing an image needs, from its header: the decoded input (width x height x
 * channels x bytes per sample x frames, with a quarter more for libvips' working copies) plus
 * what the encoder of its format holds per output pixel of a frame (the output is at most
 * MAX_IMAGE_SIDE on its longest side).
 */
export function memoryNeeded(type: ImageType, h: ImageHeader): number {
  const decoded = h.width * h.height * h.channels * h.bytesPerSample * h.frames
  const scale = Math.min(1, MAX_IMAGE_SIDE / Math.max(h.width, h.height))
  const outputPixels = Math.ceil(h.width * scale) * Math.ceil(h.height * scale)
  return Math.ceil(decoded * DECODE_FACTOR + outputPixels * ENCODE_BYTES_PER_PIXEL[type])
}

const mib = (bytes: number) => `${Math.ceil(bytes / 1048576)} MiB`

/**
 * Decodes every upload and encodes it again, so what is stored is pixels the server made: the
 * decode proves it is an image (a signature followed by anything else is not), EXIF (GPS, camera),
 * XMP, IPTC, comments and the ICC profile are dropped (pixels are converted to sRGB first, so
 * colours stay right), the EXIF orientation is applied. Before anything is decoded the header is
 * read and the image priced: too many pixels (a small file declaring 20000x20000 is a
 * decompression bomb), too many frames, or more memory than the budget allows are refused (422);
 * the rest wait for their share of the budget (Admission), within the request's deadline.
 */
export class ImageProcessor {
  readonly admission: Admission

  constructor(private readonly opts: ImageProcessorOptions) {
    this.admission = new Admission({ budgetBytes: opts.memoryBudgetBytes, maxRunning: opts.concurrency, maxWaiting: opts.queueLength })
  }

  process(input: Buffer, limit?: WorkLimit): Promise<ProcessedImage> {
    return withSpan(SPAN.imageProcess, { [ATTR.imageInputBytes]: input.length }, async (span) => {
      const type = sniffImageType(input.subarray(0, 12))
      span?.setAttribute(ATTR.imageInputType, type ?? 'unknown')
      if (!type) throw new ImageRejected(415, 'NOT_AN_IMAGE', NOT_AN_IMAGE)
      const header = await this.header(input, type)
      const cost = memoryNeeded(type, header)
      span?.setAttributes({ [ATTR.imageFrames]: header.frames, [ATTR.imageMemoryBytes]: cost })
      this.refuseCostly(header, cost)
      const queued = performance.now()
      const out = await this.admission.run(cost, limit, () => {
        span?.setAttribute(ATTR.imageQueueMs, Math.round(performance.now() - queued))
        return this.encode(input, type, limit)
      })
      span?.setAttributes({
        [ATTR.imageWidth]: out.width,
        [ATTR.imageHeight]: out.height,
        [ATTR.imageBytes]: out.data.length,
        [ATTR.imageThumbBytes]: out.thumb?.data.length ?? 0
      })
      return out
    })
  }

  /** The header only (for an animation, the frames are counted without being decoded). */
  private async header(input: Buffer, type: ImageType): Promise<ImageHeader> {
    try {
      const meta = await sharp()(input, { failOn: 'error', limitInputPixels: false }).metadata()
      if (meta.format !== type) throw new ImageRejected(415, 'NOT_AN_IMAGE', NOT_AN_IMAGE)
      const animated = type === 'gif' || type === 'webp'
      return {
        width: meta.width,
        height: meta.pageHeight ?? meta.height,
        frames: animated ? (meta.pages ?? 1) : 1,
        channels: meta.channels,
        bytesPerSample: SAMPLE_BYTES[meta.depth] ?? 4
      }
    } catch (err) {
      if (err instanceof ImageRejected) throw err
      throw new ImageRejected(415, 'IMAGE_UNREADABLE', UNREADABLE, { cause: err })
    }
  }

  private refuseCostly(h: ImageHeader, cost: number): void {
    if (h.frames > this.opts.maxFrames) {
      throw new ImageRejected(422, 'IMAGE_TOO_MANY_FRAMES', `The animation has too many frames (${h.frames}; the limit is ${this.opts.maxFrames}).`)
    }
    if (h.width * h.height * h.frames > this.opts.maxPixels) throw this.tooManyPixels()
    if (cost > this.opts.memoryBudgetBytes) {
      throw new ImageRejected(422, 'IMAGE_TOO_MUCH_MEMORY', `The image would need about ${mib(cost)} of memory to process (the limit is ${mib(this.opts.memoryBudgetBytes)}): send a smaller image, or save it as JPEG or PNG.`)
    }
  }

  private tooManyPixels(cause?: unknown): ImageRejected {
    const mp = Math.floor(this.opts.maxPixels / 1e5) / 10
    return new ImageRejected(422, 'IMAGE_TOO_MANY_PIXELS', `The image has too many pixels (the limit is ${mp} megapixels).`, { cause })
  }

  private async encode(input: Buffer, type: ImageType, limit: WorkLimit | undefined): Promise<ProcessedImage> {
    const animated = type === 'gif' || type === 'webp'
    // The work is cut when the request's deadline passes (libvips checks as it goes; whole seconds).
    const timeout = () => {
      if (!limit) return { seconds: 0 }
      limit.signal.throwIfAborted()
      return { seconds: Math.max(1, Math.ceil((limit.deadline - Date.now()) / 1000)) }
    }
    // failOn 'error' refuses truncated and corrupt data; 'warning' would also refuse the
    // harmless quirks many cameras write. limitInputPixels counts every frame of an animation.
    const open = (data: Buffer, pages: boolean) =>
      sharp()(data, { failOn: 'error', limitInputPixels: this.opts.maxPixels, animated: pages && animated, autoOrient: true }).timeout(timeout())
    try {
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
      // A client gone or a deadline passed while libvips worked: that, not the image, is the answer.
      if (limit?.signal.aborted) throw limit.signal.reason
      if (err instanceof ImageRejected) throw err
      const message = err instanceof Error ? err.message : String(err)
      if (message.includes('pixel limit')) throw this.tooManyPixels(err)
      if (limit && /timeout/i.test(message)) throw deadlinePassed()
      throw new ImageRejected(415, 'IMAGE_UNREADABLE', UNREADABLE, { cause: err })
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
