import path from 'node:path'
import type { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { AppError, mibText } from '../errors'
import { NOT_AN_IMAGE } from '../images/processor'
import { bodyDeclaredTooLarge } from '../plugins/request-guard'
import { ALLOWED_CLIENT_EXTENSIONS, sniffImageType } from '../storage/sniff'
import { CSRF_FIELD } from '../validation/forms'
import { shownBack, textProblem, textSchema } from '../validation/text'
import { FIELD_RULES, FORM_FIELD_NAMES, FORM_RULES, IMAGE_FIELD, type FormFieldName } from './fields'

export const PostFormSchema = Type.Object({ title: textSchema(FIELD_RULES.title), content: textSchema(FIELD_RULES.content) })
export type PostInput = Static<typeof PostFormSchema>

export type FieldErrors = Partial<Record<FormFieldName | typeof IMAGE_FIELD, string>>

/** The file part as received: bytes only, nothing decoded or written yet. */
export interface Upload {
  data: Buffer
  /** The extension of the client's filename, lower case ('' for none): checked, never used for storage. */
  extension: string
}

/** The post form as sent: what parsing the body found, before anything is checked. */
export interface PostForm {
  /** The first value sent for each field ('' when none). */
  values: Record<FormFieldName, string>
  /** What parsing already found wrong (a field sent twice or cut at its size limit, a stray file). */
  problems: FieldErrors
  upload: Upload | null
  /** The file was over MAX_UPLOAD_BYTES: not read (or read only to its limit), the rest of the form kept. */
  tooLarge: boolean
  /** The CSRF field as sent ('' when it was not text or was sent twice). */
  csrf: string | undefined
}

/** A form to show again: what the user typed, what is wrong with it, and the status to answer. */
export interface FormPage {
  values: Record<FormFieldName, string>
  errors: FieldErrors
  /** 413 for a file over MAX_UPLOAD_BYTES, 415 for a non-image upload, 422 for an image refused by its size or cost, 400 otherwise. */
  status: 400 | 413 | 415 | 422
}

/** An image under a name no browser or viewer would open as one (evil.exe). */
export const WRONG_EXTENSION = 'The file name must end in .png, .jpg, .jpeg, .gif or .webp.'

/** The whole file part (the multipart limit, MAX_UPLOAD_BYTES, bounds it: past it the stream is cut and marked truncated). */
async function readAll(source: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of source) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * Reads the post form from a multipart (or urlencoded, or JSON) body: text fields and the file's
 * bytes, nothing decoded or written (the posts service checks the form, then processes the
 * image). Never throws for what the user typed; a malformed body is a 400 AppError. A file over
 * MAX_UPLOAD_BYTES ends the reading there (a body declared too large, before a byte of the file
 * is read): the fields before it are kept and the form comes back with a 413.
 */
export async function readPostForm(request: FastifyRequest): Promise<PostForm> {
  const raw = new Map<string, string>()
  const problems: FieldErrors = {}
  let upload: Upload | null = null
  let tooLarge = false
  let csrf: string | undefined

  const setField = (name: string, value: unknown) => {
    if (name === CSRF_FIELD) {
      csrf = typeof value === 'string' && csrf === undefined ? value : ''
      return
    }
    if (!(FORM_FIELD_NAMES as string[]).includes(name)) return
    if (raw.has(name) || Array.isArray(value)) problems[name as FormFieldName] = 'Send this field only once.'
    // A JSON body can carry numbers, objects, null: only text is a field value.
    else if (typeof value !== 'string') problems[name as FormFieldName] = `${FORM_RULES[name as FormFieldName].label} must be text.`
    const first: unknown = Array.isArray(value) ? value[0] : value
    raw.set(name, typeof first === 'string' ? first : '')
  }

  if (request.isMultipart()) {
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.valueTruncated) problems[part.fieldname as FormFieldName] = 'This field is too long.'
          setField(part.fieldname, part.value)
          continue
        }
        if (part.fieldname !== IMAGE_FIELD || upload) {
          part.file.resume()
          problems.image_file = 'Send one image, in the image_file field.'
          continue
        }
        // Over the limit: what came before the file (the text fields) is all this form will get.
        if (bodyDeclaredTooLarge(request)) tooLarge = true
        else {
          const data = await readAll(part.file)
          if (part.file.truncated) tooLarge = true
          // Browsers send an empty part when no file was chosen: that means "no image".
          else if (data.length > 0) upload = { data, extension: path.extname(part.filename ?? '').toLowerCase() }
        }
        if (tooLarge) {
          problems.image_file = `The image is too large: the limit is ${mibText(request.server.appConfig.maxUploadBytes)}. Choose a smaller one, or none, and send the form again.`
          break
        }
      }
    } catch (err) {
      const e = err as { statusCode?: number }
      if (typeof e.statusCode === 'number' && e.statusCode < 500) throw err
      // busboy's "Unexpected end of form", malformed part headers and the like.
      throw new AppError(400, 'BAD_MULTIPART', 'The form data was malformed or cut short.', { cause: err })
    }
  } else if (request.body && typeof request.body === 'object') {
    for (const [name, value] of Object.entries(request.body)) setField(name, value)
  }

  const values = Object.fromEntries(FORM_FIELD_NAMES.map((f) => [f, raw.get(f) ?? ''])) as Record<FormFieldName, string>
  return { values, problems, upload, tooLarge, csrf }
}

/**
 * Checks the fields by their rules, and the upload as far as that costs nothing: its filename's
 * extension and its signature (12 bytes). Returns the form to show again, or null when it is
 * fine. The image itself is decoded only after this passes (ImageProcessor).
 */
export function checkPostForm(form: PostForm): FormPage | null {
  const errors: FieldErrors = { ...form.problems }
  for (const name of FORM_FIELD_NAMES) {
    const problem = errors[name] ?? textProblem(FORM_RULES[name], form.values[name])
    if (problem) errors[name] = problem
  }
  let status: FormPage['status'] = form.tooLarge ? 413 : 400
  const upload = form.upload
  const refused = !upload ? undefined
    : !sniffImageType(upload.data.subarray(0, 12)) ? NOT_AN_IMAGE
    : upload.extension !== '' && !ALLOWED_CLIENT_EXTENSIONS.has(upload.extension) ? WRONG_EXTENSION
    : undefined
  if (refused) {
    errors.image_file = refused
    status = 415
  }
  return Object.keys(errors).length > 0 ? rejectedForm(form, errors, status) : null
}

/** The form shown again with these errors: control characters (refused) are shown as U+FFFD. */
export function rejectedForm(form: PostForm, errors: FieldErrors, status: FormPage['status']): FormPage {
  const values = Object.fromEntries(FORM_FIELD_NAMES.map((f) => [f, shownBack(form.values[f])])) as Record<FormFieldName, string>
  return { values, errors, status }
}
