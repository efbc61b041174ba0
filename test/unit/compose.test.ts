import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig, parseDatabaseUrl } from '../../src/config'
import {
  allPanels, DASHBOARD_FILES, expandCollectorEnv, interpolate, interpolateDeep, readJson, readYaml, ROOT, type Dashboard
} from '../kit/stack'
import { SERVICE_GRAPH_TABLE_METRICS } from '../kit/grafana-tempo'
import { effectiveOutputs, hostPath, k6Run, problems, shellLines, words, writtenPaths, type ComposeK6Service, type K6Run } from '../kit/k6-cli'

// Static checks of docker-compose.yml, the Dockerfile and the Grafana provisioning. Docker,
// Grafana, Tempo and k6 cannot run on these machines; test/e2e/stack/collector.test.ts runs the
// collector, Jaeger and Prometheus for real.

interface Healthcheck { test: string[] | string; interval?: string; retries?: number }
interface Service {
  image?: string
  build?: { context: string; target?: string; dockerfile?: string; dockerfile_inline?: string }
  command?: string[] | string
  environment?: Record<string, string>
  volumes?: string[]
  ports?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: Healthcheck
  profiles?: string[]
  user?: string
}
interface ComposeFile { name: string; services: Record<string, Service>; volumes?: Record<string, unknown> }

const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')
const parsed = readYaml<ComposeFile>('docker-compose.yml')
// What Compose sees with none of the optional variables set (VOLUME_PATH, TESTID, ...).
const compose = interpolateDeep(parsed, {})
const services = compose.services
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')

/** `FROM` images of a Dockerfile text, with `ARG` defaults substituted. */
function fromImages(text: string): string[] {
  const args: Record<string, string> = {}
  for (const m of text.matchAll(/^ARG\s+(\w+)=(\S+)/gm)) args[m[1]!] = m[2]!
  return [...text.matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)/gm)].map((m) => m[1]!.replace(/\$\{?(\w+)\}?/g, (_x, n: string) => args[n] ?? ''))
}

/** An image reference with an exact version tag (x.y.z, optionally -variant) or a digest. */
function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true
  const tag = /:([^/:]+)$/.exec(image)?.[1]
  return tag !== undefined && /^v?\d+\.\d+\.\d+(-[a-z0-9.]+)?$/.test(tag)
}

/** `host:container[:mode]` -> host part, for bind mounts (paths starting with . or /). */
function bindSources(volumes: string[] = []): string[] {
  return volumes.map((v) => v.split(':')[0]!).filter((src) => src.startsWith('.') || src.startsWith('/'))
}

function healthcheckCommand(h: Healthcheck): string {
  return Array.isArray(h.test) ? h.test.join(' ') : h.test
}

/** [hostIp, hostPort, containerPort] of a `127.0.0.1:8000:8000` entry. */
function portParts(p: string): string[] {
  return p.split(':')
}

