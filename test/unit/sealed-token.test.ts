import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { seal, unseal } from '../../src/accounts/secrets'
import { AccountService, NEW_TOKEN_SHOWN_FOR_S } from '../../src/accounts/service'

describe('seal / unseal (the new API token carried across a redirect)', () => {
  const key = randomBytes(32)
  it('opens with the same key and context only', () => {
    const sealed = seal(key, 'session A', 'blogtok_secret')
    expect(sealed).not.toContain('secret')
    expect(unseal(key, 'session A', sealed)).toBe('blogtok_secret')
    expect(unseal(key, 'session B', sealed)).toBeNull()
    expect(unseal(randomBytes(32), 'session A', sealed)).toBeNull()
  })
  it('refuses any altered byte, a short value and non-base64 input', () => {
    const sealed = Buffer.from(seal(key, 'c', 'value'), 'base64url')
    for (let i = 0; i < sealed.length; i++) {
      const copy = Buffer.from(sealed)
      copy[i]! ^= 1
      expect(unseal(key, 'c', copy.toString('base64url')), `byte ${i}`).toBeNull()
    }
    expect(unseal(key, 'c', 'abc')).toBeNull()
    expect(unseal(key, 'c', '%%%')).toBeNull()
  })
})

describe('AccountService.openNewToken', () => {
  it('opens for the session it was sealed for, within NEW_TOKEN_SHOWN_FOR_S only', async () => {
    // Only start() touches the repository here (to read the stored key).
    const repo = { appSecret: async () => randomBytes(32).toString('base64url') }
    const accounts = new AccountService(repo as never, {} as never)
    await accounts.start()
    const session = { token: 't', csrfToken: 'csrf-a', viewer: { id: 7, displayName: 'A', isAdmin: false } }
    const t0 = 1_700_000_000_000
    const sealed = accounts.sealNewToken(session, 'blogtok_x', t0)
    expect(accounts.openNewToken(session, sealed, t0 + NEW_TOKEN_SHOWN_FOR_S * 1000)).toBe('blogtok_x')
    expect(accounts.openNewToken(session, sealed, t0 + NEW_TOKEN_SHOWN_FOR_S * 1000 + 1)).toBeNull()
    expect(accounts.openNewToken(session, sealed, t0 - 1)).toBeNull()
    expect(accounts.openNewToken({ ...session, csrfToken: 'csrf-b' }, sealed, t0)).toBeNull()
    expect(accounts.openNewToken({ ...session, viewer: { ...session.viewer, id: 8 } }, sealed, t0)).toBeNull()
  })
})
