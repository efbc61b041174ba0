import { routedPath } from '../lib/routed-path'

/** Where the request inspector's pages live. Its own requests are never traced or recorded. */
export const INSPECTOR_PREFIX = '/_inspect'

/** True for a path under the inspector's prefix, also when escaped (see routedPath). */
export function isInspectorPath(url: string): boolean {
  return url.startsWith(INSPECTOR_PREFIX) || (url.includes('%') && routedPath(url).startsWith(INSPECTOR_PREFIX))
}
