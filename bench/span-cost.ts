// npm run bench:spans -- [--configs off,nosample,10pct,on-noexport,on-nometrics,on] [--repeat 7]
//   [--pages 20000] [--warmup 5000] [--page-us 863] [--profile on]
// The telemetry's own CPU cost per list page, without the page: a child process starts the SDK
// exactly as the app does (src/telemetry/sdk.ts startTelemetry: the app's sampler, id
// generator, timing processor, batch processor, OTLP/protobuf exporter to a sink in this
// process), then makes the telemetry calls of one list page, N times: the server span and its
// attributes (src/telemetry/plugin.ts), pool.acquire and view.render (withSpan), the SELECT span
// as src/telemetry/sql.ts makes it, and the page's three histogram records. Its CPU time (all
// threads, export included) over the pages, minus the same loop with OTEL_SDK_DISABLED, is what
// the SDK costs a page: a floor under what the app pays, measured with no database, HTTP or
// template work around it, so far less noisy than the load test (`npm run bench`).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { context, metrics, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api'
import { median } from '../src/lib/stats'
import { hrTime, now } from '../src/telemetry/clock'
import { ATTR, SCOPE, SPAN } from '../src/telemetry/names'
import { startTelemetry } from '../src/telemetry/sdk'
import { tracer, withSpan } from '../src/telemetry/tracer'
import { startOtlpSink } from './lib/app'
import { decodeTraces } from './lib/spans'
import { readProfileRows } from './profile'

/** Named environments for the child, as in bench/presets.ts. */
const CONFIGS: Record<string, Record<string, string>> = {
  off: { OTEL_SDK_DISABLED: 'true' },
  // Every page unsampled: the sampling decision, a non-recording span, contexts, metrics.
  nosample: { OTEL_TRACES_SAMPLER: 'always_off' },
  'nosample-nometrics': { OTEL_TRACES_SAMPLER: 'always_off', OTEL_METRICS_EXPORTER: 'none' },
  '10pct': { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  // Span objects and processors, nothing exported.
  'on-noexport': { OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_TRACES_EXPORTER: 'none' },
  'on-nometrics': { OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_METRICS_EXPORTER: 'none' },
  on: { OTEL_TRACES_SAMPLER: 'parentbased_always_on' }
}

interface ChildResult {
  pages: number
  cpuUs: number
  /** The measured pages' window on the monotonic clock (µs), to cut a CPU profile to it. */
  fromUs: number
  toUs: number
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

async function child(pages: number, warmup: number): Promise<void> {
  // Started before any span is made, as --require ./dist/otel/bootstrap.js does for the app (the
  // API's tracers are proxies that follow the provider registered here).
  startTelemetry({ serverTimings: { enabled: false, pollMs: 1000 } })

  // The SELECT span as captured from a real list page.
  const selectAttributes = {
    'db.namespace': 'blog',
    'server.address': '127.0.0.1',
    'server.port': 3306,
    'db.system.name': 'mysql',
    'db.query.text':
      'SELECT `id`, `title`, `author`, LEFT(`content`, ?) AS `excerpt`, CHAR_LENGTH(`content`) > ? AS `truncated`, `image_loc`, `thumb_loc`, DATE_FORMAT(`modified_dt`, ?) AS `modified_iso` FROM `blog` ORDER BY `modified_dt` DESC, `id` DESC LIMIT ? OFFSET ?'
  }
  const meter = metrics.getMeter(SCOPE)
  const requestDuration = meter.createHistogram('http.server.request.duration', { unit: 's' })
  const operationDuration = meter.createHistogram('db.client.operation.duration', { unit: 's' })
  const waitTime = meter.createHistogram('db.client.connection.wait_time', { unit: 's' })
  const poolName = { 'db.client.connection.pool.name': 'blog' }
  const poolSpanAttributes = { 'db.system.name': 'mysql', 'db.namespace': 'blog', ...poolName }
  const selectMetricAttributes = { 'db.system.name': 'mysql', 'db.namespace': 'blog', 'db.operation.name': 'SELECT' }
  const headers: Record<string, string> = { host: '127.0.0.1:3000', 'user-agent': 'autocannon/9.0.0', accept: '*/*' }

  const page = async (): Promise<void> => {
    const parent = propagation.extract(ROOT_CONTEXT, headers)
    const start = now()
    const span = tracer.startSpan('GET /blogs/', { kind: SpanKind.SERVER, startTime: hrTime(start) }, parent)
    if (span.isRecording()) {
      span.setAttributes({
        'http.request.method': 'GET',
        'url.path': '/blogs/',
        'url.scheme': 'http',
        'server.address': '127.0.0.1',
        'network.protocol.version': '1.1',
        'client.address': '127.0.0.1'
      })
      span.setAttribute('server.port', 3000)
      span.setAttribute('http.route', '/blogs/')
      span.setAttribute('user_agent.original', headers['user-agent']!)
    }
    await context.with(trace.setSpan(parent, span), async () => {
      await withSpan(SPAN.poolAcquire, poolSpanAttributes, async () => undefined)
      waitTime.record(0.0001, poolName)
      // src/telemetry/sql.ts: a statement of an unsampled request makes no span.
      const sqlStart = now()
      if (trace.getActiveSpan()?.isRecording()) {
        tracer.startSpan('SELECT', { kind: SpanKind.CLIENT, startTime: hrTime(sqlStart), attributes: selectAttributes }).end(hrTime(now()))
      }
      operationDuration.record(0.0005, selectMetricAttributes)
      await withSpan(SPAN.viewRender, { [ATTR.viewName]: 'blogs/index' }, async () => undefined)
    })
    const attributes = { 'http.request.method': 'GET', 'url.scheme': 'http', 'http.response.status_code': 200, 'http.route': '/blogs/' }
    span.setAttributes(attributes)
    const end = now()
    span.setAttribute(ATTR.processTimeMs, Number((end - start).toFixed(2)))
    span.end(hrTime(end))
    requestDuration.record(0.002, attributes)
  }

  const flush = async () => {
    const provider = trace.getTracerProvider() as { getDelegate?: () => { forceFlush?: () => Promise<void> } }
    await provider.getDelegate?.().forceFlush?.()
  }
  // Between batches the loop turns, so the batch processor's timer and exports run as they would.
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await page()
      if (i % 64 === 63) await new Promise<void>((r) => setImmediate(r))
    }
    await flush()
  }
  await run(warmup)
  const fromUs = monotonicUs()
  const before = process.cpuUsage()
  await run(pages)
  const used = process.cpuUsage(before)
  const toUs = monotonicUs()
  const result: ChildResult = { pages, cpuUs: used.user + used.system, fromUs, toUs }
  // Everything was flushed above; the SDK's own exit hook shuts it down.
  process.stdout.write(JSON.stringify(result) + '\n')
}

