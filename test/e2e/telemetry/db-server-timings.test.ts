import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'
import { performance } from 'node:perf_hooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DbConfig } from '../../../src/config'
import { DbServerTimings, type TimedSpan } from '../../../src/telemetry/db-server'
import { startMariaDb, type MariaDbInstance } from '../../kit/mariadb-instance'
import { OtlpReceiver, parseTraceHeader, SpanKind, type ReceivedSpan } from '../../kit/otlp-receiver'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'
import { expectRequestTrace, fromOtlp } from '../../kit/trace'

// The database's own time for each SQL span, joined from performance_schema, on a MariaDB this
// test starts with performance_schema on and the statement history MySQL 8.4 has by default.

let db: MariaDbInstance
let receiver: OtlpReceiver
let app: ServerChild

const sqlSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === SpanKind.CLIENT && s.attributes['db.system.name'] === 'mysql')

beforeAll(async () => {
  assertBuilt()
  db = await startMariaDb({
    args: ['--performance-schema=ON', '--performance-schema-consumer-events-statements-current=ON', '--performance-schema-consumer-events-statements-history=ON']
  })
  receiver = await OtlpReceiver.start()
  app = await startListening({ ...receiver.env(), DATABASE_URL: db.url('blog_db'), LOG_LEVEL: 'info', DB_HEALTH_CHECK_INTERVAL_MS: '0', INSPECTOR_ENABLED: 'true' }, { telemetry: true })
}, 120_000)

afterAll(async () => {
  await app?.kill()
  await receiver?.close()
  await db?.destroy()
})

