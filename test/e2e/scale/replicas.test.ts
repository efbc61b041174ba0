import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UPLOAD_CSP } from '../../../src/plugins/security'
import { PNG_1x1 } from '../../fixtures/images'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { multipart } from '../../kit/form'
import { startJaeger, type Jaeger } from '../../kit/jaeger'
import { startNginx, type Nginx } from '../../kit/nginx'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { GENERATED_NAME } from '../../kit/posts'
import { startSeaweedFs, type SeaweedFs } from '../../kit/seaweedfs'
import { assertBuilt, request, startListening, type HttpResponse, type ServerChild } from '../../kit/server'
import { jaegerTags, type JaegerTrace } from '../../kit/trace'

// Scale-out for real: a SeaweedFS S3 store, Debian's nginx and three app processes (A, B, C) on
// loopback ports against one database, each exporting to a real Jaeger. Whatever one replica
// writes, the others serve; a replica killed under load costs no acknowledged write.

let jaeger: Jaeger
let s3: SeaweedFs
let env: TestEnv
let lb: Nginx
let replicas: ServerChild[] = []
const [A, B, C] = [0, 1, 2]

const port = (i: number) => replicas[i]!.port

beforeAll(async () => {
  assertBuilt()
  jaeger = await startJaeger()
  s3 = await startSeaweedFs()
  env = await createTestEnv()
  const appEnv = {
    ...env.env,
    ...s3.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger.otlpHttp}`,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_METRICS_EXPORTER: 'none',
    LOG_LEVEL: 'warn'
  }
  // Started together on a fresh database: the migration lock lets one migrate.
  replicas = await Promise.all([0, 1, 2].map(() => startListening(appEnv, { telemetry: true })))
  lb = await startNginx(replicas.map((r) => r.port))
  // One account, signed up through the balancer: its session (in MySQL) holds on every replica.
  writer = await signUp(lb.port)
}, 20 * 60_000)

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.kill()))
  await lb?.stop()
  await s3?.stop()
  await jaeger?.stop()
  await env?.cleanup()
})

let writer: Account

async function createPost(at: number, title: string, image?: Buffer): Promise<HttpResponse> {
  const body = await multipart(
    { _csrf: writer.csrf, title, content: `Written through port ${at}.` },
    image ? { image_file: { data: image, filename: 'r.png', type: 'image/png' } } : {}
  )
  return request(at, { method: 'POST', path: '/blogs/new', headers: { ...body.headers, cookie: writer.cookie }, body: body.payload })
}

async function rowByTitle(title: string): Promise<{ id: number; image_loc: string | null } | undefined> {
  const rows = await env.query<{ id: number; image_loc: string | null }>('SELECT `id`, `image_loc` FROM `blog` WHERE `title` = ?', [title])
  return rows[0]
}

async function stored(res: HttpResponse, ready: (t: JaegerTrace) => boolean = () => true): Promise<{ trace: JaegerTrace; spanId: string }> {
  const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
  const trace = await jaeger.waitForTrace(traceId, (t) => t.spans.some((s) => s.spanID === spanId) && ready(t))
  return { trace, spanId }
}

/** service.instance.id of the process that made the server span. */
function instanceOf(trace: JaegerTrace, spanId: string): string {
  const span = trace.spans.find((s) => s.spanID === spanId)!
  const tags = Object.fromEntries(trace.processes[span.processID]!.tags.map((t) => [t.key, t.value]))
  return String(tags['service.instance.id'])
}

const image = Buffer.concat([PNG_1x1, randomBytes(8192)])
const marker = randomBytes(6).toString('hex')
const title = `Scaled ${marker}`
let imageName = ''
let postId = 0

describe('three replicas behind nginx, images in SeaweedFS', () => {
  it('a post created through replica A with an image is shown, with its image, through B and C', async () => {
    const res = await createPost(port(A), title, image)
    expect(res.status, res.body).toBe(303)
    const row = await rowByTitle(title)
    expect(row?.image_loc).toMatch(GENERATED_NAME)
    imageName = row!.image_loc!
    postId = row!.id
    // In the bucket under its generated name; nothing left in the staging area.
    expect(await s3.exists(imageName)).toBe(true)
    expect(await s3.keys('incoming/')).toEqual([])

    // What was stored is the server's re-encode of the upload: the same bytes from every replica.
    let first: Buffer | undefined
    for (const r of [B, C]) {
      const page = await request(port(r), `/blogs/show/${postId}`)
      expect(page.status).toBe(200)
      expect(page.body).toContain(`src="/static/uploads/${imageName}"`)
      const img = await fetch(`http://127.0.0.1:${port(r)}/static/uploads/${imageName}`)
      expect(img.status).toBe(200)
      const bytes = Buffer.from(await img.arrayBuffer())
      first ??= bytes
      expect(bytes.equals(first)).toBe(true)
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 1, height: 1 })
      // The local store's headers (test/app/blogs/headers-static.test.ts), from the object store.
      expect(img.headers.get('content-type')).toBe('image/png')
      expect(img.headers.get('content-length')).toBe(String(bytes.length))
      expect(img.headers.get('cache-control')).toBe('public, max-age=604800, immutable')
      expect(img.headers.get('x-content-type-options')).toBe('nosniff')
      expect(img.headers.get('content-disposition')).toBe('inline')
      expect(img.headers.get('content-security-policy')).toBe(UPLOAD_CSP)
      const etag = img.headers.get('etag')
      expect(etag).toBeTruthy()
      const again = await fetch(`http://127.0.0.1:${port(r)}/static/uploads/${imageName}`, { headers: { 'if-none-match': etag! } })
      expect(again.status).toBe(304)
    }
    // A name the store never made is not looked up at all.
    expect((await request(port(B), '/static/uploads/incoming%2Fx')).status).toBe(404)
  })

  it("the flash message set by one replica shows on the page another replica serves", async () => {
    const res = await createPost(port(A), `Flash ${marker}`)
    expect(res.status).toBe(303)
    const cookie = String(res.headers['set-cookie']?.find((c) => c.startsWith('flash=')) ?? '').split(';')[0]!
    expect(cookie).toBe('flash=created')
    const page = await request(port(B), { path: '/blogs/', headers: { cookie } })
    expect(page.status).toBe(200)
    expect(page.body).toContain('Your post was published.')
    // B clears it, as A would have.
    expect(String(page.headers['set-cookie'])).toMatch(/^flash=;/)
  })

  it('records every object-store call as a span of the request, without credentials', async () => {
    const res = await createPost(port(A), `Spans ${marker}`, image)
    expect(res.status).toBe(303)
    const names = ['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject']
    const { trace } = await stored(res, (t) => names.every((n) => t.spans.some((s) => s.operationName === n)))
    const server = trace.spans.find((s) => jaegerTags(s)['span.kind'] === 'server')!
    for (const n of names) {
      const span = trace.spans.find((s) => s.operationName === n)!
      const tags = jaegerTags(span)
      expect(tags, n).toMatchObject({ 'span.kind': 'client', 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'aws.s3.bucket': s3.bucket })
      expect(span.references.find((r) => r.refType === 'CHILD_OF')?.spanID, n).toBe(server.spanID)
    }
    const text = JSON.stringify(trace)
    expect(text).not.toContain(s3.secretAccessKey)
    expect(text).not.toContain(s3.accessKeyId)

    const img = await request(port(B), `/static/uploads/${imageName}`)
    expect(img.status).toBe(200)
    const { trace: read } = await stored(img, (t) => t.spans.some((s) => s.operationName === 'S3.GetObject'))
    expect(read.spans.map((s) => s.operationName).sort()).toEqual(['GET /static/uploads/:name', 'S3.GetObject'])
    expect(JSON.stringify(read)).not.toContain(s3.secretAccessKey)
  })

  it('each request through the balancer is one trace, from the replica that served it (service.instance.id)', async () => {
    // Each replica's own instance id, from a request sent to it directly.
    const ids = new Map<number, string>()
    for (const r of replicas) {
      const res = await request(r.port, '/blogs/')
      const { trace, spanId } = await stored(res)
      ids.set(r.port, instanceOf(trace, spanId))
    }
    expect(new Set(ids.values()).size).toBe(3)

    const servedBy = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const res = await request(lb.port, `/blogs/show/${postId}`)
      expect(res.status).toBe(200)
      const upstream = Number(String(res.headers['x-upstream']).split(':').pop())
      const { trace, spanId } = await stored(res)
      const servers = trace.spans.filter((s) => jaegerTags(s)['span.kind'] === 'server')
      expect(servers.map((s) => s.spanID)).toEqual([spanId])
      expect(servers[0]!.references).toEqual([])
      expect(instanceOf(trace, spanId)).toBe(ids.get(upstream))
      servedBy.add(instanceOf(trace, spanId))
    }
    // Round robin: the six requests did not all land on one replica.
    expect(servedBy.size).toBeGreaterThan(1)
  })

  it('deleting through replica C removes the object from the store', async () => {
    const res = await request(port(C), {
      method: 'POST', path: `/blogs/delete/${postId}`,
      headers: { cookie: writer.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: writer.csrf }).toString()
    })
    expect(res.status).toBe(303)
    expect(await rowByTitle(title)).toBeUndefined()
    expect(await s3.exists(imageName)).toBe(false)
    expect((await request(port(A), `/static/uploads/${imageName}`)).status).toBe(404)
  })

  it('killing one replica under load loses no acknowledged write, and the balancer keeps serving', async () => {
    const acknowledged: string[] = []
    const failedWrites: number[] = []
    const reads: { at: number; status: number }[] = []
    let killedAt = Infinity
    const started = Date.now()
    const until = started + 5000
    const writer = async (w: number) => {
      for (let i = 0; Date.now() < until; i++) {
        const t = `Load ${marker} ${w}-${i}`
        const res = await createPost(lb.port, t, i % 2 === 0 ? image : undefined).catch(() => undefined)
        if (res?.status === 303) acknowledged.push(t)
        else failedWrites.push(res?.status ?? 0)
      }
    }
    const reader = async () => {
      while (Date.now() < until) {
        const res = await request(lb.port, '/blogs/').catch(() => undefined)
        reads.push({ at: Date.now(), status: res?.status ?? 0 })
      }
    }
    const killer = async () => {
      await sleep(1500)
      killedAt = Date.now()
      await replicas[B]!.kill()
    }
    await Promise.all([writer(1), writer(2), writer(3), reader(), reader(), killer()])

    expect(acknowledged.length).toBeGreaterThan(10)
    // Every write the balancer acknowledged is in the database exactly once, with its image.
    for (const t of acknowledged) {
      const rows = await env.query<{ image_loc: string | null }>('SELECT `image_loc` FROM `blog` WHERE `title` = ?', [t])
      expect(rows, t).toHaveLength(1)
      if (rows[0]!.image_loc) expect(await s3.exists(rows[0]!.image_loc), t).toBe(true)
    }
    // At most the writes in flight on the killed replica failed (502); nothing else did.
    expect(failedWrites.filter((s) => s !== 502)).toEqual([])
    expect(failedWrites.length).toBeLessThanOrEqual(3)
    // Reads never failed: a GET in flight on the dead replica is retried on another one.
    const afterKill = reads.filter((r) => r.at > killedAt)
    expect(afterKill.length).toBeGreaterThan(10)
    expect(reads.filter((r) => r.status !== 200)).toEqual([])
  })
})
