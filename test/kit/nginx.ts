import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from '../../src/paths'
import { freePort } from './process'
import { startProcess, waitHealthy, type Proc } from './process'

export const NGINX = '/usr/sbin/nginx'

/** Debian's nginx in the foreground, balancing over `upstreams`, with deploy/nginx/proxy.conf. */
export interface Nginx {
  proc: Proc
  port: number
  stop(): Promise<void>
}

export async function startNginx(upstreams: number[], name = 'nginx'): Promise<Nginx> {
  if (!existsSync(NGINX)) throw new Error(`no nginx at ${NGINX}: run \`bash scripts/install-tools.sh\``)
  const port = await freePort()
  const dir = mkdtempSync(path.join(os.tmpdir(), `blog-${name}-`))
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, d))
  // Everything under the temp dir: no system service, no /var paths, no root-owned pid file.
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
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
    # Which replica answered (tests only: the Compose config does not expose addresses).
    add_header X-Upstream $upstream_addr always;
    location / { proxy_pass http://app; }
    location = /lb-health { return 200 "ok\\n"; }
  }
}
`
  const file = path.join(dir, 'nginx.conf')
  writeFileSync(file, conf)
  // -e: the error log before the config is read (the default path is not writable for everyone).
  const proc = startProcess(name, NGINX, ['-c', file, '-p', dir, '-e', 'stderr'], {}, dir)
  await waitHealthy(proc, `http://127.0.0.1:${port}/lb-health`)
  return {
    proc,
    port,
    async stop() {
      await proc.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
