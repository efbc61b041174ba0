import { existsSync } from 'node:fs'
import path from 'node:path'
import { interpolateDeep, ROOT } from './stack'

// The k6 command lines the READMEs give, checked without k6 or Docker: what k6 1.6 would write
// where, with which outputs, as which user. The rules it applies (from k6 and Docker):
//   - any -o/--out on the command line replaces K6_OUT (it is not added to it);
//   - output files are opened as given: a relative path is relative to the working directory,
//     and no directory is created;
//   - the grafana/k6 image runs as uid 12345, which cannot write a host directory you own.

export const K6_IMAGE_UID = '12345'

export interface ComposeK6Service {
  image?: string
  command?: string[]
  environment?: Record<string, string>
  user?: string
  volumes?: string[]
}

export interface Mount { source: string; target: string; readOnly: boolean }

export interface K6Run {
  /** The command as written (continuations joined). */
  line: string
  where: 'compose' | 'docker' | 'local'
  /** Environment k6 sees: the service's, `-e` of compose/docker run, or the shell prefix (local). */
  env: Record<string, string>
  /** Container user ('host' for $(id -u)); undefined outside a container. */
  user?: string
  mounts: Mount[]
  /** k6's own arguments, from `run` on. */
  args: string[]
}

/**
 * Shell command lines of the fenced sh/bash blocks of a Markdown text: `\` continuations and
 * quotes spanning lines joined, comment lines dropped.
 */
export function shellLines(markdown: string): string[] {
  const lines: string[] = []
  for (const m of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    let pending = ''
    for (const raw of m[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
      pending = pending ? `${pending} ${raw.trim()}` : raw
      if (openQuote(pending)) continue
      if (pending.trim() && !pending.trim().startsWith('#')) lines.push(pending)
      pending = ''
    }
    if (pending) throw new Error(`unclosed quote in: ${pending}`)
  }
  return lines
}

function openQuote(text: string): boolean {
  let quote: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote) {
      if (c === quote) quote = undefined
    } else if (c === "'" || c === '"') quote = c
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) break
  }
  return quote !== undefined
}

/** Words of one shell line: quotes removed, `$(...)` kept whole, a word starting with # ends the line. */
export function words(line: string): string[] {
  const out: string[] = []
  let cur: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (/\s/.test(c)) {
      if (cur !== undefined) out.push(cur)
      cur = undefined
    } else if (c === '#' && cur === undefined) {
      break
    } else if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1)
      if (end === -1) throw new Error(`unclosed ${c} in: ${line}`)
      cur = (cur ?? '') + line.slice(i + 1, end)
      i = end
    } else if (c === '$' && line[i + 1] === '(') {
      const end = line.indexOf(')', i)
      cur = (cur ?? '') + line.slice(i, end + 1)
      i = end
    } else {
      cur = (cur ?? '') + c
    }
  }
  if (cur !== undefined) out.push(cur)
  return out
}

function parseMount(spec: string): Mount {
  const [source = '', target = '', mode = ''] = spec.split(':')
  return { source, target, readOnly: mode.split(',').includes('ro') }
}

const COMPOSE_GLOBAL_VALUE = new Set(['--profile', '-f', '--file', '-p', '--project-name', '--env-file', '--project-directory'])
const RUN_VALUE = new Set(['-e', '--env', '-u', '--user', '-v', '--volume', '--name', '-w', '--workdir', '--entrypoint', '-p', '--publish', '-l', '--label', '--network', '--net'])

/** Options of `docker run` / `docker compose run` up to the image or service name. */
function runOptions(ws: string[], from: number): { env: Record<string, string>; user?: string; mounts: Mount[]; next: number } {
  const env: Record<string, string> = {}
  const mounts: Mount[] = []
  let user: string | undefined
  let i = from
  for (; i < ws.length && ws[i]!.startsWith('-'); i++) {
    const w = ws[i]!
    const [flag, inline] = w.includes('=') && w.startsWith('--') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w, undefined]
    if (!RUN_VALUE.has(flag)) continue
    const value = inline ?? ws[++i]!
    if (flag === '-e' || flag === '--env') env[value.split('=')[0]!] = value.slice(value.indexOf('=') + 1)
    else if (flag === '-u' || flag === '--user') user = value
    else if (flag === '-v' || flag === '--volume') mounts.push(parseMount(value))
  }
  return { env, user, mounts, next: i }
}

function userOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  return /^\$\(id -u\)(:\$\(id -g\))?$/.test(value) ? 'host' : value
}

/**
 * The k6 run a command line starts, or undefined when the line does not run k6. Compose
 * commands are resolved against the parsed (not yet interpolated) compose file, with the
 * line's `VAR=value` prefix as Compose's environment.
 */
export function k6Run(line: string, compose: { services: Record<string, ComposeK6Service> }): K6Run | undefined {
  const ws = words(line)
  const prefix: Record<string, string> = {}
  let i = 0
  for (; i < ws.length && /^[A-Z_][A-Z0-9_]*=/.test(ws[i]!); i++) prefix[ws[i]!.split('=')[0]!] = ws[i]!.slice(ws[i]!.indexOf('=') + 1)

  if (ws[i] === 'k6' && ws[i + 1] === 'run') return { line, where: 'local', env: prefix, mounts: [], args: ws.slice(i + 1) }

  if (ws[i] === 'docker' && ws[i + 1] === 'run') {
    const opts = runOptions(ws, i + 2)
    if (!/^grafana\/k6(:|$)/.test(ws[opts.next] ?? '')) return undefined
    return { line, where: 'docker', env: opts.env, user: userOf(opts.user) ?? K6_IMAGE_UID, mounts: opts.mounts, args: ws.slice(opts.next + 1) }
  }

  if (ws[i] === 'docker' && ws[i + 1] === 'compose') {
    let j = i + 2
    for (; j < ws.length && ws[j]!.startsWith('-'); j++) if (COMPOSE_GLOBAL_VALUE.has(ws[j]!)) j++
    if (ws[j] !== 'run') return undefined
    const opts = runOptions(ws, j + 1)
    if (ws[opts.next] !== 'k6') return undefined
    const svc = interpolateDeep(compose.services.k6!, prefix)
    const override = ws.slice(opts.next + 1)
    return {
      line,
      where: 'compose',
      env: { ...svc.environment, ...opts.env },
      user: userOf(opts.user ?? svc.user) ?? K6_IMAGE_UID,
      mounts: [...(svc.volumes ?? []).map(parseMount), ...opts.mounts],
      args: override.length > 0 ? override : (svc.command ?? [])
    }
  }
  return undefined
}

const K6_RUN_VALUE = new Set(['-o', '--out', '-e', '--env', '--tag', '--summary-export', '-u', '--vus', '-d', '--duration', '-i', '--iterations', '-s', '--stage', '--console-output', '--log-output', '--address', '-a', '--config', '-c'])

/** Outputs, script, `-e` variables, summary-export and console-output files of k6's `run` arguments. */
export function k6Args(args: string[]): { outs: string[]; script?: string; env: Record<string, string>; summaryExport?: string; consoleOutput?: string } {
  const outs: string[] = []
  const env: Record<string, string> = {}
  let script: string | undefined
  let summaryExport: string | undefined
  let consoleOutput: string | undefined
  for (let i = args[0] === 'run' ? 1 : 0; i < args.length; i++) {
    const w = args[i]!
    if (!w.startsWith('-')) {
      script = w
      continue
    }
    const [flag, inline] = w.startsWith('--') && w.includes('=') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w, undefined]
    if (!K6_RUN_VALUE.has(flag)) continue
    const value = inline ?? args[++i]!
    if (flag === '-o' || flag === '--out') outs.push(value)
    else if (flag === '-e' || flag === '--env') env[value.split('=')[0]!] = value.slice(value.indexOf('=') + 1)
    else if (flag === '--summary-export') summaryExport = value
    else if (flag === '--console-output') consoleOutput = value
  }
  return { outs, script, env, summaryExport, consoleOutput }
}

/** The outputs k6 uses: the command line's if it names any, else K6_OUT. */
export function effectiveOutputs(run: K6Run): string[] {
  const { outs } = k6Args(run.args)
  if (outs.length > 0) return outs
  return run.env.K6_OUT ? [run.env.K6_OUT] : []
}

