import sharp from 'sharp'
import { expect } from 'vitest'

/** Format, size and pixels of an image, decoded (alpha kept, so PNG and GIF transparency count). */
export async function decoded(data: Buffer): Promise<{ format: string | undefined; width: number; height: number; pixels: Buffer; exif: boolean; icc: boolean; xmp: boolean; orientation: number | undefined }> {
  const meta = await sharp(data).metadata()
  const pixels = await sharp(data).ensureAlpha().raw().toBuffer()
  return { format: meta.format, width: meta.width, height: meta.height, pixels, exif: meta.exif !== undefined, icc: meta.icc !== undefined, xmp: meta.xmp !== undefined, orientation: meta.orientation }
}

/**
 * Asserts that a stored file is the uploaded image, re-encoded: same format and size, the same
 * pixels (within `tolerance` per channel for lossy JPEG and WebP), no metadata.
 */
export async function expectSameImage(stored: Buffer, uploaded: Buffer, tolerance = 0): Promise<void> {
  const [a, b] = await Promise.all([decoded(stored), decoded(uploaded)])
  expect({ format: a.format, width: a.width, height: a.height }).toEqual({ format: b.format, width: b.width, height: b.height })
  expect({ exif: a.exif, icc: a.icc, xmp: a.xmp }).toEqual({ exif: false, icc: false, xmp: false })
  expect(a.pixels.length).toBe(b.pixels.length)
  let worst = 0
  for (let i = 0; i < a.pixels.length; i++) worst = Math.max(worst, Math.abs(a.pixels[i]! - b.pixels[i]!))
  expect(worst).toBeLessThanOrEqual(tolerance)
}
