import type { FastifyReply } from 'fastify'
import { clientGone, deadlinePassed } from '../errors'

/** How long a request's work may take, and what stops it early. */
export interface WorkLimit {
  /** Epoch ms by which the work must be done. */
  deadline: number
  /** Aborts, with the error to answer as its reason, when the deadline passes or the client goes. */
  signal: AbortSignal
}

/**
 * The work limit of a request: done within `timeoutMs` (REQUEST_TIMEOUT_MS) of its start, and
 * only while its client is still there. Node's requestTimeout stops only a body that arrives
 * too slowly; after the body, a request could queue until the socket's idle timeout reset it,
 * and its work went on to write a row no one was told about. (Fastify's request.signal aborts
 * when the body has been read, so the response's close is watched instead.)
 */
export function requestWorkLimit(reply: FastifyReply, timeoutMs: number): WorkLimit {
  const deadline = Date.now() - reply.elapsedTime + timeoutMs
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(deadlinePassed()), Math.max(0, deadline - Date.now()))
  timer.unref()
  const res = reply.raw
  const done = () => {
    clearTimeout(timer)
    if (!res.writableFinished && !controller.signal.aborted) controller.abort(clientGone())
  }
  res.once('close', done)
  res.once('finish', () => clearTimeout(timer))
  return { deadline, signal: controller.signal }
}
