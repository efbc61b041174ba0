import { describe, expect, it } from 'vitest'
import { canonicalEmail, displayNameKey, displayNameProblem, passwordProblem } from '../../src/accounts/fields'
import { localPath } from '../../src/accounts/next'
import { SCRIPTS, isMixedScript } from '../../src/validation/scripts'
import { foldText } from '../../src/validation/text'

// The identity rules of issue 25: one canonical email, display names that cannot imitate
// another, passwords counted in characters, and where a sign-in may send you back to.

describe('canonical email', () => {
  it('gives one form to every spelling that means the same address', () => {
    for (const spelling of ['chief@example.com', ' CHIEF@Example.COM ', 'ｃｈｉｅｆ@example.com', '𝐜𝐡𝐢𝐞𝐟@example.com', 'ⓒhief@example.com']) {
      expect(canonicalEmail(spelling), spelling).toEqual({ email: 'chief@example.com' })
    }
    expect(canonicalEmail('STRASSE@example.com').email).toBe(canonicalEmail('straße@example.com').email)
    expect(canonicalEmail('ALICE@example.com').email).toBe(canonicalEmail('alıce@example.com').email)
    expect(canonicalEmail('alice\u0301@example.com').email).toBe(canonicalEmail('alicé@example.com').email)
  })

  it('refuses invisible, mixed-script and loose-mark look-alikes, and says why', () => {
    const refused: Record<string, RegExp> = {
      'ali\u200dce@example.com': /invisible/,
      'ali\u200bce@example.com': /invisible/,
      'alice\u061c@example.com': /invisible/,
      'alice\u{E0041}@example.com': /invisible/,
      '\u0430lice@example.com': /scripts/,
      'alice@\u0435xample.com': /scripts/,
      'ALİCE@example.com': /combining marks/,
      'not-an-email': /Enter an email address/,
      [`${'a'.repeat(250)}@example.com`]: /at most 254/
    }
    for (const [spelling, why] of Object.entries(refused)) expect(canonicalEmail(spelling).problem, JSON.stringify(spelling)).toMatch(why)
  })

  it('accepts addresses written in one script, and CJK with Latin', () => {
    for (const ok of ['иван@пример.рф', 'alicé@example.com', '山田taro@example.jp', 'δοκιμή@example.gr']) expect(canonicalEmail(ok).problem, ok).toBeUndefined()
  })
})

describe('display names', () => {
  it('are refused when they imitate a name by invisible characters or mixed scripts, or show nothing', () => {
    const refused: Record<string, RegExp> = {
      '\u0410lice': /scripts/,
      'Alice\u061c': /invisible/,
      'Alice\u{E0001}': /invisible/,
      '\u3164': /invisible/,
      '\u3164\u3164\u3164': /invisible/,
      '\u2800\u2800': /invisible/,
      '\u200b': /invisible/,
      '\u0301\u0301': /letter, digit or symbol/,
      'Deleted User': /reserved/
    }
    for (const [name, why] of Object.entries(refused)) expect(displayNameProblem(name), JSON.stringify(name)).toMatch(why)
  })

  it('share a key with every name that folds to the same text', () => {
    expect(displayNameKey('𝐀lice')).toBe(displayNameKey('Alice'))
    expect(displayNameKey('ALICE')).toBe(displayNameKey('alice'))
    expect(displayNameKey('Ａｌｉｃｅ')).toBe(displayNameKey('Alice'))
    expect(displayNameKey('Alice  Smith')).toBe(displayNameKey('Alice Smith'))
    expect(displayNameKey('Alice')).not.toBe(displayNameKey('Alicia'))
  })

  it('accept names in one script, with digits, spaces and punctuation, and Latin beside CJK', () => {
    for (const ok of ['Alice', 'Иван Петров', '山田 Taro', 'O’Brien-Smith 2', 'شريف', 'Zoë 🙂']) expect(displayNameProblem(ok), ok).toBeUndefined()
  })
})

describe('scripts', () => {
  it('knows every script of the running Unicode version (an assigned character outside Common and Inherited belongs to one)', () => {
    const tests = SCRIPTS.map((s) => new RegExp(`\\p{sc=${s}}`, 'u'))
    const unknown: string[] = []
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue
      const ch = String.fromCodePoint(cp)
      if (/[\p{Cn}\p{Co}\p{sc=Zyyy}\p{sc=Zinh}]/u.test(ch)) continue
      if (!tests.some((t) => t.test(ch))) unknown.push(cp.toString(16))
    }
    expect(unknown).toEqual([])
  })

  it('tells mixed from single-script text', () => {
    expect(isMixedScript('Alice')).toBe(false)
    expect(isMixedScript('Алиса')).toBe(false)
    expect(isMixedScript('\u0410lice')).toBe(true)
    expect(isMixedScript('Ωmega')).toBe(true)
    expect(isMixedScript('東京タワー Tokyo')).toBe(false)
    expect(isMixedScript('서울 Seoul 漢字')).toBe(false)
    expect(isMixedScript('123 - !')).toBe(false)
  })

  it('folds idempotently, for every code point', () => {
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue
      const once = foldText(String.fromCodePoint(cp))
      if (foldText(once) !== once) expect.fail(`U+${cp.toString(16)} folds to ${JSON.stringify(once)}, which folds again`)
    }
  })
})

describe('passwords', () => {
  it('are counted in characters both ways: 5 emoji are 5 characters, not 10', () => {
    expect(passwordProblem('😀'.repeat(5))).toBe('Use at least 10 characters.')
    expect(passwordProblem('😀'.repeat(10))).toBeUndefined()
    expect(passwordProblem('😀'.repeat(1024))).toBeUndefined()
    expect(passwordProblem('😀'.repeat(1025))).toBe('Use at most 1024 characters.')
  })
})

describe('where a sign-in returns to', () => {
  it('is a path of this site, or nothing', () => {
    for (const ok of ['/blogs/', '/blogs/show/3', '/account?tab=tokens', '/blogs/new#top']) expect(localPath(ok), ok).toBe(ok)
    for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'blogs/', '', '/\t/evil.example', `/${'x'.repeat(2100)}`, '/account/signin?next=/']) {
      expect(localPath(bad), JSON.stringify(bad)).toBeUndefined()
    }
  })
})
