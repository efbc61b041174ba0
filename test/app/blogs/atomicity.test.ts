import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import type { Transaction } from 'sequelize'
import type { FastifyInstance } from 'fastify'
import { LocalImageStorage } from '../../../src/storage/local'
import { STORED_NAME } from '../../../src/storage/sniff'
import { useTestApp, incomingFiles, storedFiles, type TestEnv } from '../../kit/app'
import { postForm } from '../../kit/form'
import { GIF_1x1, JPEG_1x1, PNG_1x1, WEBP_1x1 } from '../../fixtures/images'
import { expectSameImage, picture } from '../../kit/images'

let env: TestEnv
let app: FastifyInstance
// No sample posts: every row in the table was made by the test that looks at it. A line of 50
// waiting uploads: 50 writers at once are the point here (the line's bound, 503 past it, is
// test/app/reliability/upload-queue.test.ts's).
useTestApp((t) => ({ env, app } = t), { DB_SEED_ON_START: 'false', IMAGE_QUEUE_LENGTH: '50' })
beforeEach(async () => {
  await env.query('DELETE FROM `blog`')
  for (const name of await storedFiles(env.uploadDir)) await fs.rm(path.join(env.uploadDir, name))
})
afterEach(async () => {
  vi.restoreAllMocks()
  await env.query('DROP TRIGGER IF EXISTS `blog_reject_insert`')
})

async function countRows(where = '1=1', params: unknown[] = []): Promise<number> {
  const [row] = await env.query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`blog\` WHERE ${where}`, params)
  return Number(row!.n)
}

const postWithImage = (title: string, image = PNG_1x1, filename = 'photo.png') =>
  postForm(app, '/blogs/new', { title, content: 'Row and file live or die together.' }, { image_file: { data: image, filename, type: 'image/png' } })

