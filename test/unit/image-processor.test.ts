import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { AppError } from '../../src/errors'
import { ImageProcessor, ImageRejected, MAX_IMAGE_SIDE, memoryNeeded, type ImageProcessorOptions } from '../../src/images/processor'
import type { WorkLimit } from '../../src/lib/work-limit'
import { gifFrames, pngDeclaring } from '../fixtures/images'
import { deepInterlacedPng, picture } from '../kit/images'

// The processor alone: what it refuses, and how much it decodes at once (by count and by memory).

const rejection = (p: Promise<unknown>) => p.then(() => null, (err: unknown) => err as ImageRejected)

const MiB = 1024 * 1024
const processor = (opts: Partial<ImageProcessorOptions> = {}) =>
  new ImageProcessor({ maxPixels: 40_000_000, maxFrames: 500, memoryBudgetBytes: 192 * MiB, concurrency: 2, queueLength: 8, ...opts })

/** A limit whose signal the test aborts. */
function limit(ms = 30_000): WorkLimit & { abort(reason: unknown): void } {
  const c = new AbortController()
  return { deadline: Date.now() + ms, signal: c.signal, abort: (reason) => c.abort(reason) }
}

describe('ImageProcessor', () => {
  it('refuses by status and code: 415 NOT_AN_IMAGE, 415 IMAGE_UNREADABLE, 422 IMAGE_TOO_MANY_PIXELS', async () => {
    const p = processor({ maxPixels: 1_000_000, concurrency: 1 })
    expect(await rejection(p.process(Buffer.from('hello')))).toMatchObject({ statusCode: 415, code: 'NOT_AN_IMAGE' })
    expect(await rejection(p.process(Buffer.from([0xff, 0xd8, 0xff])))).toMatchObject({ statusCode: 415, code: 'IMAGE_UNREADABLE' })
    const err = await rejection(p.process(pngDeclaring(1001, 1000)))
    expect(err).toBeInstanceOf(ImageRejected)
    expect(err).toMatchObject({ statusCode: 422, code: 'IMAGE_TOO_MANY_PIXELS', message: 'The image has too many pixels (the limit is 1 megapixels).' })
    // Exactly at the limit is decoded (and refused only because this one has no pixel data).
    expect(await rejection(p.process(pngDeclaring(1000, 1000)))).toMatchObject({ code: 'IMAGE_UNREADABLE' })
  })

  it(`caps the longest side at ${MAX_IMAGE_SIDE} px, keeping the aspect ratio`, async () => {
    const p = processor({ concurrency: 1 })
    const wide = await sharp({ create: { width: 6000, height: 1500, channels: 3, background: '#246' } }).png().toBuffer()
    const out = await p.process(wide)
    expect({ width: out.width, height: out.height }).toEqual({ width: MAX_IMAGE_SIDE, height: 1024 })
    expect(out.thumb).toMatchObject({ width: 480, height: 120 })
  })

  it('decodes no more images at once than its concurrency', async () => {
    const p = processor({ concurrency: 2 })
    const input = await picture(1500, 1000, 'jpeg')
    let most = 0
    const poll = setInterval(() => (most = Math.max(most, sharp.counters().process)), 1)
    try {
      const outs = await Promise.all(Array.from({ length: 6 }, () => p.process(input)))
      expect(outs.every((o) => o.width === 1500 && o.thumb !== null)).toBe(true)
    } finally {
      clearInterval(poll)
    }
    expect(most).toBeGreaterThanOrEqual(1)
    expect(most).toBeLessThanOrEqual(2)
  })

  it('prices an image from its header: decoded bytes (x channels, bytes per sample, frames) x1.25, plus the GIF/WebP encoder per output pixel', () => {
    expect(memoryNeeded('png', { width: 5000, height: 5000, frames: 1, channels: 4, bytesPerSample: 2 })).toBe(5000 * 5000 * 8 * 1.25)
    expect(memoryNeeded('jpeg', { width: 4000, height: 3000, frames: 1, channels: 3, bytesPerSample: 1 })).toBe(4000 * 3000 * 3 * 1.25)
    // The output is at most MAX_IMAGE_SIDE: a 6000x3000 WebP is encoded at 4096x2048.
    expect(memoryNeeded('webp', { width: 6000, height: 3000, frames: 1, channels: 3, bytesPerSample: 1 })).toBe(6000 * 3000 * 3 * 1.25 + 4096 * 2048 * 24)
    expect(memoryNeeded('gif', { width: 100, height: 100, frames: 50, channels: 4, bytesPerSample: 1 })).toBe(100 * 100 * 4 * 50 * 1.25 + 100 * 100 * 16)
  })

  it('refuses a small 16-bit interlaced RGBA PNG of large dimensions (under MAX_IMAGE_PIXELS) by its memory, from the header, without decoding it', async () => {
    const png = await deepInterlacedPng(5000, 5000)
    expect(png.length).toBeLessThan(1024 * 1024)
    const p = processor()
    const started = performance.now()
    let admitted = 0
    const poll = setInterval(() => (admitted = Math.max(admitted, p.admission.load.running)), 1)
    const err = await rejection(p.process(png)).finally(() => clearInterval(poll))
    expect(err).toMatchObject({ statusCode: 422, code: 'IMAGE_TOO_MUCH_MEMORY' })
    expect(err!.message).toBe('The image would need about 239 MiB of memory to process (the limit is 192 MiB): send a smaller image, or save it as JPEG or PNG.')
    expect(admitted).toBe(0)
    // Decoding it takes seconds (and ~240 MiB); reading its header, milliseconds.
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('queues images by memory: two that each need more than half the budget are never decoded together', async () => {
    const png = await deepInterlacedPng(1500, 1500)
    const cost = 1500 * 1500 * 8 * 1.25
    const p = processor({ memoryBudgetBytes: Math.ceil(cost * 1.5), concurrency: 2 })
    let most = { running: 0, bytesInUse: 0 }
    const poll = setInterval(() => {
      const { running, bytesInUse } = p.admission.load
      most = { running: Math.max(most.running, running), bytesInUse: Math.max(most.bytesInUse, bytesInUse) }
    }, 1)
    try {
      const outs = await Promise.all([p.process(png), p.process(png), p.process(png)])
      expect(outs.map((o) => o.width)).toEqual([1500, 1500, 1500])
    } finally {
      clearInterval(poll)
    }
    expect(most).toEqual({ running: 1, bytesInUse: cost })
  })

  it('refuses an animation of too many frames with 422, before decoding any', async () => {
    const p = processor({ maxFrames: 500 })
    const started = performance.now()
    const err = await rejection(p.process(gifFrames(200_000)))
    expect(err).toMatchObject({ statusCode: 422, code: 'IMAGE_TOO_MANY_FRAMES', message: 'The animation has too many frames (200000; the limit is 500).' })
    expect(performance.now() - started).toBeLessThan(2000)
    // Within the limit an animation keeps its frames.
    expect((await p.process(gifFrames(3))).height).toBe(1)
  })

  it('bounds the line: past queueLength waiting images an upload gets 503 IMAGES_BUSY at once', async () => {
    const input = await picture(1500, 1000, 'jpeg')
    const p = processor({ concurrency: 1, queueLength: 1 })
    const results = await Promise.allSettled([p.process(input), p.process(input), p.process(input)])
    // One runs, one waits, one is refused: which one depends on whose header read (libuv's
    // thread pool) finishes last, so the order of the three is not the line's.
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected'])
    const err = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason
    expect(err).toBeInstanceOf(AppError)
    expect(err).toMatchObject({ statusCode: 503, code: 'IMAGES_BUSY', expected: true })
  })

  it('a waiting image whose limit aborts (deadline passed, client gone) leaves the line with that reason, and the next one moves up', async () => {
    const input = await picture(1500, 1000, 'jpeg')
    const p = processor({ concurrency: 1, queueLength: 4 })
    const gone = limit()
    const first = p.process(input)
    const second = p.process(input, gone)
    const third = p.process(input)
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(p.admission.load.waiting).toBe(2)
    const reason = new AppError(499, 'CLIENT_CLOSED', 'gone')
    gone.abort(reason)
    expect(await second.then(() => null, (err: unknown) => err)).toBe(reason)
    expect(p.admission.load.waiting).toBe(1)
    await Promise.all([first, third])
    expect(p.admission.load).toEqual({ running: 0, waiting: 0, bytesInUse: 0 })
  })
})
