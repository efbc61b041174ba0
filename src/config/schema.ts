import { Type, type Static } from 'typebox'
import { DEFAULT_TRUSTED_TRACE_SOURCES } from '../lib/addresses'

// Every variable the app reads, with its default. `.env.example` documents the same list.
export const EnvSchema = Type.Object({
  DATABASE_URL: Type.String({ default: 'mysql://root@127.0.0.1:3306/blog_db', pattern: '^mysql://' }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' }
  ),
  // Log lines are buffered and written at most this many ms apart (and at exit); 0: one write
  // per line, as it is logged.
  LOG_FLUSH_MS: Type.Integer({ default: 100, minimum: 0, maximum: 10_000 }),
  UPLOAD_DIR: Type.String({ default: 'uploads', minLength: 1 }),
  MAX_UPLOAD_BYTES: Type.Integer({ default: 5 * 1024 * 1024, minimum: 1 }),
  // Largest image (width x height, all frames of an animation) decoded; an image decodes to 4
  // bytes a pixel whatever its file size, so this, not MAX_UPLOAD_BYTES, bounds the memory.
  MAX_IMAGE_PIXELS: Type.Integer({ default: 40_000_000, minimum: 1 }),
  // Frames an animation may have: each costs a decode and an encode however small it is.
  MAX_IMAGE_FRAMES: Type.Integer({ default: 500, minimum: 1 }),
  // Memory the images processed at once may need together (src/images/processor.ts memoryNeeded);
  // an image needing more is refused (422). 192 MiB: the largest 8-bit RGBA image
  // MAX_IMAGE_PIXELS allows fits, and so does the app's ~210 MB beside it in a 512Mi pod.
  IMAGE_MEMORY_BUDGET_BYTES: Type.Integer({ default: 192 * 1024 * 1024, minimum: 16 * 1024 * 1024 }),
  // Uploads waiting for their turn to be processed; past it 503 with Retry-After at once. Each
  // holds its body (up to MAX_UPLOAD_BYTES) while it waits; 16 covers 16 writers at once.
  IMAGE_QUEUE_LENGTH: Type.Integer({ default: 16, minimum: 0, maximum: 1000 }),
  PAGE_SIZE: Type.Integer({ default: 20, minimum: 1, maximum: 100 }),
  // Compiled templates are cached; turn off while editing views (npm run dev does).
  VIEW_CACHE: Type.Boolean({ default: true }),

  // A base of 30 plus 10 overflow, as in the original SQLAlchemy setup.
  DB_POOL_MAX: Type.Integer({ default: 40, minimum: 1 }),
  DB_POOL_MIN: Type.Integer({ default: 0, minimum: 0 }),
  DB_POOL_IDLE_MS: Type.Integer({ default: 300_000, minimum: 1000 }),
  DB_POOL_MAX_LIFETIME_MS: Type.Integer({ default: 300_000, minimum: 1000 }),
  // Short on purpose: a saturated pool answers 503 instead of hanging the request for a minute.
  DB_POOL_ACQUIRE_MS: Type.Integer({ default: 3000, minimum: 1 }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ default: 3000, minimum: 100 }),
  // Longest wait for one statement's answer (0: no limit). A stalled database then costs a
  // request a 503 in bounded time instead of a reset after TCP gives up (~35 s).
  DB_QUERY_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 0 }),
  DB_STARTUP_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 0 }),
  DB_MIGRATE_ON_START: Type.Boolean({ default: true }),
  DB_SEED_ON_START: Type.Boolean({ default: true }),
  // The database's own time for each traced statement, from performance_schema (needs the SDK,
  // performance_schema and a statement history consumer; says once in the log when it is off).
  DB_SERVER_TIMINGS: Type.Boolean({ default: true }),
  DB_SERVER_TIMINGS_POLL_MS: Type.Integer({ default: 250, minimum: 20, maximum: 10_000 }),

  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1000 }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ default: 72_000, minimum: 1000 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 10_000, minimum: 100 }),
  // Host names (comma list) the app answers for, besides the loopback names and a specific HOST;
  // '*' answers any. Other Host headers get 421: a DNS-rebinding page cannot reach the app.
  ALLOWED_HOSTS: Type.String({ default: '', pattern: '^\\s*(\\*|[A-Za-z0-9.:\\[\\]-]+(\\s*,\\s*[A-Za-z0-9.:\\[\\]-]+)*)?\\s*$' }),
  // The Server-Timing header (db, pool, render, total) on every response.
  SERVER_TIMING: Type.Boolean({ default: true }),
  // Clients (addresses, CIDRs; '*': all) whose traceparent may decide sampling. Others continue
  // their trace id, but the app's own sampler decides: a stranger cannot force full tracing.
  TRUSTED_TRACE_SOURCES: Type.String({ default: DEFAULT_TRUSTED_TRACE_SOURCES }),
  // Fastify's trustProxy: 'false', a hop count, or a comma list of the proxies' own addresses/CIDRs
  // ('true' is refused at start: it believes any client's X-Forwarded-For). Decides request.ip
  // (rate limits, sign-in throttle, trace trust, logs) and request.protocol (Secure cookies).
  TRUST_PROXY: Type.String({ default: 'false', pattern: '^\\s*(true|false|\\d+|[0-9A-Fa-f.:/]+(\\s*,\\s*[0-9A-Fa-f.:/]+)*)\\s*$' }),
  // Open connections at most (0: the open-file limit less a reserve for the pool, uploads and
  // logs). Past it new connections are closed at once, so fds never run out.
  MAX_CONNECTIONS: Type.Integer({ default: 0, minimum: 0 }),
  // Writes (create, edit, delete) per client per minute; past it 429 with Retry-After. 0: off.
  WRITE_RATE_LIMIT: Type.Integer({ default: 30, minimum: 0 }),

  // Request inspector (/_inspect/): off unless asked for; the buffer lives in the OTel bootstrap.
  // Who encodes spans for OTLP/HTTP protobuf: the app's encoder (src/telemetry/otlp-proto.ts, the
  // same bytes at a fraction of the CPU) or the SDK's own, kept as a fallback.
  OTLP_PROTOBUF_ENCODER: Type.Union([Type.Literal('app'), Type.Literal('sdk')], { default: 'app' }),
  // Traces kept whatever the sampler says (besides failed requests): the slowest this-many percent
  // of each route's requests (a running estimate), and any request at least this slow (0: off).
  TRACE_KEEP_SLOWEST_PERCENT: Type.Number({ default: 1, minimum: 0, maximum: 100 }),
  TRACE_KEEP_SLOWER_THAN_MS: Type.Number({ default: 0, minimum: 0 }),
  INSPECTOR_ENABLED: Type.Boolean({ default: false }),
  // Empty: no token asked (fine on 127.0.0.1). Otherwise 16 or more characters without spaces.
  INSPECTOR_TOKEN: Type.String({ default: '', pattern: '^(\\S{16,})?$' }),
  INSPECTOR_BADGE: Type.Boolean({ default: false }),
  INSPECTOR_MAX_TRACES: Type.Integer({ default: 500, minimum: 1, maximum: 100_000 }),
  // A `?token=` sign-in lasts this long (kept in the process, not just in the cookie).
  INSPECTOR_SESSION_TTL_S: Type.Integer({ default: 12 * 3600, minimum: 1, maximum: 30 * 24 * 3600 }),
  INSPECTOR_MAX_BYTES: Type.Integer({ default: 8 * 1024 * 1024, minimum: 64 * 1024, maximum: 1024 * 1024 * 1024 }),
  // Jaeger's UI, for "open in Jaeger" links (e.g. http://localhost:16686); empty: no links.
  JAEGER_URL: Type.String({ default: '', pattern: '^(https?://\\S+)?$' }),

  // Load shedding (@fastify/under-pressure): past a threshold, requests get a fast 503 with
  // Retry-After instead of queueing. 0 turns a check off.
  LOAD_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 500, minimum: 0 }),
  LOAD_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ default: 0, minimum: 0, maximum: 1 }),
  LOAD_SAMPLE_INTERVAL_MS: Type.Integer({ default: 1000, minimum: 10 }),
  DB_HEALTH_CHECK_INTERVAL_MS: Type.Integer({ default: 2000, minimum: 0 }),

  // Accounts. Admins are made by an operator only (`npm run user:admin -- email`); the former
  // ADMIN_EMAILS is refused (src/config/load.ts).
  // A session lasts this long from sign-in (no sliding renewal).
  SESSION_TTL_HOURS: Type.Integer({ default: 168, minimum: 1, maximum: 24 * 366 }),
  // After this many failed sign-ins for one email from one client, 429 until the window ends.
  LOGIN_MAX_FAILURES: Type.Integer({ default: 5, minimum: 1 }),
  LOGIN_WINDOW_MINUTES: Type.Integer({ default: 15, minimum: 1 }),
  // Where post images live: the local UPLOAD_DIR (one process) or an S3-compatible object store
  // (any number of replicas). Credentials and region: the AWS SDK's own variables
  // (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE, ...).
  STORAGE: Type.Union([Type.Literal('local'), Type.Literal('s3')], { default: 'local' }),
  S3_BUCKET: Type.String({ default: '', pattern: '^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$' }),
  // Empty: AWS itself. Otherwise the store's URL, e.g. http://seaweedfs:8333.
  S3_ENDPOINT: Type.String({ default: '', pattern: '^(https?://\\S+)?$' }),
  // Path-style URLs (endpoint/bucket/key): what SeaweedFS and MinIO expect without wildcard DNS.
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  // Keys under this prefix (e.g. blog/), so the bucket can hold other things too.
  S3_PREFIX: Type.String({ default: '', pattern: '^([A-Za-z0-9._-]+/)*$' }),
  // Each store call's attempt may take this long to connect, to answer (after sending the body)
  // and between bytes; the SDK tries 3 times, so a silent store fails a call in ~3x this (503).
  S3_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100, maximum: 120_000 })
})

export type Env = Static<typeof EnvSchema>
