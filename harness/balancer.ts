import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from '../src/paths'
import { freePort } from './ports'
import { keepOutput, stopChild } from './process'

export const NGINX = '/usr/sbin/nginx'

/**
 * The nginx config that balances over `upstreams` (loopback ports): the Compose balancer's
 * proxy lines (deploy/nginx/proxy.conf) with every path in `dir`, so it runs as any user, in
 * the foreground, beside other instances. `debugUpstream` adds X-Upstream (which replica answered).
 */
export function nginxConfig(dir: string, port: number, upstreams: number[], debugUpstream = false): string {
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    include ${path.join(ROOT, 'deploy', 'nginx', 'proxy.conf')};
${debugUpstream ? '    add_header X-Upstream $upstream_addr always;\n' : ''}    location / { proxy_pass http://app; }
    location = /lb-health { return 200 "ok\\n"; }
  }
}
`
}

export interface Balancer {
  url: string
  port: number
  child: ChildProcess
  /** The master and its workers (the workers do the proxying: measure CPU on all of them). */
  pids(): number[]
  /** stderr and stdout so far. */
  output(): string
  stop(): Promise<void>
}

/** Debian's nginx (scripts/install-tools.sh installs it) in front of `upstreams`; resolves once it answers. */
export async function startBalancer(upstreams: number[], opts: { debugUpstream?: boolean; timeoutMs?: number } = {}): Promise<Balancer> {
  if (!existsSync(NGINX)) throw new Error(`no nginx at ${NGINX}: run \`bash scripts/install-tools.sh\` (or apt-get install nginx)`)
  const port = await freePort()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'blog-nginx-'))
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, d))
  const file = path.join(dir, 'nginx.conf')
  writeFileSync(file, nginxConfig(dir, port, upstreams, opts.debugUpstream))
  // -e: the error log before the config is read (the default path may not be writable).
  const child = spawn(NGINX, ['-c', file, '-p', dir, '-e', 'stderr'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = keepOutput(child, 8000)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  const stop = async () => {
    await stopChild(child, 5000)
    rmSync(dir, { recursive: true, force: true })
  }
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${output()}`)
    const ok = await fetch(`${url}/lb-health`).then((r) => r.status === 200, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`nginx did not answer within ${opts.timeoutMs ?? 10_000} ms:\n${output()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const pids = () => {
    const master = child.pid
    if (!master) return []
    let children: number[] = []
    try {
      children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    } catch {
      // not Linux, or already gone
    }
    return [master, ...children]
  }
  return { url, port, child, pids, output, stop }
}
