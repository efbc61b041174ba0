import { randomBytes } from 'node:crypto'
import net from 'node:net'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { PNG_1x1 } from '../fixtures/images'
import { defaultAuthor, type Account } from './accounts'
import { request, type HttpResponse } from './server'

// Posting forms as a browser does, to the app in process (inject) or to a child server.

export type UploadFile = { data: Buffer | string; filename: string; type?: string }
export type FormFields = Record<string, string | string[]>

/** A 1x1 PNG as an upload. */
export const pngFile = (filename = 'photo.png'): UploadFile => ({ data: PNG_1x1, filename, type: 'image/png' })

/** Encodes fields (and files) as multipart/form-data the way a browser does. */
export async function multipart(
  fields: Record<string, string | string[]>,
  files: Record<string, UploadFile> = {}
): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const fd = new FormData()
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) fd.append(name, v)
  }
  for (const [name, f] of Object.entries(files)) {
    const data = typeof f.data === 'string' ? Buffer.from(f.data) : f.data
    fd.append(name, new Blob([new Uint8Array(data)], { type: f.type ?? 'application/octet-stream' }), f.filename)
  }
  const res = new Response(fd)
  return {
    payload: Buffer.from(await res.arrayBuffer()),
    headers: { 'content-type': res.headers.get('content-type') ?? '' }
  }
}

export interface PostOptions {
  method?: 'POST' | 'PUT'
  headers?: Record<string, string>
  /**
   * Send as this user: their session cookie, and their CSRF token as the form's first field.
   * Unset: the app's test author (in process only); null: anonymous.
   */
  as?: Pick<Account, 'cookie' | 'csrf'> | null
}

/** Sends a multipart/form-data form to `path` of the app (in process) or of the server at `port`. */
export async function postForm(target: FastifyInstance, path: string, fields: FormFields, files?: Record<string, UploadFile>, opts?: PostOptions): Promise<LightMyRequestResponse>
export async function postForm(target: number, path: string, fields: FormFields, files?: Record<string, UploadFile>, opts?: PostOptions): Promise<HttpResponse>
export async function postForm(target: FastifyInstance | number, path: string, fields: FormFields, files: Record<string, UploadFile> = {}, opts: PostOptions = {}): Promise<LightMyRequestResponse | HttpResponse> {
  const as = opts.as === undefined && typeof target !== 'number' ? await defaultAuthor(target) : opts.as
  const body = await multipart(as ? { _csrf: as.csrf, ...fields } : fields, files)
  const method = opts.method ?? 'POST'
  const headers = { ...(as ? { cookie: as.cookie } : {}), ...opts.headers, ...body.headers }
  if (typeof target === 'number') return request(target, { method, path, headers, body: body.payload })
  return target.inject({ method, url: path, headers, payload: body.payload })
}

/**
 * A multipart body written by hand, for what FormData cannot produce: a file part with
 * `filename=""` (what a browser sends when no file was chosen).
 */
export function rawMultipart(
  parts: ({ name: string; value: string } | { name: string; filename: string; type: string; data: Buffer })[]
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----testboundary${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const p of parts) {
    if ('value' in p) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`))
    } else {
      chunks.push(
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type}\r\n\r\n`),
        p.data,
        Buffer.from('\r\n')
      )
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

/**
 * Streams a chunked multipart body to POST /blogs/new whose last part (an image file or the
 * content field) never ends, `total` bytes of it, as fast as the server takes them; resolves
 * when the connection closes with the answer's head and how much the server had taken by then.
 */
export function endlessPart(port: number, cookie: string, part: 'file' | 'field', total: number): Promise<{ head: string; sent: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const disposition = part === 'file' ? 'name="image_file"; filename="a.png"\r\nContent-Type: image/png' : 'name="content"'
    let sent = 0
    let answer = ''
    let closed = false
    const chunk = (data: Buffer | string) => `${Buffer.byteLength(data).toString(16)}\r\n${data.toString()}\r\n`
    socket.on('error', () => undefined)
    socket.on('connect', () => {
      socket.write(`POST /blogs/new HTTP/1.1\r\nHost: localhost\r\nCookie: ${cookie}\r\nContent-Type: multipart/form-data; boundary=zz\r\nTransfer-Encoding: chunked\r\n\r\n`)
      socket.write(chunk(`--zz\r\nContent-Disposition: form-data; ${disposition}\r\n\r\n`))
      const block = chunk('A'.repeat(64 * 1024))
      const pump = () => {
        while (!closed && sent < total) {
          sent += 64 * 1024
          if (!socket.write(block)) return void socket.once('drain', pump)
        }
      }
      pump()
    })
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
    socket.on('close', () => {
      closed = true
      resolve({ head: answer.slice(0, answer.indexOf('\r\n\r\n')), sent })
    })
    // The old behaviour: everything read and no end in sight.
    setTimeout(() => socket.destroy(), 20_000).unref()
  })
}
