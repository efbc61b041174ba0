import {
  context, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type TracerProvider
} from '@opentelemetry/api'
import { getRPCMetadata, RPCType } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { hrTime, ms2, now } from './clock'
import { endFailedPoolWaits } from './db'
import { ATTR, METRIC, SCOPE } from './names'
import { UNTRUSTED_PARENT } from './trust'
import type { TelemetryRuntime } from './runtime'
import { newTimings, timingStore, type RequestTimings } from './timing'
import { recordError, tracer } from './tracer'

declare module 'fastify' {
  interface FastifyRequest {
    /** The HTTP server span of this request (undefined when tracing is off or not traced). */
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

    fastify.addHook('onRequest', (request, _reply, done) => {
      request.timings = newTimings()
      done()
    })
    if (runtime?.serverSpans === 'app') traceRequests(fastify, trustedTraceSource, isUntraced)
    else if (runtime?.serverSpans === 'http') nameHttpSpans(fastify)

    // Every handler runs in the request's timing store and, when traced, in its span's context
    // (also when it starts after an asynchronous body read, where the hook's context is lost).
    fastify.addHook('onRoute', (route) => {
      const handler = route.handler
      route.handler = function (request: Traced, reply) {
        const ctx = request[kContext]
        const run = () => handler.call(this, request, reply)
        return timingStore.run(request.timings, ctx ? () => context.with(ctx, run) : run)
      }
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
      const span = request.otelSpan
      if (span) {
        span.setAttribute(ATTR.processTimeMs, total)
        const sc = span.spanContext()
        if (isSpanContextValid(sc)) reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`)
      }
      done(null, payload)
    })

    fastify.addHook('onError', (request, reply, err, done) => {
      const span = request.otelSpan
      // Client errors (4xx) are the client's, not the server's: only 5xx mark the span.
      if (span && (reply.statusCode >= 500 || !(err as { statusCode?: number }).statusCode)) recordError(span, err)
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
      const rpc = getRPCMetadata(active)
      const route = routeOf(request)
      if (rpc?.type === RPCType.HTTP && route !== undefined) rpc.route = route
    }
    done()
  })
}

/**
 * Server spans made from Fastify hooks, instead of the http instrumentation (measured cheaper:
 * see README "Performance"). Follows the stable HTTP semantic conventions: span name
 * `METHOD route`, http.* / url.* attributes, and the http.server.request.duration histogram.
 */
function traceRequests(fastify: FastifyInstance, trusted: (ip: string) => boolean, isUntraced: (url: string) => boolean): void {
  const requestDuration = metrics.getMeter(SCOPE).createHistogram(METRIC.httpServerDuration, {
    unit: 's',
    description: 'Duration of HTTP server requests',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] }
  })

  fastify.addHook('onRequest', (request: Traced, _reply, done) => {
    if (isUntraced(request.url)) return done()
    let parent = propagation.extract(ROOT_CONTEXT, request.headers)
    // request.ip: the client's address, through proxies only as far as TRUST_PROXY allows.
    if (parent !== ROOT_CONTEXT && !trusted(request.ip)) parent = parent.setValue(UNTRUSTED_PARENT, true)
    const route = routeOf(request)
    const method = request.method
    const startTime = hrTime(request.timings.start)
    const span = tracer.startSpan(route ? `${method} ${route}` : method, { kind: SpanKind.SERVER, startTime }, parent)
    if (span.isRecording()) {
      const host = request.host
      const colon = host.lastIndexOf(':')
      span.setAttributes({
        [ATTR.httpRequestMethod]: method,
        [ATTR.urlPath]: request.url.split('?', 1)[0],
        [ATTR.urlScheme]: request.protocol,
        [ATTR.serverAddress]: colon > 0 ? host.slice(0, colon) : host,
        [ATTR.networkProtocolVersion]: request.raw.httpVersion,
        [ATTR.clientAddress]: request.ip
      })
      if (colon > 0) span.setAttribute(ATTR.serverPort, Number(host.slice(colon + 1)))
      if (route) span.setAttribute(ATTR.httpRoute, route)
      const ua = request.headers['user-agent']
      if (ua) span.setAttribute(ATTR.userAgent, ua)
    }
    request.otelSpan = span
    const ctx = trace.setSpan(parent, span)
    request[kContext] = ctx
    // The synchronous rest of the lifecycle runs in the span's context (handlers: onRoute above).
    context.with(ctx, done)
  })

  fastify.addHook('onResponse', (request, reply, done) => {
    const span = request.otelSpan
    if (!span) return done()
    const status = reply.statusCode
    const attributes: Attributes = { [ATTR.httpRequestMethod]: request.method, [ATTR.urlScheme]: request.protocol, [ATTR.httpResponseStatusCode]: status }
    const route = routeOf(request)
    if (route) attributes[ATTR.httpRoute] = route
    if (status >= 500) {
      attributes[ATTR.errorType] = String(status)
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.setAttributes(attributes)
    // The instant onSend took (a request answered without one, e.g. aborted, ends here).
    const t = request.timings
    t.end ??= now()
    span.end(hrTime(t.end))
    requestDuration.record((t.end - t.start) / 1000, attributes)
    done()
  })
}
