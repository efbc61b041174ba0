import path from 'node:path'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { AppError } from '../errors'
import { ALLOWED_CLIENT_EXTENSIONS } from '../storage/sniff'
import type { ImageStorage, StagedImage } from '../storage/storage'
import { CONTROL_CHARS, FIELD_NAMES, FIELD_RULES, IMAGE_FIELD, NOT_BLANK, type FieldName } from './fields'

const field = (name: FieldName) => {
  const { label, minLength, maxLength } = FIELD_RULES[name]
  return Type.String({ title: label, minLength, maxLength, pattern: NOT_BLANK })
}

export const PostFormSchema = Type.Object({ title: field('title'), author: field('author'), content: field('content') })
export type PostInput = Static<typeof PostFormSchema>

export type FieldErrors = Partial<Record<FieldName | typeof IMAGE_FIELD, string>>

export interface ParsedForm {
  /** What the user typed, kept to re-render the form. */
  values: Record<FieldName, string>
  errors: FieldErrors
  /** The staged upload, if one was sent; the posts service promotes or discards it. */
  image: StagedImage | null
  /** Status for a rejected form: 415 for a non-image upload, 400 otherwise. */
  status: 400 | 415
}

function fieldMessage(name: FieldName, value: string | undefined): string | undefined {
  const rule = FIELD_RULES[name]
  if (value === undefined || value.length === 0) return `${rule.label} is required.`
  if (CONTROL_CHARS.test(value)) return `${rule.label} cannot contain control characters.`
  if (Value.Check(PostFormSchema.properties[name], value)) return undefined
  if (!new RegExp(NOT_BLANK).test(value)) return `${rule.label} cannot be only spaces.`
  return `${rule.label} must be between ${rule.minLength} and ${rule.maxLength} characters.`
}

export function hasErrors(form: ParsedForm): boolean {
  return Object.keys(form.errors).length > 0
}

/**
 * Reads the post form from a multipart (or urlencoded) body. The image part is streamed to the
 * store's staging area as it arrives. Never throws for what the user typed: field problems are
 * in `errors`; a malformed body is a 400 AppError.
 */
export async function readPostForm(request: FastifyRequest, store: ImageStorage): Promise<ParsedForm> {
  const raw = new Map<string, string>()
  const errors: FieldErrors = {}
  let image: StagedImage | null = null
  let status: 400 | 415 = 400

  const setField = (name: string, value: unknown) => {
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
        if (part.fieldname !== IMAGE_FIELD || image) {
          part.file.resume()
          errors.image_file = 'Send one image, in the image_file field.'
          continue
        }
        const ext = path.extname(part.filename ?? '').toLowerCase()
        const staged = await store.save(part.file)
        if (staged.bytes === 0) {
          // Browsers send an empty part when no file was chosen: that means "no image".
          await store.discard(staged)
          continue
        }
        image = staged
        if (!staged.type || (ext !== '' && !ALLOWED_CLIENT_EXTENSIONS.has(ext))) {
          errors.image_file = 'The image must be a PNG, JPEG, GIF or WebP file.'
          status = 415
        }
      }
    } catch (err) {
      if (image) await store.discard(image)
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
  return { values, errors, image, status }
}
