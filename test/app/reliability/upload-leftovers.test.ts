import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { LocalImageStorage } from '../../../src/storage/local'
import { signUp } from '../../kit/accounts'
import { incomingFiles, storedFiles, useDisposableApps } from '../../kit/app'
import { assertBuilt, killAllServers, startListening, waitForExit } from '../../kit/server'
import { PNG_1x1 } from '../../fixtures/images'

// Partial uploads must not outlive the process that was writing them: a shutdown cut short by
// slow uploads used to leave them in .incoming, and a restart kept them for the sweep's hour.

const apps = useDisposableApps()
afterEach(() => killAllServers())

/** Starts a multipart upload on a raw socket and keeps it open, sending a byte now and then. */
async function slowUpload(port: number): Promise<{ socket: net.Socket; stop(): void }> {
  const b = 'leftoverboundary'
  // Signed in: an anonymous upload is refused before its body is read.
  const author = await signUp(port)
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  socket.write(
    `POST /blogs/new HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${author.cookie}\r\nContent-Type: multipart/form-data; boundary=${b}\r\nContent-Length: 1000000\r\n\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${author.csrf}\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="title"\r\n\r\nSlow\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="image_file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`
  )
  socket.write(PNG_1x1.subarray(0, 32))
  const timer = setInterval(() => socket.write('x'), 200)
  return { socket, stop: () => (clearInterval(timer), socket.destroy()) }
}

describe('partial uploads and restarts', () => {
  it('empties .incoming at start-up whatever the age of its files, and keeps stored images', async () => {
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false' })
    const incoming = path.join(env.uploadDir, '.incoming')
    await fs.mkdir(incoming, { recursive: true })
    await fs.writeFile(path.join(incoming, 'left-by-a-killed-process'), 'partial')
    // A stored image no row references yet is the sweep's business (after its grace period).
    const orphan = '0f0e0d0c-0b0a-4908-8706-050403020100.png'
    await fs.writeFile(path.join(env.uploadDir, orphan), PNG_1x1)
    await apps.newApp(env)
    expect(await incomingFiles(env.uploadDir)).toEqual([])
    expect(await storedFiles(env.uploadDir)).toEqual([orphan])
  })

  it('leaves no temp file of an upload still in flight when SIGTERM ends the process', async () => {
    assertBuilt()
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false', SHUTDOWN_GRACE_MS: '1000', LOG_LEVEL: 'info' })
    const server = await startListening(env.env)
    const upload = await slowUpload(server.port)
    try {
      // An upload is read into memory (at most MAX_UPLOAD_BYTES) to be decoded: only the
      // re-encoded image ever reaches the incoming area, so an upload in flight has no file.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(await incomingFiles(env.uploadDir)).toEqual([])
      server.proc.kill('SIGTERM')
      // The upload holds the drain open until the grace timer exits the process.
      const exit = await waitForExit(server, 10_000)
      expect(exit.code).toBe(1)
      expect(server.stdout()).toMatch(/killed by timeout/)
    } finally {
      upload.stop()
    }
    expect(await incomingFiles(env.uploadDir)).toEqual([])
  })

  it('removes staged files not yet promoted when the store is shut down (what the exit handler runs)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-staged-'))
    try {
      const store = new LocalImageStorage(dir)
      await store.init()
      await store.save(Readable.from([PNG_1x1]))
      expect(await incomingFiles(dir)).toHaveLength(1)
      store.removeStaged()
      expect(await incomingFiles(dir)).toEqual([])
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  it('cuts a slow-body upload at REQUEST_TIMEOUT_MS (within a second) with 408, leaving no temp file', async () => {
    assertBuilt()
    const env = await apps.newEnv({ DB_SEED_ON_START: 'false', REQUEST_TIMEOUT_MS: '2000' })
    const server = await startListening(env.env)
    const upload = await slowUpload(server.port)
    const started = Date.now()
    const answer = await new Promise<string>((resolve) => {
      let text = ''
      upload.socket.setEncoding('latin1').on('data', (d: string) => (text += d))
      upload.socket.on('close', () => resolve(text))
    })
    const elapsed = Date.now() - started
    upload.stop()
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
    // The app's answer (src/plugins/client-errors.ts): its headers, and the request's time so far.
    expect(answer).toMatch(/\r\ncontent-security-policy: default-src 'self'/i)
    expect(Number(/\r\nx-process-time: ([\d.]+)ms/i.exec(answer)?.[1])).toBeGreaterThanOrEqual(1900)
    // Node checks its connections every second (src/server.ts); it used to be every 30 s.
    expect(elapsed).toBeGreaterThanOrEqual(2000)
    expect(elapsed).toBeLessThan(4000)
    await expect.poll(() => incomingFiles(env.uploadDir), { timeout: 2000 }).toEqual([])
  })
})
