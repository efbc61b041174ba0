import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { OtlpReceiver } from '../../kit/otlp-receiver'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'
import { postForm } from '../../kit/form'
import { attributeValues, inspect, traceIdOf, traceLinks, waterfallLabels } from '../../kit/inspector'

// The compiled server with the OTel bootstrap (as `npm start`), INSPECTOR_ENABLED=true and an
// OTLP exporter configured: the inspector's pages show each request's spans, and the exporter
// still gets them. Both ways of making server spans are covered.

const MODES: { name: string; env: Record<string, string> }[] = [
  { name: 'the http instrumentation', env: { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,pino,runtime-node' } },
  { name: 'the Fastify hooks', env: { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'pino,runtime-node' } }
]

const JAEGER_URL = 'http://jaeger.example:16686'

let env: TestEnv

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
})

afterAll(async () => {
  await env?.cleanup()
})

async function postId(title: string): Promise<number> {
  const [row] = await env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [title])
  expect(row, `post "${title}" should exist`).toBeDefined()
  return row!.id
}

describe('the inspector when only some traces are kept (none but failures here)', () => {
  let child: ServerChild

  beforeAll(async () => {
    child = await startListening(
      { ...env.env, INSPECTOR_ENABLED: 'true', TRACE_KEEP_SLOWEST_PERCENT: '0', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0', OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'pino,runtime-node' },
      { telemetry: true }
    )
  })

  afterAll(async () => {
    await child?.kill()
  })

  it('says that a trace was not kept, and why traces are kept, where a trace it never saw is "not found"', async () => {
    const res = await request(child.port, '/blogs/')
    expect(res.headers.traceresponse).toMatch(/-00$/)
    // Recorded when the response has gone out: ask until it is.
    const page = () => request(child.port, `/_inspect/traces/${traceIdOf(res)}`)
    await expect.poll(async () => (await page()).body, { timeout: 5000 }).toContain('<h1>Trace not kept</h1>')
    const kept = await page()
    expect(kept.status).toBe(404)
    expect(kept.body).toContain('TRACE_KEEP_SLOWEST_PERCENT')
    const unknown = await request(child.port, `/_inspect/traces/${randomBytes(16).toString('hex')}`)
    expect(unknown.status).toBe(404)
    expect(unknown.body).toContain('<h1>Trace not found</h1>')
  })
})

describe.each(MODES)('the inspector with server spans made by $name', (mode) => {
  let receiver: OtlpReceiver
  let child: ServerChild
  let author: Account

  beforeAll(async () => {
    receiver = await OtlpReceiver.start()
    child = await startListening(
      { ...env.env, ...receiver.env(), ...mode.env, INSPECTOR_ENABLED: 'true', INSPECTOR_BADGE: 'true', JAEGER_URL: `${JAEGER_URL}/` },
      { telemetry: true }
    )
    author = await signUp(child.port)
  })

  afterAll(async () => {
    await child?.kill()
    await receiver?.close()
  })

  it("shows a request's spans in order on its trace page, SQL masked, and the exporter still gets them", async () => {
    const title = `Inspected ${randomBytes(4).toString('hex')}`
    expect((await postForm(child.port, '/blogs/new', { title, content: 'Shown in a waterfall.' }, {}, { as: author })).status).toBe(303)
    const id = await postId(title)

    const res = await request(child.port, `/blogs/show/${id}`)
    expect(res.status).toBe(200)
    const traceId = traceIdOf(res)

    const page = await inspect(child.port, `/_inspect/traces/${traceId}`)
    expect(page.status).toBe(200)
    expect(page.headers['cache-control']).toBe('no-store')
    expect(waterfallLabels(page.body)).toEqual(['GET /blogs/show/:id', 'pool.acquire', 'SELECT', 'view.render'])
    const [sql] = attributeValues(page.body, 'db.query.text')
    expect(sql).toBe('SELECT `id`, `title`, `author`, `content`, `image_loc`, `thumb_loc`, `image_width`, `image_height`, `thumb_width`, `thumb_height`, `image_alt`, `user_id`, DATE_FORMAT(`published_dt`, ?) AS `published_iso`, IF(`modified_dt` > `published_dt`, DATE_FORMAT(`modified_dt`, ?), NULL) AS `edited_iso` FROM `blog` WHERE `id` = ?')
    expect(page.body).not.toContain(title)
    expect(page.body).toContain(`href="${JAEGER_URL}/trace/${traceId}"`)
    // The SELECT's bar is split: loop busy and the rest (no DB server time: the shared MariaDB
    // runs without performance_schema), with a legend.
    const parts = page.body.match(/<rect class="wf-part part-(\w+)"/g) ?? []
    expect(parts.length, page.body).toBeGreaterThanOrEqual(1)
    expect(parts.join(' ')).not.toContain('part-server')
    expect(page.body).toContain('event loop busy')
    // The DB server's '–' says why.
    expect(page.body).toContain("<dd class=\"total-note\">Not measured: the database&#39;s performance_schema is off")
    expect(attributeValues(page.body, 'blog.event_loop.active_ms')).toHaveLength(3)
    // Bars are drawn with SVG attributes, never inline styles (the CSP allows no inline style).
    const rects = page.body.match(/<rect class="wf-rect"[^>]*>/g) ?? []
    expect(rects[0], rects.join('\n')).toMatch(/x="0\.00%" y="5" width="100\.00%"/)
    // Every child inside the request's bar (start times are taken precisely, not Date.now()).
    for (const r of rects) {
      const [x, w] = [/x="([\d.]+)%"/, /width="([\d.]+)%"/].map((re) => Number(re.exec(r)![1]))
      expect(x! + w!, rects.join('\n')).toBeLessThanOrEqual(100.01)
    }
    expect(page.body).not.toMatch(/\sstyle=/)

    const exported = await receiver.waitForTrace(traceId)
    expect(exported.map((s) => s.name).sort()).toEqual(['GET /blogs/show/:id', 'SELECT', 'pool.acquire', 'view.render'])
  })

  it('shows an upload as image write, then START, INSERT and COMMIT', async () => {
    const title = `Inspected upload ${randomBytes(4).toString('hex')}`
    const res = await postForm(child.port, '/blogs/new', { title, content: 'With a picture.' }, {
      image_file: { data: Buffer.concat([PNG_1x1, randomBytes(5000)]), filename: 'p.png', type: 'image/png' }
    }, { as: author })
    expect(res.status).toBe(303)
    const page = await inspect(child.port, `/_inspect/traces/${traceIdOf(res)}`)
    expect(page.status).toBe(200)
    const labels = waterfallLabels(page.body)
    expect(labels[0]).toBe('POST /blogs/new')
    const order = ['blog.image.write', 'START', 'INSERT', 'COMMIT'].map((n) => labels.indexOf(n))
    expect(order.every((i) => i > 0), labels.join(', ')).toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
    const insert = attributeValues(page.body, 'db.query.text').find((t) => t.startsWith('INSERT'))
    expect(insert).toMatch(/^INSERT INTO `blog` \(.*\) VALUES \((DEFAULT,)?\?(,\?)*\);?$/)
    expect(insert).not.toContain(author.displayName)
    // The decode span says what came in and what was kept; the write, what was stored.
    expect(labels).toContain('blog.image.process')
    expect(attributeValues(page.body, 'blog.image.input_bytes')).toEqual([String(PNG_1x1.length + 5000)])
    const kept = attributeValues(page.body, 'blog.image.bytes')
    expect(kept).toHaveLength(2)
    expect(new Set(kept).size).toBe(1)
    expect(Number(kept[0])).toBeLessThan(PNG_1x1.length + 5000)
  })

  it('lists requests with route, status, queries and DB time, filtered and slowest first on demand', async () => {
    const missing = await request(child.port, '/blogs/show/999999999')
    expect(missing.status).toBe(404)
    const ok = await request(child.port, '/blogs/')
    const okId = traceIdOf(ok)
    await inspect(child.port, `/_inspect/traces/${okId}`)

    const all = await inspect(child.port, '/_inspect/')
    expect(all.status).toBe(200)
    expect(traceLinks(all.body)).toEqual(expect.arrayContaining([traceIdOf(missing), okId]))
    const row = all.body.slice(all.body.indexOf(`/_inspect/traces/${okId}`)).split('</tr>')[0]!
    expect(row).toMatch(/<span class="method">GET<\/span> \/blogs\//)
    expect(row).toContain('>200<')
    expect(row).toMatch(/<td class="num col-queries">1<\/td>/)

    const notFound = await inspect(child.port, '/_inspect/?status=4xx')
    expect(traceLinks(notFound.body)).toContain(traceIdOf(missing))
    expect(traceLinks(notFound.body)).not.toContain(okId)

    const byRoute = await inspect(child.port, `/_inspect/?route=${encodeURIComponent('/blogs/')}&sort=slowest`)
    expect(traceLinks(byRoute.body)).toContain(okId)
    expect(traceLinks(byRoute.body)).not.toContain(traceIdOf(missing))

    const none = await inspect(child.port, '/_inspect/?slower=600000')
    expect(traceLinks(none.body)).toEqual([])
    expect(none.body).toContain('No request matches these filters.')

    expect((await request(child.port, '/_inspect/?status=abc')).status).toBe(400)
  })

  it('filters by method as well as route: POST /blogs/new lists no GET of the form, and the routes page links carry the method', async () => {
    const form = await request(child.port, { path: '/blogs/new', headers: { cookie: author.cookie } })
    expect(form.status).toBe(200)
    const sent = await postForm(child.port, '/blogs/new', { title: `Method ${randomBytes(4).toString('hex')}`, content: 'Posted.' }, {}, { as: author })
    expect(sent.status).toBe(303)
    await inspect(child.port, `/_inspect/traces/${traceIdOf(sent)}`)
    const posts = await inspect(child.port, `/_inspect/?route=${encodeURIComponent('/blogs/new')}&method=POST`)
    expect(traceLinks(posts.body)).toContain(traceIdOf(sent))
    expect(traceLinks(posts.body)).not.toContain(traceIdOf(form))
    expect(posts.body).toContain('<option value="POST" selected>POST</option>')
    const routes = await inspect(child.port, '/_inspect/routes')
    expect(routes.body).toContain(`href="/_inspect/?route=${encodeURIComponent('/blogs/new')}&amp;method=POST&amp;sort=slowest"`)
  })

  it('answers a trace URL that names no trace id with its own "trace not found" page, and reads an id in capitals', async () => {
    for (const bad of ['not-a-trace', '1234', 'g'.repeat(32)]) {
      const res = await request(child.port, `/_inspect/traces/${bad}`)
      expect(res.status, bad).toBe(404)
      expect(res.body).toContain('<section class="inspector-panel inspector-empty">')
      expect(res.body).toContain('That is not a trace id')
    }
    const ok = await request(child.port, '/blogs/')
    await inspect(child.port, `/_inspect/traces/${traceIdOf(ok)}`)
    expect((await inspect(child.port, `/_inspect/traces/${traceIdOf(ok).toUpperCase()}`)).status).toBe(200)
  })

  it("shows who is signed in to the blog in its header", async () => {
    const page = await inspect(child.port, '/_inspect/', { cookie: author.cookie })
    expect(page.body).toContain(`Signed in as ${author.displayName}`)
    expect(page.body).not.toContain('>Sign in<')
  })

  it('shows per-route percentiles and the top SQL statements', async () => {
    for (let i = 0; i < 3; i++) await request(child.port, '/blogs/')
    const page = await inspect(child.port, '/_inspect/routes')
    expect(page.status).toBe(200)
    const row = page.body.slice(page.body.indexOf('<span class="method">GET</span> /blogs/</a>')).split('</tr>')[0]!
    expect(row).toMatch(/ms<\/td>/)
    // No DB server time to share without performance_schema.
    expect(row).toMatch(/<td class="num">–<\/td>\s*$/)
    expect(page.body).toContain('DB itself')
    expect(page.body).toContain('Top SQL')
    expect(page.body).toContain('FROM `blog` ORDER BY `published_dt` DESC, `id` DESC LIMIT ? OFFSET ?')
  })

  it("does not record or trace its own pages", async () => {
    for (const path of ['/_inspect/', '/_inspect/routes', '/_inspect/?sort=slowest']) {
      const res = await request(child.port, path)
      expect(res.status).toBe(200)
      expect(res.headers.traceresponse).toBeUndefined()
    }
    await request(child.port, '/blogs/')
    const list = await inspect(child.port, '/_inspect/?static=1')
    expect(list.body).not.toMatch(/<\/span> \/_inspect/)
    await receiver.waitForTrace(traceIdOf(await request(child.port, '/blogs/')))
    expect(receiver.spans.filter((s) => String(s.attributes['url.path'] ?? '').startsWith('/_inspect'))).toEqual([])
  })

  it("puts a badge with the request's time and DB time on blog pages, linking to its trace", async () => {
    const res = await request(child.port, '/blogs/')
    const badge = /<aside class="inspector-badge"[^>]*>\s*<a href="([^"]+)"[^>]*><span class="inspector-badge-total">([0-9.]+ m?s)<\/span> · DB ([0-9.]+ m?s) · 1 query<\/a>/.exec(res.body)
    expect(badge, res.body.slice(-800)).not.toBeNull()
    expect(badge![1]).toBe(`/_inspect/traces/${traceIdOf(res)}`)
    expect(res.body).toContain('<link rel="stylesheet" href="/assets/inspector.css">')
    expect((await request(child.port, '/_inspect/')).body).not.toContain('inspector-badge')
  })

  it('never shows form contents, parameters, query strings or secret headers', async () => {
    const m = `mk${randomBytes(6).toString('hex')}`
    const created = await postForm(child.port, '/blogs/new', { title: `Title ${m}T`, content: `Content ${m}C` }, {}, { as: author, headers: { cookie: `${author.cookie}; sid=${m}K` } })
    expect(created.status).toBe(303)
    const id = await postId(`Title ${m}T`)
    const headers = { authorization: `Bearer ${m}H`, cookie: `${author.cookie}; session=${m}K`, 'user-agent': `agent-${m}U`, 'x-api-key': `${m}X` }
    expect((await request(child.port, { path: `/blogs/show/${id}?q=${m}Q`, headers })).status).toBe(200)
    expect((await request(child.port, { path: `/blogs/?page=1&secret=${m}Q`, headers })).status).toBe(200)
    // Rejected form (re-rendered with the text kept) and an edit.
    expect((await postForm(child.port, '/blogs/new', { title: 'x', content: `Content ${m}F` }, {}, { as: author })).status).toBe(400)
    expect((await postForm(child.port, `/blogs/modify/${id}`, { title: `Title ${m}E`, content: `Edited ${m}E` }, {}, { as: author, headers })).status).toBe(303)
    const last = await request(child.port, { path: `/blogs/show/${id}`, headers })
    await inspect(child.port, `/_inspect/traces/${traceIdOf(last)}`)

    const pages = ['/_inspect/?static=1', '/_inspect/routes', '/_inspect/?sort=slowest&static=1']
    const list = await inspect(child.port, pages[0]!)
    const traces = traceLinks(list.body)
    expect(traces.length).toBeGreaterThan(5)
    for (const t of traces) pages.push(`/_inspect/traces/${t}`)
    for (const path of pages) {
      const page = await inspect(child.port, path)
      expect(page.status, path).toBe(200)
      expect(page.body, path).not.toContain(m)
    }
  })
})
