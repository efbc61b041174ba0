import {
  ATTR_CLIENT_ADDRESS, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_QUERY_TEXT, ATTR_DB_SYSTEM_NAME, ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_NETWORK_PROTOCOL_VERSION, ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT, ATTR_URL_PATH, ATTR_URL_SCHEME, ATTR_USER_AGENT_ORIGINAL, METRIC_DB_CLIENT_OPERATION_DURATION,
  METRIC_HTTP_SERVER_REQUEST_DURATION
} from '@opentelemetry/semantic-conventions'

/**
 * Every span, attribute and metric name the app emits, defined once: code imports these, the
 * inspector and the bench classify spans with `spanCategory`, and docs/telemetry-reference.md is
 * generated from the docs below (`npm run gen:docs`; a test fails when it is stale). Standard names
 * come from @opentelemetry/semantic-conventions where the stable entry point has them; the
 * development-status ones (db.client.connection.*) are spelled here, as the spec writes them.
 */

/** The tracer and meter name of the app's own spans and metrics. */
export const SCOPE = 'blog_app'

/** Attribute names. */
export const ATTR = {
  httpRequestMethod: ATTR_HTTP_REQUEST_METHOD,
  httpRoute: ATTR_HTTP_ROUTE,
  httpResponseStatusCode: ATTR_HTTP_RESPONSE_STATUS_CODE,
  urlPath: ATTR_URL_PATH,
  urlScheme: ATTR_URL_SCHEME,
  serverAddress: ATTR_SERVER_ADDRESS,
  serverPort: ATTR_SERVER_PORT,
  clientAddress: ATTR_CLIENT_ADDRESS,
  networkProtocolVersion: ATTR_NETWORK_PROTOCOL_VERSION,
  userAgent: ATTR_USER_AGENT_ORIGINAL,
  errorType: ATTR_ERROR_TYPE,
  dbSystemName: ATTR_DB_SYSTEM_NAME,
  dbNamespace: ATTR_DB_NAMESPACE,
  dbOperationName: ATTR_DB_OPERATION_NAME,
  dbQueryText: ATTR_DB_QUERY_TEXT,
  dbPoolName: 'db.client.connection.pool.name',
  dbConnectionState: 'db.client.connection.state',
  processTimeMs: 'blog.http.process_time_ms',
  traceKept: 'blog.trace.kept',
  loadTestId: 'blog.load_test.id',
  loopActiveMs: 'blog.event_loop.active_ms',
  dbServerMs: 'blog.db.server_ms',
  dbLockMs: 'blog.db.lock_ms',
  dbRowsExamined: 'blog.db.rows_examined',
  dbRowsSent: 'blog.db.rows_sent',
  viewName: 'blog.view.name',
  imageInputType: 'blog.image.input_type',
  imageInputBytes: 'blog.image.input_bytes',
  imageWidth: 'blog.image.width',
  imageHeight: 'blog.image.height',
  imageBytes: 'blog.image.bytes',
  imageThumbBytes: 'blog.image.thumb_bytes',
  imageFrames: 'blog.image.frames',
  imageMemoryBytes: 'blog.image.memory_bytes',
  imageQueueMs: 'blog.image.queue_ms',
  imageType: 'blog.image.type',
  sessionSource: 'blog.session.source',
  sessionState: 'blog.session.state',
  telemetryWork: 'blog.telemetry.work'
} as const
export type AttributeName = (typeof ATTR)[keyof typeof ATTR]

/** The W3C baggage member whose value becomes ATTR.loadTestId (the k6 scripts send their run id in it). */
export const LOAD_TEST_BAGGAGE = 'testid'

/** Names of the spans the app makes itself (SQL and server spans are named by pattern, below). */
export const SPAN = {
  poolAcquire: 'pool.acquire',
  viewRender: 'view.render',
  imageProcess: 'blog.image.process',
  imageWrite: 'blog.image.write',
  session: 'blog.session'
} as const
export type SpanName = (typeof SPAN)[keyof typeof SPAN]

