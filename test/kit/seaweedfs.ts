import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { ROOT } from '../../src/paths'
import { freePorts, stackTools, startProcess, waitFor, waitHealthy, type Proc } from './process'

/**
 * A real SeaweedFS (`weed server -s3`: master, volume, filer and S3 gateway in one process) on
 * free loopback ports, with one identity whose keys the app must sign with, and one bucket.
 */
export interface SeaweedFs {
  proc: Proc
  endpoint: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  /** The app's environment for STORAGE=s3 against this store. */
  env: Record<string, string>
  client: S3Client
  /** Keys in the bucket (optionally under a prefix). */
  keys(prefix?: string): Promise<string[]>
  exists(key: string): Promise<boolean>
  stop(): Promise<void>
}

/** The weed binary scripts/install-tools.sh built (next to Jaeger in its cache). */
export function weedBinary(): string {
  const bin = path.join(path.dirname(stackTools().jaeger), 'weed')
  if (!existsSync(bin)) throw new Error(`no weed at ${bin}: run \`bash scripts/install-tools.sh\``)
  return bin
}

export async function startSeaweedFs(name = 'seaweedfs'): Promise<SeaweedFs> {
  const weed = weedBinary()
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = (await freePorts(8)) as number[]
  const dir = mkdtempSync(path.join(os.tmpdir(), `blog-${name}-`))
  const accessKeyId = `blog${randomBytes(8).toString('hex')}`
  const secretAccessKey = randomBytes(24).toString('hex')
  writeFileSync(path.join(dir, 's3.json'), JSON.stringify({
    identities: [{ name: 'blog_app', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] }]
  }))
  const data = path.join(dir, 'data')
  execFileSync('mkdir', ['-p', data])
  const proc = startProcess(name, weed, [
    'server', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-dir=${data}`, '-volume.max=8',
    `-master.port=${master}`, `-master.port.grpc=${masterGrpc}`, '-master.volumeSizeLimitMB=64', '-master.telemetry=false',
    `-volume.port=${volume}`, `-volume.port.grpc=${volumeGrpc}`,
    '-filer', `-filer.port=${filer}`, `-filer.port.grpc=${filerGrpc}`, `-filer.localSocket=${path.join(dir, 'filer.sock')}`,
    '-s3', `-s3.port=${s3}`, `-s3.port.grpc=${s3Grpc}`, '-s3.port.iceberg=0', '-s3.port.lance=0',
    `-s3.config=${path.join(dir, 's3.json')}`, `-s3.localSocket=${path.join(dir, 's3.sock')}`
  ], {}, dir)
  const endpoint = `http://127.0.0.1:${s3}`
  await waitHealthy(proc, `${endpoint}/healthz`, 60_000)
  const bucket = `blog-test-${randomBytes(4).toString('hex')}`
  const env: Record<string, string> = {
    STORAGE: 's3', S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: 'us-east-1'
  }
  // The bucket is made the way the Compose stack makes it: the app's own CLI.
  await waitFor(`bucket ${bucket}`, async () => {
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'storage.js'), 'create-bucket'], { env: { PATH: process.env.PATH, ...env }, stdio: 'pipe', timeout: 60_000 })
    return true
  }, 60_000, 1000)
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } })
  // A new store's first write waits while it grows its volumes (5-8 s here). Made by the test,
  // not the app: an app write that slow times out (S3_TIMEOUT_MS) and is retried, and the first
  // attempt can still land after the retry's object was promoted and its staged key deleted,
  // putting a staged key back for the sweep to find (seen in CI as a stray `incoming/` key).
  const probe = `warm-up-${randomBytes(4).toString('hex')}`
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: probe, Body: 'x' }))
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: probe }))
  return {
    proc, endpoint, bucket, accessKeyId, secretAccessKey, env, client,
    async keys(prefix = '') {
      const out: string[] = []
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
        out.push(...(page.Contents ?? []).map((o) => o.Key ?? ''))
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return out
    },
    async exists(key: string) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
        return true
      } catch (err) {
        if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false
        throw err
      }
    },
    async stop() {
      client.destroy()
      await proc.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
