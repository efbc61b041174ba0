import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { K6_FIELDS_FILE, renderK6Fields } from '../../../src/cli/gen-k6'
import { FIELD_RULES } from '../../../src/posts/fields'
import { CSRF_FIELD } from '../../../src/validation/forms'
import { PostFormSchema } from '../../../src/posts/form'
import { SESSION_COOKIE } from '../../../src/accounts/plugin'
import { PNG_1x1 } from '../../fixtures/images'
import { buildApp, createTestEnv, type TestEnv } from '../../kit/app'
import { readStored, rowsByTitle } from '../../kit/posts'
import { rawMultipart } from '../../kit/form'

// The k6 scripts cannot run here (no k6 binary). What can drift silently is checked instead:
// they type-check against @types/k6, and every request they make, built by the same module
// they use (k6/lib/app.js), gets the answer from the real app that their checks expect.

const K6_DIR = path.join(ROOT, 'k6')
const run = promisify(execFile)

interface RequestSpec {
  method: string
  path: string
  name: string
  expect: { status: number; location?: string }
}
interface CreateSpec extends RequestSpec {
  fields: string[]
  file: { field: string; filename: string; contentType: string }
}
interface FormSpec extends RequestSpec {
  fields: string[]
}
interface User {
  session: string
  csrf: string
}
interface FileDescriptor {
  bytes: Uint8Array
  filename: string
  contentType: string
}
/** k6/lib/app.js, as typed by its JSDoc (tsc checks that file; this suite checks the shape). */
interface K6App {
  FIELD_LIMITS: Record<'title' | 'author' | 'content', { min: number; max: number }>
  UPLOAD: { field: string; filename: string; contentType: string }
  SESSION_COOKIE: string
  CSRF_FIELD: string
  REQUESTS: { list: RequestSpec; show: RequestSpec; create: CreateSpec; signupPage: RequestSpec; signup: FormSpec; account: RequestSpec }
  showPath(id: number | string): string
  listPath(page?: number): string
  pixelPng(): Uint8Array
  postFields(tag: string): { title: string; content: string }
  createForm<F>(tag: string, csrf: string, file: (bytes: Uint8Array, filename: string, contentType: string) => F): Record<string, string | F>
  csrfOf(html: string): string | undefined
  signupFields(tag: string, csrf: string): Record<string, string>
  userOf(users: User[], vu: number): User
  listedIds(html: string): number[]
  nextPage(html: string): number | null
  headerValue(headers: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined
  traceIdOf(value: string | undefined): string | undefined
}

// A computed specifier: the root tsconfig has no allowJs, and the module's types live in its JSDoc.
const loadK6App = async (): Promise<K6App> => (await import(pathToFileURL(path.join(K6_DIR, 'lib', 'app.js')).href)) as K6App

async function k6Sources(): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  for (const dir of ['', 'lib']) {
    for (const name of await fs.readdir(path.join(K6_DIR, dir))) {
      if (name.endsWith('.js')) files.set(path.posix.join(dir, name), await fs.readFile(path.join(K6_DIR, dir, name), 'utf8'))
    }
  }
  return files
}