/** Metric names. */
export const METRIC = {
  httpServerDuration: METRIC_HTTP_SERVER_REQUEST_DURATION,
  dbOperationDuration: METRIC_DB_CLIENT_OPERATION_DURATION,
  dbConnectionCount: 'db.client.connection.count',
  dbConnectionPending: 'db.client.connection.pending_requests',
  dbConnectionMax: 'db.client.connection.max',
  dbConnectionWaitTime: 'db.client.connection.wait_time',
  telemetryCpuTime: 'blog.telemetry.cpu_time'
} as const
export type MetricName = (typeof METRIC)[keyof typeof METRIC]

/** The value of db.system.name on every SQL span and DB metric. */
export const DB_SYSTEM = 'mysql'

// --- Span kinds as the API numbers them (SpanKind): kept as plain numbers so the inspector's
// records and the bench's decoded spans can be classified without the API.
const SERVER = 1
const CLIENT = 2

/** Kinds of work a span stands for: the inspector's colours, the bench's phases. */
export type SpanCategory = 'server' | 'pool' | 'sql' | 'render' | 'image' | 'store' | 'session' | 'other'

export interface CategoryDoc {
  label: string
  brief: string
}

export const CATEGORIES: Record<SpanCategory, CategoryDoc> = {
  server: { label: 'request', brief: 'the request itself (the server span)' },
  pool: { label: 'pool wait', brief: 'waiting for a pooled database connection' },
  sql: { label: 'SQL', brief: 'one SQL statement, from send to answer' },
  render: { label: 'render', brief: 'an EJS template rendered (layout included)' },
  image: { label: 'image processing', brief: 'decoding and re-encoding an upload (CPU on the libuv pool)' },
  store: { label: 'image storage', brief: 'writing image files, or an object-store call' },
  session: { label: 'session lookup', brief: 'finding the session or API token of the request' },
  other: { label: 'other', brief: 'anything else' }
}

/** A span as any of its readers holds it: the SDK, the inspector's record, the bench's decode. */
export interface ClassifiableSpan {
  name: string
  /** SpanKind as the API numbers it (0 internal, 1 server, 2 client). */
  kind: number
  attributes: Readonly<Record<string, unknown>>
}

const CATEGORY_BY_NAME: ReadonlyMap<string, SpanCategory> = new Map([
  [SPAN.poolAcquire, 'pool'],
  [SPAN.viewRender, 'render'],
  [SPAN.imageProcess, 'image'],
  [SPAN.imageWrite, 'store'],
  [SPAN.session, 'session']
])

export function spanCategory(span: ClassifiableSpan): SpanCategory {
  if (span.kind === SERVER) return 'server'
  const byName = CATEGORY_BY_NAME.get(span.name)
  if (byName) return byName
  if (span.kind === CLIENT && span.attributes[ATTR.dbSystemName] !== undefined) return 'sql'
  if (span.kind === CLIENT && span.name.startsWith('S3.')) return 'store'
  return 'other'
}

// --- Documentation: the generated reference (docs/telemetry-reference.md) is made from these.

export type Stability = 'stable' | 'development' | 'app'

export interface AttributeDoc {
  type: 'string' | 'int' | 'double' | 'boolean'
  stability: Stability
  brief: string
}