describe('creating a post with an image is all or nothing', () => {
  it('a database error on INSERT (after the file was stored) leaves no row and no file', async () => {
    // A trigger makes the INSERT itself fail in the server, after the upload was received and moved.
    await env.query(
      "CREATE TRIGGER `blog_reject_insert` BEFORE INSERT ON `blog` FOR EACH ROW " +
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insert rejected by test trigger'"
    )
    const promote = vi.spyOn(app.imageStore, 'promote')
    const remove = vi.spyOn(app.imageStore, 'delete')

    const res = await postWithImage('Trigger says no')

    expect(res.statusCode).toBe(500)
    expect(res.headers['content-type']).toMatch(/text\/html/)
    expect(res.body).toContain('Something went wrong on our side.')
    expect(res.body).not.toContain('insert rejected by test trigger')
    // The file really had been moved into the store before the INSERT failed...
    expect(promote).toHaveBeenCalledTimes(1)
    const stored = await promote.mock.results[0]!.value
    expect(stored).toMatch(STORED_NAME)
    expect(remove).toHaveBeenCalledWith(stored)
    // ...and nothing is left of it.
    expect(await countRows()).toBe(0)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('a failure after the row was inserted rolls the row back and removes the file', async () => {
    const realCreate = app.blogs.create.bind(app.blogs)
    let insertedId: number | undefined
    vi.spyOn(app.blogs, 'create').mockImplementation(async (input, author, imageLoc, t) => {
      insertedId = await realCreate(input, author, imageLoc, t)
      throw new Error('simulated failure after INSERT')
    })

    const res = await postWithImage('Inserted then failed')

    expect(res.statusCode).toBe(500)
    expect(res.body).not.toContain('simulated failure')
    expect(insertedId).toBeGreaterThan(0)
    expect(await countRows('`id` = ?', [insertedId])).toBe(0)
    expect(await countRows()).toBe(0)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('a failure moving the file into the store leaves no row and no file', async () => {
    const create = vi.spyOn(app.blogs, 'create')
    vi.spyOn(app.imageStore, 'promote').mockRejectedValue(
      Object.assign(new Error('ENOSPC: no space left on device, rename'), { code: 'ENOSPC' })
    )

    const res = await postWithImage('Move fails')

    expect(res.statusCode).toBe(500)
    expect(res.body).not.toContain('ENOSPC')
    expect(create).not.toHaveBeenCalled()
    expect(await countRows()).toBe(0)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    // The received upload is discarded from the incoming area too.
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('after a failure the app still creates posts normally', async () => {
    vi.spyOn(app.imageStore, 'promote').mockRejectedValueOnce(new Error('transient'))
    expect((await postWithImage('First try')).statusCode).toBe(500)
    const res = await postWithImage('Second try')
    expect(res.statusCode).toBe(303)
    const rows = await env.query<{ title: string; image_loc: string }>('SELECT `title`, `image_loc` FROM `blog`')
    expect(rows).toHaveLength(1)
    expect(rows[0]!.title).toBe('Second try')
    expect(await storedFiles(env.uploadDir)).toEqual([rows[0]!.image_loc])
  })

  it('50 concurrent creates with images give 50 rows and exactly their 50 files', async () => {
    const images = [
      { data: PNG_1x1, filename: 'a.png', ext: 'png' },
      { data: JPEG_1x1, filename: 'b.jpg', ext: 'jpg' },
      { data: GIF_1x1, filename: 'c.gif', ext: 'gif' },
      { data: WEBP_1x1, filename: 'd.webp', ext: 'webp' }
    ]
    const N = 50
    const responses = await Promise.all(
      Array.from({ length: N }, (_, i) => postWithImage(`Concurrent ${i}`, images[i % 4]!.data, images[i % 4]!.filename))
    )

    expect(responses.map((r) => r.statusCode)).toEqual(Array(N).fill(303))
    const rows = await env.query<{ title: string; image_loc: string | null }>('SELECT `title`, `image_loc` FROM `blog`')
    expect(rows).toHaveLength(N)
    expect(new Set(rows.map((r) => r.title)).size).toBe(N)

    const files = await storedFiles(env.uploadDir)
    expect(files).toHaveLength(N)
    const referenced = rows.map((r) => r.image_loc)
    expect(referenced.every((n) => n !== null && STORED_NAME.test(n))).toBe(true)
    // Every row's file exists, and every file belongs to a row (one to one).
    expect([...referenced].sort()).toEqual(files)
    expect(await incomingFiles(env.uploadDir)).toEqual([])

    // Each row got the right kind of image: the stored extension follows the sniffed content.
    for (const r of rows) {
      const i = Number(r.title.replace('Concurrent ', ''))
      expect(r.image_loc!.endsWith(`.${images[i % 4]!.ext}`), `${r.title} -> ${r.image_loc}`).toBe(true)
      const bytes = await fs.readFile(path.join(env.uploadDir, r.image_loc!))
      await expectSameImage(bytes, images[i % 4]!.data, images[i % 4]!.ext === 'jpg' ? 8 : 0)
    }
  })
})

describe('the orphan sweep', () => {
  const HOUR = 60 * 60 * 1000
  const name = (n: number, ext = 'png') => `${String(n).padStart(8, '0')}-0000-4000-8000-000000000000.${ext}`

  async function writeAged(p: string, ageMs: number, now: number): Promise<void> {
    await fs.writeFile(p, PNG_1x1)
    const t = new Date(now - ageMs)
    await fs.utimes(p, t, t)
  }
  const exists = (p: string) => fs.access(p).then(() => true, () => false)

  it('removes unreferenced files older than the grace period and keeps referenced and young ones', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-sweep-'))
    onTestFinished(() => fs.rm(dir, { recursive: true, force: true }))
    const store = new LocalImageStorage(dir)
    await store.init()
    const now = Date.now()
    const files = {
      referencedOld: name(1),
      orphanOld: name(2, 'jpg'),
      orphanYoung: name(3, 'gif'),
      referencedYoung: name(4, 'webp'),
      foreignOld: 'notes.txt'
    }
    await writeAged(path.join(dir, files.referencedOld), 3 * HOUR, now)
    await writeAged(path.join(dir, files.orphanOld), 3 * HOUR, now)
    await writeAged(path.join(dir, files.orphanYoung), 10 * 60 * 1000, now)
    await writeAged(path.join(dir, files.referencedYoung), 1000, now)
    await writeAged(path.join(dir, files.foreignOld), 3 * HOUR, now)
    await writeAged(path.join(dir, '.incoming', 'stale-upload'), 3 * HOUR, now)
    await writeAged(path.join(dir, '.incoming', 'upload-in-progress'), 1000, now)

    const removed = await store.sweep(new Set([files.referencedOld, files.referencedYoung]), HOUR, now)

    expect(removed.sort()).toEqual([files.orphanOld, path.join('.incoming', 'stale-upload')].sort())
    expect(await exists(path.join(dir, files.orphanOld))).toBe(false)
    expect(await exists(path.join(dir, '.incoming', 'stale-upload'))).toBe(false)
    for (const kept of [files.referencedOld, files.orphanYoung, files.referencedYoung, files.foreignOld]) {
      expect(await exists(path.join(dir, kept)), kept).toBe(true)
    }
    expect(await exists(path.join(dir, '.incoming', 'upload-in-progress'))).toBe(true)

    // A second sweep has nothing left to do.
    expect(await store.sweep(new Set([files.referencedOld, files.referencedYoung]), HOUR, now)).toEqual([])
  })

  it('with the references from the database, keeps an old image a post points to and removes an old orphan', async () => {
    expect((await postWithImage('Has an image')).statusCode).toBe(303)
    const [row] = await env.query<{ image_loc: string }>('SELECT `image_loc` FROM `blog`')
    const now = Date.now()
    const live = path.join(env.uploadDir, row!.image_loc)
    const orphan = path.join(env.uploadDir, name(9))
    const t = new Date(now - 2 * HOUR)
    await fs.utimes(live, t, t)
    await writeAged(orphan, 2 * HOUR, now)

    const removed = await app.imageStore.sweep(await app.blogs.imageNames(), HOUR, now)

    expect(removed).toEqual([name(9)])
    expect(await exists(live)).toBe(true)
    expect(await exists(orphan)).toBe(false)
    // The post's image is still served.
    const res = await app.inject(`/static/uploads/${row!.image_loc}`)
    expect(res.statusCode).toBe(200)
  })
})

describe('an image and its thumbnail are one upload', () => {
  let big: Buffer
  beforeAll(async () => {
    big = await picture(1200, 900, 'jpeg')
  })
  const postBig = (title: string) =>
    postForm(app, '/blogs/new', { title, content: 'Two files, one upload.' }, { image_file: { data: big, filename: 'big.jpg', type: 'image/jpeg' } })

  /** Makes the next transaction's COMMIT fail as a lost connection would, after `before` ran. */
  function loseCommit(before: (t: Transaction) => Promise<void>) {
    const realBegin = app.blogs.begin.bind(app.blogs)
    vi.spyOn(app.blogs, 'begin').mockImplementationOnce(async () => {
      const t = await realBegin()
      t.commit = async () => {
        await before(t)
        throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' })
      }
      return t
    })
  }

  it('a database error on INSERT removes both promoted files', async () => {
    await env.query(
      "CREATE TRIGGER `blog_reject_insert` BEFORE INSERT ON `blog` FOR EACH ROW " +
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insert rejected by test trigger'"
    )
    const promote = vi.spyOn(app.imageStore, 'promote')
    const res = await postBig('Pair trigger says no')
    expect(res.statusCode).toBe(500)
    expect(promote).toHaveBeenCalledTimes(2)
    expect(await countRows()).toBe(0)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('a failure promoting the thumbnail (the image already promoted) leaves no row and no file', async () => {
    const realPromote = app.imageStore.promote.bind(app.imageStore)
    vi.spyOn(app.imageStore, 'promote')
      .mockImplementationOnce(realPromote)
      .mockRejectedValueOnce(new Error('simulated failure promoting the thumbnail'))
    const res = await postBig('Thumb fails')
    expect(res.statusCode).toBe(500)
    expect(await countRows()).toBe(0)
    expect(await storedFiles(env.uploadDir)).toEqual([])
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('COMMIT applied but unanswered: 503, the row and both files are kept', async () => {
    loseCommit((t) => Object.getPrototypeOf(t).commit.call(t))
    const res = await postBig('Committed, unanswered')
    expect(res.statusCode).toBe(503)
    const rows = await env.query<{ image_loc: string; thumb_loc: string }>('SELECT `image_loc`, `thumb_loc` FROM `blog`')
    expect(rows).toHaveLength(1)
    expect(await storedFiles(env.uploadDir)).toEqual([rows[0]!.image_loc, rows[0]!.thumb_loc].sort())
    // The sweep knows both are referenced.
    expect(await app.imageStore.sweep(await app.blogs.imageNames(), -1)).toEqual([])
  })

  it('COMMIT never applied and unanswered: 503, both files kept until the sweep finds no row for them', async () => {
    loseCommit((t) => t.rollback())
    const res = await postBig('Lost commit')
    expect(res.statusCode).toBe(503)
    expect(await countRows()).toBe(0)
    const kept = await storedFiles(env.uploadDir)
    expect(kept).toHaveLength(2)
    expect((await app.imageStore.sweep(await app.blogs.imageNames(), -1)).sort()).toEqual(kept)
    expect(await storedFiles(env.uploadDir)).toEqual([])
  })
})
