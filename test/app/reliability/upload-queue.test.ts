import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import sharp from 'sharp'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { signUp, type Account } from '../../kit/accounts'
import { incomingFiles, storedFiles, useDisposableApps, type TestEnv } from '../../kit/app'
import { multipart, postForm } from '../../kit/form'
import { rowsByTitle, unique } from '../../kit/posts'
import { assertBuilt, killAllServers, startListening, type ServerChild } from '../../kit/server'

// Uploads that wait for the image processor (two at a time, within a memory budget) are answered
// within REQUEST_TIMEOUT_MS and write a row if and only if the answer is 303. Before, with
// REQUEST_TIMEOUT_MS=2000 and 8 uploads of a slow image at once, the waiting ones were reset by
// the socket's idle timeout (~7 s) with no answer and no log line, and all 8 rows were written
// anyway; a client that went away still got its post stored.

const apps = useDisposableApps()
afterEach(() => killAllServers())

// ~1.5 s of processing each (the GIF encoder at 2000x2000), 4 KB to send, ~84 MB of budget each.
let slowGif: Buffer
beforeAll(async () => {
  assertBuilt()
  slowGif = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: { r: 200, g: 100, b: 50 } } }).gif({ colours: 2, effort: 1, dither: 0 }).toBuffer()
})

const upload = (title: string) => ({ title, content: 'Waiting for the image processor.' })
const file = () => ({ image_file: { data: slowGif, filename: 'slow.gif', type: 'image/gif' } })

/** The log lines of POST /blogs/new: the one per response, and those of requests whose client went away. */
function uploadLogLines(server: ServerChild): { completed: Record<string, unknown>[]; closed: Record<string, unknown>[] } {
  const lines = server.logs()
  const completed = lines.filter((l) => l.msg === 'request completed' && (l.req as { url?: string } | undefined)?.url === '/blogs/new')
  const closed = lines.filter((l) => l.code === 'CLIENT_CLOSED')
  return { completed, closed }
}

/** What the upload dir holds besides the images of these rows' (none staged). */
async function expectOnlyFilesOf(env: TestEnv, rows: { image_loc: string | null; thumb_loc: string | null }[]): Promise<void> {
  const expected = rows.flatMap((r) => [r.image_loc, r.thumb_loc]).filter((n): n is string => n !== null).sort()
  expect(await storedFiles(env.uploadDir)).toEqual(expected)
  expect(await incomingFiles(env.uploadDir)).toEqual([])
}

describe('uploads waiting for the image processor', () => {
  it('REQUEST_TIMEOUT_MS=2000, more slow uploads at once than two at a time can process in time: each answered (303, or 503 with Retry-After) in time, with a log line, and a row iff 303', async () => {
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false', REQUEST_TIMEOUT_MS: '2000', LOG_LEVEL: 'info' })
    const server = await startListening(env.env)
    const author = await signUp(server.port)
    // How long one upload takes here (0.3-1.5 s seen on the same kind of machine, quiet or busy):
    // enough uploads that two at a time cannot all be done within the 2 s deadline, with margin.
    const t0 = Date.now()
    const alone = unique('Alone')
    expect((await postForm(server.port, '/blogs/new', upload(alone), file(), { as: author })).status).toBe(303)
    const each = Math.max(50, Date.now() - t0)
    const count = Math.max(8, Math.ceil(((2 * 2000) / each) * 1.5) + 2)
    const titles = Array.from({ length: count }, (_, i) => unique(`Queued ${i}`))
    const started = Date.now()
    const outcomes = await Promise.all(
      titles.map((title) =>
        postForm(server.port, '/blogs/new', upload(title), file(), { as: author }).then(
          (res) => ({ status: res.status, retryAfter: res.headers['retry-after'], ms: Date.now() - started }),
          (err: Error) => ({ status: 0, error: err.message, ms: Date.now() - started })
        )
      )
    )
    const what = JSON.stringify(outcomes)
    // Every request answered: none reset, none left without an answer.
    for (const o of outcomes) expect([303, 503], what).toContain(o.status)
    // The deadline is the request's: answered within it, plus the last decode's second and the DB.
    for (const o of outcomes) expect(o.ms, what).toBeLessThan(2000 + 3000)
    for (const o of outcomes) if (o.status === 503) expect((o as { retryAfter?: string }).retryAfter, what).toMatch(/^\d+$/)
    expect(outcomes.some((o) => o.status === 503), what).toBe(true)

    // A row if and only if the answer was 303; no file but theirs (and the first upload's).
    const rows = await rowsByTitle(env, alone)
    expect(rows).toHaveLength(1)
    for (const [i, title] of titles.entries()) {
      const found = await rowsByTitle(env, title)
      expect(found.length, `${title}: ${what}`).toBe(outcomes[i]!.status === 303 ? 1 : 0)
      rows.push(...found)
    }
    // Work cut at the deadline finishes in the background: give it a moment to clean up.
    await expect.poll(() => incomingFiles(env.uploadDir), { timeout: 3000 }).toEqual([])
    await expectOnlyFilesOf(env, rows)

    // One log line per answer, with its status.
    await expect.poll(() => uploadLogLines(server).completed.length, { timeout: 2000 }).toBe(count + 1)
    const logged = uploadLogLines(server).completed.map((l) => (l.res as { statusCode: number }).statusCode).sort()
    expect(logged).toEqual([303, ...outcomes.map((o) => o.status)].sort())
  }, 60_000)

  it('a client that disconnects while its upload is processed or waits gets nothing written, and leaves a log line', async () => {
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false', LOG_LEVEL: 'info' })
    const server = await startListening(env.env)
    const author = await signUp(server.port)
    const stays = unique('Stays')
    const leavers = [unique('Leaves while processed'), unique('Leaves while waiting'), unique('Leaves while waiting too')]

    const kept = postForm(server.port, '/blogs/new', upload(stays), file(), { as: author })
    // Sent whole, then the connection is closed before the answer.
    const sockets = await Promise.all(leavers.map((title) => sendAndHold(server.port, author, title)))
    await sleep(300)
    for (const s of sockets) s.destroy()

    expect((await kept).status).toBe(303)
    // The one being processed finishes its decode (~1.5 s), then stops before writing.
    await expect.poll(() => uploadLogLines(server).closed.length, { timeout: 10_000 }).toBe(3)
    await sleep(500)
    const [row] = await rowsByTitle(env, stays)
    for (const title of leavers) expect(await rowsByTitle(env, title), title).toEqual([])
    await expectOnlyFilesOf(env, [row!])
    expect(uploadLogLines(server).completed.map((l) => (l.res as { statusCode: number }).statusCode)).toEqual([303])
  }, 60_000)
})

/** Sends a whole upload on a raw socket and keeps the connection open without reading the answer. */
async function sendAndHold(port: number, author: Account, title: string): Promise<net.Socket> {
  const { payload, headers } = await multipart({ _csrf: author.csrf, ...upload(title) }, file())
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.write(
    `POST /blogs/new HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${author.cookie}\r\nContent-Type: ${headers['content-type']}\r\nContent-Length: ${payload.length}\r\n\r\n`
  )
  socket.write(payload)
  return socket
}