/** Every attribute above, documented (the compiler refuses one left out). */
export const ATTRIBUTE_DOCS: Record<AttributeName, AttributeDoc> = {
  [ATTR.httpRequestMethod]: { type: 'string', stability: 'stable', brief: 'HTTP method' },
  [ATTR.httpRoute]: { type: 'string', stability: 'stable', brief: 'the route template (`/blogs/show/:id`); absent for a request no route matched' },
  [ATTR.httpResponseStatusCode]: { type: 'int', stability: 'stable', brief: 'the response status' },
  [ATTR.urlPath]: { type: 'string', stability: 'stable', brief: 'the path as received, without the query' },
  [ATTR.urlScheme]: { type: 'string', stability: 'stable', brief: '`http` or `https` (behind a proxy: as `TRUST_PROXY` allows)' },
  [ATTR.serverAddress]: { type: 'string', stability: 'stable', brief: 'the Host the request named (server spans); the database host (SQL spans)' },
  [ATTR.serverPort]: { type: 'int', stability: 'stable', brief: 'the port the request named (server spans); the database port (SQL spans)' },
  [ATTR.clientAddress]: { type: 'string', stability: 'stable', brief: 'the client address (`request.ip`: through proxies only as far as `TRUST_PROXY` allows)' },
  [ATTR.networkProtocolVersion]: { type: 'string', stability: 'stable', brief: 'HTTP version (`1.1`)' },
  [ATTR.userAgent]: { type: 'string', stability: 'stable', brief: 'the User-Agent header' },
  [ATTR.errorType]: { type: 'string', stability: 'stable', brief: 'why it failed: the status (`503`) on a server span, the error code or class on others' },
  [ATTR.dbSystemName]: { type: 'string', stability: 'stable', brief: '`mysql` (MariaDB included)' },
  [ATTR.dbNamespace]: { type: 'string', stability: 'stable', brief: 'the database name' },
  [ATTR.dbOperationName]: { type: 'string', stability: 'stable', brief: "the statement's first word (`SELECT`, `INSERT`, `START`, `COMMIT`)" },
  [ATTR.dbQueryText]: { type: 'string', stability: 'stable', brief: 'the statement with every literal replaced by `?` (parameter values never reach a span)' },
  [ATTR.dbPoolName]: { type: 'string', stability: 'development', brief: 'the pool (named after the database)' },
  [ATTR.dbConnectionState]: { type: 'string', stability: 'development', brief: '`used` or `idle`' },
  [ATTR.processTimeMs]: {
    type: 'double', stability: 'app',
    brief: 'the `X-Process-Time` header of the response, in ms: the same number the client saw, and the span\'s own duration'
  },
  [ATTR.traceKept]: {
    type: 'string', stability: 'app',
    brief: 'why this request\'s trace was kept: `error` (5xx), `slow` (among its route\'s slowest, or over `TRACE_KEEP_SLOWER_THAN_MS`), `slow_late` (among the slowest of its route\'s requests that came after it, found after it answered: `traceresponse` said `-00`), `warmup` (its route\'s first requests), `parent` (a trusted caller sent a sampled traceparent) or `sampler` (the configured sampler\'s baseline)'
  },
  [ATTR.loadTestId]: {
    type: 'string', stability: 'app',
    brief: 'the load test the request belongs to: the `testid` member of the W3C `baggage` header, from a caller in `TRUSTED_TRACE_SOURCES` only (the k6 scripts send their run id, the `testid` label of their metrics), at most 128 characters; one TraceQL or Jaeger tag query selects a whole run'
  },
  [ATTR.loopActiveMs]: { type: 'double', stability: 'app', brief: 'how long the event loop was busy (with any work) while the span was open' },
  [ATTR.dbServerMs]: { type: 'double', stability: 'app', brief: "the database's own execution time for the statement (performance_schema `TIMER_WAIT`), when it could be joined" },
  [ATTR.dbLockMs]: { type: 'double', stability: 'app', brief: 'the lock time performance_schema recorded for the statement' },
  [ATTR.dbRowsExamined]: { type: 'int', stability: 'app', brief: 'rows the server examined' },
  [ATTR.dbRowsSent]: { type: 'int', stability: 'app', brief: 'rows the server sent' },
  [ATTR.viewName]: { type: 'string', stability: 'app', brief: 'the template rendered (`blogs/show`)' },
  [ATTR.imageInputType]: { type: 'string', stability: 'app', brief: 'the upload\'s type by its content (`png`, `jpeg`, `gif`, `webp`, `unknown`)' },
  [ATTR.imageInputBytes]: { type: 'int', stability: 'app', brief: 'the upload\'s size' },
  [ATTR.imageWidth]: { type: 'int', stability: 'app', brief: 'width of the stored image' },
  [ATTR.imageHeight]: { type: 'int', stability: 'app', brief: 'height of the stored image (one frame)' },
  [ATTR.imageBytes]: { type: 'int', stability: 'app', brief: 'bytes of the stored image (on blog.image.process) or of the file written (on blog.image.write)' },
  [ATTR.imageThumbBytes]: { type: 'int', stability: 'app', brief: 'bytes of the thumbnail (0: none was needed)' },
  [ATTR.imageFrames]: { type: 'int', stability: 'app', brief: 'frames of the upload, read from its header (1 for a still image)' },
  [ATTR.imageMemoryBytes]: { type: 'int', stability: 'app', brief: 'the memory its decoding was priced at (IMAGE_MEMORY_BUDGET_BYTES admits by it)' },
  [ATTR.imageQueueMs]: { type: 'int', stability: 'app', brief: 'how long the upload waited for its share of the image memory budget' },
  [ATTR.imageType]: { type: 'string', stability: 'app', brief: 'the written file\'s type as sniffed while it was written' },
  [ATTR.sessionSource]: { type: 'string', stability: 'app', brief: '`cookie` or `api_token`' },
  [ATTR.sessionState]: { type: 'string', stability: 'app', brief: '`user` (a signed-in session) or `none` (no such session, or expired)' },
  [ATTR.telemetryWork]: { type: 'string', stability: 'app', brief: '`spans` (making a kept trace\'s spans from its record, and with the app\'s OTLP/protobuf encoder writing their bytes as they end) or `encode` (assembling an OTLP/protobuf export)' }
}

