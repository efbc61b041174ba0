import path from 'node:path'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'

// Every variable the app reads, with its default. `.env.example` documents the same list.
const EnvSchema = Type.Object({
  DATABASE_URL: Type.String({ default: 'mysql://root@127.0.0.1:3306/blog_db', pattern: '^mysql://' }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' }
  ),
  UPLOAD_DIR: Type.String({ default: 'uploads', minLength: 1 }),
  MAX_UPLOAD_BYTES: Type.Integer({ default: 5 * 1024 * 1024, minimum: 1 }),
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
  DB_STARTUP_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 0 }),
  DB_MIGRATE_ON_START: Type.Boolean({ default: true }),
  DB_SEED_ON_START: Type.Boolean({ default: true }),

  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1000 }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ default: 72_000, minimum: 1000 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 10_000, minimum: 100 })
})

type Env = Static<typeof EnvSchema>

export interface DbConfig {
  host: string
  port: number
  user: string
  password: string
  database: string
  pool: { max: number; min: number; idleMs: number; maxLifetimeMs: number; acquireMs: number }
  connectTimeoutMs: number
  startupTimeoutMs: number
  migrateOnStart: boolean
  seedOnStart: boolean
}

export interface AppConfig {
  host: string
  port: number
  logLevel: string
  uploadDir: string
  maxUploadBytes: number
  pageSize: number
  viewCache: boolean
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  shutdownGraceMs: number
  db: DbConfig
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Parses `mysql://user:pass@host:port/db`; user and password are percent-decoded. */
export function parseDatabaseUrl(raw: string): Omit<DbConfig, 'pool' | 'connectTimeoutMs' | 'startupTimeoutMs' | 'migrateOnStart' | 'seedOnStart'> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError('DATABASE_URL is not a valid URL (expected mysql://user:pass@host:port/db; percent-encode reserved characters in the password, e.g. @ as %40)')
  }
  if (url.protocol !== 'mysql:') throw new ConfigError('DATABASE_URL must start with mysql://')
  // decodeURIComponent throws a URIError on a malformed escape (e.g. a literal % in the password).
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      throw new ConfigError(`DATABASE_URL has a malformed percent-escape in the ${what} (write a literal % as %25)`)
    }
  }
  const database = decode(url.pathname.replace(/^\//, ''), 'database name')
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(database)) {
    throw new ConfigError('DATABASE_URL must name a database (letters, digits, _ or $), e.g. mysql://root@127.0.0.1:3306/blog_db')
  }
  if (!url.hostname) throw new ConfigError('DATABASE_URL must name a host')
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 3306,
    user: decode(url.username, 'user name') || 'root',
    password: decode(url.password, 'password'),
    database
  }
}

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
  return {
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    uploadDir: path.resolve(e.UPLOAD_DIR),
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    pageSize: e.PAGE_SIZE,
    viewCache: e.VIEW_CACHE,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
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
      startupTimeoutMs: e.DB_STARTUP_TIMEOUT_MS,
      migrateOnStart: e.DB_MIGRATE_ON_START,
      seedOnStart: e.DB_SEED_ON_START
    }
  }
}
