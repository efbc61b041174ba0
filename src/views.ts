const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number) => (n < 10 ? '0' : '') + n

/** 2026-09-01T09:15:00Z, by hand for the same reason (toISOString was 1.6% of the list page). */
function isoDate(value: Date | string): string {
  const d = new Date(value)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`
}

/** "1 Sep 2026, 09:15 UTC" style, by hand: Intl.DateTimeFormat cost ~3% of the list page. */
function formatDate(value: Date | string): string {
  const d = new Date(value)
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`
}

/** Helpers every template may call; they return plain strings and arrays, templates escape them. */
export const viewHelpers = {
  siteName: 'blog_app',
  formatDate,
  isoDate,
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
