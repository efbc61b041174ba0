import { createHash } from 'node:crypto'
import { characterCount, CONTROL_CHARS, foldText, lookAlikeProblem, textProblem, type TextRule } from '../validation/text'

/**
 * The account forms' fields, checked by the rules of src/validation/text.ts like the post form's.
 * A display name is also the `author` of the user's posts (same column length) and is shown next
 * to titles: inline, like a title.
 */
export const DISPLAY_NAME_RULE = { label: 'Display name', minLength: 1, maxLength: 100, inline: true } as const satisfies TextRule

/** The name a user gives an API token (shown in their token list). */
export const TOKEN_NAME_RULE = { label: 'Name', minLength: 1, maxLength: 100, inline: true } as const satisfies TextRule

/** Shortest password accepted, in characters (code points, as the longest is counted). */
export const PASSWORD_MIN = 10
/** Longest password, in characters: bounds the work one password costs the server. */
export const PASSWORD_MAX = 1024

/** Longest email (RFC 5321's path limit), counted in its canonical form. */
export const EMAIL_MAX = 254

/** The author shown on the posts of a deleted account; nobody may take it as a display name. */
export const DELETED_AUTHOR = 'deleted user'

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

// A combining mark left after NFKC on a Latin, Greek or Cyrillic letter (`İ` folds to `i` + U+0307)
// is a look-alike of the bare letter; those scripts write their accented letters precomposed.
const LOOSE_MARK = /[\p{sc=Latn}\p{sc=Grek}\p{sc=Cyrl}\p{sc=Zyyy}]\p{M}/u

/**
 * The one canonical form of an email, used by sign-up, sign-in, the throttle key and the CLI:
 * trimmed, then NFKC and case-folded (src/validation/text.ts foldText), so `ｃｈｉｅｆ@` and
 * `CHIEF@` are `chief@`. `problem` says why sign-up refuses it (not an address, too long, invisible
 * characters, mixed scripts in the local part or a domain label, a loose combining mark); sign-in
 * and the CLI only look the canonical form up, so a refused spelling matches no account.
 */
export function canonicalEmail(raw: string): { email: string; problem?: string } {
  const email = foldText(raw.trim())
  const problem = emailProblem(email)
  return problem ? { email, problem } : { email }
}

function emailProblem(email: string): string | undefined {
  if (!EMAIL.test(email) || CONTROL_CHARS.test(email)) return 'Enter an email address, like name@example.com.'
  if (characterCount(email) > EMAIL_MAX) return `An email address has at most ${EMAIL_MAX} characters.`
  const at = email.lastIndexOf('@')
  for (const part of [email.slice(0, at), ...email.slice(at + 1).split('.')]) {
    const problem = lookAlikeProblem('An email address', part)
    if (problem) return problem
  }
  if (LOOSE_MARK.test(email)) return 'An email address cannot contain accents that are not part of a letter (combining marks).'
  return undefined
}

/**
 * What two display names that look alike share: folded (NFKC + case), with runs of white space
 * as one space (HTML shows them so). Stored with a unique key: `𝐀lice` and `ALICE` are refused
 * beside `Alice`. A TR39 confusable skeleton (e.g. the `unhomoglyph` package) would go on top of
 * this; without its data, mixed scripts and invisible characters are refused instead.
 */
export function displayNameKey(name: string): string {
  return foldText(name).replace(/\s+/gu, ' ').trim()
}

/** The key as stored (`user.display_name_key`, unique): the SHA-256 of displayNameKey, a fixed 64 characters however NFKC expands the name. */
export const storedNameKey = (name: string): string => createHash('sha256').update(displayNameKey(name)).digest('hex')

/** The display name as stored: trimmed, in NFC (the same text, one encoding). */
export const cleanDisplayName = (raw: string): string => raw.trim().normalize('NFC')

/**
 * What is wrong with a display name: the text rules of every inline field, then the look-alike
 * rules (invisible characters, mixed scripts), and something visible to show (not only marks).
 */
export function displayNameProblem(name: string): string | undefined {
  const text = textProblem(DISPLAY_NAME_RULE, name)
  if (text) return text
  const lookAlike = lookAlikeProblem(DISPLAY_NAME_RULE.label, name)
  if (lookAlike) return lookAlike
  if (!/[\p{L}\p{N}\p{P}\p{S}]/u.test(name)) return 'Display name must contain a letter, digit or symbol.'
  if (displayNameKey(name) === DELETED_AUTHOR) return 'This name is reserved. Choose another.'
  return undefined
}

export function passwordProblem(password: string): string | undefined {
  const n = characterCount(password)
  if (n < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters.`
  if (n > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters.`
  return undefined
}
