import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { defaultAuthor } from '../../kit/accounts'
import { useDisposableApps, useTestApp, type TestEnv } from '../../kit/app'
import { postForm } from '../../kit/form'
import { countRows, createPost, rowById, rowsByTitle, unique } from '../../kit/posts'

// A page on another site can make the visitor's browser send forms here; a rebinding page can
// make it talk to the app under the page's own host name. Both are refused before any route runs.

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

const fields = (title = unique('Cross')) => ({ title, content: 'Sent from elsewhere.' })

const FOREIGN: Record<string, Record<string, string>> = {
  'a foreign Origin': { origin: 'https://evil.example' },
  'Sec-Fetch-Site: cross-site': { 'sec-fetch-site': 'cross-site' },
  'Sec-Fetch-Site: same-site (a sibling subdomain)': { 'sec-fetch-site': 'same-site' },
  'Origin: null (a sandboxed frame)': { origin: 'null' },
  'the same host on another port': { origin: 'http://localhost:8001' },
  'a same-origin Origin with a cross-site Sec-Fetch-Site': { origin: 'http://localhost', 'sec-fetch-site': 'cross-site' }
}

describe('writes sent from another site', () => {
  for (const [what, headers] of Object.entries(FOREIGN)) {
    it(`refuses a new post with ${what} with 403 and stores nothing`, async () => {
      const title = unique('Cross')
      const before = await countRows(env)
      const res = await postForm(app, '/blogs/new', fields(title), {}, { headers })
      expect(res.statusCode).toBe(403)
      expect(res.headers['content-type']).toMatch(/^text\/html/)
      expect(res.headers['content-security-policy']).toContain("default-src 'self'")
      expect(res.headers['x-process-time']).toMatch(/ms$/)
      expect(res.body).toContain('this site’s own pages')
      expect(await rowsByTitle(env, title)).toEqual([])
      expect(await countRows(env)).toBe(before)
    })
  }

  it('refuses an edit, a form delete and a JSON delete from another origin, leaving the post as it was', async () => {
    const post = await createPost(app, env)
    const headers = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }
    const edit = await postForm(app, `/blogs/modify/${post.id}`, fields(), {}, { headers })
    expect(edit.statusCode).toBe(403)
    const put = await postForm(app, `/blogs/modify/${post.id}`, fields(), {}, { method: 'PUT', headers })
    expect(put.statusCode).toBe(403)
    expect((await app.inject({ method: 'POST', url: `/blogs/delete/${post.id}`, headers })).statusCode).toBe(403)
    const json = await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers })
    expect(json.statusCode).toBe(403)
    expect(json.json()).toEqual({ code: 'CROSS_SITE', message: expect.any(String) })
    expect(await rowById(env, post.id)).toEqual(post)
  })

  it('accepts writes from its own pages, typed navigation and clients that send neither header', async () => {
    const own = { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' }
    const cases: Record<string, string>[] = [own, { 'sec-fetch-site': 'none' }, { origin: 'http://localhost:80' }, {}]
    for (const headers of cases) {
      const title = unique('Own')
      const res = await postForm(app, '/blogs/new', fields(title), {}, { headers })
      expect(res.statusCode, JSON.stringify(headers)).toBe(303)
      expect(await rowsByTitle(env, title)).toHaveLength(1)
    }
    const post = await createPost(app, env)
    const del = await app.inject({ method: 'DELETE', url: `/blogs/delete/${post.id}`, headers: { ...own, cookie: (await defaultAuthor(app)).cookie } })
    expect(del.statusCode).toBe(200)
  })

  it('lets reads through whatever their origin (links from other sites must work)', async () => {
    const res = await app.inject({ url: '/blogs/', headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })
    expect(res.statusCode).toBe(200)
  })
})

describe('Host allow-list', () => {
  it('answers a Host it does not serve with 421 on pages, JSON routes and unknown URLs', async () => {
    const page = await app.inject({ url: '/blogs/', headers: { host: 'attacker.example' } })
    expect(page.statusCode).toBe(421)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toContain("default-src 'self'")
    expect(page.body).not.toContain('post-card')
    const json = await app.inject({ url: '/health', headers: { host: 'attacker.example:8000' } })
    expect(json.statusCode).toBe(421)
    expect(json.json()).toEqual({ code: 'MISDIRECTED', message: expect.any(String) })
    expect((await app.inject({ url: '/no/such/page', headers: { host: 'attacker.example' } })).statusCode).toBe(421)
  })

  it('answers the loopback names on any port by default', async () => {
    for (const host of ['localhost', 'localhost:8000', '127.0.0.1:1234', '[::1]:8000', 'LOCALHOST']) {
      expect((await app.inject({ url: '/health', headers: { host } })).statusCode, host).toBe(200)
    }
  })
})

describe('ALLOWED_HOSTS', () => {
  const apps = useDisposableApps()

  it('adds the listed names, keeps loopback and guards the inspector too', async () => {
    const e = await apps.newEnv({ ALLOWED_HOSTS: 'blog.example, www.blog.example', INSPECTOR_ENABLED: 'true', DB_SEED_ON_START: 'false' })
    const a = await apps.newApp(e)
    for (const host of ['blog.example', 'www.blog.example:443', 'localhost:8000']) {
      expect((await a.inject({ url: '/health', headers: { host } })).statusCode, host).toBe(200)
    }
    for (const url of ['/health', '/_inspect/', '/_inspect/traces']) {
      expect((await a.inject({ url, headers: { host: 'attacker.example' } })).statusCode, url).toBe(421)
    }
    // A form from the listed name is its own origin.
    const title = unique('Listed')
    const res = await postForm(a, '/blogs/new', fields(title), {}, { headers: { host: 'blog.example', origin: 'https://blog.example' } })
    expect(res.statusCode).toBe(303)
  })

  it('answers any Host with *', async () => {
    const a = await apps.newApp(await apps.newEnv({ ALLOWED_HOSTS: '*', DB_SEED_ON_START: 'false' }))
    expect((await a.inject({ url: '/health', headers: { host: 'anything.example' } })).statusCode).toBe(200)
  })
})
