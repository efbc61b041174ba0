import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig, parseDatabaseUrl } from '../../src/config'
import { loadCompose } from '../kit/compose'
import { expandCollectorEnv, ROOT } from '../kit/stack'

// deploy/kubernetes, checked offline: every object against the Kubernetes OpenAPI schemas that
// the kubernetes-models package bundles (what `kubectl apply --dry-run=client` would refuse),
// then the references between objects that no schema sees (selectors, ports, names, env), and
// what issue 27 found an operator would hit: the collector's pipelines, the Secret, the HPA's
// replica count, the migrations. Where kubectl is installed, its kustomize renders both steps.

const DIR = path.join(ROOT, 'deploy', 'kubernetes')

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [key: string]: unknown
}
interface Kustomization {
  kind: 'Kustomization'
  resources: string[]
  secretGenerator?: { name: string; envs?: string[]; literals?: string[]; files?: string[] }[]
  images?: { name: string; newName?: string; newTag?: string }[]
}
type Validating = new (data: object) => { validate(): void }

/** Every .yaml file under deploy/kubernetes, relative to it. */
function yamlFiles(dir = DIR): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return yamlFiles(full)
    return name.endsWith('.yaml') ? [path.relative(DIR, full)] : []
  }).sort()
}

const files = yamlFiles()
const docs: { file: string; obj: K8sObject }[] = files.flatMap((file) =>
  YAML.parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => ({ file, obj: d.toJS() as K8sObject }))
)
const kustomizations = new Map(docs.filter((d) => d.obj.kind === 'Kustomization').map((d) => [path.dirname(d.file), d.obj as unknown as Kustomization]))
const objects = docs.map((d) => d.obj).filter((o) => o.kind !== 'Kustomization')

/** The files a kustomization (a directory relative to DIR) applies, through the directories it includes. */
function applied(dir: string): string[] {
  const k = kustomizations.get(dir)
  if (!k) throw new Error(`no kustomization.yaml in deploy/kubernetes/${dir}`)
  return k.resources.flatMap((r) => {
    const rel = path.normalize(path.join(dir, r))
    return kustomizations.has(rel) ? applied(rel) : [rel]
  })
}
const objectsOf = (dir: string) => docs.filter((d) => applied(dir).includes(d.file)).map((d) => d.obj)
const APP = '.'
const MIGRATE = 'migrate'

const find = <T = K8sObject>(kind: string, name: string): T => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name)
  if (!o) throw new Error(`no ${kind}/${name} in deploy/kubernetes`)
  return o as T
}

/** KEY=VALUE lines of an env file as kustomize reads them (# comments and blank lines skipped). */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

/** The keys a secretGenerator entry gives its Secret, read from the committed example of each env file. */
function generatedSecret(dir: string, name: string): Record<string, string> {
  const gen = kustomizations.get(dir)?.secretGenerator?.find((g) => g.name === name)
  if (!gen) throw new Error(`no secretGenerator ${name} in deploy/kubernetes/${dir}`)
  return Object.assign({}, ...(gen.envs ?? []).map((f) => parseEnvFile(readFileSync(path.join(DIR, dir, `${f}.example`), 'utf8'))))
}

// ESM-only package: loaded with import() from this CommonJS-compiled test.
let models: Record<string, Validating>
beforeAll(async () => {
  const [core, apps, autoscaling, policy, batch] = await Promise.all([
    import('kubernetes-models/v1'), import('kubernetes-models/apps/v1'),
    import('kubernetes-models/autoscaling/v2'), import('kubernetes-models/policy/v1'), import('kubernetes-models/batch/v1')
  ])
  models = {
    'v1/Namespace': core.Namespace, 'v1/Service': core.Service, 'v1/ConfigMap': core.ConfigMap, 'v1/Secret': core.Secret,
    'apps/v1/Deployment': apps.Deployment,
    'autoscaling/v2/HorizontalPodAutoscaler': autoscaling.HorizontalPodAutoscaler,
    'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
    'batch/v1/Job': batch.Job, 'batch/v1/CronJob': batch.CronJob
  } as unknown as Record<string, Validating>
})

