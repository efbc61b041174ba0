import { Value } from 'typebox/value'
import { describe, expect, it } from 'vitest'
import { DISPLAY_NAME_RULE, TOKEN_NAME_RULE } from '../../src/accounts/fields'
import { FIELD_RULES, IMAGE_ALT_RULE } from '../../src/posts/fields'
import { characterCount, textProblem, textSchema } from '../../src/validation/text'

// One set of text rules (src/validation/text.ts) for the post form and the account forms.

describe('text rules', () => {
  it('count characters as the utf8mb4 columns do (code points), for every field', () => {
    for (const rule of [FIELD_RULES.title, DISPLAY_NAME_RULE, TOKEN_NAME_RULE]) {
      const max = '🧪'.repeat(rule.maxLength)
      expect(characterCount(max)).toBe(rule.maxLength)
      expect(textProblem(rule, max), rule.label).toBeUndefined()
      expect(textProblem(rule, max + 'x'), rule.label).toMatch(/characters\.$/)
    }
  })

  it('agree with the TypeBox schema made from the same rule', () => {
    const samples = ['', ' ', 'x', 'ok', 'é'.repeat(200), '🧪'.repeat(200), '🧪'.repeat(201), 't'.repeat(201), '\t \n', '  a  ', ' 🧪 ', ' ab ', '\u3000a\u3000', 'a b', ' 🧪🧪 ']
    for (const rule of [FIELD_RULES.title, FIELD_RULES.content, DISPLAY_NAME_RULE, IMAGE_ALT_RULE]) {
      for (const value of samples) {
        expect(textProblem(rule, value) === undefined, `${rule.label}: ${JSON.stringify(value)}`).toBe(Value.Check(textSchema(rule), value))
      }
    }
  })

  it('count the minimum without the spaces at either end; an optional field may be left blank', () => {
    expect(textProblem(FIELD_RULES.title, '   a   ')).toBe('Title must be between 2 and 200 characters (spaces at either end do not count).')
    expect(textProblem(FIELD_RULES.title, ' ab ')).toBeUndefined()
    expect(textProblem(FIELD_RULES.title, '\u3000🧪\u3000')).toMatch(/spaces at either end/)
    expect(textProblem(IMAGE_ALT_RULE, '')).toBeUndefined()
    expect(textProblem(IMAGE_ALT_RULE, '   ')).toBeUndefined()
    expect(textProblem(IMAGE_ALT_RULE, 'x'.repeat(251))).toBe('Image description must be at most 250 characters.')
    expect(textProblem(IMAGE_ALT_RULE, 'a\u202Eb')).toMatch(/text-direction/)
  })

  it('give the same messages to a display name as to a title (inline text)', () => {
    expect(textProblem(DISPLAY_NAME_RULE, '')).toBe('Display name is required.')
    expect(textProblem(DISPLAY_NAME_RULE, '   ')).toBe('Display name cannot be only spaces.')
    expect(textProblem(DISPLAY_NAME_RULE, 'a\u0000b')).toBe('Display name cannot contain control characters.')
    expect(textProblem(DISPLAY_NAME_RULE, 'abc\u202Egpj.exe')).toMatch(/^Display name cannot contain text-direction override characters/)
    expect(textProblem(FIELD_RULES.title, 'abc\u202Egpj.exe')).toMatch(/^Title cannot contain text-direction override characters/)
    // Content is shown in blocks of its own: bidi controls are allowed there.
    expect(textProblem(FIELD_RULES.content, 'abc\u202Egpj.exe')).toBeUndefined()
    expect(textProblem(DISPLAY_NAME_RULE, 'x'.repeat(101))).toBe('Display name must be at most 100 characters.')
    expect(textProblem(FIELD_RULES.title, 'x')).toBe('Title must be between 2 and 200 characters.')
  })
})
