import type SharpModule from 'sharp'

let loaded: typeof SharpModule | undefined

/**
 * sharp, loaded on the first image: libvips and its bindings are ~8-10 MB of resident memory
 * (measured, Node 24) that a replica which only serves pages never needs. The first upload pays
 * the load once (~0.1 s, the event loop held while the library is opened).
 */
export function sharp(): typeof SharpModule {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on purpose
    const s = require('sharp') as typeof SharpModule
    // Every upload is decoded once: libvips' operation cache would only hold memory.
    s.cache(false)
    // One libvips thread per image (its default is one per core): with two images at once that is
    // the pod's CPU limit, and each thread's buffers count against memory the budget does not see.
    s.concurrency(1)
    loaded = s
  }
  return loaded
}
