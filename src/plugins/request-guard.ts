import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { Transform, type Writable } from 'node:stream'
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, uploadTooLargeMessage } from '../errors'

const kBadUrl = Symbol('blog.badUrl')
type MarkedMessage = IncomingMessage & { [kBadUrl]?: true }

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A form with a file after its text fields: a body declared larger than any post is read up
     * to the file (the form is shown again with the text kept, 413) instead of refused unread.
     */
    uploadForm?: boolean
  }
}

const declaredTooLarge = new WeakSet<FastifyRequest>()

/** True when the request declared a body over the limit and its route reads the fields anyway (uploadForm). */
export const bodyDeclaredTooLarge = (request: FastifyRequest): boolean => declaredTooLarge.has(request)

/**
 * Fastify's own answer to a path it cannot decode (`/%ff`) is a bare JSON 400 that skips every
 * hook: no security headers, timings, span or log line. Instead the request is routed again
 * with its `%` signs escaped (so it decodes, and the log shows what was sent) and marked; the
 * guard below then turns it into the app's 400 with everything a response carries.
 * A server option: server.ts and the test kit both pass it to Fastify().
 */
export const serverOptions: Pick<FastifyServerOptions, 'frameworkErrors'> = {
  frameworkErrors(err: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply) {
    const raw = request.raw as MarkedMessage
    if (err.code !== 'FST_ERR_BAD_URL' || raw[kBadUrl]) {
      // Not reachable with this app's routes (no async constraints); answer plainly, never loop.
      reply.code(400).send({ message: 'The request could not be understood.', code: 'BAD_REQUEST' })
      return
    }
    raw[kBadUrl] = true
    const url = raw.url ?? '/'
    const q = url.indexOf('?')
    const pathPart = q === -1 ? url : url.slice(0, q)
    raw.url = pathPart.replaceAll('%', '%25') + (q === -1 ? '' : url.slice(q))
    request.server.routing(raw, reply.raw)
  }
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
// A browser says where a request comes from; "none" is the user's own navigation (address bar,
// bookmark). Same-site is still another origin (a sibling subdomain), so it is refused too.
const TRUSTED_FETCH_SITES = new Set(['same-origin', 'none'])

export interface RequestGuardOptions {
  /** Host names (lower case, no port) the app answers for; null: any. */
  allowedHosts: ReadonlySet<string> | null
  /** The image limit: a declared Content-Length above it plus room for the fields is refused unread. */
  maxUploadBytes: number
}

/**
 * A chunked body declares no length to refuse up front, and busboy reads on past a part's limit
 * (looking for the next boundary), so 1.5 GB sent as one unterminated part was read to the end.
 * @fastify/multipart pipes request.raw into busboy itself: count on that pipe and fail busboy at
 * the cap, which ends the form read with a 413 (and the connection, its body unread). No public
 * hook sees those bytes (multipart ignores a preParsing hook's stream); test/app/internals-canary
 * fails if multipart stops reading through raw.pipe.
 */
function capBody(raw: IncomingMessage, maxBytes: number, tooLarge: () => Error): void {
  const pipe = raw.pipe.bind(raw)
  raw.pipe = function <T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    let seen = 0
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        // The chunk that crosses the cap still goes through (a form's fields, read before its
        // file, may arrive in it); the next one fails: at most one chunk past the cap is read.
        const past = seen > maxBytes
        seen += chunk.length
        done(past ? tooLarge() : null, chunk)
      }
    })
    counter.once('error', (err) => (dest as unknown as Writable).destroy(err))
    pipe(counter)
    return counter.pipe(dest, opts)
  }
}

/** How long an answered request's connection stays open for the client to read the answer, and how much more of its body is read (and dropped) meanwhile. */
const LINGER_MS = 1000
export const LINGER_BYTES = 4 * 1024 * 1024

/**
 * A connection closed with bytes of the client's still unread is reset (RST), and a client whose
 * next write fails on that reset may drop the answer it had not read yet: a 413 or a form shown
 * again turned into "connection reset" (5 of 60 endless uploads got no answer). As nginx's
 * lingering close does, the answer goes out with a FIN and the connection stays open for
 * LINGER_MS: what the client still sends is read and dropped up to LINGER_BYTES, then no longer
 * read, so a client that keeps sending blocks on a full window (and reads the answer) instead of
 * being reset. It closes earlier when the client does.
 */
