import { randomBytes, randomUUID } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { S3ImageStorage } from '../../../src/storage/s3'
import { PNG_1x1, JPEG_1x1 } from '../../fixtures/images'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { defaultAuthor } from '../../kit/accounts'
import { postForm } from '../../kit/form'
import { GENERATED_NAME } from '../../kit/posts'
import { startSeaweedFs, type SeaweedFs } from '../../kit/seaweedfs'
import { assertBuilt } from '../../kit/server'

// The row/file rules of the posts service (test/app/blogs/atomicity.test.ts for the local
// store), held with images in a real S3 store (SeaweedFS): stage, promote inside the
// transaction, delete after commit, sweep what no row references.

let s3: SeaweedFs
let env: TestEnv
let app: FastifyInstance
let store: S3ImageStorage

beforeAll(async () => {
  // The bucket is made by the compiled CLI (dist/src/cli/storage.js).
  assertBuilt()
  s3 = await startSeaweedFs()
  env = await createTestEnv({ ...s3.env, DB_SEED_ON_START: 'false' })
  app = await buildApp(env)
  store = app.imageStore as S3ImageStorage
}, 20 * 60_000)
afterAll(async () => {
  await app?.close()
  await env?.cleanup()
  await s3?.stop()
})
afterEach(async () => {
  vi.restoreAllMocks()
  await env.query('DROP TRIGGER IF EXISTS `blog_reject_insert`')
})

const fields = (title: string) => ({ title, content: 'Row and object live or die together.' })
const png = (size = 2048) => Buffer.concat([PNG_1x1, randomBytes(size)])
const imageOf = async (title: string) =>
  (await env.query<{ image_loc: string | null }>('SELECT `image_loc` FROM `blog` WHERE `title` = ?', [title]))[0]?.image_loc

