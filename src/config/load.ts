import path from 'node:path'
import envSchema from 'env-schema'
import { trustedSources } from '../lib/addresses'
import { allowedHosts, ConfigError, isLoopbackHost, parsed, parseDatabaseUrl, trustProxy } from './parse'
import { EnvSchema, type Env } from './schema'
import type { AppConfig } from './types'

/** Reads and validates the environment; throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  let e: Env
  try {
    // env: false, or env-schema merges process.env under `env` and a caller's explicit env leaks.
    e = envSchema<Env>({ schema: EnvSchema, data: env, env: false, dotenv: false })
  } catch (err) {
    // Ajv says e.g. "env/PORT must be <= 65535"; keep the variable names, drop the "env/" prefix.
    throw new ConfigError(`Invalid configuration: ${(err as Error).message.replaceAll('env/', '')}`)
  }
  // Granting admin to whoever signs up with an address made the first comer an admin (issue 25).
  if (env.ADMIN_EMAILS?.trim()) {
    throw new ConfigError(
      'Invalid configuration: ADMIN_EMAILS is no longer read: an email typed into the sign-up form must not make anyone an admin. ' +
        'Remove it, and make an existing account admin with `npm run user:admin -- <email>` (docs/operations.md, "Accounts and admins").'
    )
  }
  if (e.STORAGE === 's3' && !e.S3_BUCKET) throw new ConfigError('Invalid configuration: S3_BUCKET must be set when STORAGE=s3')
  // The inspector shows every recent request's trace (URLs, SQL, timings): on an address other
  // machines can reach, only with a token.
  if (e.INSPECTOR_ENABLED && !e.INSPECTOR_TOKEN && !isLoopbackHost(e.HOST)) {
    throw new ConfigError(`Invalid configuration: INSPECTOR_TOKEN must be set (16+ characters) when INSPECTOR_ENABLED=true and HOST=${e.HOST} is not a loopback address: without it anyone who can reach the server reads every request's trace`)
  }
  return {
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logFlushMs: e.LOG_FLUSH_MS,
    uploadDir: path.resolve(e.UPLOAD_DIR),
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxImagePixels: e.MAX_IMAGE_PIXELS,
    maxImageFrames: e.MAX_IMAGE_FRAMES,
    imageMemoryBudgetBytes: e.IMAGE_MEMORY_BUDGET_BYTES,
    imageQueueLength: e.IMAGE_QUEUE_LENGTH,
    pageSize: e.PAGE_SIZE,
    viewCache: e.VIEW_CACHE,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    allowedHosts: allowedHosts(e.ALLOWED_HOSTS, e.HOST),
    serverTiming: e.SERVER_TIMING,
    trustedTraceSource: parsed('TRUSTED_TRACE_SOURCES', () => trustedSources(e.TRUSTED_TRACE_SOURCES)),
    trustProxy: parsed('TRUST_PROXY', () => trustProxy(e.TRUST_PROXY)),
    maxConnections: e.MAX_CONNECTIONS,
    writeRateLimit: e.WRITE_RATE_LIMIT,
    otlpProtobufEncoder: e.OTLP_PROTOBUF_ENCODER,
    traceKeep: { slowestPercent: e.TRACE_KEEP_SLOWEST_PERCENT, slowerThanMs: e.TRACE_KEEP_SLOWER_THAN_MS },
    inspector: {
      enabled: e.INSPECTOR_ENABLED,
      token: e.INSPECTOR_TOKEN,
      badge: e.INSPECTOR_ENABLED && e.INSPECTOR_BADGE,
      maxTraces: e.INSPECTOR_MAX_TRACES,
      maxBytes: e.INSPECTOR_MAX_BYTES,
      sessionTtlMs: e.INSPECTOR_SESSION_TTL_S * 1000,
      jaegerUrl: e.JAEGER_URL.replace(/\/+$/, '')
    },
    load: {
      maxEventLoopDelayMs: e.LOAD_MAX_EVENT_LOOP_DELAY_MS,
      maxEventLoopUtilization: e.LOAD_MAX_EVENT_LOOP_UTILIZATION,
      sampleIntervalMs: e.LOAD_SAMPLE_INTERVAL_MS,
      dbHealthCheckIntervalMs: e.DB_HEALTH_CHECK_INTERVAL_MS
    },
    accounts: {
      sessionTtlSeconds: e.SESSION_TTL_HOURS * 3600,
      loginMaxFailures: e.LOGIN_MAX_FAILURES,
      loginWindowSeconds: e.LOGIN_WINDOW_MINUTES * 60
    },
    db: {
      ...parseDatabaseUrl(e.DATABASE_URL),
      pool: {
        max: e.DB_POOL_MAX,
        min: Math.min(e.DB_POOL_MIN, e.DB_POOL_MAX),
        idleMs: e.DB_POOL_IDLE_MS,
        maxLifetimeMs: e.DB_POOL_MAX_LIFETIME_MS,
        acquireMs: e.DB_POOL_ACQUIRE_MS
      },
      connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
      queryTimeoutMs: e.DB_QUERY_TIMEOUT_MS,
      startupTimeoutMs: e.DB_STARTUP_TIMEOUT_MS,
      migrateOnStart: e.DB_MIGRATE_ON_START,
      seedOnStart: e.DB_SEED_ON_START,
      serverTimings: { enabled: e.DB_SERVER_TIMINGS, pollMs: e.DB_SERVER_TIMINGS_POLL_MS }
    },
    storage: {
      kind: e.STORAGE,
      s3: {
        bucket: e.S3_BUCKET,
        endpoint: e.S3_ENDPOINT,
        forcePathStyle: e.S3_FORCE_PATH_STYLE,
        prefix: e.S3_PREFIX,
        timeoutMs: e.S3_TIMEOUT_MS,
        region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
        ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
          : {})
      }
    }
  }
}
