import {
  context, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type TracerProvider
} from '@opentelemetry/api'
import { getRPCMetadata, RPCType } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isUntraced, SCOPE } from './constants'
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
}

const kContext = Symbol('blog.otelContext')
type Traced = FastifyRequest & { [kContext]?: Context }
const ms = (n: number) => n.toFixed(2)

/**
 * A request's telemetry in one place: its server span (made here, or named here when the http
 * instrumentation made it), the timing store its handler runs in, and the three response
 * headers: X-Process-Time, Server-Timing and W3C traceresponse.
 */
export default fp<TelemetryPluginOptions>(
  async (fastify, { runtime, serverTiming = true, trustedTraceSource = () => true }) => {
    fastify.decorateRequest('otelSpan', undefined)
    fastify.decorateRequest('timings', null as unknown as RequestTimings)

    fastify.addHook('onRequest', (request, _reply, done) => {
      request.timings = newTimings()
      done()
    })
    if (runtime?.serverSpans === 'app') traceRequests(fastify, trustedTraceSource)
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
      const total = reply.elapsedTime
      reply.header('X-Process-Time', `${ms(total)}ms`)
      const t = request.timings
      if (t && serverTiming) {
        reply.header(
          'Server-Timing',
          `db;dur=${ms(t.dbMs)};desc="${t.queries} queries", pool;dur=${ms(t.poolWaitMs)}, render;dur=${ms(t.renderMs)}, total;dur=${ms(total)}`
        )
      }
      const sc = request.otelSpan?.spanContext()
      if (sc && isSpanContextValid(sc)) reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`)
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
function traceRequests(fastify: FastifyInstance, trusted: (ip: string) => boolean): void {
  const requestDuration = metrics.getMeter(SCOPE).createHistogram('http.server.request.duration', {
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
    const span = tracer.startSpan(route ? `${method} ${route}` : method, { kind: SpanKind.SERVER }, parent)
    if (span.isRecording()) {
      const host = request.host
      const colon = host.lastIndexOf(':')
      span.setAttributes({
        'http.request.method': method,
        'url.path': request.url.split('?', 1)[0],
        'url.scheme': request.protocol,
        'server.address': colon > 0 ? host.slice(0, colon) : host,
        'network.protocol.version': request.raw.httpVersion,
        'client.address': request.ip
      })
      if (colon > 0) span.setAttribute('server.port', Number(host.slice(colon + 1)))
      if (route) span.setAttribute('http.route', route)
      const ua = request.headers['user-agent']
      if (ua) span.setAttribute('user_agent.original', ua)
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
    const attributes: Attributes = { 'http.request.method': request.method, 'url.scheme': request.protocol, 'http.response.status_code': status }
    const route = routeOf(request)
    if (route) attributes['http.route'] = route
    if (status >= 500) {
      attributes['error.type'] = String(status)
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.setAttributes(attributes)
    span.end()
    requestDuration.record(reply.elapsedTime / 1000, attributes)
    done()
  })
}
