import type { Page } from 'playwright-core'

// Layout checks run inside Chromium on what it computed (not on the stylesheet's text): what a
// person on a phone or in dark mode would trip on, measured. In-page code is a string: this
// project's TypeScript has no DOM library.

export const PHONE = { width: 390, height: 844 }
export const DESKTOP = { width: 1366, height: 900 }

/** WCAG 2 AA: normal text 4.5:1; large text (24 px, or 18.66 px bold) and UI boundaries 3:1. */
export const AA_TEXT = 4.5
export const AA_LARGE = 3

// Shared in-page helpers: colour parsing, luminance, the background an element is painted on.
const HELPERS = String.raw`
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || '')
    if (!m) return null
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number)
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }
  }
  const over = (top, below) => {
    const a = top.a + below.a * (1 - top.a)
    if (a === 0) return { r: 0, g: 0, b: 0, a: 0 }
    const mix = (x, y) => (x * top.a + y * below.a * (1 - top.a)) / a
    return { r: mix(top.r, below.r), g: mix(top.g, below.g), b: mix(top.b, below.b), a }
  }
  const lum = (c) => {
    const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 }
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b)
  }
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05) }
  // The colour behind el: its own background and its ancestors', composited down to an opaque one.
  const backdrop = (el, skipSelf) => {
    const layers = []
    for (let n = skipSelf ? el.parentElement : el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor)
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break }
    }
    let out = { r: 255, g: 255, b: 255, a: 1 }
    for (let i = layers.length - 1; i >= 0; i--) out = over(layers[i], out)
    return out
  }
  const hidden = (el) => {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return true
    const r = el.getBoundingClientRect()
    if (r.width < 2 || r.height < 2) return true
    for (let n = el; n; n = n.parentElement) if (getComputedStyle(n).clipPath.startsWith('inset(50%')) return true
    return false
  }
  const name = (el) => {
    const id = el.id ? '#' + el.id : ''
    const cls = typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : ''
    const text = (el.textContent || el.value || '').trim().replace(/\s+/g, ' ').slice(0, 40)
    return el.tagName.toLowerCase() + id + cls + ' "' + text + '"'
  }
`

/** Elements whose text (or, for SVG, fill) is below AA against the colour behind it. */
export async function contrastProblems(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    ${HELPERS}
    const problems = []
    const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '')
    const controls = new Set(['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'])
    for (const el of document.body.querySelectorAll('*')) {
      if (!(ownText(el) || (controls.has(el.tagName) && el.type !== 'hidden' && el.type !== 'checkbox'))) continue
      if (hidden(el)) continue
      const cs = getComputedStyle(el)
      const svg = el instanceof SVGElement
      const fg = parse(svg ? cs.fill : cs.color)
      if (!fg) continue
      const bg = backdrop(el, svg)
      const size = parseFloat(cs.fontSize)
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700)
      const need = large ? ${AA_LARGE} : ${AA_TEXT}
      const got = ratio(over(fg, bg), bg)
      if (got < need) problems.push(name(el) + ': ' + got.toFixed(2) + ':1 < ' + need + ' (' + cs.color + ' on rgb(' + [bg.r, bg.g, bg.b].map(Math.round) + '))')
      // A control's boundary (border, or else its fill) against what surrounds it: 3:1.
      if (controls.has(el.tagName) && !el.classList.contains('link') && el.type !== 'file') {
        const around = backdrop(el, true)
        const border = parseFloat(cs.borderTopWidth) > 0 ? parse(cs.borderTopColor) : null
        const fill = parse(cs.backgroundColor)
        const edge = Math.max(border ? ratio(over(border, around), around) : 1, fill && fill.a > 0 ? ratio(over(fill, around), around) : 1)
        if (edge < ${AA_LARGE}) problems.push(name(el) + ': its edge is ' + edge.toFixed(2) + ':1 against its surroundings < ${AA_LARGE}')
      }
    }
    return problems
  })()`)
}

/**
 * Contrast of every button and button-styled link while the pointer is over it (hover colours
 * are pairs too).
 */
export async function hoverContrastProblems(page: Page): Promise<string[]> {
  const problems: string[] = []
  const selector = 'button, a.button'
  const buttons = page.locator(selector)
  const n = await buttons.count()
  for (let i = 0; i < n; i++) {
    if (!(await buttons.nth(i).isVisible())) continue
    await buttons.nth(i).hover()
    const p = (await page.evaluate(`(() => {
      ${HELPERS}
      const el = document.querySelectorAll(${JSON.stringify(selector)})[${i}]
      const cs = getComputedStyle(el)
      const bg = backdrop(el, false)
      const got = ratio(over(parse(cs.color), bg), bg)
      return got < ${AA_TEXT} ? name(el) + ' (hover): ' + got.toFixed(2) + ':1 < ${AA_TEXT}' : ''
    })()`)) as string
    if (p) problems.push(p)
  }
  await page.mouse.move(0, 0)
  return problems
}

/**
 * What makes the page wider than the viewport: the document's own scroll width, and every
 * element sticking out to the left or right that no scroll box of its own contains.
 */
export async function overflowProblems(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    ${HELPERS}
    const problems = []
    const width = document.documentElement.clientWidth
    const scroller = document.scrollingElement
    if (scroller.scrollWidth > width) problems.push('the page scrolls sideways: ' + scroller.scrollWidth + ' px wide in ' + width)
    const clipped = (el) => {
      for (let n = el.parentElement; n && n !== document.body; n = n.parentElement) {
        const o = getComputedStyle(n).overflowX
        if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') return true
      }
      return false
    }
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect()
      if (r.width === 0 || r.height === 0) continue
      if ((r.right > width + 0.5 || r.left < -0.5) && !clipped(el) && getComputedStyle(el).position !== 'fixed') {
        problems.push(name(el) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px of ' + width)
      }
    }
    return problems.slice(0, 20)
  })()`)
}

/** How many lines the text of each element matched by `selector` takes (1: no wrapping). */
export async function lineCounts(page: Page, selector: string): Promise<{ text: string; lines: number }[]> {
  return page.evaluate(`[...document.querySelectorAll(${JSON.stringify(selector)})].filter((el) => el.getClientRects().length > 0).map((el) => {
    const range = document.createRange()
    range.selectNodeContents(el)
    const tops = []
    for (const r of range.getClientRects()) {
      if (r.width === 0 || r.height === 0) continue
      if (!tops.some((t) => Math.abs(t.top - r.top) < r.height / 2 || Math.abs(t.bottom - r.bottom) < r.height / 2)) tops.push(r)
    }
    return { text: el.textContent.trim().replace(/\\s+/g, ' '), lines: tops.length }
  })`)
}

/** Elements matched by `selector` whose text is cut (ellipsis or hidden overflow). */
export async function cutText(page: Page, selector: string): Promise<string[]> {
  return page.evaluate(`[...document.querySelectorAll(${JSON.stringify(selector)})]
    .filter((el) => el.getClientRects().length > 0 && el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.textContent.trim() + ' (' + el.scrollWidth + ' px in ' + el.clientWidth + ')')`)
}

/** Boxes of the elements matched by `selector`, in viewport pixels. */
export async function boxes(page: Page, selector: string): Promise<{ text: string; left: number; right: number; top: number; bottom: number }[]> {
  return page.evaluate(`[...document.querySelectorAll(${JSON.stringify(selector)})].filter((el) => el.getClientRects().length > 0).map((el) => {
    const r = el.getBoundingClientRect()
    return { text: el.textContent.trim(), left: r.left, right: r.right, top: r.top, bottom: r.bottom }
  })`)
}