export interface SpanDoc {
  /** The name, or its pattern for spans named by what they do. */
  name: string
  kind: 'server' | 'client' | 'internal'
  madeBy: string
  brief: string
  attributes: readonly AttributeName[]
}

const TIMING = [ATTR.loopActiveMs] as const
const SQL_SERVER = [ATTR.dbServerMs, ATTR.dbLockMs, ATTR.dbRowsExamined, ATTR.dbRowsSent] as const

export const SPAN_DOCS: readonly SpanDoc[] = [
  {
    name: '{METHOD} {route}', kind: 'server', madeBy: 'the app (src/telemetry/plugin.ts)',
    brief: 'one per request (`GET /blogs/show/:id`; the method alone when no route matched); its start and end are the same instants as the response headers and the log line',
    attributes: [ATTR.httpRequestMethod, ATTR.httpRoute, ATTR.httpResponseStatusCode, ATTR.urlPath, ATTR.urlScheme, ATTR.serverAddress,
      ATTR.serverPort, ATTR.clientAddress, ATTR.networkProtocolVersion, ATTR.userAgent, ATTR.errorType, ATTR.processTimeMs, ATTR.traceKept,
      ATTR.loadTestId, ...TIMING]
  },
  {
    name: SPAN.poolAcquire, kind: 'internal', madeBy: 'the app (Sequelize pool hooks, src/telemetry/db.ts)',
    brief: 'waiting for a pooled connection; ERROR when the wait timed out (`DB_POOL_ACQUIRE_MS`)',
    attributes: [ATTR.dbSystemName, ATTR.dbNamespace, ATTR.dbPoolName, ATTR.errorType, ...TIMING]
  },
  {
    name: '{db.operation.name}', kind: 'client', madeBy: "the app, from mysql2's diagnostics channels (src/telemetry/sql.ts)",
    brief: 'one per SQL statement (`SELECT`, `INSERT`, `START`, `COMMIT`), from the moment it is handed to the driver to its answer',
    attributes: [ATTR.dbSystemName, ATTR.dbNamespace, ATTR.dbOperationName, ATTR.dbQueryText, ATTR.serverAddress, ATTR.serverPort, ATTR.errorType, ...TIMING, ...SQL_SERVER]
  },
  {
    name: SPAN.viewRender, kind: 'internal', madeBy: 'the app (src/plugins/view.ts)',
    brief: 'rendering a page (layout included)', attributes: [ATTR.viewName]
  },
  {
    name: SPAN.session, kind: 'internal', madeBy: 'the app (src/accounts/plugin.ts)',
    brief: 'finding the session of the cookie, or the user of an API token (its SQL is a sibling)', attributes: [ATTR.sessionSource, ATTR.sessionState]
  },
  {
    name: SPAN.imageProcess, kind: 'internal', madeBy: 'the app (src/images/processor.ts)',
    brief: 'decoding and re-encoding an upload, and its thumbnail; ERROR with `error.type` for a refused image',
    attributes: [ATTR.imageInputType, ATTR.imageInputBytes, ATTR.imageFrames, ATTR.imageMemoryBytes, ATTR.imageQueueMs, ATTR.imageWidth, ATTR.imageHeight,
      ATTR.imageBytes, ATTR.imageThumbBytes, ATTR.errorType]
  },
  {
    name: SPAN.imageWrite, kind: 'internal', madeBy: 'the app (src/storage/local.ts, src/storage/s3.ts)',
    brief: 'writing one file (the image or its thumbnail) to the store\'s staging area', attributes: [ATTR.imageBytes, ATTR.imageType]
  },
  {
    name: 'S3.{Operation}', kind: 'client', madeBy: 'the AWS SDK instrumentation (`STORAGE=s3` only)',
    brief: 'one per object-store call (`S3.PutObject`, `S3.CopyObject`, `S3.GetObject`, ...), with the instrumentation\'s rpc.* and aws.* attributes', attributes: []
  }
]

