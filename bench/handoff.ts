// npm run bench:handoff -- [--traces 100000] [--repeat 7]
// Would encoding a kept trace on a worker thread take work off the event loop? A worker cannot
// read the main thread's objects: the spans must cross as a message, and postMessage serializes
// them on the sending thread. This prices, on the main thread alone (process.threadCpuUsage), one
// kept list page's spans (the server span, pool.acquire, the SELECT, view.render, written from a
// record as the app writes them) handed over in each way a worker could take them, against
// encoding them here as the app does (src/telemetry/otlp-proto.ts encodeSpanEntry):
//   encode     OTLP/protobuf bytes per span, here (today)
//   post-plain the spans as plain objects (what an encoder needs: ids, name, kind, instants,
//              attributes, status), one postMessage per trace
//   post-batch the same plain objects, one postMessage per 32 traces (as a batching exporter would)
//   post-bytes the encoded bytes, one postMessage per trace (the bytes transferred, not copied)
//   serialize  v8.serialize of the plain objects (the clone's own work without the port)
// The worker only counts what it receives (so all threads' CPU, also printed, is the hand-over
// alone: encoding the spans there would come on top). Medians of --repeat runs of --traces traces.
import { parseArgs } from 'node:util'
import { serialize } from 'node:v8'
import { Worker } from 'node:worker_threads'
import { SpanKind, ROOT_CONTEXT, type Context } from '@opentelemetry/api'
import { emptyResource } from '@opentelemetry/resources'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace'
import { median } from '../src/lib/stats'
import { now } from '../src/telemetry/clock'
import { KeptSpans } from '../src/telemetry/kept-spans'
import { ATTR, SCOPE, SPAN } from '../src/telemetry/names'
import { encodeSpanEntry } from '../src/telemetry/otlp-proto'
import { RequestTrace } from '../src/telemetry/request-trace'
import { PooledIdGenerator } from '../src/telemetry/ids'

const { values } = parseArgs({
  options: { traces: { type: 'string', default: '100000' }, repeat: { type: 'string', default: '7' } }
})
const TRACES = Number(values.traces)
const REPEAT = Number(values.repeat)

/** Collects the spans KeptSpans hands to its processor. */
class Capture implements SpanProcessor {
  spans: ReadableSpan[] = []
  onStart(_span: Span, _ctx: Context): void {}
  onEnd(span: ReadableSpan): void {
    this.spans.push(span)
  }
  forceFlush = async () => undefined
  shutdown = async () => undefined
}

const ids = new PooledIdGenerator()
const capture = new Capture()
const kept = new KeptSpans({ resource: emptyResource(), scope: { name: SCOPE }, limits: {} }, capture, () => ids.generateSpanId())
const SELECT =
  'SELECT `id`, `title`, `author`, LEFT(`content`, 300) AS `excerpt`, CHAR_LENGTH(`content`) > 300 AS `truncated`, `image_loc`, `thumb_loc`, DATE_FORMAT(`modified_dt`, \'%Y-%m-%dT%H:%i:%sZ\') AS `modified_iso` FROM `blog` ORDER BY `modified_dt` DESC, `id` DESC LIMIT 30 OFFSET 0'
const db = { [ATTR.dbSystemName]: 'mysql', [ATTR.dbNamespace]: 'blog' }

