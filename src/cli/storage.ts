import { CreateBucketCommand, HeadBucketCommand, S3ServiceException } from '@aws-sdk/client-s3'
import { loadConfig } from '../config'
import { S3ImageStorage } from '../storage/s3'

// `node dist/src/cli/storage.js create-bucket`: makes S3_BUCKET when it does not exist yet (the
// Compose stack's one-shot `bucket` service; on AWS the bucket is usually made by infrastructure).
async function main(command: string | undefined): Promise<void> {
  if (command !== 'create-bucket') throw new Error('usage: storage.js create-bucket')
  const config = loadConfig()
  if (config.storage.kind !== 's3') throw new Error('STORAGE is not s3: there is no bucket to create')
  const { bucket } = config.storage.s3
  const store = new S3ImageStorage(config.storage.s3)
  try {
    // The store may still be starting (Compose starts services together): retry for a while.
    for (let attempt = 1; ; attempt++) {
      try {
        await store.client.send(new HeadBucketCommand({ Bucket: bucket }))
        process.stdout.write(`bucket ${bucket} exists\n`)
        return
      } catch (err) {
        const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
        if (status === 404) break
        if (attempt >= 30) throw err
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
    await store.client.send(new CreateBucketCommand({ Bucket: bucket }))
    process.stdout.write(`bucket ${bucket} created\n`)
  } finally {
    store.close()
  }
}

main(process.argv[2]).catch((err: unknown) => {
  process.stderr.write(`blog_app storage: ${(err as Error).message}\n`)
  process.exit(1)
})
