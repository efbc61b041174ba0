import { imagesBusy } from '../errors'
import type { WorkLimit } from '../lib/work-limit'

export interface AdmissionOptions {
  /** Bytes the work admitted at once may need together. */
  budgetBytes: number
  /** Pieces of work at once, whatever their size (each holds a libuv thread). */
  maxRunning: number
  /** Pieces of work waiting their turn at most; past it a new one is refused at once (503). */
  maxWaiting: number
}

interface Waiter {
  cost: number
  start(): void
}

/**
 * Admits work by the memory it needs: it starts while the bytes in use plus its own stay within
 * the budget (and fewer than maxRunning run), otherwise it waits in a bounded line, first come
 * first served (a large image is not overtaken forever by small ones). A waiter leaves the line
 * when its limit's signal aborts (deadline passed, client gone), with the signal's reason.
 */
export class Admission {
  private bytesInUse = 0
  private running = 0
  private readonly waiting: Waiter[] = []

  constructor(readonly opts: AdmissionOptions) {}

  /** What is admitted and waiting now (for tests and logs). */
  get load(): { running: number; waiting: number; bytesInUse: number } {
    return { running: this.running, waiting: this.waiting.length, bytesInUse: this.bytesInUse }
  }

  /** Runs `work` once `cost` bytes are admitted; `cost` must not exceed the budget (the caller refuses that). */
  async run<T>(cost: number, limit: WorkLimit | undefined, work: () => Promise<T>): Promise<T> {
    await this.admit(Math.min(cost, this.opts.budgetBytes), limit)
    try {
      return await work()
    } finally {
      this.bytesInUse -= Math.min(cost, this.opts.budgetBytes)
      this.running--
      this.next()
    }
  }

  private fits(cost: number): boolean {
    return this.running < this.opts.maxRunning && this.bytesInUse + cost <= this.opts.budgetBytes
  }

  private take(cost: number): void {
    this.bytesInUse += cost
    this.running++
  }

  private admit(cost: number, limit: WorkLimit | undefined): Promise<void> {
    limit?.signal.throwIfAborted()
    if (this.waiting.length === 0 && this.fits(cost)) {
      this.take(cost)
      return Promise.resolve()
    }
    if (this.waiting.length >= this.opts.maxWaiting) return Promise.reject(imagesBusy(this.waiting.length))
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter)
        if (at >= 0) this.waiting.splice(at, 1)
        reject(limit!.signal.reason)
        // The head may have been what held the line.
        this.next()
      }
      const waiter: Waiter = {
        cost,
        start: () => {
          limit?.signal.removeEventListener('abort', onAbort)
          resolve()
        }
      }
      limit?.signal.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(waiter)
    })
  }

  /** Starts waiters from the head of the line while they fit. */
  private next(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.cost)) {
      const waiter = this.waiting.shift()!
      this.take(waiter.cost)
      waiter.start()
    }
  }
}
