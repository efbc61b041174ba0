import mysql from 'mysql2/promise'
import { startApp } from './app'

export function connectionOptions(adminUrl: string) {
  const u = new URL(adminUrl)
  return { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username) || 'root', password: decodeURIComponent(u.password) }
}

/** The URL of `database` on the server `adminUrl` names. */
export const databaseUrl = (adminUrl: string, database: string) => `${adminUrl.replace(/\/$/, '')}/${database}`

export interface DataSet {
  posts: number
  /** Without idx_blog_published_dt_id: the list query sorts the whole table (a database-bound page). */
  noIndex: boolean
}

export const dataSetKey = (d: DataSet) => `${d.posts}${d.noIndex ? '_noindex' : ''}`

/** A fresh database with the app's schema and `posts` deterministic posts. */
export async function prepareData(adminUrl: string, database: string, data: DataSet): Promise<void> {
  const conn = await mysql.createConnection(connectionOptions(adminUrl))
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  } finally {
    await conn.end()
  }
  // The app migrates and seeds the 12 sample posts; top up to `posts` with deterministic rows.
  const app = await startApp({ DATABASE_URL: databaseUrl(adminUrl, database), OTEL_SDK_DISABLED: 'true' })
  await app.stop()
  const db = await mysql.createConnection({ ...connectionOptions(adminUrl), database })
  try {
    const extra = Math.max(0, data.posts - 12)
    for (let i = 0; i < extra; i += 2000) {
      const rows = []
      for (let j = i; j < Math.min(extra, i + 2000); j++) {
        const at = new Date(Date.UTC(2026, 0, 1) + j * 60_000)
        rows.push([`Benchmark post ${j + 1}`, `Author ${j % 17}`, `Paragraph ${j}. `.repeat(40), null, at, at])
      }
      await db.query('INSERT INTO blog (title, author, content, image_loc, published_dt, modified_dt) VALUES ?', [rows])
    }
    if (data.noIndex) await db.query('ALTER TABLE blog DROP INDEX idx_blog_published_dt_id')
    await db.query('ANALYZE TABLE blog')
  } finally {
    await db.end()
  }
}

export async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const conn = await mysql.createConnection(connectionOptions(adminUrl))
  for (const name of names) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
  await conn.end()
}
