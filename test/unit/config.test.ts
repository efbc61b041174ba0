import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, parseDatabaseUrl } from '../../src/config'

/** Expects loadConfig(env) to throw a ConfigError whose message names `variable`. */
function expectConfigError(env: Record<string, string>, variable: string): ConfigError {
  let caught: unknown
  try {
    loadConfig(env)
  } catch (err) {
    caught = err
  }
  expect(caught, `loadConfig(${JSON.stringify(env)}) should throw`).toBeInstanceOf(ConfigError)
  expect((caught as ConfigError).message).toContain(variable)
  return caught as ConfigError
}

describe('loadConfig defaults', () => {
  it('uses the documented defaults when no variable is set', () => {
    const c = loadConfig({})
    expect(c.host).toBe('127.0.0.1')
    expect(c.port).toBe(8000)
    expect(c.logLevel).toBe('info')
    expect(c.pageSize).toBe(20)
    expect(c.maxUploadBytes).toBe(5 * 1024 * 1024)
    expect(c.maxImagePixels).toBe(40_000_000)
    expect(c.viewCache).toBe(true)
    expect(c.uploadDir).toBe(path.resolve('uploads'))
    expect(c.requestTimeoutMs).toBe(30_000)
    expect(c.keepAliveTimeoutMs).toBe(72_000)
    expect(c.shutdownGraceMs).toBe(10_000)
    expect([c.writeRateLimit, c.maxConnections, c.trustProxy]).toEqual([30, 0, false])
    expect(c.db).toEqual({
      host: '127.0.0.1',
      port: 3306,
      user: 'root',
      password: '',
      database: 'blog_db',
      pool: { max: 40, min: 0, idleMs: 300_000, maxLifetimeMs: 300_000, acquireMs: 3000 },
      connectTimeoutMs: 3000,
      queryTimeoutMs: 5000,
      startupTimeoutMs: 30_000,
      migrateOnStart: true,
      seedOnStart: true,
      serverTimings: { enabled: true, pollMs: 250 }
    })
  })

  it('coerces numeric and boolean strings from the environment', () => {
    const c = loadConfig({
      PORT: '8080',
      PAGE_SIZE: '5',
      MAX_UPLOAD_BYTES: '1024',
      MAX_IMAGE_PIXELS: '1000000',
      VIEW_CACHE: 'false',
      DB_SEED_ON_START: 'false',
      DB_MIGRATE_ON_START: 'false',
      DB_POOL_MAX: '7',
      LOG_LEVEL: 'warn',
      UPLOAD_DIR: '/tmp/some-uploads'
    })
    expect(c.port).toBe(8080)
    expect(c.pageSize).toBe(5)
    expect(c.maxUploadBytes).toBe(1024)
    expect(c.maxImagePixels).toBe(1_000_000)
    expect(c.viewCache).toBe(false)
    expect(c.db.seedOnStart).toBe(false)
    expect(c.db.migrateOnStart).toBe(false)
    expect(c.db.pool.max).toBe(7)
    expect(c.logLevel).toBe('warn')
    expect(c.uploadDir).toBe('/tmp/some-uploads')
  })

  it('never lets the pool minimum exceed the maximum', () => {
    const c = loadConfig({ DB_POOL_MAX: '5', DB_POOL_MIN: '10' })
    expect(c.db.pool).toMatchObject({ max: 5, min: 5 })
  })

  describe('with variables set in the process environment', () => {
    const saved = { PORT: process.env.PORT, PAGE_SIZE: process.env.PAGE_SIZE }
    afterEach(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    })

    it('reads only the environment it is given, not process.env', () => {
      process.env.PORT = '1234'
      process.env.PAGE_SIZE = '3'
      const c = loadConfig({})
      expect(c.port).toBe(8000)
      expect(c.pageSize).toBe(20)
    })

    it('reads process.env when called without an argument', () => {
      process.env.PORT = '1234'
      expect(loadConfig().port).toBe(1234)
    })
  })
})

