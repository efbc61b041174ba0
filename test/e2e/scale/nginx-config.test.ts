import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { NGINX } from '../../kit/nginx'

// The Compose balancer's config (deploy/nginx/nginx.conf) checked by a real nginx (`nginx -t`).
// Debian's nginx is 1.22; the image is 1.28 and the config uses `server app:8000 resolve`
// (1.27.3+), and `app` only resolves inside Compose: those two are swapped for a fixed address.
describe('deploy/nginx/nginx.conf', () => {
  it('passes nginx -t, with proxy.conf included', () => {
    const conf = readFileSync(path.join(ROOT, 'deploy/nginx/nginx.conf'), 'utf8')
    expect(conf.match(/server app:8000 resolve/g)).toHaveLength(2)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'blog-nginx-t-'))
    try {
      const local = conf
        .replaceAll('server app:8000 resolve', 'server 127.0.0.1:8000')
        .replace('/etc/nginx/blog/proxy.conf', path.join(ROOT, 'deploy/nginx/proxy.conf'))
      writeFileSync(path.join(dir, 'nginx.conf'), local)
      const out = execFileSync(NGINX, ['-t', '-c', path.join(dir, 'nginx.conf'), '-p', dir, '-e', 'stderr'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      expect(out).toBe('')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
