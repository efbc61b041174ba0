// First: starts the SDK before anything below loads mysql2 (the spans show what a request did).
import { traces } from '../../kit/in-process-sdk'
import { useInProcessApp } from '../../kit/in-process-app'
import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { signUp, type Account } from '../../kit/accounts'
import { postForm, type UploadFile } from '../../kit/form'
import { createPost, expectNothingWritten, fileState, unique } from '../../kit/posts'
import { solidPng } from '../../fixtures/images'

// An upload's life runs in one order (src/posts/service.ts): authorize, check the fields, and only
// then decode the image, stage it and write the row. A request that fails the CSRF check, the
// edit permission or the field rules costs no decode and writes nothing, not even for a moment.

const t = useInProcessApp()
let author: Account
let other: Account
beforeAll(async () => {
  author = await signUp(t.app)
  other = await signUp(t.app)
})
afterEach(() => {
  vi.restoreAllMocks()
  for (const w of watchers.splice(0)) w.close()
})

// Large enough for a thumbnail: a decoded upload makes two staged files.
const photo = (): UploadFile => ({ data: solidPng(800, 600, [40, 120, 200]), filename: 'photo.png', type: 'image/png' })

const watchers: FSWatcher[] = []
/** Every name that appears in the staging area from now on (inotify: a file made and removed at once still shows). */
function watchStaging(): string[] {
  const seen: string[] = []
  watchers.push(watch(path.join(t.env.uploadDir, '.incoming'), (_event, name) => seen.push(String(name))))
  return seen
}

/** Sends the form and reports what it cost: the spans of its trace (every trace is kept here), decodes, staged files. */
async function costOf(send: () => Promise<{ statusCode: number; headers: Record<string, unknown> }>): Promise<{ status: number; spans: string[]; processed: number; saved: number; staged: string[] }> {
  const process = vi.spyOn(t.app.imageProcessor, 'process')
  const save = vi.spyOn(t.app.imageStore, 'save')
  const staged = watchStaging()
  const res = await send()
  // inotify events arrive on the loop after the fact (and the kept trace's spans at onResponse).
  await new Promise((resolve) => setTimeout(resolve, 50))
  const traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(String(res.headers.traceresponse))?.[1]
  expect(traceId, 'a kept trace').toBeDefined()
  const spans = traces.get(traceId!)?.spans.map((s) => s.name) ?? []
  expect(spans.length, 'its spans are in the inspector buffer').toBeGreaterThan(0)
  return { status: res.statusCode, spans, processed: process.mock.calls.length, saved: save.mock.calls.length, staged }
}

const IMAGE_WORK = ['blog.image.process', 'blog.image.write']
const expectNoImageWork = (cost: { spans: string[]; processed: number; saved: number; staged: string[] }) => {
  expect(cost.spans.filter((s) => IMAGE_WORK.includes(s))).toEqual([])
  expect(cost.processed).toBe(0)
  expect(cost.saved).toBe(0)
  expect(cost.staged).toEqual([])
}

describe('the order of an upload: authorize, check, then decode and stage', () => {
  it('a valid form with an image is decoded and staged (image and thumbnail), then stored: 303', async () => {
    const cost = await costOf(() => postForm(t.app, '/blogs/new', { title: unique('In order'), content: 'Fine.' }, { image_file: photo() }, { as: author }))
    expect(cost.status).toBe(303)
    expect(cost.spans.filter((s) => IMAGE_WORK.includes(s))).toEqual(['blog.image.process', 'blog.image.write', 'blog.image.write'])
    expect(cost.processed).toBe(1)
    expect(cost.saved).toBe(2)
    expect(new Set(cost.staged).size).toBe(2)
  })

  it('a wrong CSRF token with a valid image: 403, nothing decoded, nothing staged, no row', async () => {
    await expectNothingWritten(t.env, async () => {
      const cost = await costOf(() => postForm(t.app, '/blogs/new', { title: unique('Forged'), content: 'Fine.' }, { image_file: photo() }, { as: { cookie: author.cookie, csrf: other.csrf } }))
      expect(cost.status).toBe(403)
      expectNoImageWork(cost)
    })
  })

  it('an invalid title with a valid image: 400 with the form, nothing decoded, nothing staged', async () => {
    await expectNothingWritten(t.env, async () => {
      const cost = await costOf(() => postForm(t.app, '/blogs/new', { title: 'x', content: 'Fine.' }, { image_file: photo() }, { as: author }))
      expect(cost.status).toBe(400)
      expectNoImageWork(cost)
    })
  })

  it('an edit with a wrong CSRF token, or by someone who may not change the post: 403, nothing decoded or staged', async () => {
    const post = await createPost(t.app, t.env, {}, undefined, author)
    const before = await fileState(t.env)
    const forged = await costOf(() => postForm(t.app, `/blogs/modify/${post.id}`, { title: unique('Forged edit'), content: 'Fine.' }, { image_file: photo() }, { as: { cookie: author.cookie, csrf: other.csrf } }))
    expect(forged.status).toBe(403)
    expectNoImageWork(forged)
    const stranger = await costOf(() => postForm(t.app, `/blogs/modify/${post.id}`, { title: unique('Not mine'), content: 'Fine.' }, { image_file: photo() }, { as: other }))
    expect(stranger.status).toBe(403)
    expectNoImageWork(stranger)
    const invalid = await costOf(() => postForm(t.app, `/blogs/modify/${post.id}`, { title: '', content: 'Fine.' }, { image_file: photo() }, { as: author }))
    expect(invalid.status).toBe(400)
    expectNoImageWork(invalid)
    expect(await fileState(t.env)).toEqual(before)
    const [row] = await t.env.query<{ title: string; image_loc: string | null }>('SELECT `title`, `image_loc` FROM `blog` WHERE `id` = ?', [post.id])
    expect(row).toEqual({ title: post.title, image_loc: null })
  })
})