describe('k6 scripts: type-check', () => {
  it('pass tsc -p k6/tsconfig.json against @types/k6', async () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await run(process.execPath, [tsc, '-p', path.join(K6_DIR, 'tsconfig.json')], { cwd: ROOT }).then(
      () => ({ code: 0, out: '' }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` })
    )
    expect(result.out).toBe('')
    expect(result.code).toBe(0)
  }, 60_000)
})

describe('k6 scripts: one source for requests', () => {
  let sources: Map<string, string>
  beforeAll(async () => {
    sources = await k6Sources()
  })

  it('has the five scripts, each exporting options, setup and handleSummary from lib/options.js', () => {
    for (const script of ['read', 'write', 'stress', 'arrival', 'mixed']) {
      const src = sources.get(`${script}.js`)
      expect(src, `${script}.js`).toBeDefined()
      expect(src).toContain(`common('${script}')`)
      expect(src).toMatch(/export const options\b/)
      expect(src).toMatch(/export (const|function) setup\b/)
      expect(src).toMatch(/export const handleSummary = run\.handleSummary/)
    }
  })

  it('sends requests only from lib/actions.js, through the instrumented default export of k6/http', () => {
    for (const [file, src] of sources) {
      if (file !== 'lib/actions.js') expect(src, file).not.toMatch(/\bhttp\.(get|post|put|patch|del|head|options|request|asyncRequest|batch)\s*\(/)
      // A named import would bypass the jslib's instrumentation (it patches the default export).
      expect(src, file).not.toMatch(/import\s*\{[^}]*\}\s*from\s*['"]k6\/http['"]/)
    }
  })

  it('writes app paths only in lib/app.js', () => {
    for (const [file, src] of sources) {
      if (file === 'lib/app.js') continue
      expect(src.match(/['"`]\/(blogs|health|static|assets)\b[^'"`]*['"`]/g) ?? [], file).toEqual([])
    }
  })

  it('propagates W3C trace context with the tempo jslib, not the removed k6/experimental/tracing', () => {
    const options = sources.get('lib/options.js') ?? ''
    // The jslib module as a local file (k6/vendor/fetch.sh; test/unit/k6-scripts.test.ts checks the list).
    expect(options).toMatch(/from '\.\.\/vendor\/http-instrumentation-tempo-\d+\.\d+\.\d+\.js'/)
    expect(options).toContain("tempo.instrumentHTTP({ propagator: 'w3c', sampling: TRACE_SAMPLING })")
    for (const [file, src] of sources) expect(src, file).not.toMatch(/from\s*['"]k6\/experimental\/tracing['"]/)
  })

  it('reads the trace id from traceparent and traceresponse values', async () => {
    const k6 = await loadK6App()
    const trace = 'dc0718' + '0123456789abcdef0123456789'
    expect(k6.traceIdOf(`00-${trace}-0123456789abcdef-01`)).toBe(trace)
    expect(k6.traceIdOf('garbage')).toBeUndefined()
    expect(k6.headerValue({ Traceresponse: `00-${trace}-0123456789abcdef-01` }, 'traceresponse')).toContain(trace)
    expect(k6.headerValue({ Traceparent: ['a', 'b'] }, 'traceparent')).toBe('a')
  })
})

describe('k6 scripts: every request against the real app', () => {
  let env: TestEnv
  let app: FastifyInstance
  let k6: K6App
  beforeAll(async () => {
    k6 = await loadK6App()
    // A small page so the sample posts span more than one list page (discoverIds follows "next").
    env = await createTestEnv({ PAGE_SIZE: '5' })
    app = await buildApp(env)
  })
  afterAll(async () => {
    await app?.close()
    await env?.cleanup()
  })

  it('reads its field rules from k6/lib/fields.js, generated from the current src/posts/fields.ts (npm run gen:k6)', async () => {
    expect(await fs.readFile(K6_FIELDS_FILE, 'utf8')).toBe(renderK6Fields())
  })

  it('uses the form rules of src/posts', () => {
    expect(Object.keys(k6.FIELD_LIMITS).sort()).toEqual(Object.keys(PostFormSchema.properties).sort())
    for (const [name, rule] of Object.entries(FIELD_RULES)) {
      expect(k6.FIELD_LIMITS[name as keyof typeof FIELD_RULES]).toEqual({ min: rule.minLength, max: rule.maxLength })
    }
    expect([...k6.REQUESTS.create.fields].sort()).toEqual([CSRF_FIELD, ...Object.keys(PostFormSchema.properties)].sort())
    expect(k6.CSRF_FIELD).toBe(CSRF_FIELD)
    expect(k6.SESSION_COOKIE).toBe(SESSION_COOKIE)
    expect(k6.REQUESTS.create.file).toEqual(k6.UPLOAD)
    expect(k6.UPLOAD.field).toBe('image_file')
  })

  it('GET /blogs/ answers the status the list check expects, with post links and a next page', async () => {
    const spec = k6.REQUESTS.list
    const res = await app.inject({ method: spec.method as 'GET', url: k6.listPath() })
    expect(res.statusCode).toBe(spec.expect.status)
    expect(k6.listedIds(res.body).length).toBeGreaterThan(0)
    const next = k6.nextPage(res.body)
    expect(next).toBe(2)
    const page2 = await app.inject({ method: spec.method as 'GET', url: k6.listPath(next ?? 0) })
    expect(page2.statusCode).toBe(spec.expect.status)
    const ids2 = k6.listedIds(page2.body)
    expect(ids2.length).toBeGreaterThan(0)
    expect(ids2.filter((id) => k6.listedIds(res.body).includes(id))).toEqual([])
  })

  it('GET /blogs/show/:id answers 200 for every id the list pages link', async () => {
    const spec = k6.REQUESTS.show
    const ids: number[] = []
    for (let page: number | null = 1; page !== null && ids.length < 100; ) {
      const res = await app.inject({ method: 'GET', url: k6.listPath(page) })
      ids.push(...k6.listedIds(res.body))
      page = k6.nextPage(res.body)
    }
    expect(ids.length).toBeGreaterThan(5)
    for (const id of ids) {
      const res = await app.inject({ method: spec.method as 'GET', url: k6.showPath(id) })
      expect(res.statusCode, k6.showPath(id)).toBe(spec.expect.status)
    }
  })

  /** setup()'s sign-up, request by request as lib/actions.js sends them (its own cookie jar). */
  async function signUpAsK6(tag: string): Promise<User> {
    const { signupPage, signup, account } = k6.REQUESTS
    const page = await app.inject({ method: signupPage.method as 'GET', url: signupPage.path })
    expect(page.statusCode).toBe(signupPage.expect.status)
    const formCsrf = k6.csrfOf(page.body)
    expect(formCsrf).toBeDefined()
    // The jar sends back every cookie the page set (before sign-in: the form cookie its token is signed with).
    const jar = page.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
    expect(jar).not.toBe('')
    const fields = k6.signupFields(tag, formCsrf!)
    expect(Object.keys(fields).sort()).toEqual([...signup.fields].sort())
    const res = await app.inject({
      method: signup.method as 'POST', url: signup.path, payload: new URLSearchParams(fields).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar }
    })
    expect(res.statusCode, res.body).toBe(signup.expect.status)
    expect(k6.headerValue(res.headers as Record<string, string>, 'Location')).toBe(signup.expect.location)
    const session = res.cookies.find((c) => c.name === k6.SESSION_COOKIE)?.value
    expect(session).toBeTruthy()
    const page2 = await app.inject({ method: account.method as 'GET', url: account.path, headers: { cookie: `${k6.SESSION_COOKIE}=${session}` } })
    expect(page2.statusCode).toBe(account.expect.status)
    const csrf = k6.csrfOf(page2.body)
    expect(csrf).toBeDefined()
    return { session: session!, csrf: csrf! }
  }

  let user: User
  const asUser = () => ({ cookie: `${k6.SESSION_COOKIE}=${user.session}` })

  it("setup()'s sign-up (form, post, account page) answers what its checks expect: a session and its CSRF token", async () => {
    user = await signUpAsK6(`k6-test ${Date.now()}`)
    // One user per VU while there are enough; VU numbers (from 1) wrap around the list.
    const users = [user, { session: 's2', csrf: 'c2' }]
    expect(k6.userOf(users, 1)).toBe(users[0])
    expect(k6.userOf(users, 2)).toBe(users[1])
    expect(k6.userOf(users, 3)).toBe(users[0])
    // A second user in the same run gets a different email and name (no 409).
    const other = await signUpAsK6(`k6-test ${Date.now()}`)
    expect(other.session).not.toBe(user.session)
  })

  it('finds the ids of posts with an image once each', async () => {
    const spec = k6.REQUESTS.create
    const tag = `image-links ${Date.now()}`
    const body = multipartFrom(k6.createForm(tag, user.csrf, (bytes, filename, contentType): FileDescriptor => ({ bytes, filename, contentType })))
    expect((await app.inject({ method: spec.method as 'POST', url: spec.path, payload: body.payload, headers: { ...body.headers, ...asUser() } })).statusCode).toBe(303)
    const [row] = await rowsByTitle(env, k6.postFields(tag).title)
    const html = (await app.inject({ method: 'GET', url: k6.listPath() })).body
    expect(html.split(`href="/blogs/show/${row?.id}"`).length - 1).toBe(2) // thumbnail and title
    expect(k6.listedIds(html).filter((id) => id === row?.id)).toHaveLength(1)
  })

  // k6 builds the multipart body from an object; whatever order its parts come in, the app
  // must take the post.
  for (const order of ['as written', 'sorted', 'reversed'] as const) {
    it(`POST /blogs/new with the write script's exact form (${order}) answers 303 to /blogs/ and stores the post and PNG`, async () => {
      const spec = k6.REQUESTS.create
      const tag = `k6-test ${order} ${Date.now()}`
      const form = k6.createForm(tag, user.csrf, (bytes, filename, contentType): FileDescriptor => ({ bytes, filename, contentType }))
      expect(Object.keys(form).sort()).toEqual([...spec.fields, spec.file.field].sort())
      const file = form[spec.file.field] as FileDescriptor
      expect(file).toMatchObject({ filename: 'pixel.png', contentType: 'image/png' })
      expect(Buffer.from(file.bytes).equals(PNG_1x1)).toBe(true)

      const body = multipartFrom(form, order)
      const res = await app.inject({ method: spec.method as 'POST', url: spec.path, payload: body.payload, headers: { ...body.headers, ...asUser() } })
      expect(res.statusCode, res.body).toBe(spec.expect.status)
      // The script reads it the same way, whatever case the header name has.
      expect(k6.headerValue(res.headers as Record<string, string>, 'Location')).toBe(spec.expect.location)

      const fields = k6.postFields(tag)
      const rows = await rowsByTitle(env, fields.title)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ content: fields.content })
      expect(rows[0]?.author).toMatch(/^k6 k6-test /)
      expect(rows[0]?.image_loc).toMatch(/\.png$/)
      expect((await readStored(env, rows[0]?.image_loc ?? '')).equals(PNG_1x1)).toBe(true)
    })
  }
})

/** The multipart body k6 sends for a structured body: text fields and file parts. */
function multipartFrom(form: Record<string, string | FileDescriptor>, order: 'as written' | 'sorted' | 'reversed' = 'as written') {
  let entries = Object.entries(form)
  if (order === 'sorted') entries = entries.sort(([a], [b]) => a.localeCompare(b))
  if (order === 'reversed') entries = entries.reverse()
  return rawMultipart(
    entries.map(([name, value]) =>
      typeof value === 'string'
        ? { name, value }
        : { name, filename: value.filename, type: value.contentType, data: Buffer.from(value.bytes) }
    )
  )
}
