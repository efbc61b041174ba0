import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { expect } from 'vitest'
import { ROOT } from '../../src/paths'

// Shared by the property tests (test/app/hostile): run counts, and what a page made only of the
// templates' own markup looks like.

export const RUNS = Number(process.env.FAST_CHECK_RUNS ?? 150)
const seed = process.env.FAST_CHECK_SEED ? Number(process.env.FAST_CHECK_SEED) : undefined
export const params = (numRuns: number) => ({ numRuns, ...(seed !== undefined ? { seed } : {}) })

/** Every tag name the templates can produce; anything else in a page came from input. */
const allowedTags = ((): Set<string> => {
  const tags = new Set(['html'])
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else for (const m of readFileSync(p, 'utf8').matchAll(/<\/?([a-zA-Z][a-zA-Z0-9-]*)/g)) tags.add(m[1]!.toLowerCase())
    }
  }
  walk(path.join(ROOT, 'views'))
  return tags
})()

/** Tag names in a page that the templates do not have (input that became markup). */
function foreignTags(html: string): string[] {
  return [...html.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9-]*)/g)].map((m) => m[1]!.toLowerCase()).filter((t) => !allowedTags.has(t))
}

export function expectWellFormed(html: string, what: string): void {
  expect(html.startsWith('<!doctype html>'), what).toBe(true)
  expect(html.trimEnd().endsWith('</html>'), what).toBe(true)
  expect(foreignTags(html), what).toEqual([])
  // NUL and other C0 controls are parse errors in HTML: none may reach a page.
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  expect(html, what).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/)
}
