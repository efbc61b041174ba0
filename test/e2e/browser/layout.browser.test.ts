import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { CHROMIUM, CHROMIUM_ARGS } from '../../kit/browser'
import { postForm } from '../../kit/form'
import { inspect, traceIdOf } from '../../kit/inspector'
import { DESKTOP, PHONE, boxes, contrastProblems, cutText, hoverContrastProblems, lineCounts, overflowProblems } from '../../kit/layout'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'
import { solidPng } from '../../fixtures/images'

// The pages as people use them (issue 28): on a 390 px phone and a desktop, in the light and the
// dark scheme, the list, a post, the form with errors, the delete confirmation and the
// inspector's pages are checked by measuring what Chromium computed: nothing wider than the
// viewport, every text at WCAG AA contrast (buttons and their hover colours included), the
// header's items on one line each, the thumbnail filling its card, the waterfall readable.
// Screenshots of every page in every mode go to test-results/layout/ (git-ignored).

const SHOTS = path.join(ROOT, 'test-results', 'layout')
const MAX_UPLOAD = 300 * 1024
const SCHEMES = ['light', 'dark'] as const
const VIEWPORTS = [
  { name: 'phone', size: PHONE },
  { name: 'desktop', size: DESKTOP }
] as const

let env: TestEnv
let child: ServerChild
let browser: Browser
let context: BrowserContext
let page: Page
let author: Account
let files: string
let older: { id: number; title: string }
let newer: { id: number; title: string }
let uploadTrace: string

const base = () => `http://127.0.0.1:${child.port}`

