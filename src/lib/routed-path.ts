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
