import { describe, expect, it } from 'vitest'
import { hashPassword, verifyPassword } from '../../src/accounts/password'
import { digest, newApiToken, sameSecret } from '../../src/accounts/secrets'
import { loadConfig } from '../../src/config'

describe('passwords', () => {
  it('are hashed with scrypt (N=2^16, r=8, p=2) and a random salt, and verify only with the same password', async () => {
    const hash = await hashPassword('correct horse battery')
    expect(hash).toMatch(/^scrypt\$16\$8\$2\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    expect(hash).not.toContain('correct horse')
    expect(await verifyPassword('correct horse battery', hash)).toBe(true)
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false)
    expect(await hashPassword('correct horse battery')).not.toBe(hash)
  }, 20_000)

  it('never match a missing (migrated author) or malformed hash', async () => {
    expect(await verifyPassword('', null)).toBe(false)
    expect(await verifyPassword('anything', 'plain text')).toBe(false)
  }, 20_000)

  it('treat the same text in NFC and NFD as the same password', async () => {
    const hash = await hashPassword('café au lait')
    expect(await verifyPassword('cafe\u0301 au lait', hash)).toBe(true)
  }, 20_000)
})

describe('secrets', () => {
  it('stores a SHA-256 of a token and compares in constant time', () => {
    const token = newApiToken()
    expect(token).toMatch(/^blogtok_[A-Za-z0-9_-]{43}$/)
    expect(digest(token)).toMatch(/^[0-9a-f]{64}$/)
    expect(sameSecret(token, token)).toBe(true)
    expect(sameSecret(token, token.slice(0, -1))).toBe(false)
  })
})

describe('account configuration', () => {
  it('has defaults: 7-day sessions, 5 failures per 15 minutes', () => {
    expect(loadConfig({}).accounts).toEqual({ sessionTtlSeconds: 7 * 24 * 3600, loginMaxFailures: 5, loginWindowSeconds: 900 })
  })

  it('refuses ADMIN_EMAILS (admin rights never come from what a sign-up form typed), pointing to the CLI; an empty one is ignored', () => {
    expect(() => loadConfig({ ADMIN_EMAILS: 'boss@example.com' })).toThrow(/ADMIN_EMAILS is no longer read.*npm run user:admin/)
    expect(loadConfig({ ADMIN_EMAILS: ' ' }).accounts).toEqual(loadConfig({}).accounts)
  })

  it('names a bad value', () => {
    expect(() => loadConfig({ SESSION_TTL_HOURS: '0' })).toThrow(/SESSION_TTL_HOURS/)
    expect(() => loadConfig({ LOGIN_MAX_FAILURES: 'many' })).toThrow(/LOGIN_MAX_FAILURES/)
  })
})
