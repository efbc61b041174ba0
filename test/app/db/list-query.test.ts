import type { FastifyInstance } from 'fastify'
import { describe, expect, it, vi } from 'vitest'
import { QueryTypes } from 'sequelize'
import { EXCERPT_CHARS, LIST_SQL } from '../../../src/repositories/blog-repository'
import { useDisposableApps } from '../../kit/app'

// The list page's query plan on a large table: it must walk the index, not sort the table.

const { newEnv, newApp } = useDisposableApps()

describe('the list query', () => {
  interface ExplainRow {
    table: string
    type: string
    key: string | null
    rows: number | string
    Extra: string | null
  }

  /** Captures the SQL and bind values listPage really sends. */
  async function captureListQuery(app: FastifyInstance, page: number, pageSize: number) {
    const spy = vi.spyOn(app.sequelize, 'query')
    try {
      await app.blogs.listPage(page, pageSize)
      const call = spy.mock.calls.find(([sql]) => sql === LIST_SQL)
      expect(call, 'listPage should run LIST_SQL').toBeDefined()
      const bind = (call![1] as { bind: unknown[] }).bind
      return { sql: call![0] as string, bind }
    } finally {
      spy.mockRestore()
    }
  }

  async function explain(app: FastifyInstance, sql: string, bind: unknown[]): Promise<ExplainRow[]> {
    return app.sequelize.query<ExplainRow>(`EXPLAIN ${sql}`, { type: QueryTypes.SELECT, bind })
  }

  it('walks idx_blog_published_dt_id (no filesort) for the first pages of a large table', async () => {
    const env = await newEnv()
    const app = await newApp(env)
    // On a dozen rows the optimizer rightly prefers a scan and sort; give it a real table.
    const start = Date.UTC(2027, 0, 1) // after the sample posts (2026)
    const rows = Array.from({ length: 3000 }, (_, i) => [
      `Post ${i}`,
      `Author ${i % 17}`,
      'x'.repeat(500),
      new Date(start + i * 60_000).toISOString().slice(0, 19).replace('T', ' ')
    ])
    await env.query('INSERT INTO `blog` (`title`, `author`, `content`, `published_dt`) VALUES ?', [rows])
    await env.query('ANALYZE TABLE `blog`')

    const pageSize = env.config.pageSize
    for (const page of [1, 2, 3]) {
      const { sql, bind } = await captureListQuery(app, page, pageSize)
      expect(bind).toEqual([String(EXCERPT_CHARS), String(pageSize + 1), String((page - 1) * pageSize)])
      const plan = await explain(app, sql, bind)
      expect(plan, `page ${page}`).toHaveLength(1)
      const [step] = plan
      expect(step!.key, `page ${page}: ${JSON.stringify(step)}`).toBe('idx_blog_published_dt_id')
      expect(step!.type).toBe('index')
      expect(step!.Extra ?? '').not.toMatch(/filesort/i)
      // Reads about offset + limit index entries, not the whole table.
      expect(Number(step!.rows)).toBeLessThanOrEqual(page * pageSize + 1)
    }

    // The list still answers correctly on that table: newest first.
    const page1 = await app.blogs.listPage(1, pageSize)
    expect(page1.items[0]!.title).toBe('Post 2999')
    expect(page1.items).toHaveLength(pageSize)
    expect(page1.hasNext).toBe(true)
  })

  it('needs the index: without it the same query sorts the whole table (the check above can fail)', async () => {
    const env = await newEnv()
    const app = await newApp(env)
    const rows = Array.from({ length: 3000 }, (_, i) => [`Post ${i}`, 'A', 'x', new Date(Date.UTC(2027, 0, 1) + i * 1000)])
    await env.query('INSERT INTO `blog` (`title`, `author`, `content`, `published_dt`) VALUES ?', [rows])
    await env.query('ALTER TABLE `blog` DROP INDEX `idx_blog_published_dt_id`')
    await env.query('ANALYZE TABLE `blog`')
    const { sql, bind } = await captureListQuery(app, 1, env.config.pageSize)
    const [step] = await explain(app, sql, bind)
    expect(step!.key).toBeNull()
    expect(step!.Extra ?? '').toMatch(/filesort/i)
  })
})
