import { UPLOAD_URL_PREFIX } from './plugins/image-store'

const dateFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' })

/** Helpers every template may call; they return plain strings and arrays, templates escape them. */
export const viewHelpers = {
  siteName: 'blog_app',
  formatDate: (d: Date | string): string => dateFormat.format(new Date(d)) + ' UTC',
  isoDate: (d: Date | string): string => new Date(d).toISOString(),
  imageUrl: (name: string): string => UPLOAD_URL_PREFIX + encodeURIComponent(name),
  /** aria attributes for a form field with an error (field names are ours, never user input). */
  invalidAttrs: (errors: Record<string, string | undefined>, field: string): string =>
    errors[field] ? `aria-invalid="true" aria-describedby="${field}-error"` : '',
  /** Content as paragraphs (blank-line separated) of lines, so newlines render as breaks. */
  paragraphs: (text: string): string[][] =>
    text
      .split(/\r?\n\s*\r?\n/)
      .map((p) => p.split(/\r?\n/))
      .filter((lines) => lines.some((l) => l.trim() !== ''))
}
