import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { FIELD_RULES } from '../../../src/posts/fields'
import { signUp, type Account } from '../../kit/accounts'
import { useTestApp, incomingFiles, storedFiles, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { expectWellFormed, params, RUNS } from '../../kit/hostile'
import { countRows, ejsEscape, GENERATED_NAME, type BlogRow } from '../../kit/posts'
import { rawMultipart } from '../../kit/form'
import { GIF_1x1, JPEG_1x1, PNG_1x1, pngDeclaring, WEBP_1x1 } from '../../fixtures/images'
import { decoded } from '../../kit/images'
import { readStored } from '../../kit/posts'

// Property tests of the post form against hostile input, through the real app (inject) and a
// real database. Invariants, whatever is sent:
// - never a 5xx;
// - the row count changes iff the answer is 303, and then the row holds exactly what was sent;
// - no file is left behind unless a post references it, and a stored file is an image the server
//   encoded (it decodes as the type its name says, with no metadata), never the bytes sent;
// - every page is made only of the templates' own tags: input never becomes markup.
// FAST_CHECK_SEED=<n> replays a failure; numRuns are kept modest for CI time.

let env: TestEnv
let app: FastifyInstance

useTestApp((t) => ({ env, app } = t), { DB_SEED_ON_START: 'false' })

// Everything is sent by one signed-in author, with the session's CSRF token as the first field.
let author: Account
beforeAll(async () => {
  author = await signUp(app)
})
const signedIn = (headers: Record<string, string> = {}) => ({ ...headers, cookie: author.cookie })

// ---- arbitraries ---------------------------------------------------------------------------

const pieces = [
  '<', '>', '&', '"', "'", '`', '\n', '\r', '\r\n', '\t', '\u0000', '\u0007', '\u001b[31m', '\u007f', '\u00a0', '\u2028',
  '\u200b', '\ufeff', '\ud800', '\udfff', 'é', 'e\u0301', '🧪', '👩‍👩‍👧', '\u{10ffff}', 'a', 'Z', '0', ' ', '-', '%', '%00',
  '\\', '$1', '<%= 7*7 %>', '{{7*7}}', '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><svg onload=alert(1)>',
  "' OR '1'='1", "'; DROP TABLE blog; --", '\\x27', '</textarea>', '<!--', ']]>', '&amp;', '&#x3c;'
]

/** Strings a hostile or careless client may send as a field value. */
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((a) => a.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 120 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n', '\t \r\n', '\u3000', 'ok', 'Hi') },
  // Around each field's length limits, in ASCII and in 4-byte characters.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('x', '🧪', 'é'), fc.constantFrom(0, 1, 2, 99, 100, 101, 199, 200, 201, 3999, 4000, 4001)).map(([c, n]) => c.repeat(n)) }
)

/** What the server receives for a string sent as UTF-8 (lone surrogates cannot be encoded). */
const wire = (s: string) => s.toWellFormed()

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/** The form's rules, restated: does this value pass for this field? */
function acceptable(field: keyof typeof FIELD_RULES, value: string): boolean {
  const { minLength, maxLength } = FIELD_RULES[field]
  const length = [...value].length
  // The minimum is counted without the spaces at either end.
  const core = [...value.trim()].length
  const inline = field !== 'content'
  return core >= minLength && length <= maxLength && /\S/.test(value) && !CONTROL.test(value) &&
    !value.includes('\uFFFD') && !(inline && /[\u202A-\u202E\u2066-\u2069]/.test(value))
}

type Fields = { title: string; content: string }

async function newestRow(): Promise<BlogRow | undefined> {
  return (await env.query<BlogRow>('SELECT * FROM `blog` ORDER BY `id` DESC LIMIT 1'))[0]
}

async function fileState() {
  return { stored: await storedFiles(env.uploadDir), incoming: await incomingFiles(env.uploadDir) }
}

/** Checks the stored row and its pages against what was sent. */
async function expectStored(sent: Fields, what: string): Promise<BlogRow> {
  const row = (await newestRow())!
  // Byte for byte what was sent (after UTF-8 encoding), line breaks included.
  expect(Buffer.from(row.title).equals(Buffer.from(sent.title)), what).toBe(true)
  expect(row.author, what).toBe(author.displayName)
  expect(Buffer.from(row.content).equals(Buffer.from(sent.content)), what).toBe(true)
  const show = await app.inject({ url: `/blogs/show/${row.id}` })
  expect(show.statusCode, what).toBe(200)
  expectWellFormed(show.body, what)
  expect(show.body, what).toContain(`<h1>${ejsEscape(sent.title)}</h1>`)
  expect(show.body, what).toContain(`<span class="author">${ejsEscape(author.displayName)}</span>`)
  for (const line of sent.content.split(/\r?\n/)) if (line.trim()) expect(show.body, what).toContain(ejsEscape(line))
  const edit = await app.inject({ url: `/blogs/modify/${row.id}`, headers: signedIn() })
  expectWellFormed(edit.body, what)
  expect(edit.body, what).toContain(`value="${ejsEscape(sent.title)}"`)
  expect(edit.body, what).toContain(`>${ejsEscape(sent.content)}</textarea>`)
  return row
}

// ---- properties ----------------------------------------------------------------------------

describe('any text in the fields', () => {
  it.each(['multipart', 'urlencoded'] as const)('sent as %s: 303 and stored as sent iff every field is valid, else 400 with the text kept and escaped', async (encoding) => {
    await fc.assert(
      fc.asyncProperty(hostileString, hostileString, async (title, content) => {
        const sent = { title: wire(title), content: wire(content) }
        const withToken = { _csrf: author.csrf, ...sent }
        const body =
          encoding === 'multipart'
            ? rawMultipart(Object.entries(withToken).map(([name, value]) => ({ name, value })))
            : { payload: Buffer.from(new URLSearchParams(withToken).toString()), headers: { 'content-type': 'application/x-www-form-urlencoded' } }
        const before = await countRows(env)
        const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: body.payload, headers: signedIn(body.headers) })
        const after = await countRows(env)
        const what = `${res.statusCode} ${JSON.stringify(sent).slice(0, 300)}`

        const valid = acceptable('title', sent.title) && acceptable('content', sent.content)
        expect(res.statusCode, what).toBe(valid ? 303 : 400)
        expect(after - before, what).toBe(res.statusCode === 303 ? 1 : 0)
        if (res.statusCode === 303) {
          await expectStored(sent, what)
        } else {
          expectWellFormed(res.body, what)
          // The form comes back with what was typed, escaped (control characters shown as U+FFFD).
          const shown = (s: string) => ejsEscape(s.replace(new RegExp(CONTROL, 'g'), '\uFFFD'))
          expect(res.body, what).toContain(`id="title" name="title" type="text" required minlength="2" maxlength="200" value="${shown(sent.title)}"`)
          expect(res.body, what).toContain(`>${shown(sent.content)}</textarea>`)
        }
      }),
      params(RUNS)
    )
  }, 120_000)
})

