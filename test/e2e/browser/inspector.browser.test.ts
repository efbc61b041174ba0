import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { CHROMIUM, CHROMIUM_ARGS, docsShot } from '../../kit/browser'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'
import { signUp } from '../../kit/accounts'
import { postForm } from '../../kit/form'
import { inspect, traceIdOf } from '../../kit/inspector'

// A real browser on the inspector's pages, under the app's Content-Security-Policy: the
// waterfall draws, a click shows a span's attributes without JavaScript, and nothing the CSP
// blocks is used. Screenshots go to test-results/ (git-ignored) for a human to look at; the
// waterfalls and the request list also to docs/images/ (committed: README and docs/ show them).

const SHOTS = path.join(ROOT, 'test-results')

let env: TestEnv
let child: ServerChild
let browser: Browser

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
  child = await startListening({ ...env.env, INSPECTOR_ENABLED: 'true', INSPECTOR_BADGE: 'true' }, { telemetry: true })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS
  })
  mkdirSync(SHOTS, { recursive: true })
})

afterAll(async () => {
  await browser?.close()
  await child?.kill()
  await env?.cleanup()
})

/** A page that records CSP violations and console errors. */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const problems: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text())
  })
  page.on('pageerror', (err) => problems.push(err.message))
  // In-page code as strings: this project's TypeScript has no DOM library.
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
  })
  return { page, problems }
}

describe('the inspector in a browser', () => {
  it.skipIf(!existsSync(CHROMIUM))('follows the badge to a waterfall drawn to scale, opens a span on click, and breaks no CSP rule', async () => {
    // Some traffic: an upload (image write + transaction), a few pages.
    const title = `Browser ${randomBytes(4).toString('hex')}`
    const created = await postForm(child.port, '/blogs/new', { title, content: 'Seen through the inspector.' }, {
      image_file: { data: PNG_1x1, filename: 'p.png', type: 'image/png' }
    }, { as: await signUp(child.port) })
    expect(created.status).toBe(303)
    const uploadTrace = traceIdOf(created)
    for (let i = 0; i < 3; i++) await request(child.port, '/blogs/')
    const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [title])
    // Warm: the waterfall in docs/images shows a page served as usual, not the template's first compile.
    await request(child.port, `/blogs/show/${row!.id}`)

    const { page, problems } = await openPage()
    const show = await page.goto(`http://127.0.0.1:${child.port}/blogs/show/${row!.id}`)
    expect(show?.status()).toBe(200)
    const csp = show?.headers()['content-security-policy']

    const badge = page.locator('.inspector-badge a')
    await expect.poll(() => badge.count()).toBe(1)
    const href = await badge.getAttribute('href')
    expect(href).toMatch(/^\/_inspect\/traces\/[0-9a-f]{32}$/)
    // The span ends just after the response: wait until the trace is in the buffer, then click.
    expect((await inspect(child.port, href!)).status).toBe(200)
    await badge.click()
    await page.waitForURL(`**${href}`)
    await expect.poll(() => page.locator('.wf-span').count()).toBe(4)

    // To scale: the server span's bar spans the whole axis, the others sit inside it (a SQL bar
    // is drawn as its parts: DB server, loop busy, the rest, side by side).
    const boxes = (await page.evaluate(`[...document.querySelectorAll('.wf-span')].map((row) => {
      const rects = [...row.querySelectorAll('.wf-bar .wf-rect, .wf-bar .wf-part')].map((r) => r.getBoundingClientRect())
      const svg = row.querySelector('.wf-bar').getBoundingClientRect()
      const left = Math.min(...rects.map((r) => r.left))
      const right = Math.max(...rects.map((r) => r.right))
      return { left: (left - svg.left) / svg.width, width: (right - left) / svg.width }
    })`)) as { left: number; width: number }[]
    expect(boxes).toHaveLength(4)
    expect(boxes[0]!.left).toBeCloseTo(0, 2)
    expect(boxes[0]!.width).toBeCloseTo(1, 2)
    for (const b of boxes.slice(1)) {
      expect(b.left).toBeGreaterThanOrEqual(0)
      expect(b.left + b.width).toBeLessThanOrEqual(1.01)
      expect(b.width).toBeGreaterThan(0)
    }

    expect(await page.locator('details.wf-span.cat-sql .wf-part.part-loop').count()).toBe(1)

    // Attributes on click, no JavaScript involved (<details>).
    const select = page.locator('details.wf-span.cat-sql')
    await expect.poll(() => select.locator('dt', { hasText: 'db.query.text' }).isVisible()).toBe(false)
    await select.locator('summary').click()
    await expect.poll(() => select.locator('dt', { hasText: 'db.query.text' }).isVisible()).toBe(true)
    expect(await select.locator('code.sql').textContent()).toMatch(/WHERE `id` = \?$/)
    await page.screenshot({ path: path.join(SHOTS, 'inspector-trace.png'), fullPage: true })
    await docsShot(page, 'inspector-trace', true)

    await page.goto(`http://127.0.0.1:${child.port}/_inspect/traces/${uploadTrace}`)
    // The image's work is two spans: blog.image.process (decode, re-encode: image processing) and
    // blog.image.write (image storage).
    await page.locator('details.wf-span.cat-store summary', { hasText: 'blog.image.write' }).first().click()
    await page.screenshot({ path: path.join(SHOTS, 'inspector-trace-upload.png'), fullPage: true })
    await docsShot(page, 'inspector-upload-trace', true)

    await page.goto(`http://127.0.0.1:${child.port}/_inspect/`)
    expect(await page.locator('.inspector-requests tbody tr').count()).toBeGreaterThanOrEqual(5)
    await page.screenshot({ path: path.join(SHOTS, 'inspector-requests.png'), fullPage: true })
    await docsShot(page, 'inspector-requests')

    await page.goto(`http://127.0.0.1:${child.port}/_inspect/routes`)
    await page.screenshot({ path: path.join(SHOTS, 'inspector-routes.png'), fullPage: true })

    // The stylesheet applied (the bars are coloured by class, not by attribute).
    await page.goto(`http://127.0.0.1:${child.port}${href}`)
    expect(await page.evaluate("getComputedStyle(document.querySelector('.cat-pool .wf-rect')).fill")).not.toBe('rgb(0, 0, 0)')
    const loopFill = await page.evaluate("getComputedStyle(document.querySelector('.cat-sql .part-loop')).fill")
    expect(loopFill).not.toBe('rgb(0, 0, 0)')
    expect(loopFill).not.toBe(await page.evaluate("getComputedStyle(document.querySelector('.cat-server .wf-rect')).fill"))

    expect(problems, `CSP: ${csp ?? '(none sent)'}`).toEqual([])
    await page.close()
  })
})
