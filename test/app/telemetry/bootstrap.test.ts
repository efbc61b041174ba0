import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { assertBuilt, OTEL_BOOTSTRAP } from '../../kit/server'

// The bootstrap runs before the app (node --require): if it loaded mysql2 itself, the mysql2
// instrumentation would never patch it and every SQL span would silently disappear.

describe('otel/bootstrap', () => {
  it('starts the SDK without loading mysql2, sequelize or fastify', async () => {
    assertBuilt()
    const probe = `require(${JSON.stringify(OTEL_BOOTSTRAP)});` +
      "const loaded = Object.keys(require.cache).filter((f) => /node_modules\\/(mysql2|sequelize|fastify)\\//.test(f));" +
      'console.log(JSON.stringify(loaded))'
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', probe], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } })
    expect(JSON.parse(stdout)).toEqual([])
  })
})
