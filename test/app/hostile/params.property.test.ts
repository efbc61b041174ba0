import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defaultAuthor } from '../../kit/accounts'
import { useTestApp, type TestEnv } from '../../kit/app'
import { multipart, postForm } from '../../kit/form'
import { expectWellFormed, params, RUNS } from '../../kit/hostile'
import { countRows } from '../../kit/posts'

// Property tests of ids and page numbers in URLs, through the real app (inject) and database:
// never a 5xx, nothing changed by an id that names no post, pages made only of template markup.

let env: TestEnv
let app: FastifyInstance

useTestApp((t) => ({ env, app } = t), { DB_SEED_ON_START: 'false' })

describe('path and query parameters', () => {
  const hostileId = fc.oneof(
    fc.constantFrom('-1', '0', '-0', '00', '2147483648', '99999999999999999999999', '1e3', '1.5', 'NaN', 'Infinity', '0x10', ' 1', '1 ', '１',
      'abc', '%2F', '1%2F2', '..%2F..%2Fpackage.json', '%00', '%2e%2e', '1;DROP TABLE blog', "1' OR '1'='1", '%F0%9F%A7%AA', '%', '%zz', '1?x=1', '1#frag'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map(encodeURIComponent),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String)
  )

  it('odd ids on every route answer 400 or 404 (or a post, for a number that names one) and change nothing', async () => {
    // Some posts to be found (or wrongly deleted) by a sloppy id.
    for (let i = 0; i < 3; i++) await postForm(app, '/blogs/new', { title: `Param ${i}`, content: 'Kept.' })
    // Sent by the posts' author, so an id that names a post gets past the access check.
    const author = await defaultAuthor(app)
    const ids = new Set((await env.query<{ id: number }>('SELECT id FROM blog')).map((r) => r.id))
    await fc.assert(
      // inject resolves dot segments ('/blogs/show/..' is '/blogs/'); a real socket does not (test/hostile/socket.test.ts).
      fc.asyncProperty(hostileId.filter((id) => !/^(\.|%2e){1,2}$/i.test(id)), fc.constantFrom('GET show', 'GET modify', 'POST modify', 'PUT modify', 'DELETE delete', 'POST delete'), async (id, route) => {
        const [method, action] = route.split(' ') as [string, string]
        const before = await countRows(env)
        const body = method === 'GET' || method === 'DELETE' ? undefined : await multipart({ _csrf: author.csrf, title: 'Changed', content: 'Changed.' })
        const res = await app.inject({ method: method as 'GET', url: `/blogs/${action}/${id}`, headers: { ...body?.headers, cookie: author.cookie }, ...(body ? { payload: body.payload } : {}) })
        const what = `${route} ${id}: ${res.statusCode}`
        // Ajv coerces any string that is a number in JS ('0x10', ' 1', '1e3') to that number.
        const n = Number(decodeURIComponent(id.split(/[?#]/)[0]!.replace(/%(?![0-9a-f]{2})/gi, '%25')))
        const names = Number.isInteger(n) && ids.has(n)
        if (!names) {
          expect([400, 404], what).toContain(res.statusCode)
          expect(await countRows(env), what).toBe(before)
        } else {
          expect(res.statusCode, what).toBeLessThan(500)
        }
        if (res.headers['content-type']?.toString().startsWith('text/html')) expectWellFormed(res.body, what)
      }),
      {
        ...params(RUNS * 2),
        // Ajv turns these into Infinity and skips its range checks for non-finite numbers.
        examples: [['Infinity', 'DELETE delete'], ['Infinity', 'POST delete'], ['1e400', 'PUT modify'], ['-Infinity', 'GET show']]
      }
    )
  }, 120_000)

  it('odd page numbers answer 200, 400 or 404, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileId, fc.constant('')), async (page) => {
        const res = await app.inject({ url: `/blogs/?page=${page}` })
        expect([200, 400, 404], `${page}: ${res.statusCode}`).toContain(res.statusCode)
        expectWellFormed(res.body, page)
        if (res.statusCode === 200) {
          const shown = /<span class="page-number">Page (\d+)<\/span>/.exec(res.body)?.[1] ?? '1'
          expect(Number.isSafeInteger(Number(shown)), `${page}: page ${shown}`).toBe(true)
        }
      }),
      { ...params(RUNS), examples: [['Infinity'], ['1e400'], ['-Infinity']] }
    )
  }, 60_000)
})
