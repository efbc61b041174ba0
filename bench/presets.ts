/** Named environment sets; a variant joins them with '+', e.g. `otel=10pct+pool=5`. */
export const PRESETS: Record<string, Record<string, string>> = {
  // The bare floor server (bench/floor): the same list page from the same stack, no plugins.
  floor: { BENCH_SERVER: 'floor' },
  'floor=helmet': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'helmet' },
  'floor=log': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'log' },
  'floor=cookie': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'cookie' },
  'floor=timing': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'timing' },
  'floor=pressure': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'pressure' },
  // All of them at once: what is left between this and the app is the rest of the app.
  'floor=all': { BENCH_SERVER: 'floor', FLOOR_FEATURES: 'helmet,log,cookie,timing,pressure' },
  // The app built from another checkout (--baseline DIR): before/after in one run.
  baseline: { BENCH_ROOT: 'baseline' },
  'otel=off': { OTEL_SDK_DISABLED: 'true' },
  'otel=on': { OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
  'otel=10pct': { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  // The SDK and its instrumentations loaded, no request sampled: the price of the machinery alone.
  'otel=nosample': { OTEL_TRACES_SAMPLER: 'always_off' },
  // Pieces, to find what tracing costs.
  'otel=httpinstr': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,pino,runtime-node' },
  'otel=fastify': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'pino,runtime-node' },
  'otel=sdkonly': { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'runtime-node' },
  // Log lines without the trace ids (the standard switch for the pino instrumentation).
  'logids=off': { OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'pino' },
  'otel=noexport': { OTEL_EXPORTER_OTLP_ENDPOINT: '' },
  // Traces exported, no metric reader (the request histogram and runtime metrics go nowhere).
  'metrics=off': { OTEL_METRICS_EXPORTER: 'none' },
  'otel=json': { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
  // Spans encoded by the SDK's own OTLP/protobuf serializer instead of the app's (src/telemetry/otlp-proto.ts).
  'otel=sdkproto': { OTLP_PROTOBUF_ENCODER: 'sdk' },
  'views=nocache': { VIEW_CACHE: 'false' },
  // One write(2) per log line, as before LOG_FLUSH_MS (default 100: buffered).
  'log=sync': { LOG_FLUSH_MS: '0' },
  // The app with one of its own features off, to price it (the floor=* presets add them instead).
  'log=off': { LOG_LEVEL: 'warn' },
  'servertiming=off': { SERVER_TIMING: 'false' },
  'watchdog=off': { DB_QUERY_TIMEOUT_MS: '0' },
  // Same code, a bigger table: the list and show pages should cost the same (growth target).
  'data=100k': { BENCH_POSTS: '100000' },
  'data=20k': { BENCH_POSTS: '20000' },
  // The list query without its index: it sorts the whole table, a page bound by the database.
  'index=none': { BENCH_NO_INDEX: 'true' },
  // Tracing without the performance_schema join (loop-busy times stay: they cost ~70 ns a span).
  'timings=off': { DB_SERVER_TIMINGS: 'false' },
  // V8's young generation capped (MiB per semi-space; Node 24 commits 2 x 32 MiB on a machine
  // with a lot of memory): less resident memory at rest, more scavenges under load.
  'semi=2': { NODE_OPTIONS: '--max-semi-space-size=2' },
  'semi=4': { NODE_OPTIONS: '--max-semi-space-size=4' },
  'semi=8': { NODE_OPTIONS: '--max-semi-space-size=8' },
  'pool=5': { DB_POOL_MAX: '5' },
  'pool=40': { DB_POOL_MAX: '40' },
  // The request inspector's span processor (an in-memory copy of every span), next to the exporter.
  'inspector=on': { INSPECTOR_ENABLED: 'true' },
  // N app processes behind Debian's nginx (harness/balancer.ts, deploy/nginx/proxy.conf);
  // app CPU is the sum over the replicas, the balancer's own CPU is reported beside it.
  'replicas=1': { BENCH_REPLICAS: '1' },
  'replicas=2': { BENCH_REPLICAS: '2' },
  'replicas=3': { BENCH_REPLICAS: '3' }
}

/** A variant's environment: its presets' variables, in order (`otel=10pct+pool=5`). */
export function variantEnv(variant: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const part of variant.split('+')) {
    const preset = PRESETS[part]
    if (!preset) throw new Error(`unknown variant ${part}; known: ${Object.keys(PRESETS).join(', ')}`)
    Object.assign(env, preset)
  }
  return env
}
