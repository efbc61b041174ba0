import fp from 'fastify-plugin'
import sharp from 'sharp'
import { ImageProcessor } from './processor'

declare module 'fastify' {
  interface FastifyInstance {
    /** Decodes, cleans and re-encodes uploaded images, and makes their thumbnails. */
    imageProcessor: ImageProcessor
  }
}

export interface ImageProcessorPluginOptions {
  maxPixels: number
}

// Two at a time: a 40-megapixel image decodes to 160 MB, and each one holds a libuv thread
// that file-system calls (the upload store) share; more only queue in the thread pool anyway.
const CONCURRENCY = 2

/** `fastify.imageProcessor`. */
export default fp<ImageProcessorPluginOptions>(
  async (fastify, { maxPixels }) => {
    // Every upload is decoded once: libvips' operation cache would only hold memory.
    sharp.cache(false)
    fastify.decorate('imageProcessor', new ImageProcessor({ maxPixels, concurrency: CONCURRENCY }))
  },
  { name: 'image-processor' }
)
