import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTestEnv, multipart, storedFiles, type TestEnv } from '../helpers/app'
import { PNG_1x1 } from '../fixtures/images'

let env: TestEnv
let app: FastifyInstance
beforeAll(async () => {
  env = await createTestEnv()
  app = await buildApp(env)
})
afterAll(async () => {
  await app?.close()
  await env?.cleanup()
})

describe('smoke', () => {
  it('lists the sample posts', async () => {
    const res = await app.inject('/blogs/')
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('Why we rewrote our blog in Fastify')
  })
  it('creates a post with an image', async () => {
    const body = await multipart({ title: 'Smoke test', author: 'CI', content: 'Hello there' }, { image_file: { data: PNG_1x1, filename: 'a.png', type: 'image/png' } })
    const res = await app.inject({ method: 'POST', url: '/blogs/new', ...body })
    expect(res.statusCode).toBe(303)
    expect(await storedFiles(env.uploadDir)).toHaveLength(1)
  })
})
