import path from 'node:path'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import type { ImageStore, ReceivedImage } from '../../plugins/image-store'
import { ALLOWED_CLIENT_EXTENSIONS } from '../../plugins/image-store'

const NotBlank = '\\S'
// C0 controls other than tab, CR and LF, and DEL: a NUL is a parse error in HTML, an ESC
// sequence rewrites the terminal of whoever looks at the table.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/** The post form's rules; the limits match the `blog` columns. */
export const FIELD_RULES = {
  title: { title: 'Title', minLength: 2, maxLength: 200 },
  author: { title: 'Author', minLength: 1, maxLength: 100 },
  content: { title: 'Content', minLength: 2, maxLength: 4000 }
} as const

export const BlogFormSchema = Type.Object({
  title: Type.String({ ...FIELD_RULES.title, pattern: NotBlank }),
  author: Type.String({ ...FIELD_RULES.author, pattern: NotBlank }),
  content: Type.String({ ...FIELD_RULES.content, pattern: NotBlank })
})
export type BlogForm = Static<typeof BlogFormSchema>
type FieldName = keyof BlogForm
const FIELDS = Object.keys(BlogFormSchema.properties) as FieldName[]

export type FieldErrors = Partial<Record<FieldName | 'image_file', string>>

export interface ParsedForm {
  /** What the user typed, kept to re-render the form. */
  values: Record<FieldName, string>
  errors: FieldErrors
  image: ReceivedImage | null
  /** Status for a rejected form: 415 for a non-image upload, 400 otherwise. */
  status: 400 | 415
}

export class BadRequestBody extends Error {
  statusCode = 400
  code = 'BAD_MULTIPART'
}

function fieldMessage(name: FieldName, value: string | undefined): string | undefined {
  const rule = FIELD_RULES[name]
  if (value === undefined || value.length === 0) return `${rule.title} is required.`
  if (CONTROL_CHARS.test(value)) return `${rule.title} cannot contain control characters.`
  if (Value.Check(BlogFormSchema.properties[name], value)) return undefined
  if (!new RegExp(NotBlank).test(value)) return `${rule.title} cannot be only spaces.`
  return `${rule.title} must be between ${rule.minLength} and ${rule.maxLength} characters.`
}

/**
 * Reads the post form from a multipart (or urlencoded) body. The image part is streamed to
 * the store's incoming area as it arrives; the caller adopts or discards it.
 */
export async function readBlogForm(request: FastifyRequest, store: ImageStore): Promise<ParsedForm> {
  const raw = new Map<string, string>()
  const errors: FieldErrors = {}
  let image: ReceivedImage | null = null
  let status: 400 | 415 = 400

  const setField = (name: string, value: unknown) => {
    if (!(FIELDS as string[]).includes(name)) return
    if (raw.has(name) || Array.isArray(value)) errors[name as FieldName] = 'Send this field only once.'
    // A JSON body can carry numbers, objects, null: only text is a field value.
    else if (typeof value !== 'string') errors[name as FieldName] = `${FIELD_RULES[name as FieldName].title} must be text.`
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
        if (part.fieldname !== 'image_file' || image) {
          part.file.resume()
          errors.image_file = 'Send one image, in the image_file field.'
          continue
        }
        const ext = path.extname(part.filename ?? '').toLowerCase()
        const received = await store.receive(part.file)
        if (received.bytes === 0) {
          // Browsers send an empty part when no file was chosen: that means "no image".
          await store.discard(received.tempPath)
          continue
        }
        image = received
        if (!received.type || (ext !== '' && !ALLOWED_CLIENT_EXTENSIONS.has(ext))) {
          errors.image_file = 'The image must be a PNG, JPEG, GIF or WebP file.'
          status = 415
        }
      }
    } catch (err) {
      if (image) await store.discard(image.tempPath)
      const e = err as { statusCode?: number; syscall?: string }
      if (typeof e.statusCode === 'number' && e.statusCode < 500) throw err
      // The store could not write (read-only or full disk): not the client's fault.
      if (typeof e.syscall === 'string') throw err
      // busboy's "Unexpected end of form", malformed part headers and the like.
      throw new BadRequestBody('The form data was malformed or cut short.', { cause: err })
    }
  } else if (request.body && typeof request.body === 'object') {
    for (const [name, value] of Object.entries(request.body)) setField(name, value)
  }

  for (const name of FIELDS) {
    const message = errors[name] ?? fieldMessage(name, raw.get(name))
    if (message) errors[name] = message
  }
  // Re-rendered into the form: control characters (rejected above) are shown as U+FFFD.
  const values = Object.fromEntries(FIELDS.map((f) => [f, (raw.get(f) ?? '').replace(new RegExp(CONTROL_CHARS, 'g'), '\uFFFD')])) as Record<FieldName, string>
  return { values, errors, image, status }
}

export function hasErrors(form: ParsedForm): boolean {
  return Object.keys(form.errors).length > 0
}
