import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig } from '../../src/config'
import { ROOT } from '../kit/stack'

// deploy/kubernetes, checked offline: every object against the Kubernetes OpenAPI schemas that
// the kubernetes-models package bundles (what `kubectl apply --dry-run=client` would refuse),
// then the references between objects that no schema sees (selectors, ports, names, env).

const DIR = path.join(ROOT, 'deploy', 'kubernetes')

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  [key: string]: unknown
}
type Validating = new (data: object) => { validate(): void }

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()
const docs: { file: string; obj: K8sObject }[] = files.flatMap((file) =>
  YAML.parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => ({ file, obj: d.toJS() as K8sObject }))
)
const objects = docs.map((d) => d.obj).filter((o) => o.kind !== 'Kustomization')
const find = <T = K8sObject>(kind: string, name: string): T => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name)
  if (!o) throw new Error(`no ${kind}/${name} in deploy/kubernetes`)
  return o as T
}

// ESM-only package: loaded with import() from this CommonJS-compiled test.
let models: Record<string, Validating>
beforeAll(async () => {
  const [core, apps, autoscaling, policy] = await Promise.all([
    import('kubernetes-models/v1'), import('kubernetes-models/apps/v1'),
    import('kubernetes-models/autoscaling/v2'), import('kubernetes-models/policy/v1')
  ])
  models = {
    'v1/Namespace': core.Namespace, 'v1/Service': core.Service, 'v1/ConfigMap': core.ConfigMap, 'v1/Secret': core.Secret,
    'apps/v1/Deployment': apps.Deployment,
    'autoscaling/v2/HorizontalPodAutoscaler': autoscaling.HorizontalPodAutoscaler,
    'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget
  } as unknown as Record<string, Validating>
})

interface Container {
  name: string
  image: string
  ports?: { name?: string; containerPort: number }[]
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]
  env?: { name: string; value?: string }[]
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  readinessProbe?: { httpGet?: { path: string; port: string | number } }
  livenessProbe?: { httpGet?: { path: string; port: string | number } }
}
interface Deployment extends K8sObject {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; terminationGracePeriodSeconds?: number } } }
}
interface Service extends K8sObject {
  spec: { selector?: Record<string, string>; type?: string; externalName?: string; ports: { port: number; targetPort?: string | number }[] }
}

describe('deploy/kubernetes', () => {
  it('is listed whole in kustomization.yaml', () => {
    const k = docs.find((d) => d.file === 'kustomization.yaml')!.obj as unknown as { resources: string[] }
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml'))
  })

  it('validates every object against the Kubernetes schemas, offline', () => {
    expect(objects.length).toBeGreaterThanOrEqual(10)
    for (const o of objects) {
      const Model = models[`${o.apiVersion}/${o.kind}`]
      expect(Model, `${o.apiVersion} ${o.kind} has no schema here`).toBeDefined()
      expect(() => new Model!(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow()
    }
  })

  it('would catch a broken manifest (the validator is not a no-op)', () => {
    const d = structuredClone(find<Deployment>('Deployment', 'blog-app'))
    ;(d.spec as unknown as Record<string, unknown>).replicas = 'two'
    expect(() => new models['apps/v1/Deployment']!(d).validate()).toThrow()
    const missing = structuredClone(find<Deployment>('Deployment', 'blog-app'))
    delete (missing.spec.template.spec.containers[0] as Partial<Container>).name
    expect(() => new models['apps/v1/Deployment']!(missing).validate()).toThrow()
  })

  it('runs the app as a Deployment with CPU requests, scaled by an HPA on CPU', () => {
    const app = find<Deployment>('Deployment', 'blog-app')
    const hpa = find<K8sObject & { spec: { scaleTargetRef: { kind: string; name: string; apiVersion: string }; minReplicas: number; maxReplicas: number; metrics: { type: string; resource: { name: string; target: { type: string } } }[] } }>('HorizontalPodAutoscaler', 'blog-app')
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

  it("gives the app an environment its own config accepts: S3 images, an external MySQL, the collector", () => {
    const app = find<Deployment>('Deployment', 'blog-app')
    const container = app.spec.template.spec.containers[0]!
    const env: Record<string, string> = {}
    for (const from of container.envFrom ?? []) {
      if (from.configMapRef) Object.assign(env, find<K8sObject & { data: Record<string, string> }>('ConfigMap', from.configMapRef.name).data)
      if (from.secretRef) Object.assign(env, find<K8sObject & { stringData: Record<string, string> }>('Secret', from.secretRef.name).stringData)
    }
    for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value
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

  it('runs a collector whose config receives OTLP and exports every pipeline', () => {
    const cm = find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'otel-collector')
    const conf = YAML.parse(cm.data['collector.yaml']!) as { receivers: Record<string, unknown>; exporters: Record<string, unknown>; service: { pipelines: Record<string, { receivers: string[]; exporters: string[] }> } }
    expect(Object.keys(conf.service.pipelines).sort()).toEqual(['metrics', 'traces'])
    for (const p of Object.values(conf.service.pipelines)) {
      for (const r of p.receivers) expect(conf.receivers).toHaveProperty(r)
      for (const e of p.exporters) expect(conf.exporters).toHaveProperty(e)
    }
    const dep = find<Deployment>('Deployment', 'otel-collector')
    const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')
    const image = dep.spec.template.spec.containers[0]!.image
    expect(compose).toContain(`FROM ${image}`)
  })
})