describe('ALLOWED_HOSTS and SERVER_TIMING', () => {
  it('allows the loopback names plus a specific HOST by default, and sends Server-Timing', () => {
    const c = loadConfig({})
    expect([...c.allowedHosts!].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost'])
    expect(c.serverTiming).toBe(true)
    expect([...loadConfig({ HOST: '10.0.0.5' }).allowedHosts!]).toContain('10.0.0.5')
    expect([...loadConfig({ HOST: 'fd00::5' }).allowedHosts!]).toContain('[fd00::5]')
  })

  it('does not allow a wildcard listen address as a host name', () => {
    for (const HOST of ['0.0.0.0', '::']) expect([...loadConfig({ HOST }).allowedHosts!].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost'])
  })

  it('adds the listed names in lower case; * allows any Host', () => {
    expect([...loadConfig({ ALLOWED_HOSTS: 'Blog.Example, www.blog.example', HOST: '0.0.0.0' }).allowedHosts!]).toEqual(
      ['localhost', '127.0.0.1', '[::1]', 'blog.example', 'www.blog.example']
    )
    expect(loadConfig({ ALLOWED_HOSTS: '*' }).allowedHosts).toBeNull()
  })

  it('rejects a list with a URL or a path in it, naming the variable', () => {
    for (const ALLOWED_HOSTS of ['https://blog.example', 'blog.example/x', 'a b', '*,blog.example']) expectConfigError({ ALLOWED_HOSTS }, 'ALLOWED_HOSTS')
  })

  it('turns Server-Timing off with SERVER_TIMING=false', () => {
    expect(loadConfig({ SERVER_TIMING: 'false' }).serverTiming).toBe(false)
  })

  it("encodes OTLP/protobuf spans with the app's encoder unless OTLP_PROTOBUF_ENCODER=sdk, and names a bad value", () => {
    expect(loadConfig({}).otlpProtobufEncoder).toBe('app')
    expect(loadConfig({ OTLP_PROTOBUF_ENCODER: 'sdk' }).otlpProtobufEncoder).toBe('sdk')
    expectConfigError({ OTLP_PROTOBUF_ENCODER: 'fast' }, 'OTLP_PROTOBUF_ENCODER')
  })
})

describe('DATABASE_URL parsing', () => {
  it('accepts a password with a literal $ (mysql://root:root1234$@db:3306/blog_db)', () => {
    const c = loadConfig({ DATABASE_URL: 'mysql://root:root1234$@db:3306/blog_db' })
    expect(c.db).toMatchObject({ host: 'db', port: 3306, user: 'root', password: 'root1234$', database: 'blog_db' })
  })

  it('percent-decodes the password: p%40ss is p@ss', () => {
    expect(parseDatabaseUrl('mysql://app:p%40ss@db:3307/blog_db')).toEqual({
      host: 'db',
      port: 3307,
      user: 'app',
      password: 'p@ss',
      database: 'blog_db'
    })
  })

  it('percent-decodes the user name too', () => {
    expect(parseDatabaseUrl('mysql://bl%40g:x@db/blog_db')).toMatchObject({ user: 'bl@g', password: 'x' })
  })

  it('defaults the port to 3306, the user to root and the password to empty', () => {
    expect(parseDatabaseUrl('mysql://dbhost/blog_db')).toEqual({
      host: 'dbhost',
      port: 3306,
      user: 'root',
      password: '',
      database: 'blog_db'
    })
  })

  it('strips the brackets of an IPv6 host', () => {
    expect(parseDatabaseUrl('mysql://[::1]:3307/blog_db')).toMatchObject({ host: '::1', port: 3307 })
  })

  it.each([
    ['http://x', 'a non-mysql scheme'],
    ['mysql://db:3306/', 'no database name'],
    ['mysql://db:3306', 'no path at all'],
    ['mysql://db:3306/blog-db', 'a database name with a dash'],
    ['mysql://db:3306/a/b', 'a nested path'],
    ['not a url', 'something that is not a URL'],
    ['mysql://db:notaport/blog_db', 'a non-numeric port'],
    ['mysql://u:p%ZZ@db/blog_db', 'a malformed percent-escape in the password'],
    ['mysql://u%E0@db/blog_db', 'a malformed percent-escape in the user'],
    ['mysql://db/blog%ZZ', 'a malformed percent-escape in the database']
  ])('rejects %s (%s) with a ConfigError naming DATABASE_URL', (url) => {
    expectConfigError({ DATABASE_URL: url }, 'DATABASE_URL')
  })

  it('parseDatabaseUrl itself throws ConfigError, not a URIError or TypeError', () => {
    for (const url of ['mysql://u:p%ZZ@db/blog_db', 'not a url', 'http://db/blog_db']) {
      expect(() => parseDatabaseUrl(url), url).toThrow(ConfigError)
    }
  })
})

describe('invalid values', () => {
  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ PAGE_SIZE: '0' }, 'PAGE_SIZE'],
    [{ PAGE_SIZE: '101' }, 'PAGE_SIZE'],
    [{ MAX_UPLOAD_BYTES: '0' }, 'MAX_UPLOAD_BYTES'],
    [{ MAX_UPLOAD_BYTES: 'lots' }, 'MAX_UPLOAD_BYTES'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ VIEW_CACHE: 'maybe' }, 'VIEW_CACHE'],
    [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX'],
    [{ DB_SEED_ON_START: 'sometimes' }, 'DB_SEED_ON_START'],
    [{ DB_STARTUP_TIMEOUT_MS: '-5' }, 'DB_STARTUP_TIMEOUT_MS'],
    [{ SHUTDOWN_GRACE_MS: '10' }, 'SHUTDOWN_GRACE_MS'],
    [{ HOST: '' }, 'HOST'],
    [{ DATABASE_URL: 'postgres://db/blog_db' }, 'DATABASE_URL']
  ])('%j throws a ConfigError naming %s', (env, variable) => {
    const err = expectConfigError(env, variable)
    expect(err.name).toBe('ConfigError')
  })

  it('does not blame variables that are valid', () => {
    const err = expectConfigError({ PORT: 'abc', PAGE_SIZE: '10' }, 'PORT')
    expect(err.message).not.toContain('PAGE_SIZE')
    expect(err.message).not.toContain('env/')
  })
})

