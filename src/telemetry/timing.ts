import { AsyncLocalStorage } from 'node:async_hooks'

/** Where one request's time went; filled by the DB hooks and the render helper. */
export interface RequestTimings {
  dbMs: number
  queries: number
  poolWaitMs: number
  renderMs: number
}

export const newTimings = (): RequestTimings => ({ dbMs: 0, queries: 0, poolWaitMs: 0, renderMs: 0 })

/**
 * The current request's timings, reachable from code that does not see the request (Sequelize
 * hooks). Independent of OpenTelemetry, so Server-Timing works with the SDK disabled too.
 */
export const timingStore = new AsyncLocalStorage<RequestTimings>()