function lingerBeforeClose(raw: IncomingMessage): void {
  const socket = raw.socket as Socket & { destroySoon?: () => void }
  if (typeof socket.destroySoon !== 'function') return
  // Node's server calls destroySoon once the answer is written (Connection: close): end, then destroy.
  socket.destroySoon = function (this: Socket) {
    let left = LINGER_BYTES
    const close = () => {
      clearTimeout(timer)
      this.destroy()
    }
    const timer = setTimeout(close, LINGER_MS).unref()
    this.once('close', () => clearTimeout(timer))
    this.once('end', close)
    // The body's reader (a form refused part-way) is gone: drop the rest as it arrives.
    raw.unpipe()
    raw.on('data', (chunk: Buffer) => {
      if ((left -= chunk.length) <= 0) raw.pause()
    })
    raw.once('end', close)
    raw.resume()
    this.end()
  }
}

/** The Host header's name without its port (IPv6 keeps its brackets). */
function hostName(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':')
  return (end > 0 ? host.slice(0, end) : host).toLowerCase()
}

/** True when the request's Origin names another origin than the Host it was sent to. */
function foreignOrigin(origin: string, host: string): boolean {
  if (origin === 'null') return true
  try {
    const from = new URL(origin)
    // Parsed with the Origin's scheme so a default port (:80, :443) compares equal to none.
    // The scheme itself is not compared: behind a TLS proxy the app sees plain HTTP.
    return from.host !== new URL(`${from.protocol}//${host}`).host
  } catch {
    return true
  }
}

/**
 * Refuses, before any route runs, what the app must not answer: a URL it could not decode
 * (400), a Host it does not serve (421), a body declared larger than any post (413) and a write
 * sent from another site (403). Registered
 * after the security headers, so the refusals carry them like any other error page.
 */
export default fp<RequestGuardOptions>(
  async (fastify, { allowedHosts, maxUploadBytes }) => {
    // The image plus the form's fields (10 of up to 64 KiB) and the multipart framing around them.
    const maxBodyBytes = maxUploadBytes + 1024 * 1024
    const tooLarge = uploadTooLargeMessage(maxUploadBytes)
    // Callback style: this runs on every request.
    fastify.addHook('onRequest', (request, reply, done) => {
      if ((request.raw as MarkedMessage)[kBadUrl]) {
        return done(new AppError(400, 'BAD_URL', 'The address is not valid (it has a broken %-escape).'))
      }
      const host = request.headers.host ?? ''
      if (allowedHosts && !allowedHosts.has(hostName(host))) {
        // 421 Misdirected Request (RFC 9110 15.5.20): this server is not the one for that name.
        // The request is well-formed, so not 400; a client may retry with the right name.
        return done(new AppError(421, 'MISDIRECTED', 'This server does not answer for that host name.', { reason: `host ${JSON.stringify(host.slice(0, 100))}` }))
      }
      // Refused on the declared length, before a byte of it is read (and the connection is not
      // kept: reading the rest only to find the next request is the waste this avoids). A post
      // form reads its text fields first, then stops at the file: the text is not lost.
      const length = Number(request.headers['content-length'] ?? 0)
      if (length > maxBodyBytes) {
        reply.header('Connection', 'close')
        if (!request.routeOptions.config?.uploadForm) return done(new AppError(413, 'BODY_TOO_LARGE', tooLarge, { reason: `content-length ${length}` }))
        declaredTooLarge.add(request)
        capBody(request.raw, maxBodyBytes, () => new AppError(413, 'BODY_TOO_LARGE', tooLarge, { reason: `content-length ${length}, read past ${maxBodyBytes} bytes` }))
      }
      if (request.headers['transfer-encoding'] !== undefined && request.headers['content-length'] === undefined) {
        capBody(request.raw, maxBodyBytes, () => new AppError(413, 'BODY_TOO_LARGE', tooLarge, { reason: `chunked body past ${maxBodyBytes} bytes` }))
      }
      if (UNSAFE_METHODS.has(request.method)) {
        const site = request.headers['sec-fetch-site']
        const origin = request.headers.origin
        // Clients that send neither (curl, k6, tests) are not browsers: a cross-site form
        // cannot strip both, so their absence is not a risk.
        if ((site !== undefined && !TRUSTED_FETCH_SITES.has(site)) || (origin !== undefined && foreignOrigin(origin, host))) {
          return done(new AppError(403, 'CROSS_SITE', 'Changes can only be sent from this site’s own pages.', { reason: `origin ${JSON.stringify((origin ?? '').slice(0, 100))}, sec-fetch-site ${site ?? '-'}` }))
        }
      }
      done()
    })

    // Callback style: this runs on every response.
    fastify.addHook('onSend', (request, reply, payload, done) => {
      if (!request.raw.complete && /close/i.test(String(reply.getHeader('connection') ?? ''))) lingerBeforeClose(request.raw)
      done(null, payload)
    })
  },
  { name: 'request-guard', dependencies: ['errors', 'security'] }
)
