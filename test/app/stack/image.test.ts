import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestEnv, type TestEnv } from '../../kit/app'
import { freePorts, startProcess, waitHealthy, type Proc } from '../../kit/process'
import { assertBuilt } from '../../kit/server'
import { readJson, ROOT } from '../../kit/stack'

// Docker cannot run here, so this test lays out the final stage of the Dockerfile by hand:
// what its COPY lines put in /app, with node_modules holding only what `npm ci --omit=dev`
// installs (the lockfile's packages not marked dev). Then it starts the app from there the
// way the image's CMD does. A runtime import of a devDependency, or a file the app reads that
// the image does not copy, fails here instead of in the container.

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
const finalStage = dockerfile.split(/^FROM /m).pop()!

let image: string
let env: TestEnv
let app: Proc
let url: string

/** Hard-links a directory tree (fast, no copy), leaving out `skip` directory names at its top. */
function linkTree(src: string, dst: string, skip: Set<string> = new Set()): void {
  mkdirSync(dst, { recursive: true })
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue
    const from = path.join(src, entry.name)
    const to = path.join(dst, entry.name)
    if (entry.isDirectory()) linkTree(from, to)
    else if (entry.isFile()) linkSync(from, to)
  }
}

/** node_modules as `npm ci --omit=dev` lays it out from package-lock.json. */
function productionModules(dst: string): number {
  const lock = readJson<{ packages: Record<string, { dev?: boolean; optional?: boolean }> }>('package-lock.json')
  let count = 0
  for (const [rel, meta] of Object.entries(lock.packages)) {
    if (!rel.startsWith('node_modules/') || meta.dev) continue
    const src = path.join(ROOT, rel)
    if (!existsSync(src)) {
      if (meta.optional) continue // an optional package for another platform
      throw new Error(`${rel} is in package-lock.json but not installed: run npm ci`)
    }
    // Nested node_modules are entries of their own in the lockfile.
    linkTree(src, path.join(dst, rel.slice('node_modules/'.length)), new Set(['node_modules']))
    count++
  }
  return count
}

beforeAll(async () => {
  assertBuilt()
  image = mkdtempSync(path.join(os.tmpdir(), 'blog-image-'))
  for (const line of finalStage.split('\n')) {
    const m = /^COPY (--from=(\w+) )?(\S+) (\S+)$/.exec(line.trim())
    if (!m) continue
    const [, , stage, src, dst] = m
    const target = path.join(image, dst!.replace(/^\.\/?/, ''))
    if (stage === 'deps' && src === '/app/node_modules') productionModules(target)
    else if (stage === 'build' && src === '/app/dist') {
      // The build stage compiles tsconfig.build.json: src/ and otel/ only.
      for (const dir of ['src', 'otel']) linkTree(path.join(ROOT, 'dist', dir), path.join(target, dir))
    } else if (stage) throw new Error(`Dockerfile copies ${src} from stage ${stage}: teach this test what that holds`)
    else if (src === 'package.json') linkSync(path.join(ROOT, src), path.join(image, 'package.json'))
    else linkTree(path.join(ROOT, src!), target)
  }
  for (const f of ['dist/src/server.js', 'dist/otel/bootstrap.js']) {
    if (!existsSync(path.join(image, f))) throw new Error(`${f} is missing from the image layout: run \`npm run build\` first (npm test does)`)
  }
  mkdirSync(path.join(image, 'uploads'))

  env = await createTestEnv()
  const [port] = await freePorts(1)
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(finalStage)![1]!) as string[]
  expect(cmd[0]).toBe('node')
  // The image's ENV, with the test's database and a loopback address instead of 0.0.0.0.
  const imageEnv = Object.fromEntries([...finalStage.matchAll(/(\w+)=(\S+)/g)].filter(([, k]) => /^[A-Z_]+$/.test(k!)).map(([, k, v]) => [k!, v!]))
  expect(imageEnv).toMatchObject({ NODE_ENV: 'production', PORT: '8000' })
  app = startProcess('app (image layout)', process.execPath, cmd.slice(1), {
    ...imageEnv,
    DATABASE_URL: env.env.DATABASE_URL!,
    DB_STARTUP_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    UPLOAD_DIR: path.join(image, 'uploads')
  }, image)
  url = `http://127.0.0.1:${port}`
  await waitHealthy(app, `${url}/health`, 30_000)
}, 120_000)

afterAll(async () => {
  await app?.stop()
  await env?.cleanup()
  if (image) rmSync(image, { recursive: true, force: true })
})

describe('the Dockerfile final stage (laid out without Docker)', () => {
  it('holds the dependencies and none of the dev-only packages (typescript, vitest, eslint, the node binary)', () => {
    const pkg = readJson<{ devDependencies: Record<string, string>; dependencies: Record<string, string> }>('package.json')
    const lock = readJson<{ packages: Record<string, { dev?: boolean }> }>('package-lock.json')
    // A devDependency that some dependency also needs (e.g. @types/node) is installed by
    // `npm ci --omit=dev` as well; the lockfile marks the rest dev-only.
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev)
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'eslint', 'node']))
    for (const dev of devOnly) expect(existsSync(path.join(image, 'node_modules', dev)), dev).toBe(false)
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(path.join(image, 'node_modules', dep)), dep).toBe(true)
  })

  it('serves pages, static files and traces with production dependencies only', async () => {
    const list = await fetch(`${url}/blogs/`)
    expect(list.status).toBe(200)
    expect(await list.text()).toMatch(/<html/i)
    // The OpenTelemetry bootstrap loaded: the response names its trace.
    expect(list.headers.get('traceresponse')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    const css = await fetch(`${url}/assets/style.css`)
    expect(css.status).toBe(200)
    expect(app.output()).not.toMatch(/Cannot find module/)
  })

  it('contains what the image copies and nothing else (no sources, tests or secrets)', () => {
    expect(readdirSync(image).sort()).toEqual(['dist', 'node_modules', 'package.json', 'public', 'uploads', 'views'])
    expect(readdirSync(path.join(image, 'dist')).sort()).toEqual(['otel', 'src'])
  })
})
