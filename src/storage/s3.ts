import { randomUUID } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { S3Config } from '../config'
import { AppError } from '../errors'
import { ATTR, SPAN } from '../telemetry/names'
import { withSpan } from '../telemetry/tracer'
import { EXTENSIONS, Sniffer, STORED_NAME, type ImageType } from './sniff'
import type { ImageStorage, StagedImage } from './storage'

/** Staged uploads, under the prefix: never a STORED_NAME, so the image route never serves them. */
const INCOMING = 'incoming/'
/** lib-storage's smallest part; an upload under MAX_UPLOAD_BYTES (5 MiB) is then one PutObject. */
const PART_BYTES = 5 * 1024 * 1024

export const CONTENT_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' }

/** What the image route needs to answer from a stored object. */
export interface StoredObject {
  /** 200, 206 (a Range was honoured) or 304 (If-None-Match matched). */
  status: 200 | 206 | 304
  body: Readable | null
  contentType: string
  contentLength?: number
  contentRange?: string
  etag?: string
  lastModified?: Date
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
}

/** Any failure of a store call, as the client is answered: the server's trouble, 503, never 500. */
export const storeUnavailable = (cause: unknown, doing: 'stored' | 'shown' = 'stored') =>
  new AppError(503, 'IMAGE_STORE_UNAVAILABLE', `Images cannot be ${doing} right now. Please try again in a moment.`, { cause })

/** A readiness probe's answer is reused this long: probes from several sources cost one HeadBucket. */
const CHECK_CACHE_MS = 2000
/** A probe waits at most this long (the SDK's retries included). */
const CHECK_TIMEOUT_MS = 2000

/**
 * Images in an S3 bucket (AWS, SeaweedFS, MinIO...), so any number of app replicas share them.
 * The same life as on disk: an upload streams to `incoming/<uuid>`; promote copies it to its
 * generated name inside the caller's transaction (a server-side copy, then the staged key goes);
 * replaced images are deleted after commit; the sweep removes what no row references. Nothing is
 * removed at start: other replicas' uploads may be in flight in the same bucket.
 */
export class S3ImageStorage implements ImageStorage {
  readonly client: S3Client
  private readonly bucket: string
  private readonly prefix: string
  /** Staged keys not yet promoted or discarded: removed on close (the sweep gets any left). */
  private readonly staged = new Set<string>()
  private readonly checkTimeoutMs: number
  private lastCheck: { at: number; result: Promise<void> } | null = null

  constructor(config: S3Config, client?: S3Client) {
    this.bucket = config.bucket
    this.prefix = config.prefix
    // Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID..., profiles, IRSA).
    this.client = client ?? new S3Client({
      region: config.region,
      // Keys given to the app's config win; otherwise the SDK's chain (profiles, pod roles...).
      ...(config.credentials ? { credentials: config.credentials } : {}),
      // Another store than AWS: checksums only where S3 requires them, as not every
      // S3-compatible server understands the SDK's default trailing checksums.
      ...(config.endpoint ? { endpoint: config.endpoint, requestChecksumCalculation: 'WHEN_REQUIRED' as const, responseChecksumValidation: 'WHEN_REQUIRED' as const } : {}),
      forcePathStyle: config.forcePathStyle,
      // A store that accepts connections and never answers held requests until the client gave
      // up (the SDK has no timeouts by default): each attempt now has S3_TIMEOUT_MS to connect,
      // to answer (response headers, after the body is sent) and between bytes of a transfer.
      requestHandler: { connectionTimeout: config.timeoutMs, requestTimeout: config.timeoutMs, throwOnRequestTimeout: true, socketTimeout: config.timeoutMs },
      // Retries with backoff for throttling, 5xx and timeouts: a silent store fails a call after
      // about 3 x S3_TIMEOUT_MS.
      maxAttempts: 3
    })
    this.checkTimeoutMs = Math.min(config.timeoutMs, CHECK_TIMEOUT_MS)
  }

  /** The object key of a stored name or staged key. */
  key(name: string): string {
    return this.prefix + name
  }

