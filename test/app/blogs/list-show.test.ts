import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, createTestEnv, useTestApp, type TestEnv } from '../../kit/app'
import { defaultAuthor } from '../../kit/accounts'
import { postForm } from '../../kit/form'
import { createPost, ejsEscape, listedIds, postCard, unique, unusedId } from '../../kit/posts'
import { PNG_1x1, solidPng } from '../../fixtures/images'
import { samplePosts } from '../../../src/db/seeds/sample-posts'

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t))

const newestSample = [...samplePosts].sort((a, b) => b.modified_dt.localeCompare(a.modified_dt))[0]!
// Two posts made within one second would share a publication date (DATETIME): tests that order
// by it place the older one a minute back.
const backdate = (id: number, minutes: number) =>
  env.query('UPDATE `blog` SET `published_dt` = `published_dt` - INTERVAL ? MINUTE, `modified_dt` = `modified_dt` - INTERVAL ? MINUTE WHERE `id` = ?', [minutes, minutes, id])

describe('GET /', () => {
  it('redirects to the post list with 302', async () => {
    const res = await app.inject('/')
    expect(res.statusCode).toBe(302)
    expect(res.headers.location).toBe('/blogs/')
  })
})

describe('GET /blogs/ (the list)', () => {
  it('lists the seeded sample posts as an HTML page', async () => {
    const res = await app.inject('/blogs/')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain(`<h2><a href="/blogs/show/${newestSample.id}">${ejsEscape(newestSample.title)}</a></h2>`)
  })

  it('shows the newest posts first', async () => {
    const older = await createPost(app, env, { title: unique('Older') })
    await backdate(older.id, 1)
    const newer = await createPost(app, env, { title: unique('Newer') })
    const res = await app.inject('/blogs/')
    expect(res.statusCode).toBe(200)
    const ids = listedIds(res.body)
    expect(ids.indexOf(newer.id)).toBeGreaterThanOrEqual(0)
    expect(ids.indexOf(newer.id)).toBeLessThan(ids.indexOf(older.id))
    // The sample posts are older than anything created now.
    if (ids.includes(newestSample.id)) expect(ids.indexOf(older.id)).toBeLessThan(ids.indexOf(newestSample.id))
  })

  it('links each title to its post and shows the author', async () => {
    const post = await createPost(app, env, { title: unique('Linked') })
    const card = postCard((await app.inject('/blogs/')).body, post.id)
    expect(card).toBeDefined()
    expect(card).toContain(`<h2><a href="/blogs/show/${post.id}">${post.title}</a></h2>`)
    expect(card).toContain(`by <span class="author">${post.author}</span>`)
  })

  it('shows a content of exactly 200 characters whole, without an ellipsis', async () => {
    const content = 'x'.repeat(199) + 'Z'
    const post = await createPost(app, env, { content })
    const card = postCard((await app.inject('/blogs/')).body, post.id)
    expect(card).toContain(`<p class="excerpt">${content}</p>`)
  })

  it('ends a longer excerpt at the last whole word within its 200 characters, then "…"', async () => {
    const words = 'Harbour lights come on one by one. '.repeat(8)
    const post = await createPost(app, env, { content: words })
    const card = postCard((await app.inject('/blogs/')).body, post.id)
    const excerpt = /<p class="excerpt">([^<]*)&hellip;<\/p>/.exec(card!)![1]!
    expect(words.startsWith(excerpt)).toBe(true)
    expect(excerpt.length).toBeLessThanOrEqual(200)
    // The character after it in the content ends a word.
    expect(words[excerpt.length]).toBe(' ')
    expect(excerpt).toMatch(/\S$/)
  })

  it('cuts a content of one long word at 200 characters followed by "…" (&hellip;)', async () => {
    const content = 'y'.repeat(199) + 'A' + 'B' + 'tail that must not appear'.repeat(5)
    const post = await createPost(app, env, { content })
    const card = postCard((await app.inject('/blogs/')).body, post.id)
    expect(card).toContain(`<p class="excerpt">${'y'.repeat(199)}A&hellip;</p>`)
    expect(card).not.toContain('tail that must not appear')
  })

  it('counts excerpt characters as characters: emoji are neither split nor counted twice', async () => {
    const short = await createPost(app, env, { content: '😀'.repeat(150) })
    const long = await createPost(app, env, { content: 'a' + '😀'.repeat(250) })
    const body = (await app.inject('/blogs/')).body
    expect(postCard(body, short.id)).toContain(`<p class="excerpt">${'😀'.repeat(150)}</p>`)
    expect(postCard(body, long.id)).toContain(`<p class="excerpt">a${'😀'.repeat(199)}&hellip;</p>`)
    expect(body).not.toContain('\uFFFD')
  })

  it('escapes the excerpt', async () => {
    const post = await createPost(app, env, { content: '<img src=x onerror=alert(1)> & more' })
    const card = postCard((await app.inject('/blogs/')).body, post.id)
    expect(card).toContain('<p class="excerpt">&lt;img src=x onerror=alert(1)&gt; &amp; more</p>')
    expect(card).not.toContain('<img src=x')
  })

  it('shows a thumbnail only for posts that have an image', async () => {
    const withImage = await createPost(app, env, { title: unique('With image') }, { data: PNG_1x1, filename: 'a.png', type: 'image/png' })
    const withoutImage = await createPost(app, env, { title: unique('Without image') })
    expect(withImage.image_loc).not.toBeNull()
    const body = (await app.inject('/blogs/')).body
    const withCard = postCard(body, withImage.id)
    const withoutCard = postCard(body, withoutImage.id)
    expect(withCard).toContain(`<img src="/static/uploads/${withImage.image_loc}"`)
    expect(withoutCard).toBeDefined()
    expect(withoutCard).not.toContain('<img')
  })

  it.each(['0', '-1', 'abc', '1.5', '', '1000001'])('answers ?page=%s with a 400 page, not a 500', async (page) => {
    const res = await app.inject(`/blogs/?page=${page}`)
    expect(res.statusCode).toBe(400)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain('<p class="status">400</p>')
  })
})