describe('docker-compose.yml', () => {
  it('is valid YAML with the project name blog_app', () => {
    expect(() => YAML.parse(raw, { merge: true })).not.toThrow()
    expect(compose.name).toBe('blog_app')
    expect(Object.keys(services).sort()).toEqual(['app', 'db', 'grafana', 'jaeger', 'k6', 'otel-collector', 'prometheus', 'tempo'])
  })

  it('gives every long-running service a healthcheck (k6 is a one-shot job in its own profile)', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (name === 'k6') {
        // A load test runs and exits: there is nothing to probe and nothing waits on it.
        expect(svc.profiles).toEqual(['k6'])
        expect(svc.healthcheck).toBeUndefined()
        continue
      }
      expect(svc.healthcheck, name).toBeDefined()
      expect(healthcheckCommand(svc.healthcheck!), name).toMatch(/\S/)
    }
  })

  it('waits only on services that have healthchecks, and only on services that exist', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(svc.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined()
        expect(condition, `${name} -> ${dep}`).toBe('service_healthy')
        expect(services[dep]!.healthcheck, `${dep} (awaited by ${name})`).toBeDefined()
      }
    }
    expect(Object.keys(services.app!.depends_on ?? {}).sort()).toEqual(['db', 'otel-collector'])
  })

  it('pins every image to an exact version, in the compose file, inline Dockerfiles and the Dockerfile', () => {
    const images: string[] = []
    for (const svc of Object.values(services)) {
      if (svc.image) images.push(svc.image)
      if (svc.build?.dockerfile_inline) images.push(...fromImages(svc.build.dockerfile_inline))
      if (svc.image === undefined) expect(svc.build, 'a service without image must build one').toBeDefined()
    }
    images.push(...fromImages(dockerfile).filter((i) => !['build', 'deps'].includes(i)))
    expect(images.length).toBeGreaterThanOrEqual(10)
    const unpinned = images.filter((i) => !isPinned(i) || /:latest$/.test(i))
    expect(unpinned).toEqual([])
    expect(images).toContain('mysql:8.4.6')
    expect(images.some((i) => /^jaegertracing\/jaeger:2\./.test(i))).toBe(true)
  })

  it('runs the same collector release as the one the tests build (otel/builder-config.yaml)', () => {
    const manifest = readYaml<{ dist: { version: string }; exporters: { gomod: string }[] }>('otel/builder-config.yaml')
    const inline = services['otel-collector']!.build!.dockerfile_inline!
    expect(fromImages(inline)).toContain(`otel/opentelemetry-collector-contrib:${manifest.dist.version}`)
    // The contrib modules of the manifest carry the same version as the image.
    const contrib = manifest.exporters.map((e) => e.gomod).find((g) => g.includes('collector-contrib'))!
    expect(contrib.endsWith(` v${manifest.dist.version}`)).toBe(true)
  })

  it('escapes the $ of the MySQL password as $$, so app and db agree on root1234$', () => {
    expect(raw).toContain('mysql://root:root1234$$@db:3306/blog_db')
    expect(raw).toContain('MYSQL_ROOT_PASSWORD: root1234$$')
    // An unescaped `$@` would be an interpolation error in Compose; our interpolation agrees.
    expect(() => interpolate('mysql://root:root1234$@db:3306/blog_db', {})).toThrow(/invalid interpolation/)
    const url = services.app!.environment!.DATABASE_URL!
    expect(url).toBe('mysql://root:root1234$@db:3306/blog_db')
    const db = parseDatabaseUrl(url)
    expect(db).toMatchObject({ host: 'db', port: 3306, user: 'root', password: 'root1234$', database: 'blog_db' })
    expect(services.db!.environment!.MYSQL_ROOT_PASSWORD).toBe(db.password)
    // The healthcheck reads the password from the container's environment ($$ -> $ for its shell).
    expect(healthcheckCommand(services.db!.healthcheck!)).toContain('"$MYSQL_ROOT_PASSWORD"')
    expect(healthcheckCommand(services.db!.healthcheck!)).toMatch(/mysqladmin ping -h 127\.0\.0\.1/)
  })

  it("gives the app an environment its own config accepts, listening on 0.0.0.0:8000 and probed on /health", () => {
    const env = services.app!.environment!
    const config = loadConfig(env)
    expect(config.host).toBe('0.0.0.0')
    expect(config.port).toBe(8000)
    expect(config.uploadDir).toBe('/app/uploads')
    expect(env.NODE_ENV).toBe('production')
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318')
    expect(services.app!.ports).toContain('127.0.0.1:8000:8000')
    expect(healthcheckCommand(services.app!.healthcheck!)).toContain('http://127.0.0.1:8000/health')
    expect(readFileSync(path.join(ROOT, 'src/routes/health.ts'), 'utf8')).toMatch(/fastify\.get\('\/health'/)
    // The upload dir is a named volume; the views come from VOLUME_PATH (default: this checkout).
    expect(services.app!.volumes).toContain('uploads:/app/uploads')
    expect(parsed.services.app!.volumes).toContain('${VOLUME_PATH:-.}/views:/app/views:ro')
    expect(interpolateDeep(parsed, { VOLUME_PATH: '/src/blog' }).services.app!.volumes).toContain('/src/blog/views:/app/views:ro')
  })

  it('mounts only files and directories that exist in the repo, and declares every named volume', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const src of bindSources(svc.volumes)) {
        expect(existsSync(path.resolve(ROOT, src)), `${name}: ${src}`).toBe(true)
      }
      for (const v of svc.volumes ?? []) {
        const src = v.split(':')[0]!
        if (!src.startsWith('.') && !src.startsWith('/')) expect(compose.volumes, `${name}: volume ${src}`).toHaveProperty(src)
      }
      if (svc.build) expect(statSync(path.resolve(ROOT, svc.build.context)).isDirectory(), `${name}: build context`).toBe(true)
    }
    expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(['db-data', 'uploads']))
    expect(services.db!.volumes).toContain('./initial_data.sql:/docker-entrypoint-initdb.d/initial_data.sql:ro')
  })

  it('wires OTLP, scrape and datasource addresses to the services and ports that serve them', () => {
    const collector = YAML.parse(expandCollectorEnv(readFileSync(path.join(ROOT, 'otel/collector.yaml'), 'utf8'))) as {
      receivers: { otlp: { protocols: { http: { endpoint: string }; grpc: { endpoint: string } } } }
      exporters: Record<string, { endpoint: string }>
      extensions: { health_check: { endpoint: string } }
    }
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318')
    expect(collector.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317')
    expect(collector.exporters['otlp/jaeger']!.endpoint).toBe('jaeger:4317')
    expect(collector.exporters['otlp/tempo']!.endpoint).toBe('tempo:4317')
    expect(collector.extensions.health_check.endpoint).toBe('0.0.0.0:13133')
    expect(healthcheckCommand(services['otel-collector']!.healthcheck!)).toContain('http://127.0.0.1:13133/')
    expect(services['otel-collector']!.volumes).toContain('./otel/collector.yaml:/etc/otelcol/collector.yaml:ro')
    expect(services['otel-collector']!.command).toEqual(['--config=/etc/otelcol/collector.yaml'])

    const prom = readYaml<{ scrape_configs: { job_name: string; honor_labels?: boolean; static_configs: { targets: string[] }[] }[] }>('prometheus/prometheus.yml')
    const app = prom.scrape_configs.find((s) => s.job_name === 'otel-collector')!
    expect(app.honor_labels).toBe(true)
    expect(app.static_configs[0]!.targets).toEqual([collector.exporters.prometheus!.endpoint.replace('0.0.0.0', 'otel-collector')])

    const tempo = readYaml<{ server: { http_listen_port: number }; distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string } } } } }; metrics_generator: { storage: { remote_write: { url: string }[] } } }>('otel/tempo.yaml')
    expect(tempo.distributor.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317')
    expect(tempo.server.http_listen_port).toBe(3200)
    expect(tempo.metrics_generator.storage.remote_write[0]!.url).toBe('http://prometheus:9090/api/v1/write')

    const ds = readYaml<{ datasources: { uid: string; url: string }[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
    expect(Object.fromEntries(ds.map((d) => [d.uid, d.url]))).toEqual({
      prometheus: 'http://prometheus:9090', tempo: 'http://tempo:3200', jaeger: 'http://jaeger:16686'
    })
  })

  it('starts Prometheus with the remote-write receiver, exemplars and native histograms', () => {
    const cmd = services.prometheus!.command as string[]
    expect(cmd).toContain('--web.enable-remote-write-receiver')
    expect(cmd).toContain('--enable-feature=exemplar-storage,native-histograms')
    expect(cmd).toContain('--config.file=/etc/prometheus/prometheus.yml')
    expect(services.prometheus!.volumes).toContain('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro')
  })

  it('runs k6 against the app with the Prometheus remote-write output and native histograms', () => {
    const k6 = services.k6!
    expect(k6.environment).toMatchObject({
      BASE_URL: 'http://app:8000',
      K6_OUT: 'experimental-prometheus-rw',
      K6_PROMETHEUS_RW_SERVER_URL: 'http://prometheus:9090/api/v1/write',
      K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM: 'true',
      // Off by default in k6: a finished run's series would hold their last value for 5 minutes.
      K6_PROMETHEUS_RW_STALE_MARKERS: 'true'
    })
    expect(k6.command).toEqual(['run', '-o', 'experimental-prometheus-rw', '/scripts/mixed.js'])
    expect(k6.volumes).toEqual(['./k6:/scripts:ro', './k6/results:/results'])
    for (const script of ['read.js', 'write.js', 'stress.js', 'arrival.js', 'mixed.js']) {
      expect(existsSync(path.join(ROOT, 'k6', script)), script).toBe(true)
    }
    // TESTID reaches the scripts, which tag every metric with it (the dashboard's testid).
    expect(parsed.services.k6!.environment!.TESTID).toBe('${TESTID:-}')
    expect(interpolateDeep(parsed, { TESTID: 'read-1' }).services.k6!.environment!.TESTID).toBe('read-1')
    expect(readFileSync(path.join(ROOT, 'k6/lib/options.js'), 'utf8')).toMatch(/__ENV\.TESTID/)
  })

  it('writes k6 summaries to the mounted k6/results as root, or as K6_USER (the image user 12345 cannot write it)', () => {
    expect(services.k6!.user).toBe('0')
    expect(interpolateDeep(parsed, { K6_USER: '1000' }).services.k6!.user).toBe('1000')
    expect(services.k6!.environment!.SUMMARY_DIR).toBe('/results')
    const run = k6Run('docker compose --profile k6 run --rm k6', parsed as { services: Record<string, ComposeK6Service> })!
    expect(writtenPaths(run).map((f) => hostPath(run, f.path)?.host)).toEqual(['k6/results/summary-x.json'])
    expect(problems(run)).toEqual([])
    // The directory is in the repo (git keeps it through its .gitignore), so Docker does not make it root's.
    expect(existsSync(path.join(ROOT, 'k6/results/.gitignore'))).toBe(true)
  })

  describe('the k6 command lines of README.md and k6/README.md', () => {
    const docs = ['README.md', 'k6/README.md'].map((f) => ({ file: f, lines: shellLines(readFileSync(path.join(ROOT, f), 'utf8')) }))
    const composeFile = parsed as { services: Record<string, ComposeK6Service> }
    const runs = docs.flatMap((d) => d.lines.map((l) => k6Run(l, composeFile)).filter((r): r is K6Run => r !== undefined).map((run) => ({ ...d, run })))

    it('keep the Prometheus output under Compose, write only where the run can, and run scripts that exist', () => {
      expect(runs.filter((r) => r.run.where === 'compose').length).toBeGreaterThanOrEqual(6)
      expect(runs.filter((r) => r.run.where === 'docker').length).toBe(2)
      expect(runs.filter((r) => r.run.where === 'local').length).toBeGreaterThanOrEqual(4)
      expect(Object.fromEntries(runs.map((r) => [`${r.file}: ${r.run.line}`, problems(r.run)]).filter(([, p]) => p!.length > 0))).toEqual({})
    })

    it('give a Compose recipe for the json output whose file the following jq command reads on the host', () => {
      for (const d of docs) {
        const composeJson = runs.filter((r) => r.file === d.file && r.run.where === 'compose' && effectiveOutputs(r.run).some((o) => o.startsWith('json=')))
        expect(composeJson.length, d.file).toBeGreaterThan(0)
        // The file argument of each jq command (its last word before a pipe).
        const jqFiles = d.lines.map((l) => words(l)).filter((w) => w[0] === 'jq').map((w) => w.slice(0, w.includes('|') ? w.indexOf('|') : w.length).pop())
        for (const { run } of composeJson) {
          expect(effectiveOutputs(run), run.line).toContain('experimental-prometheus-rw')
          for (const f of writtenPaths(run).filter((x) => x.what.startsWith('-o json='))) {
            expect(jqFiles, `${d.file}: jq reading ${f.path}`).toContain(hostPath(run, f.path)!.host)
          }
        }
      }
    })

    it('would catch the recipes that broke before (an -o dropping K6_OUT, a relative json path, uid 12345)', () => {
      const dropped = k6Run('docker compose --profile k6 run --rm k6 run --out json=k6/results/run.json /scripts/read.js', composeFile)!
      expect(problems(dropped)).toEqual([
        expect.stringMatching(/no experimental-prometheus-rw output .*replaces K6_OUT/),
        expect.stringMatching(/^-o json=k6\/results\/run.json: relative path/)
      ])
      const imageUser = structuredClone(composeFile)
      imageUser.services.k6!.user = '${K6_USER:-12345}'
      expect(problems(k6Run('docker compose --profile k6 run --rm k6', imageUser)!)).toEqual([expect.stringMatching(/user 12345 cannot write/)])
      expect(problems(k6Run('K6_USER=$(id -u) docker compose --profile k6 run --rm k6', imageUser)!)).toEqual([])
      const noUser = k6Run('docker run --rm -v "$PWD/k6:/scripts" -e SUMMARY_DIR=/scripts/results grafana/k6 run /scripts/read.js', composeFile)!
      expect(problems(noUser)).toEqual([expect.stringMatching(/user 12345 cannot write/)])
    })
  })

  it('publishes host ports on loopback only (Grafana admits anonymous viewers)', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p] as const))
    expect(published.length).toBeGreaterThan(0)
    for (const [name, p] of published) expect(portParts(p)[0], `${name}: ${p}`).toBe('127.0.0.1')
    expect(services.grafana!.environment).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' })
    expect(services.grafana!.ports).toContain('127.0.0.1:3000:3000')
    expect(services.jaeger!.ports).toContain('127.0.0.1:16686:16686')
  })

  it('lets the anonymous Viewer follow metrics -> trace links, which need Explore access in Grafana 12', () => {
    const env = services.grafana!.environment!
    // Viewer, not Editor: viewers_can_edit adds datasources:explore without the right to save.
    expect(env).toMatchObject({ GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer', GF_USERS_VIEWERS_CAN_EDIT: 'true' })
    // The links that need it: exemplars to Tempo/Jaeger, and each dashboard's Explore links.
    const ds = readYaml<{ datasources: { uid: string; jsonData?: { exemplarTraceIdDestinations?: unknown[] } }[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
    expect(ds.find((d) => d.uid === 'prometheus')!.jsonData!.exemplarTraceIdDestinations).toHaveLength(2)
    for (const f of DASHBOARD_FILES) expect(readJson<Dashboard>(f).links!.some((l) => l.url.startsWith('/explore?')), f).toBe(true)
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain('GF_USERS_VIEWERS_CAN_EDIT')
  })

  it('is accepted by `docker compose config` where Compose is installed', (ctx) => {
    const version = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' })
    if (version.status !== 0) {
      // Not a pass: reported as skipped, with the reason.
      ctx.skip('`docker compose` is not installed on this machine; the static checks above stand in for it')
      return
    }
    const out = execFileSync('docker', ['compose', '--project-directory', ROOT, '-f', path.join(ROOT, 'docker-compose.yml'), 'config', '--format', 'json'], { encoding: 'utf8' })
    const resolved = JSON.parse(out) as ComposeFile
    expect(resolved.services.app!.environment!.DATABASE_URL).toBe('mysql://root:root1234$@db:3306/blog_db')
  })
})

describe('Dockerfile', () => {
  it('builds in stages on node:24-slim, installs production dependencies only and runs as a non-root user', () => {
    expect(fromImages(dockerfile).every((i) => /^node:24\.\d+\.\d+-slim$/.test(i) || i === 'build' || i === 'deps')).toBe(true)
    expect(dockerfile).toMatch(/^FROM \S+ AS app$/m)
    expect(services.app!.build).toEqual({ context: '.', target: 'app' })
    expect(dockerfile).toMatch(/npm ci --omit=dev/)
    expect(dockerfile).toMatch(/NODE_ENV=production/)
    const stages = dockerfile.split(/^FROM /m)
    const final = stages[stages.length - 1]!
    expect(final).toMatch(/^USER node$/m)
    expect(final).not.toMatch(/npm ci(?! --omit=dev)/)
  })

  it('starts the app the way `npm start` does, with the OpenTelemetry bootstrap', () => {
    const pkg = readJson<{ scripts: Record<string, string> }>('package.json')
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]
    expect(cmd.join(' ')).toBe(pkg.scripts.start)
    expect(cmd).toEqual(['node', '--require', './dist/otel/bootstrap.js', 'dist/src/server.js'])
  })

  it('copies only paths that exist and that .dockerignore lets through', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/))
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'otel', 'views', 'public']))
    for (const src of sources) {
      expect(existsSync(path.join(ROOT, src)), src).toBe(true)
      expect(ignored, `${src} is excluded by .dockerignore`).not.toContain(src)
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.env', 'dist', 'uploads', '.git']))
  })
})