/** One kept list page's spans, as KeptSpans writes them. */
function listPageSpans(): ReadableSpan[] {
  const start = now()
  const rt = new RequestTrace(ids.generateTraceId(), ids.generateSpanId(), ROOT_CONTEXT, false)
  rt.finish(rt.begin(SPAN.poolAcquire, SpanKind.INTERNAL, start + 0.1, { ...db, 'db.client.connection.pool.name': 'blog' }, true)!, start + 0.12)
  const select = rt.begin('SELECT blog', SpanKind.CLIENT, start + 0.13, { ...db, [ATTR.serverAddress]: '127.0.0.1', [ATTR.serverPort]: 3306, 'db.operation.name': 'SELECT', 'db.collection.name': 'blog' }, true)!
  select.sql = SELECT
  rt.finish(select, start + 0.6)
  rt.finish(rt.begin(SPAN.viewRender, SpanKind.INTERNAL, start + 0.62, { 'blog.view.template': 'blogs/list.ejs' }, false)!, start + 0.8)
  rt.loopMs = 0.7
  rt.kept = 'sampler'
  kept.write(rt, {
    name: 'GET /blogs/',
    start,
    end: start + 0.85,
    error: false,
    attributes: {
      [ATTR.httpRequestMethod]: 'GET', [ATTR.urlScheme]: 'http', [ATTR.httpResponseStatusCode]: 200, [ATTR.httpRoute]: '/blogs/',
      [ATTR.urlPath]: '/blogs/', [ATTR.serverAddress]: '127.0.0.1', [ATTR.serverPort]: 3000, [ATTR.networkProtocolVersion]: '1.1',
      [ATTR.clientAddress]: '127.0.0.1', [ATTR.processTimeMs]: 0.85, [ATTR.userAgent]: 'autocannon/8.0.0'
    }
  })
  const spans = capture.spans
  capture.spans = []
  return spans
}

/** What an encoder on another thread needs of a span, as plain data. */
function plain(s: ReadableSpan) {
  const c = s.spanContext()
  return {
    traceId: c.traceId, spanId: c.spanId, parentSpanId: s.parentSpanContext?.spanId, name: s.name, kind: s.kind,
    start: s.startTime, end: s.endTime, attributes: s.attributes, status: s.status.code
  }
}

const processUs = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}
const threadUs = () => {
  const u = process.threadCpuUsage()
  return u.user + u.system
}

async function main(): Promise<void> {
  const worker = new Worker("let n = 0; require('node:worker_threads').parentPort.on('message', () => { n++ })", { eval: true })
  // A pool of distinct traces, so no step sees the same objects every time.
  const pool = Array.from({ length: 256 }, listPageSpans)
  let batch: ReturnType<typeof plain>[] = []
  const ways: Record<string, (spans: ReadableSpan[]) => void> = {
    encode: (spans) => {
      for (const s of spans) encodeSpanEntry(s)
    },
    'post-plain': (spans) => worker.postMessage(spans.map(plain)),
    'post-batch': (spans) => {
      for (const s of spans) batch.push(plain(s))
      if (batch.length >= 32 * spans.length) {
        worker.postMessage(batch)
        batch = []
      }
    },
    'post-bytes': (spans) => {
      const bytes = spans.map((s) => new Uint8Array(encodeSpanEntry(s).encoded))
      worker.postMessage(bytes, bytes.map((b) => b.buffer))
    },
    serialize: (spans) => {
      serialize(spans.map(plain))
    }
  }
  const perTrace: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]))
  const allThreads: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]))
  for (let r = 0; r <= REPEAT; r++) {
    for (const [name, way] of Object.entries(ways)) {
      const from = threadUs()
      const fromAll = processUs()
      for (let i = 0; i < TRACES; i++) way(pool[i & 255]!)
      const us = (threadUs() - from) / TRACES
      // Let the worker drain (its share counts in all threads) before the next way is timed.
      await new Promise((resolve) => setTimeout(resolve, 300))
      // Round 0 warms every path up.
      if (r > 0) {
        perTrace[name]!.push(us)
        allThreads[name]!.push((processUs() - fromAll) / TRACES)
      }
    }
  }
  await worker.terminate()
  const spans = pool[0]!.length
  const encode = median(perTrace.encode!)
  console.log(`${spans} spans per trace, ${TRACES} traces x ${REPEAT} runs; CPU per kept trace, medians (min-max)`)
  console.log(`  ${'way'.padEnd(11)} ${'main thread'.padStart(24)}  ${'of encode'.padStart(9)}  ${'all threads'.padStart(11)}`)
  for (const [name, list] of Object.entries(perTrace)) {
    const m = median(list)
    const range = `(${Math.min(...list).toFixed(2)}-${Math.max(...list).toFixed(2)})`
    console.log(`  ${name.padEnd(11)} ${m.toFixed(2).padStart(6)} us ${range.padStart(14)}  ${(m / encode).toFixed(2).padStart(8)}x  ${median(allThreads[name]!).toFixed(2).padStart(8)} us`)
  }
}

void main()
