import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { countRows } from '../../kit/posts'
import { assertBuilt, request, startListening, type ServerChild } from '../../kit/server'

// A body declared larger than any post is refused on its Content-Length, before it is read:
// a client announcing 300 MB gets its 413 after sending only the headers. The post form is read
// up to its file (its text fields come first) and comes back with the text kept: the file is
// still not read.

let env: TestEnv
let server: ServerChild
// Signed in, so what is measured is the body check, not the sign-in check.
let author: Account

beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv()
  server = await startListening({ ...env.env, LOG_LEVEL: 'info' })
  author = await signUp(server.port)
})

afterAll(async () => {
  await server?.kill()
  await env?.cleanup()
})

/** Sends the head of a request (and `body`, not the whole declared length); resolves with what comes back. */
function headOnly(length: number, body = '--x\r\n', path = '/blogs/new'): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const socket = net.connect({ host: '127.0.0.1', port: server.port }, () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\nCookie: ${author.cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n` +
          `Content-Length: ${length}\r\n\r\n${body}`
      )
    })
    let text = ''
    socket.setEncoding('utf8').on('data', (d: string) => {
      text += d
      if (text.includes('</html>')) {
        socket.destroy()
        resolve({ text, ms: performance.now() - t0 })
      }
    })
    socket.on('error', reject)
    socket.setTimeout(5000, () => {
      socket.destroy()
      resolve({ text, ms: performance.now() - t0 })
    })
  })
}

describe('the declared body length', () => {
  it('over the limit (300 MB announced, a few bytes sent) where no form is read: 413 at once, the connection closed, nothing stored', async () => {
    const before = await countRows(env)
    const { text, ms } = await headOnly(300 * 1024 * 1024, '--x\r\n', '/blogs/delete/1')
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(text).toMatch(/\r\nconnection: close\r\n/i)
    expect(text).toContain('The upload is too large (the limit is 5.0 MiB).')
    expect(ms).toBeLessThan(2000)
    expect(await countRows(env)).toBe(before)
    // And the server is fine.
    expect((await request(server.port, '/blogs/')).status).toBe(200)
  })

  it('over the limit on the post form (300 MB announced): its text fields read, not its file; the form back at once with 413, the connection closed, nothing stored', async () => {
    const before = await countRows(env)
    const field = (name: string, value: string) => `--x\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
    const fields = field('_csrf', author.csrf) + field('title', 'Kept <title>') + field('content', 'Kept content')
    const { text, ms } = await headOnly(300 * 1024 * 1024, `${fields}--x\r\nContent-Disposition: form-data; name="image_file"; filename="huge.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG`)
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(text).toMatch(/\r\nconnection: close\r\n/i)
    expect(text).toContain('value="Kept &lt;title&gt;"')
    expect(text).toContain('>Kept content</textarea>')
    expect(text).toContain('The image is too large: the limit is 5.0 MiB.')
    expect(ms).toBeLessThan(2000)
    expect(await countRows(env)).toBe(before)
    expect((await request(server.port, '/blogs/')).status).toBe(200)
  })

  it('within the limit, the body is read: a malformed form is a 400, not a 413 (the check above can fail)', async () => {
    const body = '--x\r\n'
    const res = await headOnly(Buffer.byteLength(body), body)
    expect(res.text).toMatch(/^HTTP\/1\.1 400 /)
  })
})
