import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'
import { freePorts, stackTools, startProcess, waitFor, waitHealthy, type Proc } from './process'
import type { JaegerTrace } from './trace'

/** A real Jaeger v2 (all-in-one, memory storage) on free loopback ports, for one test file. */
export interface Jaeger {
  proc: Proc
  /** Base URL of the query API and UI. */
  api: string
  /** OTLP receiver ports (gRPC and HTTP). */
  otlpGrpc: number
  otlpHttp: number
  /** The stored trace, or undefined while Jaeger does not have it. */
  trace(traceId: string): Promise<JaegerTrace | undefined>
  /** Waits until the trace is stored and `ready` holds for it. */
  waitForTrace(traceId: string, ready: (t: JaegerTrace) => boolean, timeoutMs?: number): Promise<JaegerTrace>
  stop(): Promise<void>
}

/** Jaeger v2 is a collector too: OTLP in, memory storage, the query API, a health check; nothing else. */
function config(ports: { grpc: number; http: number; queryHttp: number; queryGrpc: number; health: number }): string {
  return YAML.stringify({
    service: {
      extensions: ['jaeger_storage', 'jaeger_query', 'healthcheckv2'],
      pipelines: { traces: { receivers: ['otlp'], exporters: ['jaeger_storage_exporter'] } },
      telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } }
    },
    extensions: {
      healthcheckv2: { use_v2: true, http: { endpoint: `127.0.0.1:${ports.health}` } },
      jaeger_storage: { backends: { mem: { memory: { max_traces: 10000 } } } },
      jaeger_query: { storage: { traces: 'mem' }, http: { endpoint: `127.0.0.1:${ports.queryHttp}` }, grpc: { endpoint: `127.0.0.1:${ports.queryGrpc}` } }
    },
    receivers: { otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${ports.grpc}` }, http: { endpoint: `127.0.0.1:${ports.http}` } } } },
    exporters: { jaeger_storage_exporter: { trace_storage: 'mem' } }
  })
}

export async function startJaeger(name = 'jaeger'): Promise<Jaeger> {
  const { jaeger } = stackTools()
  const [grpc, http, queryHttp, queryGrpc, health] = (await freePorts(5)) as [number, number, number, number, number]
  const dir = mkdtempSync(path.join(os.tmpdir(), `blog-${name}-`))
  const file = path.join(dir, 'jaeger.yaml')
  writeFileSync(file, config({ grpc, http, queryHttp, queryGrpc, health }))
  const proc = startProcess(name, jaeger, ['--config', file], {}, dir)
  await waitHealthy(proc, `http://127.0.0.1:${health}/status`)
  const api = `http://127.0.0.1:${queryHttp}`
  const trace = async (traceId: string) => {
    const res = await fetch(`${api}/api/traces/${traceId}`)
    if (res.status !== 200) return undefined
    return ((await res.json()) as { data?: JaegerTrace[] }).data?.[0]
  }
  return {
    proc,
    api,
    otlpGrpc: grpc,
    otlpHttp: http,
    trace,
    waitForTrace: (traceId, ready, timeoutMs = 15_000) =>
      waitFor(`trace ${traceId} in ${name}`, async () => {
        const t = await trace(traceId)
        return t && ready(t) ? t : undefined
      }, timeoutMs).catch((err: Error) => {
        throw new Error(`${err.message}\n--- ${name} output ---\n${proc.output()}`)
      }),
    async stop() {
      await proc.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
