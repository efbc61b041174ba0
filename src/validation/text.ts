import { Type, type TString } from 'typebox'
import { isMixedScript } from './scripts'

/**
 * The rules every text a user types goes by (post fields, display names, token names): which
 * characters are refused, how length is counted, and the messages. The fields themselves are
 * declared by their feature (src/posts/fields.ts, src/accounts/fields.ts) as TextRules.
 */

/** A text field: its label in messages, its length in characters, and where it is shown. */
export interface TextRule {
  readonly label: string
  /** Counted without the spaces at either end ("  a  " is one character); 0: the field may be left empty. */
  readonly minLength: number
  readonly maxLength: number
  /**
   * Shown inline, next to other text (a title, an author): the bidi controls are refused there.
   * Text shown in blocks of its own (post content) may have them: the browser ends them at the
   * paragraph.
   */
  readonly inline: boolean
}

/** At least one character that is not white space. */
export const NOT_BLANK = '\\S'

// C0 controls other than tab, CR and LF, and DEL: a NUL is a parse error in HTML, an ESC
// sequence rewrites the terminal of whoever looks at the table.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
export const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/**
 * U+FFFD is what a decoder puts where bytes were not valid UTF-8 (multipart, urlencoded and JSON
 * bodies all decode that way): storing it would silently change what was sent, so it is refused.
 */
export const UNDECODABLE = /\uFFFD/

/** Bidi embedding, override and isolate controls: an unclosed U+202E reverses what follows it ("gpj.exe" tricks). */
export const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/

/**
 * Characters with no visible form of their own: the default-ignorables (zero-width space and
 * joiners, U+061C, soft hyphen, variation selectors, tag characters, the Hangul fillers U+3164,
 * U+115F, U+1160 and U+FFA0), every other format character (Cf), and the blank Braille pattern
 * U+2800. In a name or an email they make two spellings that look the same, or a blank one.
 */
export const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\u2800]/u

/**
 * The form in which two spellings that mean the same are the same string: NFKC (fullwidth
 * `ｃ`, `𝐀`, ligatures and circled letters become plain letters), then a case fold (lower, upper,
 * lower: `ß`, `ẞ` and `SS` all give `ss`, `ı` and `I` give `i`), then NFKC again. Idempotent
 * for every code point (test/unit/identity.test.ts).
 */
export function foldText(value: string): string {
  return value.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC')
}

/** The look-alike rules of identities (display names, emails): invisible characters, mixed scripts. */
export function lookAlikeProblem(label: string, value: string): string | undefined {
  if (INVISIBLE.test(value)) return `${label} cannot contain invisible characters (such as zero-width spaces, joiners or fillers).`
  if (isMixedScript(value)) return `${label} cannot mix letters of different scripts (such as Latin and Cyrillic), which could imitate another name.`
  return undefined
}

/** Length in characters as MySQL's utf8mb4 columns (and TypeBox) count them: code points, not UTF-16 units. */
export function characterCount(value: string): number {
  let n = 0
  for (const _ of value) n++
  return n
}

/** The character rules alone (for text whose length is checked elsewhere). */
export function characterProblem(label: string, value: string, inline: boolean): string | undefined {
  if (CONTROL_CHARS.test(value)) return `${label} cannot contain control characters.`
  if (UNDECODABLE.test(value)) return `${label} is not valid UTF-8 text (or contains U+FFFD).`
  if (inline && BIDI_CONTROLS.test(value)) return `${label} cannot contain text-direction override characters (U+202A–U+202E, U+2066–U+2069).`
  return undefined
}

/** What is wrong with `value` for this field, in words for the form; undefined: nothing. */
export function textProblem(rule: TextRule, value: string | undefined): string | undefined {
  const optional = rule.minLength === 0
  if (value === undefined || value.length === 0) return optional ? undefined : `${rule.label} is required.`
  const chars = characterProblem(rule.label, value, rule.inline)
  if (chars) return chars
  const trimmed = value.trim()
  // Left blank: an optional field was not given; a required one was not filled in.
  if (trimmed === '') return optional ? undefined : `${rule.label} cannot be only spaces.`
  const n = characterCount(value)
  const core = trimmed.length === value.length ? n : characterCount(trimmed)
  if (core >= rule.minLength && n <= rule.maxLength) return undefined
  if (rule.minLength <= 1) return `${rule.label} must be at most ${rule.maxLength} characters.`
  const range = `${rule.label} must be between ${rule.minLength} and ${rule.maxLength} characters`
  return core < rule.minLength && n >= rule.minLength ? `${range} (spaces at either end do not count).` : `${range}.`
}

/**
 * The rule as a TypeBox schema (the same length counting: code points; TypeBox matches patterns
 * with the u flag). The minimum without the spaces at either end, as a pattern: two non-space
 * characters at least minLength - 2 characters apart.
 */
export function textSchema(rule: TextRule): TString {
  const pattern = rule.minLength === 0 ? undefined : rule.minLength === 1 ? NOT_BLANK : `\\S[\\s\\S]{${rule.minLength - 2},}\\S`
  return Type.String({ title: rule.label, minLength: rule.minLength, maxLength: rule.maxLength, ...(pattern ? { pattern } : {}) })
}

/** What the user typed, fit to show back in the form: control characters (refused) become U+FFFD. */
export function shownBack(value: string): string {
  return value.replace(new RegExp(CONTROL_CHARS, 'g'), '\uFFFD')
}