describe('blog.db.server_ms from performance_schema', () => {
  it('says once in the log that server timings are on, and which table it reads', () => {
    const lines = app.logs().filter((l) => String(l.msg).startsWith('db server timings'))
    expect(lines.map((l) => [l.msg, l.table])).toEqual([['db server timings on', 'performance_schema.events_statements_history']])
  })

  it('gives every SQL span of a request the server time, lock time and rows of its statement', async () => {
    const res = await request(app.port, '/blogs/')
    expect(res.status).toBe(200)
    const { traceId } = parseTraceHeader(res.headers.traceresponse)
    const spans = await receiver.waitForTrace(traceId, (s) => sqlSpans(s).length > 0)
    const [select] = sqlSpans(spans)
    // The 12 sample posts (the page asks for 21 rows to learn whether a next page exists).
    expect(select!.attributes).toMatchObject({ 'blog.db.rows_sent': 12 })
    const serverMs = Number(select!.attributes['blog.db.server_ms'])
    expect(serverMs).toBeGreaterThan(0)
    // It is the server's own timer for that statement: the app's latest EXECUTE that sent 12 rows,
    // plus the PREPARE just before it when this was the connection's first run of the statement.
    // (Not bounded by the span: the server ends its statement event after sending the result, and
    // on a busy machine that tail made server time exceed the client's round trip by ~1 ms.)
    const [execute] = await db.query<{ thread: number; id: number; ms: number }>(
      'SELECT h.THREAD_ID AS thread, h.EVENT_ID AS id, h.TIMER_WAIT / 1e9 AS ms FROM performance_schema.events_statements_history h ' +
        'JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID ' +
        "WHERE t.PROCESSLIST_ID <> CONNECTION_ID() AND h.EVENT_NAME = 'statement/com/Execute' AND h.ROWS_SENT = 12 ORDER BY h.TIMER_END DESC LIMIT 1"
    )
    const [before] = await db.query<{ name: string; ms: number }>(
      'SELECT EVENT_NAME AS name, TIMER_WAIT / 1e9 AS ms FROM performance_schema.events_statements_history WHERE THREAD_ID = ? AND EVENT_ID < ? ORDER BY EVENT_ID DESC LIMIT 1',
      [execute!.thread, execute!.id]
    )
    const own = Number(execute!.ms) + (before?.name === 'statement/com/Prepare' ? Number(before.ms) : 0)
    // The attribute is rounded to the microsecond.
    expect(Math.abs(serverMs - own)).toBeLessThanOrEqual(0.0005 + 1e-9)
    expect(Number(select!.attributes['blog.db.rows_examined'])).toBeGreaterThanOrEqual(12)
    expect(select!.attributes['blog.event_loop.active_ms']).toBeTypeOf('number')
  })

  it("keeps its own polls out of every request's trace (they start in the context of a request that ended)", async () => {
    for (let i = 0; i < 12; i++) {
      const res = await request(app.port, '/blogs/')
      expect(res.status).toBe(200)
      const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
      const spans = await receiver.waitForTrace(traceId, (s) => sqlSpans(s).length > 0)
      // Long enough for a poll to run after this request's spans ended, before the next request.
      await sleep(300)
      expectRequestTrace(fromOtlp(receiver.trace(traceId)), { name: 'GET /blogs/', status: 200, spanId, children: ['pool.acquire', 'SELECT', 'view.render'] })
      expect(spans.length).toBeGreaterThan(0)
    }
  })

  it("matches the server's own timer for the statement: a SELECT held 150 ms behind a table lock", async () => {
    const locker = await mysql.createConnection({ host: '127.0.0.1', port: db.port, user: 'root', database: 'blog_db' })
    try {
      await locker.query('LOCK TABLES `blog` WRITE')
      const pending = request(app.port, '/blogs/')
      await sleep(150)
      await locker.query('UNLOCK TABLES')
      const res = await pending
      expect(res.status).toBe(200)
      const spans = await receiver.waitForTrace(parseTraceHeader(res.headers.traceresponse).traceId, (s) => sqlSpans(s).length > 0)
      const select = sqlSpans(spans)[0]!
      const serverMs = Number(select.attributes['blog.db.server_ms'])
      // The server's own record of that statement: the only one of the app's that waited > 100 ms.
      const waited = await db.query<{ ms: number }>(
        'SELECT h.TIMER_WAIT / 1e9 AS ms FROM performance_schema.events_statements_history h ' +
          'JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID ' +
          'WHERE h.TIMER_WAIT > 100e9 AND t.PROCESSLIST_ID <> CONNECTION_ID() AND h.EVENT_NAME = ?',
        ['statement/com/Execute']
      )
      expect(waited).toHaveLength(1)
      const own = Number(waited[0]!.ms)
      expect(own).toBeGreaterThan(100)
      expect(Math.abs(serverMs - own)).toBeLessThanOrEqual(Math.max(1, own * 0.2))
      expect(Number(select.attributes['blog.db.lock_ms'])).toBeGreaterThan(100)
      // The inspector draws the SELECT's bar mostly as DB server time, and the route's share says so.
      const page = await request(app.port, `/_inspect/traces/${parseTraceHeader(res.headers.traceresponse).traceId}`)
      expect(page.body).toMatch(/<rect class="wf-part part-server"[^>]*><title>DB server: 1\d\d ms<\/title>/)
      const routes = await request(app.port, '/_inspect/routes')
      const row = routes.body.slice(routes.body.indexOf('<span class="method">GET</span> /blogs/</a>')).split('</tr>')[0]!
      expect(row).toMatch(/<td class="num">\d+%<\/td>\s*$/)
    } finally {
      await locker.end()
    }
  })

  it('leaves the attribute off a span it cannot join (a statement the server did not record)', async () => {
    // Turn the consumer off: the history stops filling, the app keeps running and says nothing new.
    await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'events_statements_history'")
    try {
      const res = await request(app.port, '/blogs/')
      expect(res.status).toBe(200)
      const spans = await receiver.waitForTrace(parseTraceHeader(res.headers.traceresponse).traceId, (s) => sqlSpans(s).length > 0)
      const select = sqlSpans(spans)[0]!
      expect(select.attributes['blog.db.server_ms']).toBeUndefined()
      expect(select.attributes['blog.event_loop.active_ms']).toBeTypeOf('number')
    } finally {
      await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'events_statements_history'")
    }
  })
})