describe('Grafana provisioning', () => {
  interface Ds {
    uid: string
    type: string
    jsonData?: {
      exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[]
      tracesToMetrics?: { datasourceUid: string; queries: { query: string }[] }
      serviceMap?: { datasourceUid: string }
    }
  }
  const datasources = readYaml<{ datasources: Ds[] }>('grafana/provisioning/datasources/datasources.yaml').datasources
  const uids = new Set(datasources.map((d) => d.uid))
  const dashboards = DASHBOARD_FILES.map((f) => readJson<Dashboard>(f))

  it('provisions Prometheus, Tempo and Jaeger under fixed uids', () => {
    expect(datasources.map((d) => [d.uid, d.type])).toEqual([['prometheus', 'prometheus'], ['tempo', 'tempo'], ['jaeger', 'jaeger']])
  })

  it('links exemplars to a trace datasource and traces back to Prometheus', () => {
    const prom = datasources.find((d) => d.uid === 'prometheus')!
    const dest = prom.jsonData!.exemplarTraceIdDestinations!
    expect(dest.map((d) => d.datasourceUid).sort()).toEqual(['jaeger', 'tempo'])
    // The prometheus exporter names the exemplar label trace_id (collector.test.ts sees it).
    expect(dest.every((d) => d.name === 'trace_id')).toBe(true)
    const tempo = datasources.find((d) => d.uid === 'tempo')!
    expect(tempo.jsonData!.serviceMap!.datasourceUid).toBe('prometheus')
    for (const d of datasources.filter((x) => x.jsonData?.tracesToMetrics)) {
      expect(d.jsonData!.tracesToMetrics!.datasourceUid).toBe('prometheus')
    }
  })

  it("names the span metrics as Grafana's Service Graph table queries them, and uses only those names", () => {
    const collector = readYaml<{ connectors: { spanmetrics: { namespace: string; histogram: { unit: string } } } }>('otel/collector.yaml')
    // namespace traces.spanmetrics + unit s -> traces_spanmetrics_{calls_total,duration_seconds_bucket}
    // (test/e2e/stack/collector.test.ts sees these names arrive in a real Prometheus).
    expect(collector.connectors.spanmetrics.namespace).toBe('traces.spanmetrics')
    expect(collector.connectors.spanmetrics.histogram.unit).toBe('s')
    const files = [...DASHBOARD_FILES, 'grafana/provisioning/datasources/datasources.yaml']
    const used = new Set(files.flatMap((f) => [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\btraces_span[a-z_]*/g)].map((m) => m[0])))
    expect([...used].sort()).toEqual([...SERVICE_GRAPH_TABLE_METRICS].sort())
    // Tempo's own span-metrics processor would write the same names a second time.
    const tempo = readYaml<{ overrides: { defaults: { metrics_generator: { processors: string[] } } } }>('otel/tempo.yaml')
    expect(tempo.overrides.defaults.metrics_generator.processors).toEqual(['service-graphs'])
  })

  it("writes Grafana's own $__tags as $$__tags (provisioning files expand environment variables)", () => {
    const text = readFileSync(path.join(ROOT, 'grafana/provisioning/datasources/datasources.yaml'), 'utf8')
    const queries = datasources.flatMap((d) => d.jsonData?.tracesToMetrics?.queries ?? []).map((q) => q.query)
    expect(queries.length).toBeGreaterThan(0)
    for (const q of queries) expect(q.replace(/\$\$/g, '')).not.toMatch(/\$/)
    expect(text).not.toMatch(/[^$]\$(?!\$)\{?__/)
  })

  it('serves the dashboards folder the compose file mounts, and the home dashboard exists', () => {
    const provider = readYaml<{ providers: { type: string; options: { path: string } }[] }>('grafana/provisioning/dashboards/dashboards.yaml').providers[0]!
    expect(provider.type).toBe('file')
    expect(services.grafana!.volumes).toContain(`./grafana/dashboards:${provider.options.path}:ro`)
    expect(services.grafana!.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro')
    const home = services.grafana!.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!
    expect(home.startsWith(provider.options.path + '/')).toBe(true)
    expect(existsSync(path.join(ROOT, 'grafana/dashboards', path.basename(home)))).toBe(true)
  })

  it('has the Blog app and Load test dashboards with unique uids and panel ids', () => {
    expect(dashboards.map((d) => d.title)).toEqual(['Blog app', 'Load test'])
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length)
    for (const d of dashboards) {
      const ids = allPanels(d).map((p) => p.id)
      expect(new Set(ids).size, d.title).toBe(ids.length)
    }
  })

  it('refers only to provisioned datasource uids, in panels, targets, variables and trace links', () => {
    for (const d of dashboards) {
      const text = JSON.stringify(d)
      const referenced = [...text.matchAll(/"uid":"([^"]+)"/g)].map((m) => m[1]!).filter((u) => u !== d.uid)
      expect(referenced.length, d.title).toBeGreaterThan(0)
      for (const u of referenced) expect(uids.has(u), `${d.title}: datasource uid ${u}`).toBe(true)
      for (const link of d.links ?? []) {
        const panes = /panes=([^&]+)/.exec(link.url)?.[1]
        if (!panes) continue
        const json = JSON.parse(decodeURIComponent(panes)) as Record<string, { datasource: string; range: { from: string; to: string } }>
        for (const pane of Object.values(json)) {
          expect(uids.has(pane.datasource), link.title).toBe(true)
          expect(pane.range).toEqual({ from: '${__from}', to: '${__to}' })
        }
      }
    }
  })

  it('links each dashboard to the traces of its time range in Tempo and Jaeger', () => {
    for (const d of dashboards) {
      const titles = (d.links ?? []).map((l) => l.title).join(' | ')
      expect(titles, d.title).toMatch(/Tempo/)
      expect(titles, d.title).toMatch(/Jaeger/)
    }
  })

  it('gives every panel a title and a unit', () => {
    for (const d of dashboards) {
      for (const p of allPanels(d).filter((x) => x.type !== 'row')) {
        const where = `${d.title} panel #${p.id}`
        expect(p.title?.trim(), where).toBeTruthy()
        // A node graph shows the units the Tempo datasource gives its frames (ms/r, r/sec).
        if (p.type !== 'nodeGraph') expect(p.fieldConfig?.defaults?.unit, `${where} (${p.title})`).toBeTruthy()
        if (p.type === 'heatmap') expect(p.options?.yAxis?.unit, `${where} (${p.title})`).toBeTruthy()
        expect(p.targets?.length, `${where} (${p.title}) has no query`).toBeGreaterThan(0)
      }
    }
  })

  it('has the panels the issue asks for', () => {
    const titles = (i: number) => allPanels(dashboards[i]!).map((p) => p.title ?? '')
    const blog = titles(0)
    for (const want of [/Request rate by route/, /error ratio/i, /Latency percentiles by route/, /X-Process-Time/, /DB operation latency/, /Pool connections/, /Pool acquire wait/, /Event loop delay/, /heap/i]) {
      expect(blog.some((t) => want.test(t)), String(want)).toBe(true)
    }
    const load = titles(1)
    for (const want of [/Virtual users/, /Request rate \(k6\)/, /Latency percentiles \(k6\)/, /Failure rate \(k6\)/, /Server p99/, /DB operation latency/]) {
      expect(load.some((t) => want.test(t)), String(want)).toBe(true)
    }
    // Tempo's service graph, with the reason it shows no k6 edge where one would look for it.
    const graph = allPanels(dashboards[1]!).find((p) => p.type === 'nodeGraph')
    expect(graph?.datasource?.uid).toBe('tempo')
    expect(graph?.targets).toEqual([expect.objectContaining({ queryType: 'serviceMap', datasource: { type: 'tempo', uid: 'tempo' } })])
    expect((graph as { description?: string }).description).toMatch(/k6 sends a traceparent but exports no span.*no k6 -> blog-app edge/)
    const testid = dashboards[1]!.templating!.list.find((v) => v.name === 'testid')
    expect(testid?.query).toEqual({ query: 'label_values(k6_http_reqs_total, testid)', refId: 'testid' })
  })
})