function runChild(env: Record<string, string>, pages: number, warmup: number, nodeArgs: string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...nodeArgs, __filename, '--child', '--pages', String(pages), '--warmup', String(warmup)], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err = (err + d).slice(-4000)))
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? ''
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`span-cost child exited ${code}:\n${err}`))
      resolve(JSON.parse(line) as ChildResult)
    })
  })
}

/** Self time by package of one config's measured pages (bench/profile.ts groups), µs per page. */
async function profileOne(name: string, env: Record<string, string>, pages: number, warmup: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'span-cost-prof-'))
  try {
    const res = await runChild(env, pages, warmup, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
    const { rows, totalUs } = readProfileRows(dir, res.fromUs, res.toUs)
    console.log(`\nCPU profile of ${name} (main thread, measured pages only), µs per page by package:\n`)
    for (const [g, us] of rows) if (us / pages >= 0.05) console.log(`${(us / pages).toFixed(2).padStart(8)}  ${g}`)
    console.log(`${(totalUs / pages).toFixed(2).padStart(8)}  total`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean', default: false },
      configs: { type: 'string', default: 'off,nosample,10pct,on-noexport,on-nometrics,on' },
      repeat: { type: 'string', default: '7' },
      pages: { type: 'string', default: '20000' },
      warmup: { type: 'string', default: '5000' },
      // The CPU per list page of the app with tracing off (`npm run bench`), to state costs as a share of it.
      'page-us': { type: 'string' },
      // One more run of this config under --cpu-prof: its self time by package, µs per page.
      profile: { type: 'string' }
    }
  })
  const pages = Number(values.pages)
  const warmup = Number(values.warmup)
  if (values.child) return child(pages, warmup)
  const envFor = (name: string, sinkUrl: string) => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
    OTEL_BSP_SCHEDULE_DELAY: '500',
    OTEL_METRIC_EXPORT_INTERVAL: '10000',
    ...CONFIGS[name]
  })

  const names = values.configs.split(',').map((s) => s.trim())
  for (const n of [...names, values.profile ?? 'off']) if (!CONFIGS[n]) throw new Error(`unknown config ${n}; known: ${Object.keys(CONFIGS).join(', ')}`)
  const sink = await startOtlpSink()
  const perPage = new Map<string, number[]>(names.map((n) => [n, []]))
  // What reached the sink, per page made (warm-up included): shows each config exported what it should.
  const exported = new Map<string, number[]>(names.map((n) => [n, []]))
  const repeat = Number(values.repeat)
  try {
    for (let r = 0; r < repeat; r++) {
      for (const name of names) {
        const res = await runChild(envFor(name, sink.url), pages, warmup)
        exported.get(name)!.push(decodeTraces(sink.take()).length / (pages + warmup))
        perPage.get(name)!.push(res.cpuUs / res.pages)
        process.stderr.write(`round ${r + 1}/${repeat} ${name}: ${(res.cpuUs / res.pages).toFixed(1)} µs/page\n`)
      }
    }
    if (values.profile) await profileOne(values.profile, envFor(values.profile, sink.url), pages, warmup)
  } finally {
    await sink.close()
  }

  const base = perPage.get('off') ? median(perPage.get('off')!) : undefined
  const pageUs = values['page-us'] ? Number(values['page-us']) : undefined
  console.log(`\nTelemetry CPU per list page (4 spans, 3 histogram records), ${pages} pages x ${repeat} rounds, medians (min-max):\n`)
  console.log(`| config | µs per page | over off${pageUs ? ` | share of a ${pageUs} µs page` : ''} | spans exported per page |`)
  console.log(`| --- | --- | ---${pageUs ? ' | ---' : ''} | --- |`)
  for (const name of names) {
    const xs = perPage.get(name)!
    const m = median(xs)
    const over = base !== undefined && name !== 'off' ? m - base : undefined
    const range = `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`
    const share = pageUs && over !== undefined ? ` | ${((over / pageUs) * 100).toFixed(1)}%` : pageUs ? ' | ' : ''
    console.log(`| ${name} | ${m.toFixed(1)} (${range}) | ${over !== undefined ? over.toFixed(1) : ''}${share} | ${median(exported.get(name)!).toFixed(2)} |`)
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
