import net from 'node:net'

/** `n` distinct loopback ports nothing listens on right now (all held until every one is picked). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer()
      srv.unref()
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject)
        srv.listen(0, '127.0.0.1', () => resolve())
      })
      servers.push(srv)
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!
}
