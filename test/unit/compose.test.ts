import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig, parseDatabaseUrl } from '../../src/config'
import { loadCompose, type ComposeFile, type Healthcheck } from '../kit/compose'
import { expandCollectorEnv, interpolate, interpolateDeep, readJson, readYaml, ROOT } from '../kit/stack'

// Static checks of docker-compose.yml and the Dockerfile (Grafana: grafana.test.ts, k6: k6-compose.test.ts). Docker,
// Grafana, Tempo and k6 cannot run on these machines; test/e2e/stack/collector.test.ts runs the
// collector, Jaeger and Prometheus for real.

const { raw, parsed, compose, services } = loadCompose()
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
  return Array.isArray(h.test) ? h.test.join(' ') : (h.test ?? '')
}

/** The Dockerfile's HEALTHCHECK command (its exec form), or undefined. */
function dockerfileHealthcheck(text: string): string[] | undefined {
  const m = /^HEALTHCHECK\b((?:.*\\\n)*.*)$/m.exec(text)
  const cmd = m ? /CMD (\[.*\])\s*$/s.exec(m[1]!.replace(/\\\n/g, ' ')) : null
  return cmd ? (JSON.parse(cmd[1]!) as string[]) : undefined
}

/** One-shot jobs: they run and exit, nothing probes them, and what waits for them waits for exit 0. */
const ONE_SHOT = ['bucket', 'migrate']

/** [hostIp, hostPort, containerPort] of a `127.0.0.1:8000:8000` entry. */
function portParts(p: string): string[] {
  return p.split(':')
}

