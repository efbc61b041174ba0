import { describe, expect, it } from 'vitest'
import { useDisposableApps } from '../../kit/app'

describe('SERVER_TIMING', () => {
  const apps = useDisposableApps()

  it('sends Server-Timing on pages, errors and static files by default', async () => {
    const app = await apps.newApp(await apps.newEnv({ DB_SEED_ON_START: 'false' }))
    for (const url of ['/blogs/', '/no/such/page', '/assets/style.css']) {
      expect((await app.inject({ url })).headers['server-timing'], url).toMatch(/total;dur=/)
    }
  })

  it('leaves Server-Timing out with SERVER_TIMING=false, and keeps X-Process-Time', async () => {
    const app = await apps.newApp(await apps.newEnv({ SERVER_TIMING: 'false', DB_SEED_ON_START: 'false' }))
    for (const url of ['/blogs/', '/no/such/page', '/assets/style.css']) {
      const res = await app.inject({ url })
      expect(res.headers['server-timing'], url).toBeUndefined()
      expect(res.headers['x-process-time'], url).toMatch(/^\d+\.\d{2}ms$/)
    }
  })
})
