import { INSPECTOR_PREFIX } from './inspector/prefix'
import { routedPath } from './lib/routed-path'

// Which requests get no trace: a fact of the composition (health routes, the inspector), handed
// to the telemetry layer by the two roots that wire it (otel/bootstrap.ts, src/app.ts). Loaded by
// the SDK bootstrap: imports nothing heavy.

/** Health probes are not worth a trace each. */
export const UNTRACED_PATHS: ReadonlySet<string> = new Set(['/health', '/ready'])

/** True for a request URL (path and query as received) that gets no trace. Runs on every request. */
export function isUntraced(url: string): boolean {
  if (UNTRACED_PATHS.has(url) || url.startsWith(INSPECTOR_PREFIX)) return true
  // Only an escaped URL can route somewhere its raw text does not say: decode it once.
  if (!url.includes('%')) return false
  const path = routedPath(url)
  return UNTRACED_PATHS.has(path) || path.startsWith(INSPECTOR_PREFIX)
}
