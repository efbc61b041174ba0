// Only what the app uses: pino (trace ids in logs), runtime-node (event loop, heap), aws-sdk (one
// span per object-store call with STORAGE=s3; it records bucket, operation and status, never
// credentials). fs, dns and net spans are noise. SQL spans come from the app itself, through
// mysql2's diagnostics channels (./sql.ts); server spans, traceparent and
// http.server.request.duration from its Fastify hooks (./plugin.ts), measured cheaper than the
// http instrumentation (docs/decisions); add `http` to use that.
export const DEFAULT_INSTRUMENTATIONS = 'pino,runtime-node,aws-sdk'