describe('images in an S3 bucket', () => {
  it('stores a created post\'s image under its generated name, with its content type, and nothing staged', async () => {
    const title = `S3 create ${randomUUID()}`
    const res = await postForm(app, '/blogs/new', fields(title), { image_file: { data: png(), filename: 'p.png', type: 'image/png' } })
    expect(res.statusCode, res.body).toBe(303)
    const name = await imageOf(title)
    expect(name).toMatch(GENERATED_NAME)
    expect(await s3.exists(name!)).toBe(true)
    expect(await s3.keys('incoming/')).toEqual([])
    const img = await app.inject({ method: 'GET', url: `/static/uploads/${name}` })
    expect(img.statusCode).toBe(200)
    expect(img.headers['content-type']).toBe('image/png')
    const lastModified = String(img.headers['last-modified'])
    expect((await app.inject({ method: 'GET', url: `/static/uploads/${name}`, headers: { 'if-modified-since': lastModified } })).statusCode).toBe(304)
    const part = await app.inject({ method: 'GET', url: `/static/uploads/${name}`, headers: { range: 'bytes=0-7' } })
    expect(part.statusCode).toBe(206)
    expect(part.rawPayload.equals(PNG_1x1.subarray(0, 8))).toBe(true)
  })

  it('a rejected file (not an image) leaves no object behind', async () => {
    const before = await s3.keys()
    const res = await postForm(app, '/blogs/new', fields(`S3 text ${randomUUID()}`), { image_file: { data: 'just text, not an image', filename: 'x.png', type: 'image/png' } })
    expect(res.statusCode).toBe(415)
    expect(await s3.keys()).toEqual(before)
  })

  it('an upload over MAX_UPLOAD_BYTES gets 413 and leaves no object behind', async () => {
    const before = await s3.keys()
    const res = await postForm(app, '/blogs/new', fields(`S3 big ${randomUUID()}`), { image_file: { data: png(env.config.maxUploadBytes + 1024), filename: 'big.png', type: 'image/png' } })
    expect(res.statusCode).toBe(413)
    expect(await s3.keys()).toEqual(before)
  })

  it('a database error after the image was promoted leaves no row and no object', async () => {
    await env.query(
      "CREATE TRIGGER `blog_reject_insert` BEFORE INSERT ON `blog` FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rejected by test'"
    )
    const promote = vi.spyOn(store, 'promote')
    const before = await s3.keys()
    const res = await postForm(app, '/blogs/new', fields(`S3 trigger ${randomUUID()}`), { image_file: { data: png(), filename: 'p.png', type: 'image/png' } })
    expect(res.statusCode).toBe(500)
    // The object really had been promoted before the INSERT failed...
    const promoted = await promote.mock.results[0]!.value as string
    expect(promoted).toMatch(GENERATED_NAME)
    // ...and nothing of it is left.
    expect(await s3.keys()).toEqual(before)
  })

  it('replacing the image deletes the old object after the commit; deleting the post deletes the new one', async () => {
    const title = `S3 replace ${randomUUID()}`
    expect((await postForm(app, '/blogs/new', fields(title), { image_file: { data: png(), filename: 'a.png', type: 'image/png' } })).statusCode).toBe(303)
    const first = (await imageOf(title))!
    const [{ id }] = await env.query<{ id: number }>('SELECT `id` FROM `blog` WHERE `title` = ?', [title]) as [{ id: number }]
    const res = await postForm(app, `/blogs/modify/${id}`, fields(title), { image_file: { data: JPEG_1x1, filename: 'b.jpg', type: 'image/jpeg' } })
    expect(res.statusCode).toBe(303)
    const second = (await imageOf(title))!
    expect(second).toMatch(/\.jpg$/)
    expect(await s3.exists(first)).toBe(false)
    expect(await s3.exists(second)).toBe(true)
    const as = await defaultAuthor(app)
    const del = await app.inject({ method: 'POST', url: `/blogs/delete/${id}`, headers: { cookie: as.cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${encodeURIComponent(as.csrf)}` })
    expect(del.statusCode).toBe(303)
    expect(await s3.exists(second)).toBe(false)
  })

  it('a store that refuses the upload (bad keys) answers 503, not a client error, and saves no row', async () => {
    const other = await createTestEnv({ ...s3.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret', DB_SEED_ON_START: 'false' })
    const refused = await buildApp(other)
    try {
      const title = `S3 refused ${randomUUID()}`
      const res = await postForm(refused, '/blogs/new', fields(title), { image_file: { data: png(), filename: 'p.png', type: 'image/png' } })
      expect(res.statusCode).toBe(503)
      expect(res.body).toContain('Images cannot be stored right now.')
      expect(await other.query('SELECT `id` FROM `blog` WHERE `title` = ?', [title])).toEqual([])
    } finally {
      await refused.close()
      await other.cleanup()
    }
  })

  it('the sweep removes objects no row references and stale staged uploads, and keeps referenced ones', async () => {
    const title = `S3 sweep ${randomUUID()}`
    expect((await postForm(app, '/blogs/new', fields(title), { image_file: { data: png(), filename: 'k.png', type: 'image/png' } })).statusCode).toBe(303)
    const kept = (await imageOf(title))!
    const orphan = `${randomUUID()}.png`
    const staged = `incoming/${randomUUID()}`
    const foreign = `notes/${randomUUID()}.txt`
    for (const key of [orphan, staged, foreign]) {
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: png(16) }))
    }
    // Nothing is old enough yet: an hour's grace keeps everything.
    expect(await store.sweep(new Set(await app.blogs.imageNames()), 60 * 60 * 1000)).toEqual([])
    // An hour later: the orphan and the staged upload go; the referenced image and what the
    // store did not make stay.
    const removed = await store.sweep(new Set(await app.blogs.imageNames()), 60 * 60 * 1000, Date.now() + 2 * 60 * 60 * 1000)
    expect(removed.sort()).toEqual([orphan, staged].sort())
    expect(await s3.exists(kept)).toBe(true)
    expect(await s3.exists(foreign)).toBe(true)
    expect(await s3.exists(orphan)).toBe(false)
  })
})
