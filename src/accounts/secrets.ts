import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** 32 random bytes as base64url (43 characters): session tokens, CSRF tokens. */
export const newSecret = (): string => randomBytes(32).toString('base64url')

/** What is stored for a secret the client holds: its SHA-256 in hex (the secret has 256 bits of entropy, so no salt or slow hash is needed). */
export const digest = (secret: string): string => createHash('sha256').update(secret).digest('hex')

/** Constant-time comparison of two strings of any length. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest())
}

/** API tokens carry a prefix so they are recognisable in a leaked file or a secret scanner. */
export const API_TOKEN_PREFIX = 'blogtok_'
export const newApiToken = (): string => API_TOKEN_PREFIX + newSecret()
