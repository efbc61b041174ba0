import path from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { AppError } from '../errors'
import { ImageRejected, type ImageProcessor } from '../images/processor'
import { ALLOWED_CLIENT_EXTENSIONS } from '../storage/sniff'
import type { ImageStorage, StagedImage } from '../storage/storage'
import { characterProblem, CONTROL_CHARS, CSRF_FIELD, FIELD_NAMES, FIELD_RULES, IMAGE_FIELD, INLINE_FIELDS, NOT_BLANK, type FieldName } from './fields'

const field = (name: FieldName) => {
  const { label, minLength, maxLength } = FIELD_RULES[name]
  return Type.String({ title: label, minLength, maxLength, pattern: NOT_BLANK })
}

export const PostFormSchema = Type.Object({ title: field('title'), content: field('content') })
export type PostInput = Static<typeof PostFormSchema>

export type FieldErrors = Partial<Record<FieldName | typeof IMAGE_FIELD, string>>

/** An accepted upload, re-encoded and staged, with its thumbnail (null: the image is small already). */
export interface StagedUpload {
  image: StagedImage
  thumb: StagedImage | null
}

export interface ParsedForm {
  /** What the user typed, kept to re-render the form. */
  values: Record<FieldName, string>
  errors: FieldErrors
  /** The staged upload, if one was sent and is an image; the posts service promotes or discards it. */
  image: StagedUpload | null
  /** Status for a rejected form: 415 for a non-image upload, 422 for too many pixels, 400 otherwise. */
  status: 400 | 415 | 422
  /** The CSRF field as sent (the route checks it against the session). */
  csrf: string | undefined
}

function fieldMessage(name: FieldName, value: string | undefined): string | undefined {
  const rule = FIELD_RULES[name]
  if (value === undefined || value.length === 0) return `${rule.label} is required.`
  const chars = characterProblem(rule.label, value, INLINE_FIELDS.has(name))
  if (chars) return chars
  if (Value.Check(PostFormSchema.properties[name], value)) return undefined
  if (!new RegExp(NOT_BLANK).test(value)) return `${rule.label} cannot be only spaces.`
  return `${rule.label} must be between ${rule.minLength} and ${rule.maxLength} characters.`
}

export function hasErrors(form: ParsedForm): boolean {
  return Object.keys(form.errors).length > 0
}

/** Discards what an upload staged (a rejected form, a failed request). */
export async function discardUpload(store: ImageStorage, upload: StagedUpload): Promise<void> {
  await store.discard(upload.image)
  if (upload.thumb) await store.discard(upload.thumb)
}

/** The whole file part (the multipart limit, MAX_UPLOAD_BYTES, bounds it: over it the stream fails with 413). */
async function readAll(source: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of source) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * Reads the post form from a multipart (or urlencoded) body. The image part is read into memory,
 * decoded and re-encoded (see ImageProcessor), and only the result and its thumbnail are written
 * to the store's staging area. Never throws for what the user typed: field problems are in
 * `errors`; a malformed body is a 400 AppError.
 */
export async function readPostForm(request: FastifyRequest, store: ImageStorage, processor: ImageProcessor): Promise<ParsedForm> {
  const raw = new Map<string, string>()
  const errors: FieldErrors = {}
  let image: StagedUpload | null = null
  let sawImage = false
  let status: 400 | 415 | 422 = 400
  let csrf: string | undefined

  const setField = (name: string, value: unknown) => {
    if (name === CSRF_FIELD) {
      csrf = typeof value === 'string' && csrf === undefined ? value : ''
      return
    }
    if (!(FIELD_NAMES as string[]).includes(name)) return
    if (raw.has(name) || Array.isArray(value)) errors[name as FieldName] = 'Send this field only once.'
    // A JSON body can carry numbers, objects, null: only text is a field value.
    else if (typeof value !== 'string') errors[name as FieldName] = `${FIELD_RULES[name as FieldName].label} must be text.`
    const first: unknown = Array.isArray(value) ? value[0] : value
    raw.set(name, typeof first === 'string' ? first : '')
  }

  if (request.isMultipart()) {
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.valueTruncated) errors[part.fieldname as FieldName] = 'This field is too long.'
          setField(part.fieldname, part.value)
          continue
        }
        if (part.fieldname !== IMAGE_FIELD || sawImage) {
          part.file.resume()
          errors.image_file = 'Send one image, in the image_file field.'
          continue
        }
        const ext = path.extname(part.filename ?? '').toLowerCase()
        const data = await readAll(part.file)
        // Browsers send an empty part when no file was chosen: that means "no image".
        if (data.length === 0) continue
        sawImage = true
        if (ext !== '' && !ALLOWED_CLIENT_EXTENSIONS.has(ext)) {
          errors.image_file = 'The image must be a PNG, JPEG, GIF or WebP file.'
          status = 415
          continue
        }
        try {
          const processed = await processor.process(data)
          const staged = await store.save(Readable.from([processed.data]))
          image = { image: staged, thumb: null }
          if (processed.thumb) image.thumb = await store.save(Readable.from([processed.thumb.data]))
        } catch (err) {
          if (!(err instanceof ImageRejected)) throw err
          errors.image_file = err.message
          status = err.statusCode
        }
      }
    } catch (err) {
      if (image) await discardUpload(store, image)
      const e = err as { statusCode?: number; syscall?: string }
      // Already classified (e.g. the image store is unavailable: 503).
      if (err instanceof AppError) throw err
      if (typeof e.statusCode === 'number' && e.statusCode < 500) throw err
      // The store could not write (read-only or full disk): not the client's fault.
      if (typeof e.syscall === 'string') throw err
      // busboy's "Unexpected end of form", malformed part headers and the like.
      throw new AppError(400, 'BAD_MULTIPART', 'The form data was malformed or cut short.', { cause: err })
    }
  } else if (request.body && typeof request.body === 'object') {
    for (const [name, value] of Object.entries(request.body)) setField(name, value)
  }

  for (const name of FIELD_NAMES) {
    const message = errors[name] ?? fieldMessage(name, raw.get(name))
    if (message) errors[name] = message
  }
  // Re-rendered into the form: control characters (rejected above) are shown as U+FFFD.
  const values = Object.fromEntries(FIELD_NAMES.map((f) => [f, (raw.get(f) ?? '').replace(new RegExp(CONTROL_CHARS, 'g'), '\uFFFD')])) as Record<FieldName, string>
  return { values, errors, image, status, csrf }
}
