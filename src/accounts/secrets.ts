import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto'

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

/**
 * AES-256-GCM: `value` readable and unaltered only with `key` and the same `context` (bound as
 * associated data, so a sealed value made for one session does not open in another).
 */
export function seal(key: Buffer, context: string, value: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context))
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
}

/** The value `seal` was given, or null when `sealed` was altered, made with another key or context, or is not one. */
export function unseal(key: Buffer, context: string, sealed: string): string | null {
  const raw = Buffer.from(sealed, 'base64url')
  if (raw.length < 29) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(Buffer.from(context))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
