import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet from 'helmet'

/**
 * The pages use no inline script or style, no external host and no data: URL (views/ and
 * public/style.css), so the policy can allow only this origin and nothing inline. Anything
 * injected into a page (a stored title that escaped escaping, say) cannot run.
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'frame-src': ["'none'"],
  'img-src': ["'self'"],
  'manifest-src': ["'self'"],
  'media-src': ["'none'"],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
  'worker-src': ["'none'"]
}

/** Stricter policy for uploaded files opened directly: nothing loads, scripts are sandboxed off. */
export const UPLOAD_CSP = "default-src 'none'; img-src 'self'; sandbox"

const HELMET_OPTIONS: Parameters<typeof helmet>[0] = {
  contentSecurityPolicy: {
    useDefaults: false,
    // upgrade-insecure-requests is left out: the app is also served over plain HTTP
    // (localhost, compose), where it would send the browser to a non-existent https://.
    directives: CONTENT_SECURITY_POLICY
  },
  // The pages embed nothing cross-origin; keep the default same-origin isolation.
  crossOriginEmbedderPolicy: false,
  // Old browsers' frame-ancestors: 'none'.
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'same-origin' }
}

/**
 * The headers helmet sets with these options. Nothing in them depends on the request (no CSP
 * nonces), so helmet runs once at start-up and every response gets the same header set: helmet
 * rebuilding them per request was ~36 us of a ~1.4 ms list page (../shared/PERF-NOTES.md).
 */
export function securityHeaders(): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()]
    }
  }
  let failed: unknown
  helmet(HELMET_OPTIONS)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => (failed = err))
  if (failed) throw failed as Error
  return headers
}

export default fp(
  async (fastify) => {
    const headers = securityHeaders()
    // Callback style and one hook: this runs on every response.
    fastify.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers)
      done()
    })
  },
  { name: 'security' }
)