function validate(o: K8sObject): void {
  const Model = models[`${o.apiVersion}/${o.kind}`]
  expect(Model, `${o.apiVersion} ${o.kind} has no schema here`).toBeDefined()
  expect(() => new Model!(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow()
}

interface Container {
  name: string
  image: string
  command?: string[]
  ports?: { name?: string; containerPort: number }[]
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]
  env?: { name: string; value?: string }[]
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  readinessProbe?: { httpGet?: { path: string; port: string | number } }
  livenessProbe?: { httpGet?: { path: string; port: string | number } }
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } }
}
interface PodSpec {
  containers: Container[]
  terminationGracePeriodSeconds?: number
  automountServiceAccountToken?: boolean
  restartPolicy?: string
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } }
}
interface Deployment extends K8sObject {
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } }
}
interface Job extends K8sObject {
  spec: { template: { spec: PodSpec } }
}
interface Service extends K8sObject {
  spec: { selector?: Record<string, string>; type?: string; externalName?: string; ports: { name?: string; port: number; targetPort?: string | number }[] }
}
interface Hpa extends K8sObject {
  spec: { scaleTargetRef: { kind: string; name: string; apiVersion: string }; minReplicas: number; maxReplicas: number; metrics: { type: string; resource: { name: string; target: { type: string } } }[] }
}
interface CollectorConfig {
  receivers: Record<string, unknown>
  exporters: Record<string, { endpoint?: string }>
  connectors?: Record<string, unknown>
  processors: Record<string, unknown>
  service: { pipelines: Record<string, { receivers: string[]; processors: string[]; exporters: string[] }> }
}

/** Every pod template of the manifests, with where it is. */
const podSpecs = (): { where: string; spec: PodSpec }[] => objects.flatMap((o) => {
  if (o.kind === 'Deployment' || o.kind === 'Job') return [{ where: `${o.kind}/${o.metadata.name}`, spec: (o as Deployment).spec.template.spec }]
  return []
})

/** The environment a container gets from its ConfigMaps, the secretGenerators' examples, and env. */
function containerEnv(dir: string, container: Container): Record<string, string> {
  const env: Record<string, string> = {}
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find<K8sObject & { data: Record<string, string> }>('ConfigMap', from.configMapRef.name).data)
    if (from.secretRef) Object.assign(env, generatedSecret(dir, from.secretRef.name))
  }
  for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value
  return env
}

const collectorConfig = (): CollectorConfig =>
  YAML.parse(find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'otel-collector').data['collector.yaml']!) as CollectorConfig
const composeCollectorConfig = (): CollectorConfig => YAML.parse(readFileSync(path.join(ROOT, 'otel/collector.yaml'), 'utf8')) as CollectorConfig

/** otel/collector.yaml as Kubernetes should run it: the same, less the Compose stack's Jaeger. */
function withoutJaeger(config: CollectorConfig): CollectorConfig {
  const out = structuredClone(config)
  delete out.exporters['otlp/jaeger']
  for (const p of Object.values(out.service.pipelines)) p.exporters = p.exporters.filter((e) => e !== 'otlp/jaeger')
  return out
}

/** The exporters that both the traces and a metrics pipeline send to: a traces backend takes no metrics. */
function sharedExporters(config: CollectorConfig): string[] {
  const traces = new Set(Object.entries(config.service.pipelines).filter(([n]) => n.split('/')[0] === 'traces').flatMap(([, p]) => p.exporters))
  return Object.entries(config.service.pipelines).filter(([n]) => n.split('/')[0] === 'metrics').flatMap(([, p]) => p.exporters).filter((e) => traces.has(e))
}

