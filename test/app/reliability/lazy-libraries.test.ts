import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp } from '../../kit/accounts'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { postForm, pngFile } from '../../kit/form'
import { assertBuilt, killAllServers, startListening, type ServerChild } from '../../kit/server'

// Memory a process holds at rest: libvips (sharp) is opened with the first image, not at start
// (~8-10 MB of a replica that only serves pages; src/images/sharp.ts).

let env: TestEnv
let server: ServerChild
beforeAll(async () => {
  assertBuilt()
  env = await createTestEnv({ DB_SEED_ON_START: 'false' })
  server = await startListening(env.env, { telemetry: true })
})
afterAll(async () => {
  await killAllServers()
  await env?.cleanup()
})

const libvipsMapped = async () => /libvips/.test(await readFile(`/proc/${server.proc.pid}/maps`, 'utf8'))

describe('sharp (libvips)', () => {
  it('is not loaded by a started server that has served pages, and is by its first upload', async () => {
    const author = await signUp(server.port)
    expect(await libvipsMapped()).toBe(false)
    const res = await postForm(server.port, '/blogs/new', { title: 'First image', content: 'Opens libvips.' }, { image_file: pngFile() }, { as: author })
    expect(res.status, res.body).toBe(303)
    expect(await libvipsMapped()).toBe(true)
  })
})
