import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'

export interface Scenario {
  method: 'GET' | 'POST'
  path: string
  body?: Buffer
  headers?: Record<string, string>
}

export interface Sample {
  latencyMs: number
  status: number
  /** The trace id the harness sent (empty with `--traceparent none`). */
  traceId: string
  /** The response's X-Process-Time in ms (NaN without one). */
  processMs: number
  /** The trace id traceresponse named, and whether it said the trace was kept (flags 01). */
  responseTraceId: string
  kept: boolean
}

/** The timing and trace headers of a response (header names lower-case). */
function fromHeaders(headers: Record<string, unknown>): Pick<Sample, 'processMs' | 'responseTraceId' | 'kept'> {
  const pt = headers['x-process-time']
  const tr = String(headers.traceresponse ?? '').split('-')
  return { processMs: typeof pt === 'string' ? Number(pt.replace(/ms$/, '')) : NaN, responseTraceId: tr[1] ?? '', kept: tr[3] === '01' }
}

/** autocannon hands headers over as a flat [name, value, ...] list. */
function headerObject(raw: unknown): Record<string, unknown> {
  if (!Array.isArray(raw)) return (raw as Record<string, unknown>) ?? {}
  const out: Record<string, unknown> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i]).toLowerCase()] = raw[i + 1]
  return out
}

export interface LoadResult {
  samples: Sample[]
  durationS: number
  errors: number
  /** Open model only: requests that were due but could not be sent (too many outstanding). */
  dropped: number
}

/**
 * A sampled W3C traceparent, so the app traces the request and the harness knows its trace id.
 * Off (`--traceparent none`) to measure the app's own sampler: a sampled parent overrides it.
 */
let propagate = true
export function setPropagation(on: boolean): void {
  propagate = on
}
function traceparent(): { header: string | undefined; traceId: string } {
  if (!propagate) return { header: undefined, traceId: '' }
  const traceId = randomBytes(16).toString('hex')
  return { header: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, traceId }
}
const withTrace = (headers: Record<string, string> | undefined, header: string | undefined) =>
  header ? { ...(headers ?? {}), traceparent: header } : { ...(headers ?? {}) }

/**
 * Closed model, as fast as possible: autocannon with N connections. Each connection sends one
 * request at a time, so a response belongs to the last request its connection sent.
 */
export async function maxLoad(url: string, s: Scenario, connections: number, durationS: number): Promise<LoadResult> {
  const samples: Sample[] = []
  type Ctx = { traceId?: string; t0?: number }
  const result = await autocannon({
    url,
    connections,
    duration: durationS,
    pipelining: 1,
    requests: [
      {
        method: s.method,
        path: s.path,
        ...(s.body ? { body: s.body } : {}),
        setupRequest: (req: Record<string, unknown>, context: Ctx) => {
          const tp = traceparent()
          context.traceId = tp.traceId
          context.t0 = performance.now()
          return { ...req, headers: withTrace(s.headers, tp.header) }
        },
        onResponse: (status: number, _body: unknown, context: Ctx, headers: unknown) => {
          if (context.t0 !== undefined) samples.push({ latencyMs: performance.now() - context.t0, status, traceId: context.traceId ?? '', ...fromHeaders(headerObject(headers)) })
        }
      } as unknown as autocannon.Request
    ]
  })
  return { samples, durationS: result.duration, errors: result.errors + result.timeouts, dropped: 0 }
}

const agent = (max: number) => new http.Agent({ keepAlive: true, maxSockets: max })

function send(base: URL, s: Scenario, ag: http.Agent): Promise<Sample> {
  const tp = traceparent()
  const t0 = performance.now()
  return new Promise((resolve) => {
    const req = http.request(
      { host: base.hostname, port: base.port, path: s.path, method: s.method, agent: ag, headers: withTrace(s.headers, tp.header) },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ latencyMs: performance.now() - t0, status: res.statusCode ?? 0, traceId: tp.traceId, ...fromHeaders(res.headers) }))
      }
    )
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve({ latencyMs: performance.now() - t0, status: 0, traceId: tp.traceId, processMs: NaN, responseTraceId: '', kept: false }))
    req.end(s.body)
  })
}

/** Closed model with think time, like the k6 scripts: each user sends, waits, sleeps, repeats. */
export async function closedLoad(url: string, s: Scenario, users: number, durationS: number, thinkMs: number): Promise<LoadResult> {
  const base = new URL(url)
  const ag = agent(users)
  const samples: Sample[] = []
  const t0 = performance.now()
  const end = t0 + durationS * 1000
  await Promise.all(
    Array.from({ length: users }, async () => {
      while (performance.now() < end) {
        samples.push(await send(base, s, ag))
        await sleep(thinkMs)
      }
    })
  )
  ag.destroy()
  return { samples, durationS: (performance.now() - t0) / 1000, errors: samples.filter((x) => x.status === 0).length, dropped: 0 }
}

/**
 * Open model: one request every 1/rate s whatever the server does, so slow responses do not
 * slow the arrivals (autocannon's -R sends each second's quota in a burst). Requests that are
 * due while maxOutstanding are in flight are counted as dropped, not queued.
 */
export async function rateLoad(url: string, s: Scenario, rate: number, durationS: number, maxOutstanding = 1000): Promise<LoadResult> {
  const base = new URL(url)
  const ag = agent(maxOutstanding)
  const samples: Sample[] = []
  const pending = new Set<Promise<void>>()
  let dropped = 0
  const interval = 1000 / rate
  const t0 = performance.now()
  const total = Math.floor(rate * durationS)
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    if (pending.size >= maxOutstanding) {
      dropped++
      continue
    }
    const p: Promise<void> = send(base, s, ag).then((x) => {
      samples.push(x)
      pending.delete(p)
    })
    pending.add(p)
  }
  await Promise.all(pending)
  ag.destroy()
  return { samples, durationS: (performance.now() - t0) / 1000, errors: samples.filter((x) => x.status === 0).length, dropped }
}
