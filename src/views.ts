const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number) => (n < 10 ? '0' : '') + n

// The repository gives dates as ISO 8601 text in UTC (2026-09-01T09:15:00Z, made by the database);
// a Date is accepted too.
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):\d{2}Z$/

/** 2026-09-01T09:15:00Z (toISOString was 1.6% of the list page, and the text is already that). */
function isoDate(value: Date | string): string {
  if (typeof value === 'string' && ISO_UTC.test(value)) return value
  const d = new Date(value)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`
}

/** "1 Sep 2026, 09:15 UTC" style, by hand: Intl.DateTimeFormat cost ~3% of the list page. */
function formatDate(value: Date | string): string {
  const m = typeof value === 'string' ? ISO_UTC.exec(value) : null
  if (m) return `${Number(m[3])} ${MONTHS[Number(m[2]) - 1]} ${m[1]}, ${m[4]}:${m[5]} UTC`
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
