import { BaseError, ConnectionError, DatabaseError } from 'sequelize'

// mysql2 codes that mean "the database went away", not "your query was wrong".
const UNAVAILABLE_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
  'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_LOCK_WAIT_TIMEOUT', 'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED', 'ER_LOCK_DEADLOCK'
])

// File-system failures of the upload store (read-only or full disk, a missing or replaced
// directory): the server's fault, not the form's.
const STORAGE_CODES = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'ENOENT', 'EISDIR', 'EXDEV', 'EIO', 'EMFILE', 'ENFILE'])

export interface ErrorReply {
  status: number
  code: string
  /** Safe to show to the user. */
  message: string
}

/** Maps any thrown error to what the client sees; internals never leak into the message. */
export function classifyError(err: unknown): ErrorReply {
  const e = err as {
    statusCode?: number
    code?: string
    message?: string
    validation?: unknown
    validationContext?: string
    parent?: { code?: string; fatal?: boolean }
    syscall?: string
  }
  if (e.validation && e.validationContext === 'params') {
    return { status: 404, code: 'NOT_FOUND', message: 'There is no such page.' }
  }
  if (err instanceof ConnectionError || (err instanceof DatabaseError && (e.parent?.fatal || UNAVAILABLE_CODES.has(e.parent?.code ?? '')))) {
    return { status: 503, code: 'DB_UNAVAILABLE', message: 'The database is not answering right now. Please try again in a few seconds.' }
  }
  if (typeof e.syscall === 'string' && STORAGE_CODES.has(e.code ?? '')) {
    return { status: 503, code: 'STORAGE_UNAVAILABLE', message: 'Images cannot be stored right now. Please try again later.' }
  }
  if (err instanceof BaseError) {
    return { status: 500, code: 'INTERNAL', message: 'Something went wrong on our side.' }
  }
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500
  if (status >= 500 && status !== 503) return { status, code: 'INTERNAL', message: 'Something went wrong on our side.' }
  const messages: Record<number, string> = {
    413: 'The upload is too large.',
    415: 'That kind of content is not accepted here.'
  }
  return {
    status,
    code: e.code ?? 'BAD_REQUEST',
    message: messages[status] ?? e.message ?? 'The request could not be understood.'
  }
}
