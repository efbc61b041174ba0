import fs from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { defaultAuthor } from '../../kit/accounts'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { createPost, unusedId } from '../../kit/posts'
import { PNG_1x1 } from '../../fixtures/images'

let env: TestEnv
let app: FastifyInstance
let postId: number
let imageName: string

beforeAll(async () => {
  env = await createTestEnv()
  app = await buildApp(env)
  const row = await createPost(app, env, { title: 'Headers <b>post</b>' }, { data: PNG_1x1, filename: 'a.png', type: 'image/png' })
  postId = row.id
  imageName = row.image_loc!
})
afterAll(async () => {
  await app?.close()
  await env?.cleanup()
})

/** The policy as a map of directive -> sources. */
function parseCsp(header: string | undefined): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const part of (header ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/)
    if (name) map.set(name, sources)
  }
  return map
}

const pages = () => [
  '/blogs/',
  `/blogs/show/${postId}`,
  '/blogs/new',
  `/blogs/modify/${postId}`,
  '/account',
  '/no/such/page',
  `/blogs/show/${postId + 1_000_000}`
]

/** Each page as its author sees it (forms, the sign-out button), and the pages of anonymous visitors. */
async function fetchPages() {
  const { cookie } = await defaultAuthor(app)
  const signedIn = await Promise.all(pages().map(async (url) => ({ url, res: await app.inject({ url, headers: { cookie } }) })))
  const anonymous = await Promise.all(['/blogs/', '/account/signin', '/account/signup'].map(async (url) => ({ url, res: await app.inject({ url }) })))
  return [...signedIn, ...anonymous]
}

describe('Content-Security-Policy on every page', () => {
  it('allows only this origin, nothing inline, no framing and forms only to this origin', async () => {
    for (const { url, res } of await fetchPages()) {
      expect(res.headers['content-type'], url).toMatch(/^text\/html/)
      const csp = parseCsp(res.headers['content-security-policy'] as string)
      expect(csp.get('default-src'), url).toEqual(["'self'"])
      expect(csp.get('img-src'), url).toEqual(["'self'"])
      expect(csp.get('style-src'), url).toEqual(["'self'"])
      expect(csp.get('script-src'), url).toEqual(["'self'"])
      expect(csp.get('script-src-attr'), url).toEqual(["'none'"])
      expect(csp.get('form-action'), url).toEqual(["'self'"])
      expect(csp.get('frame-ancestors'), url).toEqual(["'none'"])
      expect(csp.get('object-src'), url).toEqual(["'none'"])
      expect(csp.get('base-uri'), url).toEqual(["'self'"])
      expect(res.headers['content-security-policy'], url).not.toMatch(/unsafe-inline|unsafe-eval|data:|https:|\*/)
      expect(res.headers['x-content-type-options'], url).toBe('nosniff')
      expect(res.headers['x-frame-options'], url).toBe('DENY')
      expect(res.headers['referrer-policy'], url).toBe('same-origin')
      expect(res.headers['cross-origin-opener-policy'], url).toBe('same-origin')
      expect(res.headers['x-powered-by'], url).toBeUndefined()
    }
  })

  it('is satisfied by the pages: no inline script, style or event handler, no foreign URL', async () => {
    for (const { url, res } of await fetchPages()) {
      const html = res.body
      expect(html, url).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i)
      expect(html, url).not.toMatch(/<style\b/i)
      expect(html, url).not.toMatch(/\sstyle\s*=/i)
      expect(html, url).not.toMatch(/\son[a-z]+\s*=/i)
      expect(html, url).not.toMatch(/javascript:/i)
      for (const m of html.matchAll(/\s(?:src|href|action)="([^"]*)"/g)) {
        // A path on this site, or a place on the same page (the skip link, the error summary's links).
        expect(m[1], `${url}: ${m[0]}`).toMatch(/^(\/(?!\/)|#[\w-]+$)/)
      }
    }
  })

  it('is satisfied by the stylesheet: no import or url() to another origin or data:', async () => {
    const css = await fs.readFile(path.join(ROOT, 'public', 'style.css'), 'utf8')
    expect(css).not.toMatch(/@import/i)
    for (const m of css.matchAll(/url\(([^)]*)\)/gi)) expect(m[1]).toMatch(/^['"]?\/(?!\/)/)
    const res = await app.inject({ url: '/assets/style.css' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/css/)
  })

  it('is on error answers too: a 404 for a bad id and a JSON 404', async () => {
    const page = await app.inject({ url: '/blogs/show/abc' })
    expect(page.statusCode).toBe(404)
    expect(page.headers['content-security-policy']).toContain("default-src 'self'")
    const json = await app.inject({ method: 'DELETE', url: `/blogs/delete/${await unusedId(env)}`, headers: { cookie: (await defaultAuthor(app)).cookie } })
    expect(json.statusCode).toBe(404)
    expect(json.headers['content-security-policy']).toContain("frame-ancestors 'none'")
  })
})

describe('uploaded files', () => {
  it('are served as the image type the store chose, nosniff, inline, with a sandboxing policy of their own', async () => {
    const res = await app.inject({ url: `/static/uploads/${imageName}` })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('image/png')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['content-disposition']).toBe('inline')
    const csp = parseCsp(res.headers['content-security-policy'] as string)
    expect(csp.get('default-src')).toEqual(["'none'"])
    expect(csp.has('sandbox')).toBe(true)
    // The file as stored (the upload re-encoded), nothing added.
    expect(res.rawPayload.equals(await fs.readFile(path.join(env.uploadDir, imageName)))).toBe(true)
  })

  it('never include a file outside the upload dir or a name the store did not generate', async () => {
    await fs.writeFile(path.join(env.uploadDir, 'evil.html'), '<script>alert(1)</script>')
    for (const url of ['/static/uploads/evil.html', '/static/uploads/.incoming/', '/static/uploads/%2e%2e%2fpackage.json', '/static/uploads/..%2fpackage.json']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(404)
      expect(res.body, url).not.toContain('alert(1)')
    }
  })
})
