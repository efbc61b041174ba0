import {
  context, isSpanContextValid, propagation, ROOT_CONTEXT, trace, TraceFlags,
  type Attributes, type Context, type Span, type TracerProvider
} from '@opentelemetry/api'
import { getRPCMetadata, RPCType } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { busyMs, idleMs, ms2, now } from './clock'
import { endFailedPoolWaits } from './db'
import { ATTR, LOAD_TEST_BAGGAGE, METRIC } from './names'
import { appHistograms } from './histograms'
import { RequestTrace, type ServerSpanData } from './request-trace'
import type { TelemetryRuntime } from './runtime'
import { measured } from './self-cost'
import { kRequestStart, newTimings, timingStore, type RequestTimings } from './timing'
import { recordError } from './tracer'
import { UNTRUSTED_PARENT } from './trust'

declare module 'fastify' {
  interface FastifyRequest {
    /** The http instrumentation's server span of this request (only when it makes them). */
    otelSpan: Span | undefined
    /** Where this request's time went so far (Server-Timing, the inspector badge). */
    timings: RequestTimings
  }
}

export interface TelemetryPluginOptions {
  /** From the SDK bootstrap; null when it was not loaded or OTEL_SDK_DISABLED=true. */
  runtime: TelemetryRuntime | null
  /** The Server-Timing header (SERVER_TIMING); on when absent. */
  serverTiming?: boolean
  /** Whose `traceparent` sampled flag is obeyed (TRUSTED_TRACE_SOURCES); everyone's when absent. */
  trustedTraceSource?: (ip: string) => boolean
  /** Requests that get no server span (health probes, the inspector's pages); none when absent. */
  isUntraced?: (url: string) => boolean
  /** DB_POOL_ACQUIRE_MS: a pool wait still open when the request answers failed at most this long after it began. */
  poolAcquireMs?: number
}

const kContext = Symbol('blog.otelContext')
type Traced = FastifyRequest & { [kContext]?: Context }

/** The request's duration as X-Process-Time prints it, the server span records it and the log line says it. */
export const processTimeMs = (t: RequestTimings): number => Number(ms2((t.end ?? now()) - t.start))

/**
 * A request's telemetry in one place: its server span (made here, or named here when the http
 * instrumentation made it), the timing store its handler runs in, and the three response
 * headers: X-Process-Time, Server-Timing and W3C traceresponse. One clock (./clock.ts): the
 * request starts at its first hook and ends when its response is handed over (onSend); the
 * span, the headers, the duration histogram and the log line all use those two instants.
 */
export default fp<TelemetryPluginOptions>(
  async (fastify, { runtime, serverTiming = true, trustedTraceSource = () => true, isUntraced = () => false, poolAcquireMs = Infinity }) => {
    fastify.decorateRequest('otelSpan', undefined)
    fastify.decorateRequest('timings', null as unknown as RequestTimings)
    // Declared, so every request object has the same shape from its construction (a property
    // added per request is a shape change that code reading requests pays for).
    fastify.decorateRequest(kContext, undefined)

    fastify.addHook('onRequest', (request, _reply, done) => {
      request.timings = newTimings()
      ;(request.raw as { [kRequestStart]?: number })[kRequestStart] = request.timings.start
      done()
    })
    if (runtime?.serverSpans === 'app') traceRequests(fastify, runtime, trustedTraceSource, isUntraced)
    else if (runtime?.serverSpans === 'http') nameHttpSpans(fastify)

    // The rest of the lifecycle (hooks, handler, render) runs in the request's timing store and,
    // when traced, its trace's context: entered here, and again before validation, since an
    // asynchronous body read loses it.
    const enter = (request: Traced, _reply: unknown, done: () => void) => {
      const ctx = request[kContext]
      timingStore.run(request.timings, ctx ? () => context.with(ctx, done) : done)
    }
    fastify.addHook('onRequest', enter)
    // Entering copies the async context frame: only when the body read did lose it (a request
    // without a body is still inside).
    fastify.addHook('preValidation', (request: Traced, reply, done) => {
      const ctx = request[kContext]
      if (timingStore.getStore() === request.timings && (!ctx || context.active() === ctx)) done()
      else enter(request, reply, done)
    })

    // Callback style: this runs on every response, an async hook would add a promise per request.
    fastify.addHook('onSend', (request, reply, payload, done) => {
      // A request that failed before onRequest ran (a parser error) still gets the headers.
      const t = (request.timings ??= newTimings())
      endFailedPoolWaits(t, poolAcquireMs)
      t.end = now()
      const total = processTimeMs(t)
      const text = ms2(total)
      reply.header('X-Process-Time', `${text}ms`)
      if (serverTiming) {
        const queries = t.queries === 1 ? '1 query' : `${t.queries} queries`
        reply.header('Server-Timing', `db;dur=${ms2(t.dbMs)};desc="${queries}", pool;dur=${ms2(t.poolWaitMs)}, render;dur=${ms2(t.renderMs)}, total;dur=${text}`)
      }
      // The app's own server span: decide now whether the trace is kept (the header says so).
      if (t.trace && runtime) decide(request, reply.statusCode, runtime)
      request.otelSpan?.setAttribute(ATTR.processTimeMs, total)
      const ids = traceIdsOf(request)
      if (ids) reply.header('traceresponse', `00-${ids.traceId}-${ids.spanId}-${ids.sampled ? '01' : '00'}`)
      done(null, payload)
    })

    fastify.addHook('onError', (request, reply, err, done) => {
      // Client errors (4xx) are the client's, not the server's: only 5xx mark the span.
      if (reply.statusCode >= 500 || !(err as { statusCode?: number }).statusCode) {
        if (request.otelSpan) recordError(request.otelSpan, err)
        const rt = request.timings?.trace
        if (rt) rt.exception = err
      }
      done()
    })

    fastify.addHook('onClose', async () => {
      // Flush what is queued before the process exits (the SDK's own shutdown may not run).
      const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => { forceFlush?: () => Promise<void> } }
      await provider.getDelegate?.().forceFlush?.().catch(() => undefined)
    })
  },
  { name: 'telemetry' }
)