/** Files the run writes: json/csv outputs, --summary-export, --console-output, and handleSummary's SUMMARY_DIR. */
export function writtenPaths(run: K6Run): { path: string; what: string }[] {
  const a = k6Args(run.args)
  const files: { path: string; what: string }[] = []
  for (const o of effectiveOutputs(run)) {
    const m = /^(json|csv)=(.+)$/.exec(o)
    if (m) files.push({ path: m[2]!, what: `-o ${o}` })
  }
  if (a.summaryExport) files.push({ path: a.summaryExport, what: '--summary-export' })
  if (a.consoleOutput) files.push({ path: a.consoleOutput, what: `--console-output ${a.consoleOutput}` })
  const dir = a.env.SUMMARY_DIR ?? run.env.SUMMARY_DIR
  if (dir !== undefined) files.push({ path: path.posix.join(dir, 'summary-x.json'), what: `SUMMARY_DIR=${dir}` })
  return files
}

/** Host path of a container path through the bind mounts, or undefined when none covers it. */
export function hostPath(run: K6Run, containerPath: string): { host: string; mount: Mount } | undefined {
  // The deepest mount wins, as Docker stacks a nested mount over its parent.
  const mounts = [...run.mounts].sort((a, b) => b.target.length - a.target.length)
  for (const m of mounts) {
    if (containerPath === m.target || containerPath.startsWith(m.target + '/')) {
      if (!m.source.startsWith('.') && !m.source.startsWith('/') && !m.source.startsWith('$')) return undefined
      const source = m.source.replace(/^\$PWD\/?|^\$\{PWD\}\/?/, './')
      return { host: path.posix.normalize(path.posix.join(source, containerPath.slice(m.target.length))), mount: m }
    }
  }
  return undefined
}

const PROMETHEUS_RW_ENV = {
  K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM: 'true',
  K6_PROMETHEUS_RW_STALE_MARKERS: 'true'
}

/** What would go wrong with this run, in words; [] when nothing. */
export function problems(run: K6Run): string[] {
  const out: string[] = []
  const outputs = effectiveOutputs(run)
  if (run.where === 'compose' && !outputs.includes('experimental-prometheus-rw')) {
    out.push(`no experimental-prometheus-rw output (outputs: ${outputs.join(', ') || 'none'}): an -o on the command line replaces K6_OUT`)
  }
  if (outputs.includes('experimental-prometheus-rw')) {
    if (!run.env.K6_PROMETHEUS_RW_SERVER_URL) out.push('prometheus-rw output without K6_PROMETHEUS_RW_SERVER_URL')
    for (const [k, v] of Object.entries(PROMETHEUS_RW_ENV)) if (run.env[k] !== v) out.push(`prometheus-rw output without ${k}=${v}`)
  }
  const script = k6Args(run.args).script
  if (!script) out.push('no script')

  for (const f of writtenPaths(run)) {
    if (run.where === 'local') {
      if (!existsSync(path.resolve(ROOT, path.dirname(f.path)))) out.push(`${f.what}: directory ${path.dirname(f.path)} does not exist (k6 does not create it)`)
      continue
    }
    if (!f.path.startsWith('/')) {
      out.push(`${f.what}: relative path, resolved in the container's working directory, not in a mounted directory`)
      continue
    }
    const host = hostPath(run, f.path)
    if (!host) out.push(`${f.what}: ${f.path} is not in a bind-mounted directory (lost with the container)`)
    else if (host.mount.readOnly) out.push(`${f.what}: ${f.path} is in a read-only mount`)
    else if (run.user !== '0' && run.user !== 'root' && run.user !== 'host') out.push(`${f.what}: user ${run.user} cannot write ${host.host}, which belongs to the host user`)
    else if (!existsSync(path.resolve(ROOT, path.dirname(host.host)))) out.push(`${f.what}: ${path.dirname(host.host)} does not exist in the repo`)
  }

  if (script && run.where !== 'local') {
    const host = hostPath(run, script)
    if (!host || !existsSync(path.resolve(ROOT, host.host))) out.push(`script ${script} is not a mounted file of the repo`)
  } else if (script && !existsSync(path.resolve(ROOT, script))) {
    out.push(`script ${script} does not exist`)
  }
  return out
}
