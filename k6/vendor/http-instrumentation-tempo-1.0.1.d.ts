// Types for k6/vendor/http-instrumentation-tempo-1.0.1.js (jslib http-instrumentation-tempo
// 1.0.1, fetched by k6/vendor/fetch.sh; not committed: AGPL-3.0). Written from the module's
// source at this exact version; bump the file name, fetch.sh and the import together.
import type { RefinedResponse, RequestBody, Params, ResponseType } from 'k6/http'

export interface TracingOptions {
  /** Header format: `w3c` sends `traceparent`, `jaeger` sends `uber-trace-id`. */
  propagator: 'w3c' | 'jaeger'
  /** Share of requests marked sampled, 0..1 (default 1). */
  sampling?: number
}

/** An http-like client whose requests carry a trace context. */
export class Client {
  constructor(opts: TracingOptions)
  configure(opts: TracingOptions): void
  request(method: string, url: string, body?: RequestBody | null, params?: Params | null): RefinedResponse<ResponseType | undefined>
  asyncRequest(method: string, url: string, body?: RequestBody | null, params?: Params | null): Promise<RefinedResponse<ResponseType | undefined>>
  get(url: string, params?: Params | null): RefinedResponse<ResponseType | undefined>
  post(url: string, body?: RequestBody | null, params?: Params | null): RefinedResponse<ResponseType | undefined>
}

/** Replaces the k6/http functions (on the module's default export) with traced ones. */
export function instrumentHTTP(opts: TracingOptions): void

declare const tempo: { Client: typeof Client; instrumentHTTP: typeof instrumentHTTP }
export default tempo
