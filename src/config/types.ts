// The typed configuration the app reads; loadConfig (./load.ts) builds it from the environment.

export interface DbConfig {
  host: string
  port: number
  user: string
  password: string
  database: string
  pool: { max: number; min: number; idleMs: number; maxLifetimeMs: number; acquireMs: number }
  connectTimeoutMs: number
  /** Per statement, after migrations; 0: no limit. */
  queryTimeoutMs: number
  startupTimeoutMs: number
  migrateOnStart: boolean
  seedOnStart: boolean
  /** Join performance_schema statement timings to SQL spans; 0 < pollMs. */
  serverTimings: { enabled: boolean; pollMs: number }
}

export interface LoadConfig {
  /** Mean event-loop delay (ms) over a sample interval above which requests are shed; 0 = off. */
  maxEventLoopDelayMs: number
  /** Event-loop utilization (0-1) over a sample interval above which requests are shed; 0 = off. */
  maxEventLoopUtilization: number
  sampleIntervalMs: number
  /** How often a dedicated connection pings the database; while it fails, DB routes get 503 at once. 0 = off. */
  dbHealthCheckIntervalMs: number
}

export interface AccountsConfig {
  sessionTtlSeconds: number
  loginMaxFailures: number
  loginWindowSeconds: number
}

export interface AppConfig {
  host: string
  port: number
  logLevel: string
  /** 0: every log line written synchronously; else buffered, flushed this often and at exit. */
  logFlushMs: number
  uploadDir: string
  maxUploadBytes: number
  /** Largest width x height of an uploaded image (all frames together). */
  maxImagePixels: number
  maxImageFrames: number
  /** Memory the images processed at once may need together. */
  imageMemoryBudgetBytes: number
  /** Uploads waiting to be processed at most. */
  imageQueueLength: number
  pageSize: number
  viewCache: boolean
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  shutdownGraceMs: number
  /** Lower-case host names (no port; IPv6 in brackets) a request's Host may name; null: any. */
  allowedHosts: ReadonlySet<string> | null
  serverTiming: boolean
  /** TRUSTED_TRACE_SOURCES as a test of a client address. */
  trustedTraceSource: (ip: string) => boolean
  /** Fastify's trustProxy: none, the first n hops, or these proxies (never "all": see parse.ts). */
  trustProxy: false | string[] | ((address: string, hop: number) => boolean)
  /** 0: sized by the server from the open-file limit. */
  maxConnections: number
  /** Per client per minute; 0: no limit. */
  writeRateLimit: number
  /** OTLP_PROTOBUF_ENCODER: whose encoder writes OTLP/protobuf span exports. */
  otlpProtobufEncoder: 'app' | 'sdk'
  /** Which traces are kept besides the sampler's and the failed ones (src/telemetry/keep.ts). */
  traceKeep: { slowestPercent: number; slowerThanMs: number }
  inspector: InspectorConfig
  load: LoadConfig
  accounts: AccountsConfig
  db: DbConfig
  storage: StorageConfig
}

export interface StorageConfig {
  kind: 'local' | 's3'
  s3: S3Config
}

export interface S3Config {
  bucket: string
  /** Empty: the AWS endpoint for the region. */
  endpoint: string
  forcePathStyle: boolean
  /** '' or ending in '/'. */
  prefix: string
  /** S3_TIMEOUT_MS: connect, answer and idle-transfer timeout of each attempt of a store call. */
  timeoutMs: number
  /** AWS_REGION or AWS_DEFAULT_REGION; us-east-1 when neither is set (S3-compatible stores ignore it). */
  region: string
  /**
   * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) of the environment given
   * to loadConfig; absent: the SDK's own credential chain (profiles, web identity, instance roles).
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
}

export interface InspectorConfig {
  enabled: boolean
  /** Empty: no token required. */
  token: string
  /** Total and DB time with a link to the trace on every page (needs `enabled`). */
  badge: boolean
  maxTraces: number
  maxBytes: number
  /** How long a `?token=` session lasts, server-side. */
  sessionTtlMs: number
  /** Without a trailing slash; empty when not configured. */
  jaegerUrl: string
}