describe('pagination (PAGE_SIZE=3)', () => {
  let pagedEnv: TestEnv
  let paged: FastifyInstance
  beforeAll(async () => {
    pagedEnv = await createTestEnv({ PAGE_SIZE: '3' })
    paged = await buildApp(pagedEnv)
  })
  afterAll(async () => {
    await paged?.close()
    await pagedEnv?.cleanup()
  })

  it('splits the list into pages with previous and next links', async () => {
    const posts = []
    for (let i = 1; i <= 4; i++) posts.push(await createPost(paged, pagedEnv, { title: unique(`Paged ${i}`) }))
    const [p1, p2, p3, p4] = posts.map((p) => p.id)

    const first = await paged.inject('/blogs/')
    expect(first.statusCode).toBe(200)
    expect(listedIds(first.body)).toEqual([p4, p3, p2])
    expect(first.body).toContain('<a rel="next" href="/blogs/?page=2">')
    expect(first.body).not.toContain('rel="prev"')

    const second = await paged.inject('/blogs/?page=2')
    expect(second.statusCode).toBe(200)
    const secondIds = listedIds(second.body)
    expect(secondIds).toHaveLength(3)
    expect(secondIds[0]).toBe(p1)
    expect(second.body).toContain('<a rel="prev" href="/blogs/?page=1">')
    expect(second.body).toContain('<a rel="next" href="/blogs/?page=3">')
    expect(second.body).toContain('Page 2')
    // The templates' own text is ASCII (&hellip;, &larr;, &rarr;, &middot;): a page of ASCII posts
    // stays a one-byte string, which V8 turns into UTF-8 as a plain copy (README "Performance").
    expect(second.body).not.toMatch(/[^\t\n\r\x20-\x7e]/)
  })

  it('has no next link on the last page and an empty-state message past the end', async () => {
    await createPost(paged, pagedEnv)
    const [row] = await pagedEnv.query<{ n: number }>('SELECT COUNT(*) AS n FROM `blog`')
    const last = Math.ceil(Number(row?.n) / 3)

    const lastPage = await paged.inject(`/blogs/?page=${last}`)
    expect(lastPage.statusCode).toBe(200)
    expect(listedIds(lastPage.body).length).toBeGreaterThan(0)
    expect(lastPage.body).not.toContain('rel="next"')
    expect(lastPage.body).toContain(`<a rel="prev" href="/blogs/?page=${last - 1}">`)

    const beyond = await paged.inject(`/blogs/?page=${last + 1}`)
    expect(beyond.statusCode).toBe(200)
    expect(listedIds(beyond.body)).toEqual([])
    expect(beyond.body).toContain('No posts on this page.')
    expect(beyond.body).not.toContain('rel="next"')

    const farBeyond = await paged.inject('/blogs/?page=1000000')
    expect(farBeyond.statusCode).toBe(200)
    expect(farBeyond.body).toContain('No posts on this page.')
  })
})

