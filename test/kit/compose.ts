import { readFileSync } from 'node:fs'
import path from 'node:path'
import { interpolateDeep, readYaml, ROOT } from './stack'

// docker-compose.yml as the static tests read it.

export interface Healthcheck { test?: string[] | string; disable?: boolean; interval?: string; retries?: number }
export interface Service {
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
  deploy?: { replicas?: number | string }
  restart?: string
}
export interface ComposeFile { name: string; services: Record<string, Service>; volumes?: Record<string, unknown> }

/** The file as text, as parsed, and as Compose sees it with none of the optional variables set. */
export function loadCompose(): { raw: string; parsed: ComposeFile; compose: ComposeFile; services: Record<string, Service> } {
  const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')
  const parsed = readYaml<ComposeFile>('docker-compose.yml')
  const compose = interpolateDeep(parsed, {})
  return { raw, parsed, compose, services: compose.services }
}
