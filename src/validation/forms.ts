/** The hidden field every form carries: the session's CSRF token (checked by request.checkCsrf). */
export const CSRF_FIELD = '_csrf'

/** Limits of a multipart form (@fastify/multipart); a body past one gets a message naming it (src/errors.ts). */
export const FORM_LIMITS = { files: 1, fields: 10, fieldSize: 64 * 1024, parts: 12, headerPairs: 50 } as const