describe('deploy/kubernetes', () => {
  it('applies every manifest from exactly one kustomization: the app (.) or the migrations (migrate/)', () => {
    const listed = [...kustomizations.keys()].flatMap((dir) => kustomizations.get(dir)!.resources.map((r) => path.normalize(path.join(dir, r))))
      .filter((r) => !kustomizations.has(r))
    expect([...listed].sort()).toEqual(files.filter((f) => path.basename(f) !== 'kustomization.yaml'))
    expect(new Set(listed).size).toBe(listed.length)
    expect([...kustomizations.keys()].sort()).toEqual(['.', 'base', 'migrate'])
  })

  it('validates every object against the Kubernetes schemas, offline (the Job too)', () => {
    expect(objects.length).toBeGreaterThanOrEqual(10)
    expect(objects.map((o) => o.kind)).toContain('Job')
    for (const o of objects) validate(o)
  })

  it('would catch a broken manifest (the validator is not a no-op)', () => {
    const d = structuredClone(find<Deployment>('Deployment', 'blog-app'))
    ;(d.spec as unknown as Record<string, unknown>).replicas = 'two'
    expect(() => new models['apps/v1/Deployment']!(d).validate()).toThrow()
    const missing = structuredClone(find<Deployment>('Deployment', 'blog-app'))
    delete (missing.spec.template.spec.containers[0] as Partial<Container>).name
    expect(() => new models['apps/v1/Deployment']!(missing).validate()).toThrow()
    const job = structuredClone(find<Job>('Job', 'blog-app-migrate'))
    ;(job.spec.template.spec as unknown as Record<string, unknown>).restartPolicy = 7
    expect(() => new models['batch/v1/Job']!(job).validate()).toThrow()
  })

  // Issue 27, item 3: `replicas: 2` on the Deployment reset the HPA's count at every apply.
  it('leaves spec.replicas out of every Deployment an HPA scales', () => {
    const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler') as Hpa[]
    expect(hpas.length).toBeGreaterThan(0)
    for (const hpa of hpas) {
      const target = find<Deployment>(hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name)
      expect(target.spec.replicas, `${target.kind}/${target.metadata.name} is scaled by HorizontalPodAutoscaler/${hpa.metadata.name}`).toBeUndefined()
    }
  })

  it('runs the app as a Deployment with CPU requests, scaled by an HPA on CPU', () => {
    const app = find<Deployment>('Deployment', 'blog-app')
    const hpa = find<Hpa>('HorizontalPodAutoscaler', 'blog-app')
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'blog-app' })
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2)
    expect(hpa.spec.metrics).toContainEqual(expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) }))
    // Utilization is measured against the request: without one the HPA cannot scale.
    const container = app.spec.template.spec.containers[0]!
    expect(container.resources?.requests?.cpu).toBeTruthy()
    expect(app.spec.selector.matchLabels).toEqual(expect.objectContaining(app.spec.template.metadata.labels))
    const pdb = find<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget', 'blog-app')
    expect(pdb.spec.selector.matchLabels).toEqual(app.spec.selector.matchLabels)
  })

  it('probes the routes the app serves, on the port it listens on, and gives it time to drain', () => {
    const app = find<Deployment>('Deployment', 'blog-app')
    const container = app.spec.template.spec.containers[0]!
    const health = readFileSync(path.join(ROOT, 'src/routes/health.ts'), 'utf8')
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(health).toContain(`fastify.get('${probe!.httpGet!.path}'`)
      expect(container.ports?.find((p) => p.name === probe!.httpGet!.port)).toBeDefined()
    }
    const cm = find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'blog-app')
    expect(container.ports?.[0]?.containerPort).toBe(Number(cm.data.PORT))
    expect(app.spec.template.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(Number(cm.data.SHUTDOWN_GRACE_MS))
    const svc = find<Service>('Service', 'blog-app')
    expect(svc.spec.selector).toEqual(app.spec.template.metadata.labels)
    expect(container.ports?.map((p) => p.name)).toContain(svc.spec.ports[0]!.targetPort)
  })

  it('gives the app an environment its own config accepts: S3 images, an external MySQL, the collector', () => {
    const container = find<Deployment>('Deployment', 'blog-app').spec.template.spec.containers[0]!
    const env = containerEnv(APP, container)
    const config = loadConfig(env)
    expect(config.storage.kind).toBe('s3')
    expect(config.storage.s3.bucket).toBeTruthy()
    // DATABASE_URL names the ExternalName service that points at the external database.
    const mysql = find<Service>('Service', config.db.host)
    expect(mysql.spec.type).toBe('ExternalName')
    expect(mysql.spec.ports[0]!.port).toBe(config.db.port)
    expect(config.allowedHosts?.has('blog-app')).toBe(true)
    // Telemetry goes to the collector's OTLP/HTTP port.
    const otlp = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT!)
    const collector = find<Service>('Service', otlp.hostname)
    expect(collector.spec.ports.map((p) => p.port)).toContain(Number(otlp.port))
  })

  // Issue 27, item 2: secret.example.yaml was a resource, so every apply reset the real Secret.
  it('ships no Secret: each is generated from a git-ignored env file whose committed example has no real values', () => {
    for (const [dir, k] of kustomizations) {
      for (const r of applied(dir)) {
        const kinds = docs.filter((d) => d.file === r).map((d) => d.obj.kind)
        expect(kinds, `${dir}/kustomization.yaml applies ${r}`).not.toContain('Secret')
      }
      for (const gen of k.secretGenerator ?? []) {
        expect(gen.literals ?? [], `${gen.name}: no literal values in the repo`).toEqual([])
        expect(gen.envs?.length, gen.name).toBeGreaterThan(0)
        for (const f of gen.envs!) {
          const file = path.join(DIR, dir, f)
          expect(existsSync(`${file}.example`), `${dir}/${f}.example`).toBe(true)
          // git check-ignore: the filled-in file can never be committed by accident.
          const ignored = spawnSync('git', ['check-ignore', '-q', file], { cwd: ROOT })
          expect(ignored.status, `${dir}/${f} is not git-ignored`).toBe(0)
        }
      }
    }
    // Pods refer to generated Secrets only (kustomize appends the content hash to their names).
    for (const { where, spec } of podSpecs()) {
      for (const c of spec.containers) {
        for (const from of c.envFrom ?? []) {
          if (!from.secretRef) continue
          const generated = [...kustomizations.values()].some((k) => k.secretGenerator?.some((g) => g.name === from.secretRef!.name))
          expect(generated, `${where} reads Secret ${from.secretRef.name}`).toBe(true)
        }
      }
    }
    // Without IRSA the keys go in app.env; the example leaves them unset, so IRSA's win.
    expect(generatedSecret(APP, 'blog-app')).not.toHaveProperty('AWS_ACCESS_KEY_ID')
  })

  // Issue 27, item 4: every replica migrated at start with a DDL-capable user.
  it('migrates in a Job of its own step (migrate/), as a DDL user, while the app runs as a DML user that never migrates', () => {
    const job = find<Job>('Job', 'blog-app-migrate')
    expect(objectsOf(MIGRATE)).toContain(job)
    expect(objectsOf(APP).filter((o) => o.kind === 'Job' || o.kind === 'CronJob')).toEqual([])
    const jobSpec = job.spec.template.spec
    expect(jobSpec.restartPolicy).toBe('Never')
    const migrator = jobSpec.containers[0]!
    expect(migrator.command).toEqual(['node', 'dist/src/cli/db.js', 'migrate'])
    expect(existsSync(path.join(ROOT, 'src/cli/db.ts'))).toBe(true)
    const jobConfig = loadConfig(containerEnv(MIGRATE, migrator))

    const app = find<Deployment>('Deployment', 'blog-app').spec.template.spec.containers[0]!
    const appConfig = loadConfig(containerEnv(APP, app))
    expect(appConfig.db.migrateOnStart).toBe(false)
    expect(appConfig.db.seedOnStart).toBe(false)
    // Same database, two users; the users and their grants are deploy/mysql/users.sql's.
    expect({ host: jobConfig.db.host, port: jobConfig.db.port, database: jobConfig.db.database })
      .toEqual({ host: appConfig.db.host, port: appConfig.db.port, database: appConfig.db.database })
    expect(jobConfig.db.user).toBe('blog_migrate')
    expect(appConfig.db.user).toBe('blog_app')
    const users = readFileSync(path.join(ROOT, 'deploy/mysql/users.sql'), 'utf8')
    for (const user of [jobConfig.db.user, appConfig.db.user]) expect(users).toContain(`'${user}'`)
    // The app's pods never see the DDL user's Secret.
    expect(app.envFrom?.map((f) => f.secretRef?.name)).not.toContain(migrator.envFrom![0]!.secretRef!.name)
  })

  it('runs the migrations from the same image as the app (one `images` entry per step, kept equal)', () => {
    const images = [...kustomizations.entries()].filter(([, k]) => k.images).map(([dir, k]) => [dir, k.images] as const)
    expect(images.map(([dir]) => dir).sort()).toEqual([APP, MIGRATE])
    expect(images[0]![1]).toEqual(images[1]![1])
    const image = images[0]![1]![0]!
    expect(find<Deployment>('Deployment', 'blog-app').spec.template.spec.containers[0]!.image).toBe(image.name)
    expect(find<Job>('Job', 'blog-app-migrate').spec.template.spec.containers[0]!.image).toBe(image.name)
  })

  it('mounts no service account token in any pod, and runs every container non-root, read-only, without capabilities', () => {
    const specs = podSpecs()
    expect(specs.map((s) => s.where).sort()).toEqual(['Deployment/blog-app', 'Deployment/otel-collector', 'Job/blog-app-migrate'])
    for (const { where, spec } of specs) {
      expect(spec.automountServiceAccountToken, where).toBe(false)
      expect(spec.securityContext, where).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
      for (const c of spec.containers) {
        expect(c.securityContext, `${where} ${c.name}`).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } })
      }
    }
  })

  describe('the collector', () => {
    // Issue 27, item 1: one otlp exporter (Tempo) took both pipelines, so every metric was refused.
    it('sends metrics to an exporter of their own, never to the traces backend', () => {
      for (const [name, config] of [['kubernetes', collectorConfig()], ['otel/collector.yaml', composeCollectorConfig()]] as const) {
        expect(sharedExporters(config), name).toEqual([])
        expect(config.service.pipelines.metrics!.exporters, name).toEqual(['prometheus'])
        // The RED metrics and exemplars: spans in, metrics out.
        expect(config.connectors, name).toHaveProperty('spanmetrics')
        expect(config.service.pipelines.traces!.exporters, name).toContain('spanmetrics')
        expect(config.service.pipelines.metrics!.receivers, name).toContain('spanmetrics')
      }
      // What the old config did, which the check above refuses.
      const old = structuredClone(collectorConfig())
      old.service.pipelines.metrics!.exporters = ['otlp/tempo']
      expect(sharedExporters(old)).toEqual(['otlp/tempo'])
    })

    it('runs otel/collector.yaml less the Compose stack\'s Jaeger exporter, and nothing else differs', () => {
      expect(collectorConfig()).toEqual(withoutJaeger(composeCollectorConfig()))
      // Drift in any setting is caught.
      const drifted = composeCollectorConfig()
      ;(drifted.processors.batch as Record<string, unknown>).send_batch_size = 512
      expect(collectorConfig()).not.toEqual(withoutJaeger(drifted))
    })

    it('points the config\'s addresses at the cluster: Tempo, the external MySQL as blog_monitor, the scrape port', () => {
      const dep = find<Deployment>('Deployment', 'otel-collector')
      const container = dep.spec.template.spec.containers[0]!
      const env = containerEnv(APP, container)
      const raw = find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'otel-collector').data['collector.yaml']!
      const config = YAML.parse(expandCollectorEnv(raw, env)) as CollectorConfig & {
        receivers: { mysql: { endpoint: string; username: string; password: string } }
        exporters: { prometheus: { endpoint: string } }
      }
      // No Compose service names left (tempo:4317, db:3306).
      expect(config.exporters['otlp/tempo']!.endpoint).toBe(env.TEMPO_OTLP_ENDPOINT)
      expect(config.exporters['otlp/tempo']!.endpoint).not.toBe('tempo:4317')
      const mysql = find<Service>('Service', config.receivers.mysql.endpoint.split(':')[0]!)
      expect(mysql.spec.type).toBe('ExternalName')
      expect(config.receivers.mysql.username).toBe('blog_monitor')
      expect(config.receivers.mysql.password).toBeTruthy()
      expect(readFileSync(path.join(ROOT, 'deploy/mysql/users.sql'), 'utf8')).toContain("'blog_monitor'")
      // Prometheus scrapes the exporter through the Service (and the pod annotation says where).
      const port = Number(config.exporters.prometheus.endpoint.split(':').pop())
      const svc = find<Service>('Service', 'otel-collector')
      expect(svc.spec.ports.find((p) => p.name === 'metrics')?.port).toBe(port)
      expect(container.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(port)
      expect(dep.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port) })
      const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')
      expect(compose).toContain(`FROM ${container.image}`)
    })
  })

  // Issue 27, item 5: batch settings sized for the stress scenario (2000 req/s per replica).
  it('sizes span batching for 2000 req/s per replica with every trace kept, the same in Compose', () => {
    const RATE = 2000
    // GET /blogs/ (arrival.js): the server span, the pool wait, its SQL and the render; 5 with margin.
    const SPANS_PER_REQUEST = 5
    // One export is in flight at a time; a local OTLP/HTTP export of one batch takes well under this.
    const EXPORT_MS = 50
    const cm = find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'blog-app').data
    const bsp = Object.fromEntries(Object.entries(cm).filter(([k]) => k.startsWith('OTEL_BSP_')).map(([k, v]) => [k, Number(v)]))
    const spansPerSecond = RATE * SPANS_PER_REQUEST
    // The queue holds at least one schedule delay of spans, and a second more while the collector is slow.
    expect(bsp.OTEL_BSP_MAX_QUEUE_SIZE).toBeGreaterThanOrEqual(spansPerSecond * (bsp.OTEL_BSP_SCHEDULE_DELAY! / 1000 + 0.5))
    // Sequential exports keep up: batches per second x batch size >= spans per second.
    expect((1000 / EXPORT_MS) * bsp.OTEL_BSP_MAX_EXPORT_BATCH_SIZE!).toBeGreaterThanOrEqual(spansPerSecond)
    expect(bsp.OTEL_BSP_MAX_EXPORT_BATCH_SIZE).toBeLessThanOrEqual(bsp.OTEL_BSP_MAX_QUEUE_SIZE! / 4)
    expect(bsp.OTEL_BSP_EXPORT_TIMEOUT).toBeGreaterThan(0)
    // The SDK's defaults (2048 queue, 512 batch) would have failed this.
    expect(2048).toBeLessThan(spansPerSecond * (5000 / 1000 + 0.5))
    const composeEnv = loadCompose().services.app!.environment!
    expect(Object.fromEntries(Object.keys(bsp).map((k) => [k, Number(composeEnv[k])]))).toEqual(bsp)
  })

  describe('rendered by kustomize (kubectl kustomize), where kubectl is installed', () => {
    let work: string | undefined
    afterAll(() => {
      if (work) rmSync(work, { recursive: true, force: true })
    })

    /** `kubectl kustomize` of a copy of deploy/kubernetes whose env files are the examples. */
    function render(dir: string, withEnvFiles = true): { status: number | null; objects: K8sObject[]; stderr: string } {
      work ??= mkdtempSync(path.join(os.tmpdir(), 'blog-kustomize-'))
      const copy = path.join(work, withEnvFiles ? 'filled' : 'empty')
      if (!existsSync(copy)) {
        cpSync(DIR, copy, { recursive: true, filter: (src) => !src.endsWith('.env') })
        if (withEnvFiles) {
          for (const [d, k] of kustomizations) {
            for (const f of (k.secretGenerator ?? []).flatMap((g) => g.envs ?? [])) writeFileSync(path.join(copy, d, f), readFileSync(path.join(DIR, d, `${f}.example`)))
          }
        }
      }
      const out = spawnSync('kubectl', ['kustomize', path.join(copy, dir)], { encoding: 'utf8' })
      const rendered = out.status === 0 ? YAML.parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject) : []
      return { status: out.status, objects: rendered, stderr: out.stderr }
    }

    it('renders both steps into valid objects, with generated Secrets and the registry image wired in', (ctx) => {
      if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status !== 0) {
        ctx.skip('kubectl is not installed on this machine; the static checks above stand in for it')
        return
      }
      for (const dir of [APP, MIGRATE]) {
        const { status, objects: rendered, stderr } = render(dir)
        expect(status, stderr).toBe(0)
        for (const o of rendered) validate(o)
        const secrets = rendered.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)
        expect(secrets.length, dir).toBeGreaterThan(0)
        for (const o of rendered.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
          expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('blog-app')
          for (const c of (o as Deployment).spec.template.spec.containers) {
            for (const from of c.envFrom ?? []) if (from.secretRef) expect(secrets, `${o.metadata.name} -> ${from.secretRef.name}`).toContain(from.secretRef.name)
            if (c.name !== 'otel-collector') expect(c.image).toMatch(/^registry\.example\.com\/blog-app:\d/)
          }
        }
        expect(rendered.every((o) => o.kind === 'Namespace' || (o.metadata as { namespace?: string }).namespace === 'blog')).toBe(true)
      }
      // The migrations' Secret exists only in their step; the app's only in the app's.
      const appSecrets = render(APP).objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)
      expect(appSecrets.some((n) => n.startsWith('blog-app-migrate'))).toBe(false)
    })

    it('refuses to apply without the env files, instead of applying placeholders', (ctx) => {
      if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status !== 0) {
        ctx.skip('kubectl is not installed on this machine')
        return
      }
      for (const dir of [APP, MIGRATE]) {
        const { status, stderr } = render(dir, false)
        expect(status, dir).not.toBe(0)
        expect(stderr).toMatch(/\.env/)
      }
    })
  })
})

describe('deploy/mysql/users.sql', () => {
  it('gives the app DML rights only and the migrations their DDL, on the database DATABASE_URL names', () => {
    const sql = readFileSync(path.join(ROOT, 'deploy/mysql/users.sql'), 'utf8')
    const app = parseDatabaseUrl(generatedSecret(APP, 'blog-app').DATABASE_URL!)
    expect(sql).toContain(`'${app.database}'`)
    const grants = [...sql.matchAll(/'GRANT ([A-Z, ]+) ON '/g)].map((m) => m[1]!)
    expect(grants).toContain('SELECT, INSERT, UPDATE, DELETE')
    expect(grants.some((g) => /CREATE/.test(g) && /ALTER/.test(g) && /INDEX/.test(g))).toBe(true)
  })
})
