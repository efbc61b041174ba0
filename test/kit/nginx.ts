import { startBalancer } from '../../harness/balancer'

export { NGINX } from '../../harness/balancer'

/** Debian's nginx in the foreground, balancing over `upstreams`, with deploy/nginx/proxy.conf. */
export interface Nginx {
  port: number
  /** Which replica answered is in each response's X-Upstream header (tests only). */
  output(): string
  stop(): Promise<void>
}

// The config and the process come from the shared balancer (harness/balancer.ts): the tests
// and `npm run bench -- --variants replicas=N` run the same nginx setup.
export async function startNginx(upstreams: number[]): Promise<Nginx> {
  const lb = await startBalancer(upstreams, { debugUpstream: true })
  return { port: lb.port, output: lb.output, stop: lb.stop }
}