/**
 * The route template of a request. A prefix's '/' route answers both '/blogs' and '/blogs/',
 * but Fastify reports the bare prefix for both: name the trailing-slash form (the canonical
 * list URL) as it is.
 */
export function routeOf(request: FastifyRequest): string | undefined {
  // Asked for several times per request (span name, metric, log line): worked out once.
  const t = request.timings as RequestTimings | null
  if (t && t.route !== undefined) return t.route ?? undefined
  const route = routeTemplate(request)
  if (t) t.route = route ?? null
  return route
}

function routeTemplate(request: FastifyRequest): string | undefined {
  const route = request.routeOptions.url
  if (route === undefined) return undefined
  const url = request.url
  if (url.length > route.length && url.charCodeAt(route.length) === 47 /* / */ && url.startsWith(route)) {
    const next = url.charCodeAt(route.length + 1)
    if (Number.isNaN(next) || next === 63 /* ? */) return route + '/'
  }
  return route
}

/**
 * The http instrumentation made the server span: name it by route through its RPC metadata
 * (it reads http.route from there for the span and the duration metric): no per-hook spans.
 */
function nameHttpSpans(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const active = context.active()
    const span = trace.getSpan(active)
    if (span) {
      request.otelSpan = span
      ;(request as Traced)[kContext] = active
      const rpc = getRPCMetadata(active)
      const route = routeOf(request)
      if (rpc?.type === RPCType.HTTP && route !== undefined) rpc.route = route
    }
    done()
  })
}

/** The server span of a kept request: its name, instants and the HTTP semantic-convention attributes. */
function serverSpanData(request: FastifyRequest, t: RequestTimings, route: string | undefined, attributes: Attributes, trusted: (ip: string) => boolean): ServerSpanData {
  const rt = t.trace!
  const host = request.host
  const colon = host.lastIndexOf(':')
  const server: Attributes = {
    ...attributes,
    [ATTR.urlPath]: request.url.split('?', 1)[0],
    [ATTR.serverAddress]: colon > 0 ? host.slice(0, colon) : host,
    [ATTR.networkProtocolVersion]: request.raw.httpVersion,
    [ATTR.clientAddress]: request.ip,
    [ATTR.processTimeMs]: processTimeMs(t)
  }
  if (colon > 0) server[ATTR.serverPort] = Number(host.slice(colon + 1))
  const ua = request.headers['user-agent']
  if (ua) server[ATTR.userAgent] = ua
  // A load test's run id, from its baggage: trusted callers only, like their sampled flag.
  const testId = propagation.getBaggage(rt.parent)?.getEntry(LOAD_TEST_BAGGAGE)?.value
  if (testId && trusted(request.ip)) server[ATTR.loadTestId] = testId.slice(0, 128)
  const status = attributes[ATTR.httpResponseStatusCode] as number
  return { name: serverSpanName(request, route), start: t.start, end: t.end!, attributes: server, error: status >= 500 }
}

export interface TraceIds {
  traceId: string
  spanId: string
  /** Kept (exported) or not: the traceresponse flag. Undecided until the response is sent. */
  sampled: boolean
}

/** The ids of the request's trace as traceresponse and the log line give them; undefined when untraced. */
export function traceIdsOf(request: FastifyRequest): TraceIds | undefined {
  const rt = request.timings?.trace
  if (rt) return { traceId: rt.traceId, spanId: rt.spanId, sampled: rt.kept !== null && rt.kept !== undefined }
  const sc = request.otelSpan?.spanContext()
  if (sc && isSpanContextValid(sc)) return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) !== 0 }
  return undefined
}

const serverSpanName = (request: FastifyRequest, route = routeOf(request)) => (route ? `${request.method} ${route}` : request.method)