describe('image storage settings', () => {
  it('keeps images on disk unless STORAGE=s3, which needs a bucket', () => {
    expect(loadConfig({}).storage.kind).toBe('local')
    expectConfigError({ STORAGE: 's3' }, 'S3_BUCKET')
    expectConfigError({ STORAGE: 'gcs' }, 'STORAGE')
    expectConfigError({ STORAGE: 's3', S3_BUCKET: 'Bad_Bucket' }, 'S3_BUCKET')
    expectConfigError({ STORAGE: 's3', S3_BUCKET: 'b1', S3_ENDPOINT: 'seaweedfs:8333' }, 'S3_ENDPOINT')
    expectConfigError({ STORAGE: 's3', S3_BUCKET: 'b1', S3_PREFIX: 'no-trailing-slash' }, 'S3_PREFIX')
  })

  it('reads the bucket settings and the standard AWS variables; without keys the SDK chain decides', () => {
    const c = loadConfig({ STORAGE: 's3', S3_BUCKET: 'blog-images', S3_ENDPOINT: 'http://127.0.0.1:8333', S3_FORCE_PATH_STYLE: 'true', S3_PREFIX: 'blog/', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' })
    expect(c.storage).toEqual({
      kind: 's3',
      s3: { bucket: 'blog-images', endpoint: 'http://127.0.0.1:8333', forcePathStyle: true, prefix: 'blog/', timeoutMs: 5000, region: 'eu-west-1', credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } }
    })
    const chain = loadConfig({ STORAGE: 's3', S3_BUCKET: 'blog-images', AWS_DEFAULT_REGION: 'us-west-2' }).storage.s3
    expect(chain.credentials).toBeUndefined()
    expect(chain.region).toBe('us-west-2')
    expect(chain.endpoint).toBe('')
  })

  it('bounds each store call by S3_TIMEOUT_MS (5 s by default, 100 ms to 120 s)', () => {
    expect(loadConfig({ S3_TIMEOUT_MS: '750' }).storage.s3.timeoutMs).toBe(750)
    for (const S3_TIMEOUT_MS of ['0', '99', '120001', 'soon']) expectConfigError({ S3_TIMEOUT_MS }, 'S3_TIMEOUT_MS')
  })
})

describe('image processing bounds', () => {
  it('defaults to a 192 MiB memory budget, a line of 16 uploads and 500 frames, and reads the variables', () => {
    expect(loadConfig({})).toMatchObject({ imageMemoryBudgetBytes: 192 * 1024 * 1024, imageQueueLength: 16, maxImageFrames: 500 })
    expect(loadConfig({ IMAGE_MEMORY_BUDGET_BYTES: '67108864', IMAGE_QUEUE_LENGTH: '0', MAX_IMAGE_FRAMES: '10' })).toMatchObject({
      imageMemoryBudgetBytes: 64 * 1024 * 1024, imageQueueLength: 0, maxImageFrames: 10
    })
  })

  it('names a budget under 16 MiB, a negative line or no frames', () => {
    for (const IMAGE_MEMORY_BUDGET_BYTES of ['1000', '0', '1.5', 'lots']) expectConfigError({ IMAGE_MEMORY_BUDGET_BYTES }, 'IMAGE_MEMORY_BUDGET_BYTES')
    expectConfigError({ IMAGE_QUEUE_LENGTH: '-1' }, 'IMAGE_QUEUE_LENGTH')
    expectConfigError({ MAX_IMAGE_FRAMES: '0' }, 'MAX_IMAGE_FRAMES')
  })
})
