import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../paths'
import { DISPLAY_NAME_RULE } from '../accounts/fields'
import { FIELD_RULES, IMAGE_FIELD } from '../posts/fields'

/** k6/lib/fields.js: the form rules for the load scripts, which cannot import TypeScript. */
export const K6_FIELDS_FILE = path.join(ROOT, 'k6', 'lib', 'fields.js')

export function renderK6Fields(): string {
  const limits = Object.fromEntries(Object.entries(FIELD_RULES).map(([name, r]) => [name, { min: r.minLength, max: r.maxLength }]))
  return [
    '// @ts-check',
    '// Generated from src/posts/fields.ts and src/accounts/fields.ts by `npm run gen:k6`: do not edit (a test checks it is current).',
    '',
    '/** Length limits of the post form fields, in characters. */',
    `export const FIELD_LIMITS = ${JSON.stringify(limits, null, 2).replace(/"(\w+)":/g, '$1:').replaceAll('"', "'")}`,
    '',
    '/** The file part of the post form. */',
    `export const IMAGE_FIELD = '${IMAGE_FIELD}'`,
    '',
    '/** Length limits of a display name (sign-up), in characters. */',
    `export const DISPLAY_NAME_LIMITS = { min: ${DISPLAY_NAME_RULE.minLength}, max: ${DISPLAY_NAME_RULE.maxLength} }`,
    ''
  ].join('\n')
}

// `npm run gen:k6`
if (require.main === module) writeFileSync(K6_FIELDS_FILE, renderK6Fields())