type Part =
  | { kind: 'field'; name: string; value: string }
  | { kind: 'file'; name: string; filename: string; type: string; data: Buffer }

const fieldName = fc.constantFrom('title', 'author', 'content', 'image_file', 'TITLE', 'title[]', 'extra', '', 'a"b', '__proto__', 'constructor')
const imageData = fc.oneof(
  fc.constantFrom(
    PNG_1x1, GIF_1x1, JPEG_1x1, WEBP_1x1, Buffer.alloc(0), Buffer.from('<?php echo 1; ?>'), Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    // A decompression bomb's header, a JPEG cut short, an image with a page after it.
    pngDeclaring(20_000, 20_000), JPEG_1x1.subarray(0, 200), Buffer.concat([GIF_1x1, Buffer.from('<html><script>alert(1)</script></html>')])
  ),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.concat([PNG_1x1.subarray(0, 8), Buffer.from(a)]))
)
const filename = fc.oneof(
  fc.constantFrom('photo.png', 'photo.PNG', 'a.jpg', 'x.gif', 'y.webp', 'shell.php', 'image.png.php', 'image.php.png', '../../../etc/passwd.png', '..\\..\\win.ini', '', '.png', 'a'.repeat(300) + '.png', 'ü.png', 'sp ace.png', 'x.svg', 'x.html'),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/["\r\n]/g, '') + '.png')
)
const part: fc.Arbitrary<Part> = fc.oneof(
  fc.record({ kind: fc.constant('field' as const), name: fieldName, value: hostileString.map(wire) }),
  fc.record({
    kind: fc.constant('file' as const),
    name: fc.constantFrom('image_file', 'image_file', 'title', 'other'),
    filename,
    type: fc.constantFrom('image/png', 'image/jpeg', 'text/html', 'application/octet-stream', 'image/svg+xml', ''),
    data: imageData
  })
)
const validFields = fc.record({
  title: fc.string({ unit: 'grapheme-ascii', minLength: 2, maxLength: 50 }).filter((s) => /\S/.test(s)),
  content: fc.string({ unit: 'grapheme', minLength: 2, maxLength: 300 }).map(wire).filter((s) => /\S/.test(s) && !CONTROL.test(s) && !s.includes('\uFFFD') && [...s].length >= 2)
})

function toRaw(parts: Part[]) {
  return rawMultipart(parts.map((p) => (p.kind === 'field' ? { name: p.name, value: p.value } : { name: p.name, filename: p.filename, type: p.type, data: p.data })))
}

describe('any sequence of parts', () => {
  it('duplicated, missing, misnamed or extra fields and files: never a 5xx, a row iff 303, no stray file', async () => {
    await fc.assert(
      fc.asyncProperty(validFields, fc.array(part, { maxLength: 8 }), fc.boolean(), async (fields, extra, shuffle) => {
        const base: Part[] = Object.entries({ _csrf: author.csrf, ...fields }).map(([name, value]) => ({ kind: 'field', name, value }))
        const parts = shuffle ? [...extra, ...base] : [...base, ...extra]
        const before = { rows: await countRows(env), files: await fileState() }
        const raw = toRaw(parts)
        const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: raw.payload, headers: signedIn(raw.headers) })
        const after = { rows: await countRows(env), files: await fileState() }
        const what = `${res.statusCode} ${JSON.stringify(parts.map((p) => (p.kind === 'file' ? { ...p, data: p.data.subarray(0, 16).toString('hex') } : p))).slice(0, 600)}`

        expect([303, 400, 413, 415, 422], what).toContain(res.statusCode)
        expect(after.rows - before.rows, what).toBe(res.statusCode === 303 ? 1 : 0)
        expect(after.files.incoming, what).toEqual([])
        const added = after.files.stored.filter((f) => !before.files.stored.includes(f))
        if (res.statusCode === 303) {
          const row = (await newestRow())!
          // What was stored is one of the values sent for each field (the only one: duplicates are 400).
          const sentValues = (name: string) => parts.filter((p) => p.kind === 'field' && p.name === name).map((p) => (p as { value: string }).value)
          expect(sentValues('title'), what).toEqual([row.title])
          // An author field, if sent, is ignored: the author is who is signed in.
          expect(row.author, what).toBe(author.displayName)
          expect(sentValues('content'), what).toEqual([row.content])
          expect(added, what).toEqual([row.image_loc, row.thumb_loc].filter((n) => n !== null).sort())
          if (row.image_loc) {
            expect(row.image_loc, what).toMatch(GENERATED_NAME)
            const image = await decoded(await readStored(env, row.image_loc))
            expect(image.format?.replace('jpeg', 'jpg'), what).toBe(row.image_loc.split('.').pop())
            expect({ exif: image.exif, xmp: image.xmp, icc: image.icc }, what).toEqual({ exif: false, xmp: false, icc: false })
          }
        } else {
          expect(added, what).toEqual([])
          if (res.headers['content-type']?.toString().startsWith('text/html')) expectWellFormed(res.body, what)
        }
      }),
      params(RUNS)
    )
  }, 120_000)
})

