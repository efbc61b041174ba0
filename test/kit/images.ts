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

/** A JPEG as a phone writes it: EXIF with camera, GPS position and Orientation 6 (turn 90° clockwise to view). */
export async function phonePhoto(width: number, height: number): Promise<Buffer> {
  // Left half red, right half blue: after the turn, red is on top.
  const half = Math.floor(width / 2)
  return sharp({ create: { width, height, channels: 3, background: '#0000ff' } })
    .composite([{ input: { create: { width: half, height, channels: 3, background: '#ff0000' } }, left: 0, top: 0 }])
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD0: { Make: 'SecretCam', Model: 'Pocket 9' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 300/100', GPSMapDatum: 'WGS-84 HOME' } })
    .toBuffer()
}

/** An image of `width` x `height` in one colour with some noise (so it does not compress to nothing). */
export async function picture(width: number, height: number, format: 'png' | 'jpeg' | 'webp' | 'gif'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#3a7', noise: { type: 'gaussian', mean: 128, sigma: 30 } } })
    .toFormat(format)
    .toBuffer()
}

/** An animated GIF of `frames` frames of 60x40, each its own colour. */
export async function animatedGif(frames: number): Promise<Buffer> {
  const colours = ['#f00', '#0f0', '#00f', '#ff0', '#0ff']
  const pngs = await Promise.all(Array.from({ length: frames }, (_, i) => sharp({ create: { width: 60, height: 40, channels: 4, background: colours[i % colours.length]! } }).png().toBuffer()))
  return sharp(pngs, { join: { animated: true } }).gif({ delay: 100, loop: 0 }).toBuffer()
}

/** A 16-bit RGBA interlaced PNG of one colour: a few hundred KB that decode to width x height x 8 bytes at once. */
export async function deepInterlacedPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
    .toColourspace('rgb16')
    .png({ progressive: true, compressionLevel: 9 })
    .toBuffer()
}
