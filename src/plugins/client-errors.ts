import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { ms2, now } from '../telemetry/clock'
import { kRequestStart } from '../telemetry/timing'
import { securityHeaders } from './security'

type StartedMessage = IncomingMessage & { [kRequestStart]?: number }

// Node's own mapping (its default clientError answers), with the app's messages.
const ANSWERS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'HEADERS_TOO_LARGE', message: 'The request’s headers are too large.' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, code: 'BODY_TOO_LARGE', message: 'The request’s chunk extensions are too large.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request did not arrive in time.' }
}
const BAD_REQUEST = { status: 400, code: 'BAD_REQUEST', message: 'The request could not be understood.' }

let fixedHeaders: string | undefined
/** The security headers as the app sends them (./security.ts), as raw header lines. */
const headerLines = () => (fixedHeaders ??= Object.entries(securityHeaders()).map(([name, value]) => `${name}: ${value}\r\n`).join(''))

/**
 * Answers what Node's HTTP parser refuses before Fastify sees a request (a malformed request
 * line, Transfer-Encoding with Content-Length, two Content-Lengths, 16 KiB of headers) and a
 * request cut by REQUEST_TIMEOUT_MS. Fastify's default wrote bare JSON without the security
 * headers or X-Process-Time and logged at trace level; this answer carries both, closes the
 * connection, and logs one line with Node's error code (never the request's bytes).
 * A server option (Fastify's clientErrorHandler): server.ts and the test kit pass it to Fastify().
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  const handled = now()
  // A reset connection cannot be answered (Node: https://nodejs.org/api/http.html#event-clienterror).
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  // The request being answered on this socket, if the parser had got that far (a 408 mid-body).
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null
  const req = res?.req as StartedMessage | undefined
  if (!socket.writable || res?.headersSent) {
    // Half a response is out already: another one would corrupt it.
    socket.destroy()
    return
  }
  const answer = ANSWERS[err.code ?? ''] ?? BAD_REQUEST
  const started = req?.[kRequestStart] ?? handled
  const processTime = ms2(now() - started)
  const body = JSON.stringify({ message: answer.message, code: answer.code })
  socket.write(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n` +
      headerLines() +
      `X-Process-Time: ${processTime}ms\r\nDate: ${new Date().toUTCString()}\r\nConnection: close\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
  socket.destroy()
  // Node's code and reason name the fault; err.rawPacket (the client's bytes) is left out.
  this.log.info(
    {
      ...(req ? { req: { method: req.method, url: req.url } } : {}),
      res: { statusCode: answer.status },
      code: err.code,
      ...(err.reason ? { reason: err.reason } : {}),
      responseTime: Number(processTime)
    },
    'request refused by the HTTP parser'
  )
}