describe('the join, on the same server', () => {
  const wall = () => performance.timeOrigin + performance.now()
  const config = () => ({ host: '127.0.0.1', port: db.port, user: 'root', password: '', connectTimeoutMs: 5000 }) as DbConfig

  it('stays off, and says why, when events_statements_current is off (the history is fed from it; MariaDB leaves it off)', async () => {
    await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'events_statements_current'")
    try {
      const timings = new DbServerTimings(250)
      const said: string[] = []
      expect(await timings.start(config(), { info: (_, msg) => said.push(msg), warn: (_, msg) => said.push(msg) })).toBe(false)
      expect(said).toEqual(['db server timings off: enable events_statements_current, which the statement history consumers record from (README "Truthful timings")'])
      expect(timings.enabled).toBe(false)
    } finally {
      await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'events_statements_current'")
    }
  })

  it('joins nothing while the history is not recording, even the events it still holds (consumer turned off after a slow statement)', async () => {
    const timings = new DbServerTimings(250)
    const said: string[] = []
    const log = { info: (_: object, msg: string) => said.push(msg), warn: (_: object, msg: string) => said.push(msg) }
    expect(await timings.start(config(), log)).toBe(true)
    expect(said).toEqual(['db server timings on'])
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: db.port, user: 'root' })
    // As the app does: a statement's spans are resolved a poll interval after they ended (the
    // server files a statement's event a little after the client has its result).
    const span = async (sql: string): Promise<TimedSpan> => {
      const start = wall()
      await conn.query(sql)
      const end = wall()
      await sleep(timings.pollMs)
      return { connectionId: conn.threadId!, start, end }
    }
    try {
      const slow = await span('SELECT SLEEP(0.15)')
      const first = await timings.resolve([slow])
      expect(first.get(slow)?.serverMs).toBeGreaterThan(140)
      await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'events_statements_history'")
      try {
        // Each poll now finds the last recorded marker, not its own. Paired with this poll's round
        // trip, that marker moved every old event forward by the time between the two polls, and
        // the slow SELECT landed in a span of the last second it never ran in (CI, twice).
        for (let poll = 0; poll < 8; poll++) {
          const fast = await span('SELECT 1')
          const lastSecond: TimedSpan = { connectionId: conn.threadId!, start: fast.end - 1000, end: fast.end }
          const joined = await timings.resolve([fast, lastSecond])
          expect([...joined.values()]).toEqual([])
        }
      } finally {
        await db.query("UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'events_statements_history'")
      }
      // Recording again: the next statement is joined, and only it.
      const again = await span('SELECT SLEEP(0.05)')
      const joined = await timings.resolve([again])
      expect(joined.get(again)).toMatchObject({ statements: 1 })
      expect(joined.get(again)!.serverMs).toBeGreaterThan(45)
      expect(joined.get(again)!.serverMs).toBeLessThan(140)
    } finally {
      await conn.end()
      await timings.close()
    }
  })
})

describe('with performance_schema off (MariaDB default)', () => {
  it('runs unchanged and says so once, naming the setting', async () => {
    const plain = await startMariaDb()
    try {
      const child = await startListening({ ...receiver.env(), DATABASE_URL: plain.url('blog_db'), LOG_LEVEL: 'info', DB_HEALTH_CHECK_INTERVAL_MS: '0' }, { telemetry: true })
      try {
        const res = await request(child.port, '/blogs/')
        expect(res.status).toBe(200)
        const spans = await receiver.waitForTrace(parseTraceHeader(res.headers.traceresponse).traceId, (s) => sqlSpans(s).length > 0)
        expect(sqlSpans(spans)[0]!.attributes['blog.db.server_ms']).toBeUndefined()
        expect(sqlSpans(spans)[0]!.attributes['blog.event_loop.active_ms']).toBeTypeOf('number')
        const lines = child.logs().filter((l) => String(l.msg).startsWith('db server timings'))
        expect(lines).toHaveLength(1)
        expect(lines[0]!.msg).toMatch(/off: start the database with --performance-schema=ON/)
      } finally {
        await child.kill()
      }
    } finally {
      await plain.destroy()
    }
  }, 60_000)
})