describe('docker-compose.yml', () => {
  it('is valid YAML with the project name blog_app', () => {
    expect(() => YAML.parse(raw, { merge: true })).not.toThrow()
    expect(compose.name).toBe('blog_app')
    expect(Object.keys(services).sort()).toEqual(['app', 'bucket', 'db', 'grafana', 'jaeger', 'k6', 'lb', 'migrate', 'otel-collector', 'prometheus', 'seaweedfs', 'tempo'])
  })

  it('gives every long-running service a healthcheck (k6, bucket and migrate are one-shot jobs)', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (name === 'k6') {
        // A load test runs and exits: there is nothing to probe and nothing waits on it.
        expect(svc.profiles).toEqual(['k6'])
        expect(svc.healthcheck).toBeUndefined()
        continue
      }
      if (ONE_SHOT.includes(name)) {
        // Runs once at start and exits; the app waits for it to have succeeded. Built from the
        // app image, whose HEALTHCHECK would probe a server these never start.
        expect(svc.restart, name).toBe('no')
        expect(svc.healthcheck, name).toEqual({ disable: true })
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
        if (services[dep]!.restart === 'no') {
          // A one-shot job is awaited until it exits 0.
          expect(condition, `${name} -> ${dep}`).toBe('service_completed_successfully')
          continue
        }
        expect(condition, `${name} -> ${dep}`).toBe('service_healthy')
        expect(services[dep]!.healthcheck, `${dep} (awaited by ${name})`).toBeDefined()
        expect(services[dep]!.healthcheck!.disable, `${dep} (awaited by ${name})`).toBeUndefined()
      }
    }
    expect(Object.keys(services.app!.depends_on ?? {}).sort()).toEqual(['bucket', 'db', 'migrate', 'otel-collector', 'seaweedfs'])
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
    // SeaweedFS numbers its releases x.yy (4.53): exact, but two parts.
    const unpinned = images.filter((i) => !(isPinned(i) || /^chrislusf\/seaweedfs:\d+\.\d+$/.test(i)) || /:latest$/.test(i))
    expect(unpinned).toEqual([])
    expect(images).toContain('mysql:8.4.6')
    expect(images.some((i) => /^jaegertracing\/jaeger:2\./.test(i))).toBe(true)
  })

  it('runs the same collector release as the one the tests build (otel/builder-config.yaml)', () => {
    type Modules = { gomod: string }[]
    const manifest = readYaml<{ dist: { version: string } } & Record<string, Modules>>('otel/builder-config.yaml')
    const inline = services['otel-collector']!.build!.dockerfile_inline!
    expect(fromImages(inline)).toContain(`otel/opentelemetry-collector-contrib:${manifest.dist.version}`)
    // Every contrib module of the manifest (the mysql receiver too) carries the image's version.
    const contrib = ['receivers', 'processors', 'connectors', 'exporters', 'extensions']
      .flatMap((k) => (manifest[k] as Modules | undefined) ?? []).map((m) => m.gomod).filter((g) => g.includes('collector-contrib'))
    expect(contrib).toContain(`github.com/open-telemetry/opentelemetry-collector-contrib/receiver/mysqlreceiver v${manifest.dist.version}`)
    for (const g of contrib) expect(g.endsWith(` v${manifest.dist.version}`), g).toBe(true)
  })

  it("starts MySQL with the statement history the app's server timings prefer (events_statements_history_long)", () => {
    // MySQL 8.4 turns performance_schema and events_statements_history on by default, not _long;
    // test/e2e/stack/collector.test.ts starts its MariaDB with these same flags.
    expect(services.db!.image).toBe('mysql:8.4.6')
    expect(services.db!.command).toEqual(['--performance-schema-consumer-events-statements-history-long=ON'])
    // The app reads it unless DB_SERVER_TIMINGS=false: compose leaves the default (on).
    expect(services.app!.environment!.DB_SERVER_TIMINGS).toBeUndefined()
    expect(loadConfig(services.app!.environment!).db.serverTimings.enabled).toBe(true)
  })

  it("points the collector's mysql receiver at the db service, as blog_monitor with the password the db created it with", () => {
    const collector = YAML.parse(expandCollectorEnv(readFileSync(path.join(ROOT, 'otel/collector.yaml'), 'utf8'), services['otel-collector']!.environment)) as {
      receivers: { mysql: { endpoint: string; username: string; password: string; collection_interval: string } }
      service: { pipelines: Record<string, { receivers: string[]; exporters: string[] }> }
    }
    const db = parseDatabaseUrl(services.app!.environment!.DATABASE_URL!)
    expect(collector.receivers.mysql).toMatchObject({ endpoint: `${db.host}:${db.port}`, username: 'blog_monitor', collection_interval: '10s' })
    expect(collector.receivers.mysql.password).toBe(services.db!.environment!.BLOG_MONITOR_DB_PASSWORD)
    expect(collector.receivers.mysql.password).toBeTruthy()
    // Its metrics go where the app's do: the prometheus exporter that Prometheus scrapes.
    expect(collector.service.pipelines.metrics).toMatchObject({ receivers: expect.arrayContaining(['mysql']), exporters: ['prometheus'] })
    expect(Object.values(collector.service.pipelines).filter((p) => p.receivers.includes('mysql'))).toHaveLength(1)
  })

  it('escapes the $ of the root password as $$, which only the db service itself uses', () => {
    expect(raw).toContain('MYSQL_ROOT_PASSWORD: root1234$$')
    // An unescaped `$@` would be an interpolation error in Compose; our interpolation agrees.
    expect(() => interpolate('mysql://root:root1234$@db:3306/blog_db', {})).toThrow(/invalid interpolation/)
    expect(services.db!.environment!.MYSQL_ROOT_PASSWORD).toBe('root1234$')
    for (const [name, svc] of Object.entries(services)) {
      if (name === 'db') continue
      expect(JSON.stringify(svc), `${name} must not use root`).not.toContain('root1234')
    }
    // The healthcheck reads the password from the container's environment ($$ -> $ for its shell).
    expect(healthcheckCommand(services.db!.healthcheck!)).toContain('"$MYSQL_ROOT_PASSWORD"')
    expect(healthcheckCommand(services.db!.healthcheck!)).toMatch(/mysqladmin ping -h 127\.0\.0\.1/)
  })

  it("gives the app an environment its own config accepts, listening on 0.0.0.0:8000 and probed on /health", () => {
    const env = services.app!.environment!
    const config = loadConfig(env)
    expect(config.host).toBe('0.0.0.0')
    expect(config.port).toBe(8000)
    expect(config.storage).toMatchObject({ kind: 's3', s3: { endpoint: 'http://seaweedfs:8333', bucket: 'blog-images', forcePathStyle: true } })
    expect(env.NODE_ENV).toBe('production')
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318')
    // The replicas publish nothing: the balancer has the host port.
    expect(services.app!.ports).toBeUndefined()
    expect(services.lb!.ports).toContain('127.0.0.1:8000:8000')
    // The image's own probe, on the PORT the app listens on (8000 here).
    expect(services.app!.healthcheck!.test).toEqual(['CMD', ...dockerfileHealthcheck(dockerfile)!])
    expect(healthcheckCommand(services.app!.healthcheck!)).toContain("'http://127.0.0.1:' + (process.env.PORT || 8000) + '/health'")
    // The Host names the healthcheck and k6 send are ones the app answers for.
    expect(config.allowedHosts?.has('127.0.0.1')).toBe(true)
    expect(config.allowedHosts?.has(new URL(services.k6!.environment!.BASE_URL!).hostname)).toBe(true)
    expect(readFileSync(path.join(ROOT, 'src/routes/health.ts'), 'utf8')).toMatch(/fastify\.get\('\/health'/)
    // The views come from VOLUME_PATH (default: this checkout); images are in the object store.
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
    expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(['db-data', 'seaweedfs-data']))
    expect(services.db!.volumes).toEqual(expect.arrayContaining(['./deploy/mysql/compose-init.sh:/docker-entrypoint-initdb.d/users.sh:ro', './deploy/mysql/users.sql:/etc/blog/users.sql:ro']))
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

  it('publishes host ports on loopback only (Grafana admits anonymous viewers)', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p] as const))
    expect(published.length).toBeGreaterThan(0)
    for (const [name, p] of published) expect(portParts(p)[0], `${name}: ${p}`).toBe('127.0.0.1')
    expect(services.grafana!.environment).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' })
    expect(services.grafana!.ports).toContain('127.0.0.1:3000:3000')
    expect(services.jaeger!.ports).toContain('127.0.0.1:16686:16686')
  })

  it('runs APP_REPLICAS replicas of the app (default 2) behind nginx, which balances over every one of them', () => {
    expect(services.app!.deploy?.replicas).toBe('2')
    expect(interpolateDeep(parsed, { APP_REPLICAS: '3' }).services.app!.deploy?.replicas).toBe('3')
    expect(services.lb!.image).toMatch(/^nginx:1\.(2[89]|[3-9]\d)\.\d+-alpine$/)
    const conf = readFileSync(path.join(ROOT, 'deploy/nginx/nginx.conf'), 'utf8')
    // Every replica's address, re-resolved as replicas come and go (nginx >= 1.27.3).
    expect(conf).toMatch(/upstream app \{[^}]*server app:8000 resolve/)
    expect(conf).toContain('resolver 127.0.0.11')
    expect(conf).toMatch(/listen 8000;/)
    expect(conf).toContain('include /etc/nginx/blog/proxy.conf;')
    expect(services.lb!.volumes).toEqual(['./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro', './deploy/nginx/proxy.conf:/etc/nginx/blog/proxy.conf:ro'])
    expect(healthcheckCommand(services.lb!.healthcheck!)).toContain('http://127.0.0.1:8000/lb-health')
    expect(conf).toMatch(/location = \/lb-health/)
    // The inspector is per process: one browser stays on one replica for it.
    expect(conf).toMatch(/upstream app_inspect \{[^}]*hash \$remote_addr consistent/)
    expect(new URL(services.k6!.environment!.BASE_URL!).hostname).toBe('lb')
  })

  it('gives the app, the bucket job and SeaweedFS the same bucket and keys', () => {
    const s3 = JSON.parse(readFileSync(path.join(ROOT, 'deploy/seaweedfs/s3.json'), 'utf8')) as { identities: { credentials: { accessKey: string; secretKey: string }[]; actions: string[] }[] }
    const app = services.app!.environment!
    expect(s3.identities.flatMap((i) => i.credentials)).toContainEqual({ accessKey: app.AWS_ACCESS_KEY_ID, secretKey: app.AWS_SECRET_ACCESS_KEY })
    for (const k of ['STORAGE', 'S3_ENDPOINT', 'S3_BUCKET', 'S3_FORCE_PATH_STYLE', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      expect(services.bucket!.environment![k], k).toBe(app[k])
    }
    expect(loadConfig(services.bucket!.environment!).storage.kind).toBe('s3')
    expect(services.bucket!.command).toEqual(['node', 'dist/src/cli/storage.js', 'create-bucket'])
    expect(existsSync(path.join(ROOT, 'src/cli/storage.ts'))).toBe(true)
    const cmd = (services.seaweedfs!.command as string[]).join(' ')
    expect(cmd).toMatch(/^server .*-s3 .*-s3\.port=8333/)
    expect(cmd).toContain('-s3.config=/etc/seaweedfs/s3.json')
    expect(cmd).toContain('-master.telemetry=false')
    expect(new URL(app.S3_ENDPOINT!).host).toBe('seaweedfs:8333')
    expect(healthcheckCommand(services.seaweedfs!.healthcheck!)).toContain('http://127.0.0.1:8333/healthz')
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
    expect(resolved.services.app!.environment!.DATABASE_URL).toBe('mysql://blog_app:blog_app_dev@db:3306/blog_db')
  })
})

