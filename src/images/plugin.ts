import fp from 'fastify-plugin'
import { ImageProcessor, type ImageProcessorOptions } from './processor'

declare module 'fastify' {
  interface FastifyInstance {
    /** Decodes, cleans and re-encodes uploaded images, and makes their thumbnails. */
    imageProcessor: ImageProcessor
  }
}

export type ImageProcessorPluginOptions = Omit<ImageProcessorOptions, 'concurrency'>

// Two images at a time at most (the memory budget may allow fewer): each holds a libuv thread
// that file-system calls (the upload store) share; more only queue in the thread pool anyway.
const CONCURRENCY = 2

/** `fastify.imageProcessor`. */
export default fp<ImageProcessorPluginOptions>(
  async (fastify, opts) => {
    // sharp itself (and its settings) is loaded with the first image: ./sharp.ts.
    fastify.decorate('imageProcessor', new ImageProcessor({ ...opts, concurrency: CONCURRENCY }))
  },
  { name: 'image-processor' }
)
