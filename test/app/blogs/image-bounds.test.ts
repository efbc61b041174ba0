import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { useTestApp, type TestEnv } from '../../kit/app'
import { defaultAuthor } from '../../kit/accounts'
import { postForm } from '../../kit/form'
import { ejsEscape, expectNothingWritten, unique } from '../../kit/posts'
import { deepInterlacedPng } from '../../kit/images'
import { gifFrames } from '../../fixtures/images'

// What an image costs is bounded before it is decoded: by its memory (IMAGE_MEMORY_BUDGET_BYTES,
// priced from the header) and by its frames (MAX_IMAGE_FRAMES), not by its pixels alone. Both
// images here are small files well under MAX_IMAGE_PIXELS that the app used to decode and store.

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t), { DB_SEED_ON_START: 'false' })

const post = (title: string, data: Buffer, filename: string) =>
  postForm(app, '/blogs/new', { title, content: 'A costly image.' }, { image_file: { data, filename, type: 'application/octet-stream' } })

describe('images refused by their cost, from the header', () => {
  it('a 5000x5000 16-bit interlaced RGBA PNG (25 MP, ~300 KB, ~240 MiB to decode): 422 naming the memory, decoded never, nothing written', async () => {
    const png = await deepInterlacedPng(5000, 5000)
    const title = unique('Deep PNG')
    // Signed up before the clock starts: a sign-up's password hash is not the refusal's time.
    await defaultAuthor(app)
    await expectNothingWritten(env, async () => {
      const started = performance.now()
      const res = await post(title, png, 'deep.png')
      expect(res.statusCode).toBe(422)
      expect(res.body).toContain('<p class="field-error" id="image_file-error">The image would need about 239 MiB of memory to process (the limit is 192 MiB): send a smaller image, or save it as JPEG or PNG.</p>')
      // The form comes back with what was typed.
      expect(res.body).toContain(`value="${ejsEscape(title)}"`)
      // Its decode takes seconds; the refusal, the time to read a header.
      expect(performance.now() - started).toBeLessThan(1500)
    })
  })

  it('a GIF of 200,000 frames of 1x1 pixel (4.6 MB): 422 naming the frames, nothing written', async () => {
    const gif = gifFrames(200_000)
    expect(gif.length).toBeLessThan(env.config.maxUploadBytes)
    await expectNothingWritten(env, async () => {
      const started = performance.now()
      const res = await post(unique('Many frames'), gif, 'frames.gif')
      expect(res.statusCode).toBe(422)
      expect(res.body).toContain('The animation has too many frames (200000; the limit is 500).')
      expect(performance.now() - started).toBeLessThan(2000)
    })
  })
})