/** True for a span name the app or its chosen instrumentations make (see SPAN_DOCS). */
export function isKnownSpanName(name: string): boolean {
  if ((Object.values(SPAN) as string[]).includes(name)) return true
  // Server spans: a method, then a route template starting at '/'.
  if (/^[A-Z]+( \/\S*)?$/.test(name)) return true
  // S3 calls of the AWS SDK instrumentation.
  return /^S3\.[A-Za-z]+$/.test(name)
}

export interface MetricDoc {
  instrument: 'histogram' | 'counter' | 'updowncounter (observed)'
  unit: string
  stability: Stability
  brief: string
  attributes: readonly AttributeName[]
}

export const METRIC_DOCS: Record<MetricName, MetricDoc> = {
  [METRIC.httpServerDuration]: {
    instrument: 'histogram', unit: 's', stability: 'stable',
    brief: 'request duration: the same instants as the server span and `X-Process-Time`',
    attributes: [ATTR.httpRequestMethod, ATTR.httpRoute, ATTR.httpResponseStatusCode, ATTR.urlScheme, ATTR.errorType]
  },
  [METRIC.dbOperationDuration]: {
    instrument: 'histogram', unit: 's', stability: 'stable',
    brief: 'SQL statement duration: the same instants as the SQL span',
    attributes: [ATTR.dbSystemName, ATTR.dbNamespace, ATTR.dbOperationName]
  },
  [METRIC.dbConnectionCount]: {
    instrument: 'updowncounter (observed)', unit: '{connection}', stability: 'development',
    brief: 'pooled connections by state', attributes: [ATTR.dbPoolName, ATTR.dbConnectionState]
  },
  [METRIC.dbConnectionPending]: {
    instrument: 'updowncounter (observed)', unit: '{request}', stability: 'development',
    brief: 'requests waiting for a connection', attributes: [ATTR.dbPoolName]
  },
  [METRIC.dbConnectionMax]: {
    instrument: 'updowncounter (observed)', unit: '{connection}', stability: 'development',
    brief: 'the largest pool size allowed', attributes: [ATTR.dbPoolName]
  },
  [METRIC.telemetryCpuTime]: {
    instrument: 'counter', unit: 's', stability: 'app',
    brief: "main-thread time the telemetry itself spent (elapsed time of its synchronous work, which holds the thread): the observer's share of what a load test measures", attributes: [ATTR.telemetryWork]
  },
  [METRIC.dbConnectionWaitTime]: {
    instrument: 'histogram', unit: 's', stability: 'development',
    brief: 'time to obtain a pooled connection: the same instants as the pool.acquire span', attributes: [ATTR.dbPoolName]
  }
}
