/** Facts about which requests are traced, shared by the SDK bootstrap, the app and the inspector. */

/** Health probes are not worth a trace each. */
export const UNTRACED_PATHS: ReadonlySet<string> = new Set(['/health', '/ready'])

/** The request inspector's pages: served by the app, never traced or recorded. */
export const INSPECTOR_PREFIX = '/_inspect'

/**
 * A URL's path as the router sees it: percent-escapes decoded (`/%5finspect/` is routed to
 * `/_inspect/`), query dropped. Checks on the raw URL would let an escaped path slip past them.
 */
export function routedPath(url: string): string {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (!path.includes('%')) return path
  try {
    return decodeURIComponent(path)
  } catch {
    return path
  }
}

/** True for a path under the inspector's prefix (as routed, see routedPath). */
export function isInspectorPath(url: string): boolean {
  return url.startsWith(INSPECTOR_PREFIX) || (url.includes('%') && routedPath(url).startsWith(INSPECTOR_PREFIX))
}

/** True for a request URL (path and query as received) that gets no trace. Runs on every request. */
export function isUntraced(url: string): boolean {
  if (UNTRACED_PATHS.has(url) || url.startsWith(INSPECTOR_PREFIX)) return true
  // Only an escaped URL can route somewhere its raw text does not say: decode it once.
  if (!url.includes('%')) return false
  const path = routedPath(url)
  return UNTRACED_PATHS.has(path) || path.startsWith(INSPECTOR_PREFIX)
}

/** The tracer and meter name of the app's own spans and metrics. */
export const SCOPE = 'blog_app'

// Only what the app uses: mysql2 (one span per statement), pino (trace ids in logs),
// runtime-node (event loop, heap), aws-sdk (one span per object-store call with STORAGE=s3; it
// records bucket, operation and status, never credentials). fs, dns and net spans are noise. Server spans, traceparent
// and http.server.request.duration come from the app's Fastify hooks (./plugin.ts), measured
// cheaper than the http instrumentation (README "Performance"); add `http` to use that.
export const DEFAULT_INSTRUMENTATIONS = 'mysql2,pino,runtime-node,aws-sdk'
