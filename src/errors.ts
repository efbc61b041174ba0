import { BaseError, ConnectionError, DatabaseError } from 'sequelize'
import { FORM_LIMITS } from './validation/forms'

/**
 * The one error type the app answers with: an HTTP status, a stable code for JSON clients and a
 * message safe to show. `expected` marks failures the app chose (shedding, a database known to
 * be down): logged as one warning line, no stack. `reason` is for the log only.
 */
export class AppError extends Error {
  override name = 'AppError'
  readonly expected: boolean
  readonly reason: string | undefined

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    opts: { cause?: unknown; expected?: boolean; reason?: string } = {}
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.expected = opts.expected ?? false
    this.reason = opts.reason
  }
}

export const notFound = (message = 'There is no such page.') => new AppError(404, 'NOT_FOUND', message)

/** A byte limit as messages give it: "5.0 MiB". */
export const mibText = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`

/** What a user is told for any upload over the limit, however it was found out. */
export const uploadTooLargeMessage = (maxUploadBytes: number) => `The upload is too large (the limit is ${mibText(maxUploadBytes)}).`

/** A COMMIT sent but never answered: the server may have applied it. */
export const outcomeUnknown = (cause: unknown) =>
  new AppError(503, 'OUTCOME_UNKNOWN', 'The database stopped answering while your change was being saved, so it may have been saved. Check before sending it again.', { cause })

/** The line of uploads waiting to be decoded is full (IMAGE_QUEUE_LENGTH): try again soon. */
export const imagesBusy = (waiting: number) =>
  new AppError(503, 'IMAGES_BUSY', 'The server is busy with other images right now. Please try again in a few seconds.', { expected: true, reason: `image queue full (${waiting} waiting)` })

/** A write not done within REQUEST_TIMEOUT_MS of the request's start: nothing was written. */
export const deadlinePassed = () =>
  new AppError(503, 'DEADLINE_PASSED', 'The server could not finish your request in time, so nothing was saved. Please try again in a moment.', { expected: true, reason: 'request deadline passed' })

/** The client closed the connection before its write was done: nothing was written (no one reads this answer). */
export const clientGone = () =>
  new AppError(499, 'CLIENT_CLOSED', 'The connection was closed before the request was done; nothing was saved.', { expected: true, reason: 'client closed the connection' })

export const DB_DOWN_MESSAGE = 'The database is not answering right now. Please try again in a few seconds.'
const INTERNAL_MESSAGE = 'Something went wrong on our side.'

// mysql2 codes that mean "the database went away", not "your query was wrong".
const UNAVAILABLE_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
  'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_LOCK_WAIT_TIMEOUT', 'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED', 'ER_LOCK_DEADLOCK'
])

// File-system failures of the upload store (read-only or full disk, a missing or replaced
// directory): the server's fault, not the form's.
const STORAGE_CODES = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'ENOENT', 'EISDIR', 'EXDEV', 'EIO', 'EMFILE', 'ENFILE'])

const CLIENT_MESSAGES: Record<number, string> = {
  415: 'That kind of content is not accepted here.'
}

export interface Limits {
  maxUploadBytes: number
  /** Fastify's bodyLimit: the largest body without a file (urlencoded, JSON). */
  bodyLimit?: number
}

/** Which limit a 413 hit, in words: "too large (5 MiB)" for a form of 300 empty parts misleads. */
function tooLargeMessage(code: string | undefined, limits: Limits): string {
  switch (code) {
    case 'FST_PARTS_LIMIT': return `The form has too many parts (at most ${FORM_LIMITS.parts}).`
    case 'FST_FIELDS_LIMIT': return `The form has too many fields (at most ${FORM_LIMITS.fields}).`
    case 'FST_FILES_LIMIT': return `Send at most ${FORM_LIMITS.files} image.`
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return `The form is too large (at most ${((limits.bodyLimit ?? 1048576) / 1024).toFixed(0)} KiB without an image).`
    default: return uploadTooLargeMessage(limits.maxUploadBytes)
  }
}

/** Maps anything thrown to what the client sees; internals never leak into the message. */
export function toAppError(err: unknown, limits: Limits): AppError {
  if (err instanceof AppError) return err
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown; validationContext?: string; parent?: { code?: string; fatal?: boolean }; syscall?: string }
  // A path parameter that fails its schema names no page.
  if (e.validation && e.validationContext === 'params') return new AppError(404, 'NOT_FOUND', 'There is no such page.', { cause: err })
  if (err instanceof ConnectionError || (err instanceof DatabaseError && (e.parent?.fatal || UNAVAILABLE_CODES.has(e.parent?.code ?? '')))) {
    return new AppError(503, 'DB_UNAVAILABLE', DB_DOWN_MESSAGE, { cause: err })
  }
  if (typeof e.syscall === 'string' && STORAGE_CODES.has(e.code ?? '')) {
    return new AppError(503, 'STORAGE_UNAVAILABLE', 'Images cannot be stored right now. Please try again later.', { cause: err })
  }
  if (err instanceof BaseError) return new AppError(500, 'INTERNAL', INTERNAL_MESSAGE, { cause: err })
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500
  if (status >= 500 && status !== 503) return new AppError(status, 'INTERNAL', INTERNAL_MESSAGE, { cause: err })
  if (status === 413) return new AppError(413, e.code ?? 'BAD_REQUEST', tooLargeMessage(e.code, limits), { cause: err })
  return new AppError(status, e.code ?? 'BAD_REQUEST', CLIENT_MESSAGES[status] ?? e.message ?? 'The request could not be understood.', { cause: err })
}