describe('docker-compose.yml: the database users and the migrations (issue 27, item 4)', () => {
  const env = (name: string) => services[name]!.environment!

  it('migrates once, in the one-shot `migrate` service as blog_migrate, before any replica starts', () => {
    const migrate = services.migrate!
    expect(migrate.build).toEqual(services.app!.build)
    expect(migrate.command).toEqual(['node', 'dist/src/cli/db.js', 'seed'])
    expect(existsSync(path.join(ROOT, 'src/cli/db.ts'))).toBe(true)
    expect(migrate.restart).toBe('no')
    expect(migrate.depends_on).toEqual({ db: { condition: 'service_healthy' } })
    expect(services.app!.depends_on!.migrate).toEqual({ condition: 'service_completed_successfully' })
    expect(parseDatabaseUrl(env('migrate').DATABASE_URL!)).toMatchObject({ host: 'db', user: 'blog_migrate', database: 'blog_db' })
  })

  it('runs the app as blog_app, which never migrates or seeds', () => {
    const config = loadConfig(env('app'))
    expect(config.db).toMatchObject({ host: 'db', user: 'blog_app', database: 'blog_db', migrateOnStart: false, seedOnStart: false })
    // Same database as the migrations, other user.
    expect(config.db.database).toBe(parseDatabaseUrl(env('migrate').DATABASE_URL!).database)
  })

  it('creates the three users at the db volume\'s first start, with the passwords their clients use', () => {
    const init = readFileSync(path.join(ROOT, 'deploy/mysql/compose-init.sh'), 'utf8')
    // compose-init.sh reads users.sql where the compose file mounts it, and these variables.
    expect(services.db!.volumes).toContain('./deploy/mysql/users.sql:/etc/blog/users.sql:ro')
    expect(init).toContain('cat /etc/blog/users.sql')
    const vars = [...new Set([...init.matchAll(/\$(BLOG_[A-Z_]+_DB_PASSWORD)/g)].map((m) => m[1]!))].sort()
    expect(vars).toEqual(['BLOG_APP_DB_PASSWORD', 'BLOG_MIGRATE_DB_PASSWORD', 'BLOG_MONITOR_DB_PASSWORD'])
    const db = env('db')
    expect(parseDatabaseUrl(env('app').DATABASE_URL!).password).toBe(db.BLOG_APP_DB_PASSWORD)
    expect(parseDatabaseUrl(env('migrate').DATABASE_URL!).password).toBe(db.BLOG_MIGRATE_DB_PASSWORD)
    expect(env('otel-collector').MYSQL_PASSWORD).toBe(db.BLOG_MONITOR_DB_PASSWORD)
    // One variable sets each password everywhere.
    const other = interpolateDeep(parsed, { BLOG_APP_DB_PASSWORD: 'x1', BLOG_MIGRATE_DB_PASSWORD: 'x2', BLOG_MONITOR_DB_PASSWORD: 'x3' }).services
    expect(parseDatabaseUrl(other.app!.environment!.DATABASE_URL!).password).toBe('x1')
    expect(other.db!.environment!.BLOG_APP_DB_PASSWORD).toBe('x1')
    expect(parseDatabaseUrl(other.migrate!.environment!.DATABASE_URL!).password).toBe('x2')
    expect(other.db!.environment!.BLOG_MIGRATE_DB_PASSWORD).toBe('x2')
    expect(other['otel-collector']!.environment!.MYSQL_PASSWORD).toBe('x3')
    expect(other.db!.environment!.BLOG_MONITOR_DB_PASSWORD).toBe('x3')
    // The user names are users.sql's defaults.
    const users = readFileSync(path.join(ROOT, 'deploy/mysql/users.sql'), 'utf8')
    for (const u of ['blog_app', 'blog_migrate', 'blog_monitor']) expect(users).toContain(`'${u}'`)
  })
})

