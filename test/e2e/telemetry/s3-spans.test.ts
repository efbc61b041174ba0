import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PNG_1x1 } from '../../fixtures/images'
import { signUp, type Account } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { postForm } from '../../kit/form'
import { formatTree, OtlpReceiver, parseTraceHeader, SpanKind, type ReceivedSpan } from '../../kit/otlp-receiver'
import { startSeaweedFs, type SeaweedFs } from '../../kit/seaweedfs'
import { assertBuilt, processTimeOf, request, startListening, type HttpResponse, type ServerChild } from '../../kit/server'

// With images in an S3 store (a real SeaweedFS), each store call is a span of the AWS SDK
// instrumentation, made while the request runs and before the app decides whether its trace is
// kept: kept, they are exported with the request's own spans; kept late (a second look), too.

const NEVER = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }
const keptFlag = (res: HttpResponse) => parseTraceHeader(res.headers.traceresponse).flags

let s3: SeaweedFs
let env: TestEnv
let receiver: OtlpReceiver
let app: ServerChild
let author: Account

beforeAll(async () => {
  assertBuilt()
  s3 = await startSeaweedFs()
  env = await createTestEnv()
  receiver = await OtlpReceiver.start()
  app = await startListening({ ...env.env, ...receiver.env(), ...s3.env, ...NEVER, LOG_LEVEL: 'info' }, { telemetry: true })
  author = await signUp(app.port)
}, 20 * 60_000)
afterAll(async () => {
  await app?.kill()
  await receiver?.close()
  await env?.cleanup()
  await s3?.stop()
})

/** The trace's store calls, checked to hang under a span of the same trace. */
function storeCalls(spans: ReceivedSpan[]): ReceivedSpan[] {
  const tree = formatTree(spans)
  const ids = new Set(spans.map((s) => s.spanId))
  const calls = spans.filter((s) => s.attributes['rpc.system'] === 'aws-api')
  for (const c of calls) {
    expect(c.kind, tree).toBe(SpanKind.CLIENT)
    expect(c.attributes['aws.s3.bucket'], tree).toBe(s3.bucket)
    expect(ids.has(c.parentSpanId!), `${c.name} under a span of its trace:\n${tree}`).toBe(true)
  }
  return calls
}

describe('S3 spans in kept traces', () => {
  let image: string

  it('a created post\'s trace, kept (a sampled parent), holds its upload\'s store calls', async () => {
    const traceId = randomBytes(16).toString('hex')
    const title = `S3 spans ${randomBytes(4).toString('hex')}`
    const res = await postForm(app.port, '/blogs/new', { title, content: 'Stored in a bucket.' }, {
      image_file: { data: Buffer.concat([PNG_1x1, randomBytes(2048)]), filename: 'picture.png', type: 'image/png' }
    }, { as: author, headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } })
    expect(res.status).toBe(303)
    expect(keptFlag(res)).toBe('01')
    const spans = await receiver.waitForTrace(traceId, (x) => x.some((s) => s.kind === SpanKind.SERVER) && x.some((s) => s.name === 'S3.CopyObject'))
    const names = storeCalls(spans).map((s) => s.name)
    // Staged, copied to its final name inside the transaction, the staged key deleted.
    expect(names, formatTree(spans)).toEqual(expect.arrayContaining(['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject']))
    const [row] = await env.query<{ image_loc: string }>('SELECT `image_loc` FROM `blog` WHERE `title` = ?', [title])
    image = `/static/uploads/${encodeURIComponent(row!.image_loc)}`
  })

  it('an image request kept late (slow_late) is exported with the store call that made it slow', async () => {
    expect(image, 'the test above stored an image').toBeDefined()
    const many = async (n: number) => {
      for (let i = 0; i < n; i += 10) {
        const answers = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => request(app.port, image)))
        expect(answers.every((a) => a.status === 200)).toBe(true)
      }
    }
    /** Answers of `n` image requests sent while the store is stopped (SIGSTOP) for `pauseMs`. */
    const storePaused = async (n: number, pauseMs: number) => {
      s3.proc.proc.kill('SIGSTOP')
      try {
        const pending = Promise.all(Array.from({ length: n }, () => request(app.port, image)))
        await sleep(pauseMs)
        s3.proc.proc.kill('SIGCONT')
        return await pending
      } finally {
        s3.proc.proc.kill('SIGCONT')
      }
    }
    await many(600)
    // A burst of slow requests (3% of the route so far) raises the route's bar to theirs...
    await storePaused(20, 600)
    await many(100)
    // ...so a request a little less slow is not kept when it answers, and waits for a second look.
    const [held] = await storePaused(1, 450)
    expect(held!.status).toBe(200)
    expect(processTimeOf(held!)).toBeGreaterThan(430)
    expect(keptFlag(held!)).toBe('00')
    const { traceId } = parseTraceHeader(held!.headers.traceresponse)
    await sleep(1500)
    expect(receiver.trace(traceId), 'nothing exported yet').toEqual([])
    // None of the next 2,000 requests of its route is as slow: it was among the slowest of them.
    await many(2100)
    const spans = await receiver.waitForTrace(traceId, (x) => x.some((s) => s.kind === SpanKind.SERVER) && x.some((s) => s.name === 'S3.GetObject'))
    const tree = formatTree(spans)
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!
    expect(server.attributes['blog.trace.kept'], tree).toBe('slow_late')
    const [get] = storeCalls(spans)
    expect(get!.name, tree).toBe('S3.GetObject')
    // The store call is where the request's time went.
    expect(Number(get!.endNs - get!.startNs) / 1e6, tree).toBeGreaterThan(400)
  }, 180_000)
})
