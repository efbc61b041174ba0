import { setTimeout as sleep } from 'node:timers/promises'
import sharp from 'sharp'
import { memoryNeeded } from '../../src/images/processor'
import type { BenchUser } from './account'
import { ProcGroupMonitor, rssMb } from './proc'

// The memory side of the bench: a process's resident set at rest, and at its worst while it
// processes the largest image IMAGE_MEMORY_BUDGET_BYTES admits (the pod limit is sized from
// both: README "Reliability").

/** The sum of the processes' resident sets once they have been left alone for `settleMs`. */
export async function idleRssMb(pids: number[], settleMs = 2000): Promise<number> {
  await sleep(settleMs)
  const each = await Promise.all(pids.map(rssMb))
  return each.reduce((a, b) => a + b, 0)
}

/**
 * The side of the largest square 16-bit RGBA PNG the app accepts: its decoding, priced as the
 * app prices it (src/images/processor.ts memoryNeeded), fits the memory budget, and its pixels
 * MAX_IMAGE_PIXELS. Of what a client can send, it makes the app hold the most memory at once.
 */
export function worstAcceptedSide(budgetBytes: number, maxPixels: number): number {
  const cost = (side: number) => memoryNeeded('png', { width: side, height: side, frames: 1, channels: 4, bytesPerSample: 2 })
  let lo = 1
  let hi = Math.floor(Math.sqrt(maxPixels))
  if (cost(hi) <= budgetBytes) return hi
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (cost(mid) <= budgetBytes) lo = mid
    else hi = mid
  }
  return lo
}

/** That image: one colour, interlaced, so a file of a few hundred KB decodes to side x side x 8 bytes at once. */
export function worstAcceptedPng(side: number): Promise<Buffer> {
  return sharp({ create: { width: side, height: side, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
    .toColourspace('rgb16')
    .png({ progressive: true, compressionLevel: 9 })
    .toBuffer()
}

export interface UploadPeak {
  /** Side of the square image posted. */
  side: number
  /** Uploads sent at once. */
  concurrency: number
  /** Peak resident set over the uploads (summed over the processes), sampled every 50 ms. */
  peakRssMb: number
  /** How the uploads were answered: status -> count. */
  answers: Record<string, number>
  seconds: number
}

/**
 * Posts `concurrency` copies of the image at once as `user` and samples the app's resident set
 * while they are processed: with 1, the worst a single accepted upload costs; with
 * 1 + IMAGE_QUEUE_LENGTH, the budget in use plus a full waiting line (each holds its body).
 */
export async function uploadPeak(url: string, user: BenchUser, image: Buffer, side: number, concurrency: number, pids: number[]): Promise<UploadPeak> {
  const form = () => {
    const fd = new FormData()
    fd.append('_csrf', user.csrf)
    fd.append('title', 'Benchmark: the largest image the memory budget admits')
    fd.append('content', 'Written by npm run bench (memory).')
    fd.append('image_file', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'worst.png')
    return fd
  }
  const monitor = new ProcGroupMonitor(pids, 50)
  const t0 = performance.now()
  await monitor.start()
  const statuses = await Promise.all(
    Array.from({ length: concurrency }, () =>
      fetch(`${url}/blogs/new`, { method: 'POST', body: form(), headers: { cookie: user.cookie }, redirect: 'manual', signal: AbortSignal.timeout(120_000) })
        .then(async (res) => {
          await res.arrayBuffer()
          return String(res.status)
        })
        .catch((err: unknown) => (err as Error).name)
    )
  )
  const sample = await monitor.stop()
  const answers: Record<string, number> = {}
  for (const s of statuses) answers[s] = (answers[s] ?? 0) + 1
  return { side, concurrency, peakRssMb: sample.rssMb, answers, seconds: (performance.now() - t0) / 1000 }
}
