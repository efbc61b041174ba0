import net from 'node:net'

// A loopback TCP proxy in front of MariaDB, for faults the database itself cannot be asked for:
// latency, refused connections, and a connection cut exactly at COMMIT (the MySQL protocol's
// packets are read on the way to the server to find it).

/**
 * What to do with the next COMMIT a client sends:
 * - 'before': cut the connection instead of forwarding it (the server rolls back);
 * - 'after': forward it, then cut the connection when the server answers, dropping the answer
 *   (the server has committed; the client cannot know).
 */
export type CommitCut = 'before' | 'after'

export interface TcpProxy {
  readonly port: number
  /** Delay added to every chunk in both directions (order is kept). */
  latencyMs: number
  /** Connections accepted so far. */
  connections(): number
  /** Connections open now. */
  open(): number
  /** Arms a one-shot cut of the next COMMIT; resolves once it has happened. */
  cutNextCommit(mode: CommitCut): Promise<void>
  /**
   * Holds the next COMMIT a client sends; resolves once it is held, with a function that
   * forwards it (the test can stall the server first).
   */
  holdNextCommit(): Promise<() => void>
  /** Closes the listening socket (new connections are refused) and cuts every open connection. */
  down(): Promise<void>
  /** Listens again on the same port. */
  up(): Promise<void>
  close(): Promise<void>
}

const COM_QUERY = 0x03

export async function startTcpProxy(target: { host: string; port: number }, opts: { port?: number } = {}): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  let trap: { mode: CommitCut | 'hold'; done: (release: () => void) => void } | null = null
  let server: net.Server | null = null
  let port = opts.port ?? 0

  const proxy: TcpProxy = {
    get port() {
      return port
    },
    latencyMs: 0,
    connections: () => accepted,
    open: () => sockets.size / 2,
    cutNextCommit(mode) {
      return new Promise((resolve) => {
        trap = { mode, done: () => resolve() }
      })
    },
    holdNextCommit() {
      return new Promise((resolve) => {
        trap = { mode: 'hold', done: resolve }
      })
    },
    async down() {
      const s = server
      server = null
      for (const sock of sockets) sock.destroy()
      if (s) await new Promise((r) => s.close(r))
    },
    async up() {
      if (server) return
      server = net.createServer(onConnection)
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject)
        server!.listen(port, '127.0.0.1', () => {
          server!.off('error', reject)
          resolve()
        })
      })
      port = (server.address() as net.AddressInfo).port
    },
    close: () => proxy.down()
  }

  /** Writes to `to` after the current latency, keeping the order of chunks. */
  const delayed = () => {
    let last = 0
    return (to: net.Socket, chunk: Buffer) => {
      if (proxy.latencyMs <= 0 && last <= Date.now()) {
        to.write(chunk)
        return
      }
      const at = Math.max(Date.now() + proxy.latencyMs, last)
      last = at
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk)
      }, at - Date.now())
    }
  }

  function onConnection(client: net.Socket): void {
    accepted++
    const upstream = net.connect(target)
    sockets.add(client)
    sockets.add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', cut)
      s.on('close', () => {
        sockets.delete(s)
        cut()
      })
    }
    const toServer = delayed()
    const toClient = delayed()
    let pending = Buffer.alloc(0)
    let cutOnAnswer: (() => void) | null = null

    upstream.on('data', (chunk: Buffer) => {
      if (cutOnAnswer) {
        const done = cutOnAnswer
        cutOnAnswer = null
        cut()
        done()
        return
      }
      toClient(client, chunk)
    })

    client.on('data', (chunk: Buffer) => {
      // Split the client's bytes into MySQL packets: 3-byte little-endian length, sequence id, payload.
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 4) {
        const length = pending.readUIntLE(0, 3)
        if (pending.length < 4 + length) break
        const packet = pending.subarray(0, 4 + length)
        pending = pending.subarray(4 + length)
        const isCommit = length > 1 && packet[4] === COM_QUERY && /^\s*COMMIT\b/i.test(packet.toString('latin1', 5, Math.min(4 + length, 32)))
        if (isCommit && trap) {
          const { mode, done } = trap
          trap = null
          if (mode === 'before') {
            cut()
            done(() => undefined)
            return
          }
          if (mode === 'hold') {
            // Everything after the COMMIT waits with it, in order.
            const held = Buffer.concat([packet, pending])
            pending = Buffer.alloc(0)
            client.pause()
            done(() => {
              toServer(upstream, held)
              client.resume()
            })
            return
          }
          cutOnAnswer = () => done(() => undefined)
        }
        toServer(upstream, packet)
      }
    })
  }

  await proxy.up()
  return proxy
}
