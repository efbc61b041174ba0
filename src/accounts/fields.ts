import type { TextRule } from '../validation/text'

/**
 * The account forms' fields, checked by the rules of src/validation/text.ts like the post form's.
 * A display name is also the `author` of the user's posts (same column length) and is shown next
 * to titles: inline, like a title.
 */
export const DISPLAY_NAME_RULE = { label: 'Display name', minLength: 1, maxLength: 100, inline: true } as const satisfies TextRule

/** The name a user gives an API token (shown in their token list). */
export const TOKEN_NAME_RULE = { label: 'Name', minLength: 1, maxLength: 100, inline: true } as const satisfies TextRule

/** Shortest password accepted at sign-up. */
export const PASSWORD_MIN = 10

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** Emails are compared and stored trimmed and in lower case. */
export const normalEmail = (raw: string): string => raw.trim().toLowerCase()

export function emailProblem(email: string): string | undefined {
  return EMAIL.test(email) ? undefined : 'Enter an email address, like name@example.com.'
}

export function passwordProblem(password: string): string | undefined {
  return password.length < PASSWORD_MIN ? `Use at least ${PASSWORD_MIN} characters.` : undefined
}