describe('docker-compose.yml: Jaeger\'s memory store (issue 27, item 5)', () => {
  const jaegerConfig = () => YAML.parse(expandCollectorEnv(readFileSync(path.join(ROOT, 'otel/jaeger.yaml'), 'utf8'), services.jaeger!.environment)) as {
    service: { extensions: string[]; pipelines: Record<string, { receivers: string[]; exporters: string[] }> }
    extensions: { healthcheckv2: { http: { endpoint: string } }; jaeger_storage: { backends: Record<string, { memory?: { max_traces: number } }> }; jaeger_query: { storage: { traces: string }; http: { endpoint: string } } }
    receivers: { otlp: { protocols: { grpc: { endpoint: string } } } }
    exporters: { jaeger_storage_exporter: { trace_storage: string } }
  }

  it('runs Jaeger with otel/jaeger.yaml, whose memory store keeps an explicit, documented number of traces', () => {
    const jaeger = services.jaeger!
    expect(jaeger.command).toEqual(['--config=/etc/jaeger/jaeger.yaml'])
    expect(jaeger.volumes).toContain('./otel/jaeger.yaml:/etc/jaeger/jaeger.yaml:ro')
    const config = jaegerConfig()
    const store = config.exporters.jaeger_storage_exporter.trace_storage
    expect(config.extensions.jaeger_query.storage.traces).toBe(store)
    expect(config.extensions.jaeger_storage.backends[store]!.memory!.max_traces).toBe(100000)
    expect(interpolateDeep(parsed, { JAEGER_MAX_TRACES: '250000' }).services.jaeger!.environment!.JAEGER_MAX_TRACES).toBe('250000')
    // The trade-off is written where an operator looks for it.
    for (const f of ['otel/jaeger.yaml', 'docs/operations.md']) expect(readFileSync(path.join(ROOT, f), 'utf8'), f).toMatch(/JAEGER_MAX_TRACES/)
  })

  it('listens where the collector, the healthcheck and the published port expect it', () => {
    const config = jaegerConfig()
    expect(config.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317')
    const collector = YAML.parse(expandCollectorEnv(readFileSync(path.join(ROOT, 'otel/collector.yaml'), 'utf8'))) as { exporters: Record<string, { endpoint: string }> }
    expect(collector.exporters['otlp/jaeger']!.endpoint).toBe('jaeger:4317')
    expect(config.extensions.jaeger_query.http.endpoint).toBe('0.0.0.0:16686')
    expect(services.jaeger!.ports).toContain('127.0.0.1:16686:16686')
    expect(config.extensions.healthcheckv2.http.endpoint).toBe('0.0.0.0:13133')
    expect(healthcheckCommand(services.jaeger!.healthcheck!)).toContain('http://127.0.0.1:13133/status')
    expect(config.service.extensions).toEqual(expect.arrayContaining(['jaeger_storage', 'jaeger_query', 'healthcheckv2']))
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

  it('declares a HEALTHCHECK on /health and the PORT the app listens on (the image probes itself outside Compose too)', () => {
    const cmd = dockerfileHealthcheck(dockerfile)
    expect(cmd, 'no HEALTHCHECK in the Dockerfile').toBeDefined()
    expect(cmd![0]).toBe('node')
    expect(cmd!.join(' ')).toContain("'http://127.0.0.1:' + (process.env.PORT || 8000) + '/health'")
    expect(dockerfile).toMatch(/^ENV [^]*PORT=8000/m)
    expect(readFileSync(path.join(ROOT, 'src/routes/health.ts'), 'utf8')).toMatch(/fastify\.get\('\/health'/)
    const stages = dockerfile.split(/^FROM /m)
    expect(stages[stages.length - 1]).toMatch(/^HEALTHCHECK /m)
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
