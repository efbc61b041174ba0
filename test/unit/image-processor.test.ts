import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { ImageProcessor, ImageRejected, MAX_IMAGE_SIDE } from '../../src/images/processor'
import { pngDeclaring } from '../fixtures/images'
import { picture } from '../kit/images'

// The processor alone: what it refuses and how many images it decodes at once.

const rejection = (p: Promise<unknown>) => p.then(() => null, (err: unknown) => err as ImageRejected)

describe('ImageProcessor', () => {
  it('refuses by status and code: 415 NOT_AN_IMAGE, 415 IMAGE_UNREADABLE, 422 IMAGE_TOO_MANY_PIXELS', async () => {
    const p = new ImageProcessor({ maxPixels: 1_000_000, concurrency: 1 })
    expect(await rejection(p.process(Buffer.from('hello')))).toMatchObject({ statusCode: 415, code: 'NOT_AN_IMAGE' })
    expect(await rejection(p.process(Buffer.from([0xff, 0xd8, 0xff])))).toMatchObject({ statusCode: 415, code: 'IMAGE_UNREADABLE' })
    const err = await rejection(p.process(pngDeclaring(1001, 1000)))
    expect(err).toBeInstanceOf(ImageRejected)
    expect(err).toMatchObject({ statusCode: 422, code: 'IMAGE_TOO_MANY_PIXELS', message: 'The image has too many pixels (the limit is 1 megapixels).' })
    // Exactly at the limit is decoded (and refused only because this one has no pixel data).
    expect(await rejection(p.process(pngDeclaring(1000, 1000)))).toMatchObject({ code: 'IMAGE_UNREADABLE' })
  })

  it(`caps the longest side at ${MAX_IMAGE_SIDE} px, keeping the aspect ratio`, async () => {
    const p = new ImageProcessor({ maxPixels: 40_000_000, concurrency: 1 })
    const wide = await sharp({ create: { width: 6000, height: 1500, channels: 3, background: '#246' } }).png().toBuffer()
    const out = await p.process(wide)
    expect({ width: out.width, height: out.height }).toEqual({ width: MAX_IMAGE_SIDE, height: 1024 })
    expect(out.thumb).toMatchObject({ width: 480, height: 120 })
  })

  it('decodes no more images at once than its concurrency', async () => {
    const p = new ImageProcessor({ maxPixels: 40_000_000, concurrency: 2 })
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
})
