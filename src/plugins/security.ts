import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

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

export default fp(
  async (fastify) => {
    await fastify.register(helmet, {
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
    })
  },
  { name: 'security' }
)
