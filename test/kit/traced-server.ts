import { afterAll, beforeAll, expect } from 'vitest'
import { signUp, type Account } from './accounts'
import { createTestEnv, type TestEnv } from './app'
import { postForm } from './form'
import { formatTree, OtlpReceiver, parseTraceHeader, SpanKind, type ReceivedSpan } from './otlp-receiver'
import { assertBuilt, startListening, type HttpResponse, type ServerChild } from './server'
import { fromOtlp, type ContractSpan } from './trace'

/** The two ways server spans are made: the app's Fastify hooks (default) or the http instrumentation. */
export const SERVER_SPAN_MODES: { name: string; scope: string; env: Record<string, string> }[] = [
  { name: 'the http instrumentation', scope: '@opentelemetry/instrumentation-http', env: { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,pino,runtime-node' } },
  { name: 'the Fastify hooks (the default: http instrumentation off)', scope: 'blog_app', env: {} }
]

export interface Traced {
  res: HttpResponse
  spans: ReceivedSpan[]
  contract: ContractSpan[]
  server: ReceivedSpan
  tree: string
}

export interface TracedServer {
  env: TestEnv
  receiver: OtlpReceiver
  child: ServerChild
  /** Waits for the trace the response's traceresponse names (until `ready` holds, if given). */
  traced(res: HttpResponse, ready?: (spans: ReceivedSpan[]) => boolean): Promise<Traced>
  /** A user signed up on this server (before the tests), who writes the posts of postForm. */
  author: Account
  /** Posts the blog form as a browser would (signed in as `author`), with an optional PNG. */
  postForm(fields: Record<string, string>, image?: Buffer): Promise<HttpResponse>
  /** The id of some seeded post. */
  existingPostId(): Promise<number>
}

/**
 * A test file's child server (compiled app + OTel bootstrap, exactly as `npm start`) exporting
 * OTLP/JSON to an in-process receiver, with its own database. Returned object is filled in
 * beforeAll.
 */
export function useTracedServer(extraEnv: Record<string, string> = {}): TracedServer {
  const t = {} as TracedServer
  beforeAll(async () => {
    assertBuilt()
    t.env = await createTestEnv()
    t.receiver = await OtlpReceiver.start()
    t.child = await startListening({ ...t.env.env, ...t.receiver.env(), LOG_LEVEL: 'info', ...extraEnv }, { telemetry: true })
    t.author = await signUp(t.child.port)
  })
  afterAll(async () => {
    await t.child?.kill()
    await t.receiver?.close()
    await t.env?.cleanup()
  })
  t.traced = async (res, ready) => {
    expect(res.headers.traceresponse, 'the response should carry traceresponse').toBeDefined()
    const { traceId, spanId } = parseTraceHeader(res.headers.traceresponse)
    const spans = await t.receiver.waitForTrace(traceId, ready)
    const tree = formatTree(spans)
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER)
    expect(servers, tree).toHaveLength(1)
    expect(servers[0]!.spanId, tree).toBe(spanId)
    return { res, spans, contract: fromOtlp(spans), server: servers[0]!, tree }
  }
  t.postForm = (fields, image) => postForm(t.child.port, '/blogs/new', fields, image ? { image_file: { data: image, filename: 'picture.png', type: 'image/png' } } : {}, { as: t.author })
  t.existingPostId = async () => {
    const [row] = await t.env.query<{ id: number }>('SELECT `id` FROM `blog` ORDER BY `id` LIMIT 1')
    expect(row, 'the seeded database should have posts').toBeDefined()
    return row!.id
  }
  return t
}
