import fp from 'fastify-plugin'
import sharp from 'sharp'
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
    // Every upload is decoded once: libvips' operation cache would only hold memory.
    sharp.cache(false)
    // One libvips thread per image (its default is one per core): with two images at once that is
    // the pod's CPU limit, and each thread's buffers count against memory the budget does not see.
    sharp.concurrency(1)
    fastify.decorate('imageProcessor', new ImageProcessor({ ...opts, concurrency: CONCURRENCY }))
  },
  { name: 'image-processor' }
)