const contentTypes = (boundary: string) =>
  fc.constantFrom(
    `multipart/form-data; boundary=${boundary}`,
    'multipart/form-data; boundary=wrong',
    'multipart/form-data',
    'multipart/form-data; boundary=',
    `multipart/mixed; boundary=${boundary}`,
    `MULTIPART/FORM-DATA; BOUNDARY=${boundary}`,
    'application/x-www-form-urlencoded',
    'application/json',
    'text/plain',
    'image/png',
    'application/octet-stream',
    ''
  )

describe('malformed bodies', () => {
  it('truncated, corrupted or mislabelled multipart: never a 5xx, a row iff 303, no stray file', async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('corrupt' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('drop-closing' as const) }),
      fc.record({ kind: fc.constant('garbage-prefix' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
      fc.record({ kind: fc.constant('none' as const) })
    )
    await fc.assert(
      fc.asyncProperty(validFields, fc.boolean(), mutation, fc.nat(), async (fields, withImage, m, ctPick) => {
        const body = await multipart({ _csrf: author.csrf, ...fields }, withImage ? { image_file: { data: PNG_1x1, filename: 'p.png', type: 'image/png' } } : {})
        const boundary = /boundary=(.*)$/.exec(body.headers['content-type']!)![1]!
        let payload = body.payload
        if (m.kind === 'truncate') payload = payload.subarray(0, Math.floor(m.at * payload.length))
        if (m.kind === 'corrupt') {
          payload = Buffer.from(payload)
          payload[Math.min(payload.length - 1, Math.floor(m.at * payload.length))] = m.byte
        }
        if (m.kind === 'drop-closing') payload = payload.subarray(0, payload.lastIndexOf(`--${boundary}--`))
        if (m.kind === 'garbage-prefix') payload = Buffer.concat([Buffer.from(m.bytes), payload])
        const types = fc.sample(contentTypes(boundary), { numRuns: 1, seed: ctPick })
        const contentType = m.kind === 'none' && ctPick % 2 === 0 ? body.headers['content-type']! : types[0]!

        const before = { rows: await countRows(env), files: await fileState() }
        const res = await app.inject({ method: 'POST', url: '/blogs/new', payload, headers: signedIn(contentType ? { 'content-type': contentType } : {}) })
        const after = { rows: await countRows(env), files: await fileState() }
        const what = `${res.statusCode} ${m.kind} ${contentType}: ${res.body.slice(0, 200)}`

        // 403: the mutation garbled the CSRF token (or the body no longer parses into fields).
        expect([303, 400, 403, 413, 415, 422], what).toContain(res.statusCode)
        expect(after.rows - before.rows, what).toBe(res.statusCode === 303 ? 1 : 0)
        expect(after.files.incoming, what).toEqual([])
        if (res.statusCode !== 303) expect(after.files.stored, what).toEqual(before.files.stored)
        if (res.headers['content-type']?.toString().startsWith('text/html')) expectWellFormed(res.body, what)
      }),
      params(RUNS)
    )
  }, 120_000)

  it('JSON bodies with values of any type: strings are checked like form fields, anything else is a 400', async () => {
    const value = fc.oneof(hostileString.map(wire), fc.anything({ maxDepth: 2 }))
    await fc.assert(
      fc.asyncProperty(fc.record({ title: value, content: value }, { requiredKeys: [] }), async (json) => {
        const before = await countRows(env)
        const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: JSON.stringify({ _csrf: author.csrf, ...json }), headers: signedIn({ 'content-type': 'application/json' }) })
        const after = await countRows(env)
        const what = `${res.statusCode} ${JSON.stringify(json)?.slice(0, 300)}`
        expect([303, 400, 415], what).toContain(res.statusCode)
        expect(after - before, what).toBe(res.statusCode === 303 ? 1 : 0)
        if (res.statusCode === 303) {
          expect(typeof json.title === 'string' && typeof json.content === 'string', what).toBe(true)
          await expectStored(json as Fields, what)
        }
      }),
      params(RUNS)
    )
  }, 120_000)

  it('huge values and too many parts are refused with 400 or 413, not stored', async () => {
    const cases = [
      { title: 'x'.repeat(70 * 1024), content: 'cc' },
      { title: 'ok', content: '🧪'.repeat(20 * 1024) },
      { title: 'ok', content: 'c'.repeat(1024 * 1024) }
    ]
    for (const fields of cases) {
      const before = await countRows(env)
      const body = await multipart({ _csrf: author.csrf, ...fields })
      const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: body.payload, headers: signedIn(body.headers) })
      expect([400, 413], `${res.statusCode}`).toContain(res.statusCode)
      expect(await countRows(env)).toBe(before)
      expectWellFormed(res.body, 'huge')
      // The page does not echo a megabyte back.
      expect(res.body.length).toBeLessThan(200 * 1024)
    }
    const many = rawMultipart([{ name: '_csrf', value: author.csrf }, ...Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, value: 'v' }))])
    const res = await app.inject({ method: 'POST', url: '/blogs/new', payload: many.payload, headers: signedIn(many.headers) })
    expect(res.statusCode).toBe(413)
  })
})
