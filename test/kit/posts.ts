import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { expect } from 'vitest'
import { defaultAuthor, type Account } from './accounts'
import { incomingFiles, storedFiles, type TestEnv } from './app'
import { postForm, type UploadFile } from './form'

/** A row of the `blog` table as mysql2 returns it. */
export interface BlogRow {
  id: number
  title: string
  author: string
  content: string
  image_loc: string | null
  thumb_loc: string | null
  user_id: number | null
  modified_dt: Date
}

/** A stored image name as the store generates it (uuid v4 + extension). */
export const GENERATED_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.(png|jpg|gif|webp)$/

/** A value no other test (or run) uses. */
export function unique(prefix: string): string {
  return `${prefix} ${randomBytes(5).toString('hex')}`
}


export async function rowsByTitle(env: TestEnv, title: string): Promise<BlogRow[]> {
  return env.query<BlogRow>('SELECT * FROM `blog` WHERE `title` = ? ORDER BY `id`', [title])
}

export async function rowById(env: TestEnv, id: number): Promise<BlogRow | undefined> {
  return (await env.query<BlogRow>('SELECT * FROM `blog` WHERE `id` = ?', [id]))[0]
}

export async function countRows(env: TestEnv): Promise<number> {
  const [row] = await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `blog`')
  return Number(row?.n)
}

/** An id no row has (and, the column being AUTO_INCREMENT, that no test will create soon). */
export async function unusedId(env: TestEnv): Promise<number> {
  const [row] = await env.query<{ m: number | null }>('SELECT MAX(`id`) AS m FROM `blog`')
  return Number(row?.m ?? 0) + 100_000
}

/**
 * Creates a post through the app (as a browser would, signed in as `as`, by default the app's
 * test author) and returns its row.
 */
export async function createPost(
  app: FastifyInstance,
  env: TestEnv,
  fields: Partial<Record<'title' | 'content', string>> = {},
  image?: UploadFile,
  as?: Account
): Promise<BlogRow> {
  const values = { title: unique('Post'), content: 'Some content.', ...fields }
  const res = await postForm(app, '/blogs/new', values, image ? { image_file: image } : {}, { as: as ?? (await defaultAuthor(app)) })
  expect(res.statusCode, res.body).toBe(303)
  const rows = await rowsByTitle(env, values.title)
  expect(rows).toHaveLength(1)
  return rows[0] as BlogRow
}

/** Everything the upload dir holds: stored images and the incoming area. */
export async function fileState(env: TestEnv): Promise<{ stored: string[]; incoming: string[] }> {
  return { stored: await storedFiles(env.uploadDir), incoming: (await incomingFiles(env.uploadDir)).sort() }
}

export async function readStored(env: TestEnv, name: string): Promise<Buffer> {
  return fs.readFile(path.join(env.uploadDir, name))
}

export async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false
  )
}

/** The list page's card for one post, or undefined when the page does not show it. */
export function postCard(html: string, id: number): string | undefined {
  return html
    .split('<li class="post-card">')
    .slice(1)
    .map((c) => c.slice(0, c.indexOf('</li>')))
    .find((c) => c.includes(`<h2><a href="/blogs/show/${id}">`))
}

/** Ids of the posts a list page shows, in page order. */
export function listedIds(html: string): number[] {
  return [...html.matchAll(/<h2><a href="\/blogs\/show\/(\d+)">/g)].map((m) => Number(m[1]))
}

/** What EJS's `<%= %>` produces for a string. */
export function ejsEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] as string)
}

/** Runs `act` and checks it left no row and no file (stored or incoming) behind. */
export async function expectNothingWritten(env: TestEnv, act: () => Promise<void>): Promise<void> {
  const rowsBefore = await countRows(env)
  const filesBefore = await fileState(env)
  await act()
  expect(await countRows(env)).toBe(rowsBefore)
  expect(await fileState(env)).toEqual(filesBefore)
}