describe('an empty blog', () => {
  it('invites to write the first post', async () => {
    const emptyEnv = await createTestEnv({ DB_SEED_ON_START: 'false' })
    const empty = await buildApp(emptyEnv)
    try {
      const res = await empty.inject('/blogs/')
      expect(res.statusCode).toBe(200)
      expect(listedIds(res.body)).toEqual([])
      expect(res.body).toContain('No posts yet. <a href="/blogs/new">Write the first one</a>.')
      expect(res.body).not.toContain('class="pager"')
    } finally {
      await empty.close()
      await emptyEnv.cleanup()
    }
  })
})

describe('GET /blogs/show/:id', () => {
  it('shows the post with its title, author and content', async () => {
    const post = await createPost(app, env, { title: unique('Shown'), content: 'Plain body text.' })
    // As its author, who gets the edit and delete buttons.
    const res = await app.inject({ url: `/blogs/show/${post.id}`, headers: { cookie: (await defaultAuthor(app)).cookie } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain(`<h1>${post.title}</h1>`)
    expect(res.body).toContain(`<span class="author">${post.author}</span>`)
    expect(res.body).toContain('<p>Plain body text.</p>')
    expect(res.body).toContain(`<a class="button" href="/blogs/modify/${post.id}">Edit</a>`)
    expect(res.body).toContain(`<a class="button danger" href="/blogs/delete/${post.id}">Delete</a>`)
    expect(res.body).not.toContain('class="post-image"')
  })

  it('escapes the content and renders newlines as <br> and blank lines as paragraphs', async () => {
    const content = 'First <b>line</b> & "quoted"\nsecond line\r\nthird line\n\nNew paragraph <script>x</script>'
    const post = await createPost(app, env, { content })
    const res = await app.inject(`/blogs/show/${post.id}`)
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('<p>First &lt;b&gt;line&lt;/b&gt; &amp; &#34;quoted&#34;<br>second line<br>third line</p>')
    expect(res.body).toContain('<p>New paragraph &lt;script&gt;x&lt;/script&gt;</p>')
    expect(res.body).not.toContain('<b>line</b>')
    expect(res.body).not.toContain('<script>x')
  })

  it('shows the image when the post has one, its box reserved, and no alt text without a description (the title names the post)', async () => {
    const post = await createPost(app, env, {}, { data: PNG_1x1, filename: 'a.png', type: 'image/png' })
    const res = await app.inject(`/blogs/show/${post.id}`)
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain(`<figure class="post-image"><img src="/static/uploads/${post.image_loc}" width="1" height="1" alt=""></figure>`)
  })

  it('offers the thumbnail in a srcset for a large still image, with its description as alt text', async () => {
    const title = unique('Wide')
    const res = await postForm(app, '/blogs/new', { title, content: 'A wide one.', image_alt: 'Boats at a pier, <dusk>' }, { image_file: { data: solidPng(1200, 600, [10, 20, 30]), filename: 'w.png', type: 'image/png' } })
    expect(res.statusCode).toBe(303)
    const [row] = await env.query<{ id: number; image_loc: string; thumb_loc: string; image_width: number; image_height: number; thumb_width: number; thumb_height: number; image_alt: string }>('SELECT * FROM `blog` WHERE `title` = ?', [title])
    expect(row).toMatchObject({ image_width: 1200, image_height: 600, thumb_width: 480, thumb_height: 240, image_alt: 'Boats at a pier, <dusk>' })
    const show = await app.inject(`/blogs/show/${row!.id}`)
    expect(show.body).toContain(
      `<img src="/static/uploads/${row!.image_loc}" srcset="/static/uploads/${row!.thumb_loc} 480w, /static/uploads/${row!.image_loc} 1200w" sizes="(max-width: 560px) calc(100vw - 78px), 662px" width="1200" height="600" alt="Boats at a pier, &lt;dusk&gt;">`
    )
  })

  it('shows the publication date, and "edited" with its own date once changed; an edit keeps the post in its place', async () => {
    const first = await createPost(app, env, { title: unique('First published') })
    await backdate(first.id, 10)
    const second = await createPost(app, env, { title: unique('Second published') })
    await backdate(second.id, 5)
    const edited = await postForm(app, `/blogs/modify/${first.id}`, { title: first.title, content: 'Fixed a typo.' })
    expect(edited.statusCode).toBe(303)
    const [row] = await env.query<{ published: string; modified: string }>(
      "SELECT DATE_FORMAT(`published_dt`, '%Y-%m-%dT%H:%i:%sZ') AS `published`, DATE_FORMAT(`modified_dt`, '%Y-%m-%dT%H:%i:%sZ') AS `modified` FROM `blog` WHERE `id` = ?",
      [first.id]
    )
    expect(row!.modified > row!.published).toBe(true)
    const ids = listedIds((await app.inject('/blogs/')).body)
    expect(ids.indexOf(second.id)).toBeLessThan(ids.indexOf(first.id))
    const show = (await app.inject(`/blogs/show/${first.id}`)).body
    expect(show).toContain(`<time datetime="${row!.published}">`)
    expect(show).toContain(`<span class="edited">edited <time datetime="${row!.modified}">`)
    expect((await app.inject(`/blogs/show/${second.id}`)).body).not.toContain('class="edited"')
  })

  it('answers an unknown id with a 404 HTML page, whose header shows who is signed in', async () => {
    const author = await defaultAuthor(app)
    const res = await app.inject({ url: `/blogs/show/${await unusedId(env)}`, headers: { cookie: author.cookie } })
    expect(res.statusCode).toBe(404)
    expect(res.body).toContain(`Signed in as ${ejsEscape(author.displayName)}`)
    // And so does the page for a URL no route has.
    expect((await app.inject({ url: '/no/such/page', headers: { cookie: author.cookie } })).body).toContain(`Signed in as ${ejsEscape(author.displayName)}`)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain('<p class="status">404</p>')
    expect(res.body).toContain('There is no such post.')
  })

  it.each(['abc', '-1', '0', '99999999999', '1.5', '%2F', '1e3', '%00'])('answers the id %s with 404, never 500', async (id) => {
    const res = await app.inject(`/blogs/show/${id}`)
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain('<p class="status">404</p>')
  })
})

describe('flash messages', () => {
  it('sets a "created" flash after publishing and shows it once on the list', async () => {
    const created = await postForm(app, '/blogs/new', { title: unique('Flash'), content: 'Flash content' })
    expect(created.statusCode).toBe(303)
    const flash = created.cookies.find((c) => c.name === 'flash')
    expect(flash?.value).toBe('created')
    expect(flash?.httpOnly).toBe(true)

    const list = await app.inject({ url: '/blogs/', cookies: { flash: 'created' } })
    expect(list.statusCode).toBe(200)
    expect(list.body).toContain('<p class="flash" role="status">Your post was published.</p>')
    const cleared = list.cookies.find((c) => c.name === 'flash')
    expect(cleared).toBeDefined()
    expect(cleared?.value).toBe('')
    // Cleared: expired in the past (the Set-Cookie carries an epoch date).
    expect(cleared?.expires?.getTime()).toBe(0)
  })

  it('shows no flash without the cookie', async () => {
    const list = await app.inject('/blogs/')
    expect(list.statusCode).toBe(200)
    expect(list.body).not.toContain('class="flash"')
    expect(list.cookies.find((c) => c.name === 'flash')).toBeUndefined()
  })

  it('ignores a flash cookie that names no known message (and never echoes it)', async () => {
    const marker = unique('flashmarker').replace(' ', '-')
    const list = await app.inject({ url: '/blogs/', cookies: { flash: `<b>${marker}</b>` } })
    expect(list.statusCode).toBe(200)
    expect(list.body).not.toContain('class="flash"')
    expect(list.body).not.toContain(marker)
  })
})
