// The SDK first (nothing above it may load mysql2), then the app.
import { runtime, sdk, traces } from './in-process-sdk'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll } from 'vitest'
import blogApp, { appServerOptions } from '../../src/app'
import { createTestEnv, type TestEnv } from './app'

/**
 * The app in this process on a database of its own, traced by the SDK above; `extra` adds routes
 * only the test has. Filled in beforeAll; closed, dropped and the SDK shut down afterAll.
 */
export function useInProcessApp(extra: (app: FastifyInstance) => void = () => undefined, vars: Record<string, string> = {}): { env: TestEnv; app: FastifyInstance } {
  const t = {} as { env: TestEnv; app: FastifyInstance }
  beforeAll(async () => {
    t.env = await createTestEnv(vars)
    t.app = Fastify({ ...appServerOptions, logger: false })
    await t.app.register(blogApp, { config: t.env.config, telemetry: runtime, traces })
    extra(t.app)
    await t.app.ready()
  })
  afterAll(async () => {
    await t.app?.close()
    await t.env?.cleanup()
    await sdk?.shutdown()
  })
  return t
}