async function createPost(title: string, content: string, image: Buffer): Promise<{ id: number; title: string; trace: string }> {
  const res = await postForm(child.port, '/blogs/new', { title, content }, { image_file: { data: image, filename: 'photo.png', type: 'image/png' } }, { as: author })
  expect(res.status, res.body).toBe(303)
  const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [title])
  return { id: row!.id, title, trace: traceIdOf(res) }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package or set CHROMIUM_PATH`)
  assertBuilt()
  await fs.mkdir(SHOTS, { recursive: true })
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
  child = await startListening({ ...env.env, INSPECTOR_ENABLED: 'true', INSPECTOR_BADGE: 'true', MAX_UPLOAD_BYTES: String(MAX_UPLOAD) }, { telemetry: true })
  author = await signUp(child.port, { displayName: 'Alice' })

  // A wide photo (it gets a thumbnail), a long excerpt; then a newer post; then the older one
  // is edited: it keeps its place and its date.
  const words = 'The harbour was quiet at dusk, boats resting against the pier while the lights came on one by one. '
  const first = await createPost('A harbour at dusk', words.repeat(6), solidPng(1600, 1000, [47, 93, 138]))
  older = first
  uploadTrace = first.trace
  // Publication dates are kept to the second: let the next post be later.
  await new Promise((r) => setTimeout(r, 1100))
  newer = await createPost('Morning light', 'A short one.', solidPng(300, 200, [180, 120, 24]))
  await new Promise((r) => setTimeout(r, 1100))
  const edit = await postForm(child.port, `/blogs/modify/${older.id}`, { title: older.title, content: words.repeat(5) }, {}, { as: author })
  expect(edit.status, edit.body).toBe(303)
  for (let i = 0; i < 3; i++) await request(child.port, '/blogs/')

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  context = await browser.newContext({ viewport: PHONE, baseURL: base() })
  const [name, value] = author.cookie.split('=') as [string, string]
  await context.addCookies([{ name, value, url: base() }])
  page = await context.newPage()
  page.setDefaultTimeout(10_000)
  files = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-layout-'))
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await child?.kill()
  await env?.cleanup()
  if (files) await fs.rm(files, { recursive: true, force: true })
})

/**
 * The current page on a phone and a desktop, light and dark: nothing sticks out sideways, every
 * text pair reaches AA (hover colours too). Returns the problems found, labelled.
 */
async function checkEveryMode(label: string): Promise<string[]> {
  const problems: string[] = []
  for (const v of VIEWPORTS) {
    await page.setViewportSize(v.size)
    for (const scheme of SCHEMES) {
      await page.emulateMedia({ colorScheme: scheme })
      const where = `${label}, ${v.name}, ${scheme}`
      for (const p of await overflowProblems(page)) problems.push(`${where}: ${p}`)
      for (const p of await contrastProblems(page)) problems.push(`${where}: ${p}`)
      if (v.name === 'desktop') for (const p of await hoverContrastProblems(page)) problems.push(`${where}: ${p}`)
      await page.screenshot({ path: path.join(SHOTS, `${label}-${v.name}-${scheme}.png`), fullPage: true })
    }
  }
  await page.setViewportSize(PHONE)
  await page.emulateMedia({ colorScheme: 'light' })
  return problems
}

/** On a phone: the header's items each on one line, the button clear of the screen's edges. */
async function expectPhoneHeader(): Promise<void> {
  await page.setViewportSize(PHONE)
  const lines = await lineCounts(page, '.site-header nav a, .site-header nav button')
  expect(lines.map((l) => l.text)).toEqual(expect.arrayContaining(['Signed in as Alice', 'Sign out', 'Write a post']))
  expect(lines.filter((l) => l.lines !== 1)).toEqual([])
  const [button] = await boxes(page, '.site-header a.button')
  expect(button!.left).toBeGreaterThanOrEqual(12)
  expect(PHONE.width - button!.right).toBeGreaterThanOrEqual(12)
}

describe('the blog on a phone and in dark mode', () => {
  it('the list: fits the phone, AA contrast in both schemes, a one-line header, thumbnails that fill their card, publication order and dates kept on edit', async () => {
    const res = await page.goto('/blogs/')
    expect(res?.status()).toBe(200)
    expect.soft(await checkEveryMode('list')).toEqual([])
    await expectPhoneHeader()

    // Thumbnails as wide as their card's content box on a phone.
    const fill = (await page.evaluate(`[...document.querySelectorAll('.post-card')].map((card) => {
      const img = card.querySelector('.thumb img')
      const cs = getComputedStyle(card)
      const inner = card.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)
      return { inner, img: img ? img.getBoundingClientRect().width : 0 }
    })`)) as { inner: number; img: number }[]
    expect(fill.length).toBe(2)
    for (const f of fill) expect(f.img).toBeCloseTo(f.inner, 0)

    // Newest publication first: the edit did not move the older post to the top.
    expect(await page.locator('.post-card h2').allInnerTexts()).toEqual([newer.title, older.title])
    // Excerpts end at a word.
    const excerpt = await page.locator('.post-card', { hasText: older.title }).locator('.excerpt').innerText()
    expect(excerpt).toMatch(/(^|\s)\S+…$/)
    expect(excerpt.replace(/…$/, '').split(/\s+/).pop()).toMatch(/^(The|harbour|was|quiet|at|dusk,|boats|resting|against|the|pier|while|lights|came|on|one|by|one\.)$/)
  })

  it('a post: fits the phone, AA contrast, the image reserved and served at the size of its slot, "edited" with its own date', async () => {
    const res = await page.goto(`/blogs/show/${older.id}`)
    expect(res?.status()).toBe(200)
    expect.soft(await checkEveryMode('post')).toEqual([])
    await expectPhoneHeader()

    const img = page.locator('.post-image img')
    expect(await img.getAttribute('width')).toBe('1600')
    expect(await img.getAttribute('height')).toBe('1000')
    expect(await img.getAttribute('srcset')).toMatch(/ 480w, .+ 1600w$/)
    expect(await img.getAttribute('sizes')).toBeTruthy()
    // A 1x phone's slot is ~312 px: the 480 px derivative is enough (a fresh context: Chromium
    // keeps using a larger candidate it has already loaded).
    const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, baseURL: base() })
    try {
      const fresh = await phone.newPage()
      await fresh.goto(`/blogs/show/${older.id}`)
      const current = (await fresh.evaluate(`(() => {
        const el = document.querySelector('.post-image img')
        return new Promise((resolve) => el.complete ? resolve(el.currentSrc) : el.addEventListener('load', () => resolve(el.currentSrc)))
      })()`)) as string
      expect(current).toMatch(/\.webp$/)
    } finally {
      await phone.close()
    }

    const meta = await page.locator('article.post .meta').innerText()
    expect(meta).toMatch(/· \d+ \w+ \d{4}, \d\d:\d\d UTC · edited \d+ \w+ \d{4}, \d\d:\d\d UTC$/)
    const [published, edited] = (await page.evaluate(`[...document.querySelectorAll('article.post .meta time')].map((t) => t.getAttribute('datetime'))`)) as string[]
    expect(edited! > published!).toBe(true)
  })

  it('the form with errors: fits the phone, AA contrast, the text kept, focus on the error summary, the file field highlighted', async () => {
    await page.goto('/blogs/new')
    const notAnImage = path.join(files, 'holiday.jpg')
    await fs.writeFile(notAnImage, 'these are words, not pixels\n'.repeat(20))
    await page.fill('#title', '  a  ')
    await page.fill('#content', 'Kept after the error.')
    await page.setInputFiles('#image_file', notAnImage)
    const [res] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Publish' }).click()])
    expect(res?.status()).toBe(415)
    expect(await page.inputValue('#content')).toBe('Kept after the error.')
    expect(await page.locator('#title-error').innerText()).toMatch(/between 2 and/)
    expect(await page.locator('#image_file-error').innerText()).toMatch(/not a readable image/i)
    expect(await page.evaluate(`document.activeElement && document.activeElement.classList.contains('form-summary')`)).toBe(true)
    // The file field is marked as the title is: a red outline or border at least 2 px wide.
    const marked = await page.evaluate(`(() => {
      const el = document.querySelector('#image_file')
      const cs = getComputedStyle(el)
      const danger = getComputedStyle(document.querySelector('.field-error')).color
      return (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 && cs.outlineColor === danger) ||
        (parseFloat(cs.borderTopWidth) >= 2 && cs.borderTopColor === danger)
    })()`)
    expect(marked).toBe(true)
    expect.soft(await checkEveryMode('form-errors')).toEqual([])
    await expectPhoneHeader()
  })

  it('an upload over MAX_UPLOAD_BYTES: the form again with its text, the limit named, status 413, signed in, nothing stored', async () => {
    await page.goto('/blogs/new')
    const big = path.join(files, 'big.png')
    await fs.writeFile(big, Buffer.alloc(MAX_UPLOAD * 3, 7))
    await page.fill('#title', 'Too big to send')
    await page.fill('#content', 'This text survives the refusal.')
    await page.setInputFiles('#image_file', big)
    const [res] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Publish' }).click()])
    expect(res?.status()).toBe(413)
    expect(await page.inputValue('#title')).toBe('Too big to send')
    expect(await page.inputValue('#content')).toBe('This text survives the refusal.')
    expect(await page.locator('#image_file-error').innerText()).toContain('0.3 MiB')
    expect(await page.locator('header .viewer').innerText()).toBe('Signed in as Alice')
    expect(await env.query('SELECT `id` FROM `blog` WHERE `title` = ?', ['Too big to send'])).toEqual([])
  })

  it('delete asks first, on a page that works without JavaScript and fits the phone', async () => {
    await page.goto(`/blogs/show/${newer.id}`)
    await page.getByRole('link', { name: 'Delete' }).click()
    await page.waitForURL(`**/blogs/delete/${newer.id}`)
    expect(await page.locator('h1').innerText()).toMatch(/Delete/)
    expect.soft(await checkEveryMode('delete-confirm')).toEqual([])
    // Still there until confirmed.
    expect(await env.query('SELECT `id` FROM `blog` WHERE `id` = ?', [newer.id])).toHaveLength(1)
  })

  it('a skip link is the first thing a keyboard reaches, and it moves focus to the content', async () => {
    await page.goto('/blogs/')
    await page.keyboard.press('Tab')
    expect(await page.evaluate('document.activeElement.textContent.trim()')).toBe('Skip to the content')
    const [box] = await boxes(page, 'a.skip-link')
    expect(box!.top).toBeGreaterThanOrEqual(0)
    await page.keyboard.press('Enter')
    expect(await page.evaluate('document.activeElement.id')).toBe('main')
  })

  it('a new API token: shown once after the redirect, fits the phone; a reload makes no second one and shows none', async () => {
    const tokens = () => env.query('SELECT `id` FROM `api_token` WHERE `name` = ?', ['phone script'])
    await page.goto('/account')
    await page.fill('#name', 'phone script')
    await page.getByRole('button', { name: 'Make a token' }).click()
    await page.waitForURL('**/account#new-token')
    const token = await page.locator('#new-token').innerText()
    expect(token).toMatch(/^blogtok_[A-Za-z0-9_-]{43}$/)
    expect.soft(await checkEveryMode('account-new-token')).toEqual([])
    await page.reload()
    expect(await page.locator('#new-token').count()).toBe(0)
    expect(await page.content()).not.toContain(token)
    expect(await tokens()).toHaveLength(1)
  })

  it('an error page: fits the phone, AA contrast, and its header knows who is signed in', async () => {
    const res = await page.goto('/blogs/show/999999')
    expect(res?.status()).toBe(404)
    expect.soft(await checkEveryMode('not-found')).toEqual([])
    await expectPhoneHeader()
  })
})

describe('the inspector on a phone and in dark mode', () => {
  it('the request list: no sideways drag, status and duration on screen, AA contrast, the signed-in header', async () => {
    // The spans end just after each response: wait until the last one is listed.
    expect((await inspect(child.port, `/_inspect/traces/${uploadTrace}`)).status).toBe(200)
    await page.goto('/_inspect/')
    expect.soft(await checkEveryMode('inspector-requests')).toEqual([])
    await page.setViewportSize(PHONE)
    const cells = await boxes(page, '.inspector-requests tbody .status, .inspector-requests tbody td.col-duration')
    expect(cells.length).toBeGreaterThan(4)
    for (const c of cells) expect(c.right, c.text).toBeLessThanOrEqual(PHONE.width)
    await expectPhoneHeader()
  })

  it('a trace: axis labels apart, span names whole, "N queries" on one line, DB server explained, AA contrast', async () => {
    await page.goto(`/_inspect/traces/${uploadTrace}`)
    expect.soft(await checkEveryMode('inspector-trace')).toEqual([])
    for (const v of VIEWPORTS) {
      await page.setViewportSize(v.size)
      const ticks = await boxes(page, '.wf-axis .wf-tick')
      expect(ticks.length).toBeGreaterThan(1)
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.left, `${v.name}: ${ticks[i - 1]!.text} / ${ticks[i]!.text}`).toBeGreaterThan(ticks[i - 1]!.right + 4)
      expect(await cutText(page, '.wf-label'), v.name).toEqual([])
      expect((await lineCounts(page, '.trace-totals dd:not(.total-note)')).filter((l) => l.lines !== 1), v.name).toEqual([])
    }
    const dbServer = await page.locator('.total-dbserver').innerText()
    if (dbServer.includes('–')) expect(dbServer).toMatch(/performance_schema/)
    await expectPhoneHeader()
  })

  it('routes and SQL: no sideways drag, AA contrast', async () => {
    await page.goto('/_inspect/routes')
    expect.soft(await checkEveryMode('inspector-routes')).toEqual([])
  })
})
