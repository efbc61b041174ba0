import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Blog } from './repositories/blog-repository'
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

/** What the post page's <img> needs to know about a post's image. */
export type PostImageFacts = Pick<Blog, 'imageLoc' | 'thumbLoc' | 'imageWidth' | 'imageHeight' | 'thumbWidth' | 'thumbHeight'>

export interface ImageAttributes {
  src: string
  srcset?: string
  sizes?: string
  width?: number
  height?: number
}

// The post page's image slot (public/style.css): .post's content box is 760 - 2x20 (.wrap) -
// 2x28 (padding) - 2 (border) = 662 px, on phones (<= 560 px) the viewport less 2x20 + 2x18 + 2;
// an image is at most 520 px high.
const SLOT_PX = 662
const PHONE_SLOT = 'calc(100vw - 78px)'
const MAX_HEIGHT_PX = 520

/**
 * src, srcset and sizes from the stored derivatives (the image and its thumbnail), and the
 * width and height that reserve the box before it loads, where they are known. The thumbnail is a
 * still WebP of the first frame: it is offered in place of the image only for a JPEG or PNG (a
 * GIF or WebP may move).
 */
export function postImage(post: PostImageFacts, url: (name: string) => string): ImageAttributes {
  const attrs: ImageAttributes = { src: url(post.imageLoc!) }
  const { imageWidth: w, imageHeight: h } = post
  if (!w || !h) return attrs
  attrs.width = w
  attrs.height = h
  if (post.thumbLoc && post.thumbWidth && /\.(jpg|png)$/.test(post.imageLoc!)) {
    attrs.srcset = `${url(post.thumbLoc)} ${post.thumbWidth}w, ${attrs.src} ${w}w`
    // A tall image is narrower than the slot: it is drawn at most MAX_HEIGHT_PX high.
    const drawn = Math.round((MAX_HEIGHT_PX * w) / h)
    attrs.sizes = drawn >= SLOT_PX ? `(max-width: 560px) ${PHONE_SLOT}, ${SLOT_PX}px` : `(max-width: 560px) min(${PHONE_SLOT}, ${drawn}px), ${drawn}px`
  }
  return attrs
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

// ejs's own names inside a compiled template, and names that must stay the engine's or the
// language's: never shadowed by a destructured local.
const ENGINE_NAMES = new Set(['include', 'locals', 'escapeFn', 'rethrow', 'client', 'arguments', 'eval', 'undefined', 'NaN', 'Infinity'])
const CODE_TAG = /<%[_=-]?([\s\S]*?)[_-]?%>/g
const IDENTIFIER = /(?<![\w$.])[A-Za-z_$][\w$]*/g

/** Every .ejs file under `dir`, at any depth. */
export function templateFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const p = path.join(entry.parentPath, entry.name)
    return entry.isDirectory() ? templateFiles(p) : entry.name.endsWith('.ejs') ? [p] : []
  })
}

/** True for a name `var NAME` may declare (not a reserved word). */
function bindable(name: string): boolean {
  try {
    new Function(`var ${name};`)
    return true
  } catch {
    return false
  }
}

/**
 * Every name the templates under `dir` read, for ejs's `destructuredLocals`: with it and
 * `_with: false`, a template reads its locals as plain variables instead of through a `with`
 * block, whose every lookup (its own bookkeeping included) is a dynamic scope search. Measured:
 * the list page's two templates rendered in about half the CPU time (README "Performance").
 * Over-inclusive by design (a loop variable or a word in a string is listed too, and reads as
 * undefined until the template sets it); globals and the engine's own names are left out.
 */
export function templateLocals(dir: string): string[] {
  const names = new Set<string>()
  for (const file of templateFiles(dir)) {
    for (const [, code] of readFileSync(file, 'utf8').matchAll(CODE_TAG)) for (const [name] of code!.matchAll(IDENTIFIER)) names.add(name)
  }
  return [...names].filter((n) => !ENGINE_NAMES.has(n) && !(n in globalThis) && !n.startsWith('__') && bindable(n)).sort()
}