/** The keep decision of a request traced by the app, once (at onSend, or at onResponse without one). */
function decide(request: FastifyRequest, status: number, runtime: TelemetryRuntime): void {
  const t = request.timings
  const rt = t.trace!
  if (rt.kept !== undefined) return
  const name = serverSpanName(request)
  // The server span's loop-busy time ends where the span does, not when its spans are made.
  const end = t.end ?? now()
  if (rt.recording) rt.loopMs = busyMs(t.start, rt.idleAtStart, end, idleMs())
  rt.kept = runtime.keep.decide(name, end - t.start, status, rt.parent, rt.trustedSampledParent, rt.traceId, end)
  // Not kept now, but it may be after a second look: its S3 spans wait with it.
  if (rt.kept === null && runtime.keep.worthReview(name, end - t.start)) rt.review = runtime.tail.setAside(rt.traceId)
  else runtime.tail.decide(rt.traceId, rt.kept !== null)
}

/**
 * Server spans made from Fastify hooks, instead of the http instrumentation (measured cheaper:
 * docs/decisions/0002). Every request is timed as plain data (./request-trace.ts) with ids given
 * out at once; at its end KeepPolicy decides whether its trace is kept (./keep.ts), and only then
 * are its spans made, with the instants recorded. Follows the stable HTTP semantic conventions:
 * span name `METHOD route`, http.* / url.* attributes, and the http.server.request.duration
 * histogram (every request, kept or not).
 */
function traceRequests(fastify: FastifyInstance, runtime: TelemetryRuntime, trusted: (ip: string) => boolean, isUntraced: (url: string) => boolean): void {
  const requestDuration = appHistograms.histogram({
    name: METRIC.httpServerDuration,
    unit: 's',
    description: 'Duration of HTTP server requests',
    boundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
  })
  const { ids, tail } = runtime
  // With the sampler at always_off no trace is kept: requests get ids (traceresponse, logs) and
  // record nothing.
  const recording = !runtime.keep.off
  // The headers the configured propagators read (traceparent, tracestate, baggage by default).
  const fields = propagation.fields()
  const carriesContext = (headers: Record<string, unknown>) => {
    for (const f of fields) if (headers[f] !== undefined) return true
    return false
  }

  fastify.addHook('onRequest', (request: Traced, _reply, done) => {
    if (isUntraced(request.url)) return done()
    // Most requests carry no trace context: skip the propagators' parsing for them.
    let parent = carriesContext(request.headers) ? propagation.extract(ROOT_CONTEXT, request.headers) : ROOT_CONTEXT
    const remote = trace.getSpanContext(parent)
    // request.ip: the client's address, through proxies only as far as TRUST_PROXY allows.
    const trustedParent = remote !== undefined && trusted(request.ip)
    if (remote && !trustedParent) parent = parent.setValue(UNTRUSTED_PARENT, true)
    const traceId = remote?.traceId ?? ids.generateTraceId()
    const spanId = ids.generateSpanId()
    const rt = new RequestTrace(traceId, spanId, parent, trustedParent && (remote!.traceFlags & TraceFlags.SAMPLED) !== 0, recording)
    request.timings.trace = rt
    if (recording) tail.open(traceId)
    // Log lines and other instrumentations' spans (S3 calls) see the request as their parent;
    // those spans wait in the tail processor for the keep decision.
    const ctx = trace.setSpanContext(parent, { traceId, spanId, traceFlags: recording ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: false })
    request[kContext] = ctx
    done()
  })

  fastify.addHook('onResponse', (request, reply, done) => {
    const t = request.timings
    const rt = t?.trace
    if (!rt) return done()
    const status = reply.statusCode
    // The instant onSend took (a request answered without one, e.g. aborted, ends here).
    t.end ??= now()
    decide(request, status, runtime)
    const route = routeOf(request)
    const attributes: Attributes = { [ATTR.httpRequestMethod]: request.method, [ATTR.urlScheme]: request.protocol, [ATTR.httpResponseStatusCode]: status }
    if (route) attributes[ATTR.httpRoute] = route
    if (status >= 500) attributes[ATTR.errorType] = String(status)
    requestDuration.record((t.end - t.start) / 1000, attributes)
    if (rt.kept) {
      const data = serverSpanData(request, t, route, attributes, trusted)
      measured('spans', () => runtime.kept.write(rt, data))
    } else if (rt.review) {
      // Not kept now; if few of its route's requests after it are slower, it is kept after all.
      const data = serverSpanData(request, t, route, attributes, trusted)
      const others = rt.review
      rt.review = undefined
      const log = request.log
      runtime.keep.holdForReview(data.name, t.end - t.start, t.end, () => {
        rt.kept = 'slow_late'
        measured('spans', () => runtime.kept.write(rt, data))
        runtime.tail.pass(others)
        log.info({ trace_id: rt.traceId, span_id: rt.spanId, route, responseTime: processTimeMs(t), kept: rt.kept }, 'trace kept after the response')
      })
    }
    done()
  })
}
