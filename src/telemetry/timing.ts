import { AsyncLocalStorage } from 'node:async_hooks'
import { now } from './clock'
import type { RequestTrace } from './request-trace'

/**
 * Where one request's time went, on the one clock (./clock.ts): its start and end instants, and
 * the sums the Server-Timing header reports. The DB instruments (./sql.ts, ./db.ts) and the
 * render helper add to it with the same instants their spans get, so the header's `db` is the
 * sum of the request's SQL spans and `total` its server span's duration.
 */
export interface RequestTimings {
  /** now() at the request's first hook. */
  start: number
  /** now() when the response was handed over (onSend); undefined until then. */
  end: number | undefined
  dbMs: number
  queries: number
  poolWaitMs: number
  renderMs: number
  /** The request's trace record while its spans are deferred (./request-trace.ts); else undefined. */
  trace: RequestTrace | undefined
  /** Its route template once asked for (routeOf in ./plugin.ts); null: no route matched. */
  route: string | null | undefined
}

/**
 * On a request's raw message: now() at its first hook, for an answer written outside Fastify (a
 * request cut by REQUEST_TIMEOUT_MS mid-body: src/plugins/client-errors.ts).
 */
export const kRequestStart = Symbol('blog.requestStart')

export const newTimings = (start = now()): RequestTimings => ({ start, end: undefined, dbMs: 0, queries: 0, poolWaitMs: 0, renderMs: 0, trace: undefined, route: undefined })

/** The request's duration so far, or in all once it has ended. */
export const elapsedMs = (t: RequestTimings): number => (t.end ?? now()) - t.start

/**
 * The current request's timings, reachable from code that does not see the request (Sequelize
 * hooks, the SQL channel subscriber). Independent of OpenTelemetry, so Server-Timing works with
 * the SDK disabled too.
 */
export const timingStore = new AsyncLocalStorage<RequestTimings>()