  async save(source: Readable): Promise<StagedImage> {
    const key = INCOMING + randomUUID()
    const sniffer = new Sniffer()
    const body = new PassThrough()
    this.staged.add(key)
    return withSpan(SPAN.imageWrite, {}, async (span) => {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.key(key), Body: body, ContentType: 'application/octet-stream' },
        partSize: PART_BYTES,
        queueSize: 2,
        leavePartsOnError: false
      })
      const uploaded = upload.done()
      let storeFailed: unknown
      // A failing store must also end the request body's stream, or the pipeline waits forever.
      uploaded.catch((err: unknown) => {
        storeFailed = err
        body.destroy(err as Error)
      })
      try {
        await Promise.all([pipeline(source, sniffer, body), uploaded])
      } catch (err) {
        await upload.abort().catch(() => undefined)
        this.staged.delete(key)
        // The client's own failures (413, an aborted body) pass as they are; the store's are ours,
        // and a failing store is not asked again to remove what it has likely not written (a
        // silent one would hold the answer for another round of timeouts): the sweep removes it.
        if (err === storeFailed) throw storeUnavailable(err)
        await this.remove(key).catch(() => undefined)
        throw err
      } finally {
        span?.setAttributes({ [ATTR.imageBytes]: sniffer.bytes, [ATTR.imageType]: sniffer.type ?? 'rejected' })
      }
      return { key, bytes: sniffer.bytes, type: sniffer.rejected ? null : sniffer.type }
    })
  }

  async promote(image: StagedImage): Promise<string> {
    if (!image.type) throw new Error('refusing to store a file that is not an image')
    const name = `${randomUUID()}.${EXTENSIONS[image.type]}`
    await storeCall(this.client.send(new CopyObjectCommand({
      Bucket: this.bucket,
      Key: this.key(name),
      CopySource: `${this.bucket}/${encodeURIComponent(this.key(image.key)).replaceAll('%2F', '/')}`,
      MetadataDirective: 'REPLACE',
      ContentType: contentTypeOf(image.type)
    })))
    await this.remove(image.key)
    this.staged.delete(image.key)
    return name
  }

  async discard(image: StagedImage): Promise<void> {
    await this.remove(image.key)
    this.staged.delete(image.key)
  }

  async delete(name: string): Promise<void> {
    if (!STORED_NAME.test(name)) return
    await this.remove(name)
  }

  url(name: string): string {
    // The app serves the bytes itself (./plugin.ts), under the same URL as the local store.
    return `/static/uploads/${encodeURIComponent(name)}`
  }

  /** Reads a stored image for the image route; null when there is no such object. */
  async get(name: string, opts: { ifNoneMatch?: string; ifModifiedSince?: string; range?: string } = {}): Promise<StoredObject | null> {
    if (!STORED_NAME.test(name)) return null
    const contentType = CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream'
    let out: GetObjectCommandOutput
    try {
      out = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.key(name),
        ...(opts.ifNoneMatch ? { IfNoneMatch: opts.ifNoneMatch } : {}),
        // HTTP: If-Modified-Since counts only without If-None-Match.
        ...(!opts.ifNoneMatch && opts.ifModifiedSince && !Number.isNaN(Date.parse(opts.ifModifiedSince)) ? { IfModifiedSince: new Date(opts.ifModifiedSince) } : {}),
        ...(opts.range && /^bytes=\d*-\d*$/.test(opts.range) ? { Range: opts.range } : {})
      }))
    } catch (err) {
      const status = statusOf(err)
      if (status === 404) return null
      if (status === 304) return { status: 304, body: null, contentType, etag: opts.ifNoneMatch }
      throw storeUnavailable(err, 'shown')
    }
    return {
      status: out.ContentRange ? 206 : 200,
      body: out.Body as Readable,
      // By the name's extension, which the store chose from the sniffed bytes.
      contentType,
      ...(out.ContentLength !== undefined ? { contentLength: out.ContentLength } : {}),
      ...(out.ContentRange ? { contentRange: out.ContentRange } : {}),
      ...(out.ETag ? { etag: out.ETag } : {}),
      ...(out.LastModified ? { lastModified: out.LastModified } : {})
    }
  }

  async sweep(referenced: ReadonlySet<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = []
    let token: string | undefined
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token }))
      for (const obj of page.Contents ?? []) {
        const rel = (obj.Key ?? '').slice(this.prefix.length)
        const old = obj.LastModified !== undefined && now - obj.LastModified.getTime() > graceMs
        if (!old) continue
        const orphan = STORED_NAME.test(rel) ? !referenced.has(rel) : rel.startsWith(INCOMING) && !this.staged.has(rel)
        if (!orphan) continue
        await this.remove(rel)
        removed.push(rel)
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return removed
  }

  /** Removes the staged uploads this process still holds (on close). */
  async removeStaged(): Promise<void> {
    await Promise.allSettled([...this.staged].map((key) => this.remove(key)))
    this.staged.clear()
  }

  /**
   * Throws (503) while the bucket cannot be reached: a HeadBucket bounded by
   * min(S3_TIMEOUT_MS, 2 s), its outcome reused for 2 s. Any answer but "no such bucket" counts
   * as reachable: a policy without s3:ListBucket (403 to HeadBucket) may still read and write.
   */
  check(now = Date.now()): Promise<void> {
    if (this.lastCheck && now - this.lastCheck.at < CHECK_CACHE_MS) return this.lastCheck.result
    const result = this.client
      .send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(this.checkTimeoutMs) })
      .then(
        () => undefined,
        (err: unknown) => {
          const status = statusOf(err)
          if (status !== undefined && status < 500 && status !== 404) return
          throw storeUnavailable(err, 'shown')
        }
      )
    // Not cached as an unhandled rejection: each caller awaits it.
    result.catch(() => undefined)
    this.lastCheck = { at: now, result }
    return result
  }

  close(): void {
    this.client.destroy()
  }

  private async remove(name: string): Promise<void> {
    await storeCall(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(name) })))
  }
}

/** One store call; any failure is the store's (503). */
async function storeCall<T>(call: Promise<T>): Promise<T> {
  try {
    return await call
  } catch (err) {
    throw storeUnavailable(err)
  }
}

function contentTypeOf(type: ImageType): string {
  return CONTENT_TYPES[EXTENSIONS[type]] ?? 'application/octet-stream'
}
