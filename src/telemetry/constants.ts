/** Facts about which requests are traced, shared by the SDK bootstrap, the app and the inspector. */

/** Health probes are not worth a trace each. */
export const UNTRACED_PATHS: ReadonlySet<string> = new Set(['/health', '/ready'])

/** The request inspector's pages: served by the app, never traced or recorded. */
export const INSPECTOR_PREFIX = '/_inspect'

/** True for a request URL (path and query as received) that gets no trace. */
export function isUntraced(url: string): boolean {
  return UNTRACED_PATHS.has(url) || url.startsWith(INSPECTOR_PREFIX)
}

/** The tracer and meter name of the app's own spans and metrics. */
export const SCOPE = 'blog_app'

// Only what the app uses: mysql2 (one span per statement), pino (trace ids in logs),
// runtime-node (event loop, heap), aws-sdk (one span per object-store call with STORAGE=s3; it
// records bucket, operation and status, never credentials). fs, dns and net spans are noise. Server spans, traceparent
// and http.server.request.duration come from the app's Fastify hooks (./plugin.ts), measured
// cheaper than the http instrumentation (README "Tracing overhead"); add `http` to use that.
export const DEFAULT_INSTRUMENTATIONS = 'mysql2,pino,runtime-node,aws-sdk'
