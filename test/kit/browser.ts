import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { ROOT } from '../../src/paths'

// What the browser tests share: Debian's Chromium, how it is started, and the screenshots that
// README and docs/ show, which every run of these tests writes again so they stay current.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

export const DOCS_IMAGES = path.join(ROOT, 'docs', 'images')

/**
 * `docs/images/<name>.png`: the viewport as it is (the tests fix its size), or the whole page
 * when `fullPage`. Names are stable: the docs link to them.
 */
export async function docsShot(page: Page, name: string, fullPage = false): Promise<void> {
  mkdirSync(DOCS_IMAGES, { recursive: true })
  await page.screenshot({ path: path.join(DOCS_IMAGES, `${name}.png`), type: 'png', fullPage, animations: 'disabled', caret: 'hide' })
}
