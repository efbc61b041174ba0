import { trustedSources } from '../lib/addresses'
import type { AppConfig, DbConfig } from './types'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Parses `mysql://user:pass@host:port/db`; user and password are percent-decoded. */
export function parseDatabaseUrl(raw: string): Omit<DbConfig, 'pool' | 'connectTimeoutMs' | 'queryTimeoutMs' | 'startupTimeoutMs' | 'migrateOnStart' | 'seedOnStart' | 'serverTimings'> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError('DATABASE_URL is not a valid URL (expected mysql://user:pass@host:port/db; percent-encode reserved characters in the password, e.g. @ as %40)')
  }
  if (url.protocol !== 'mysql:') throw new ConfigError('DATABASE_URL must start with mysql://')
  // decodeURIComponent throws a URIError on a malformed escape (e.g. a literal % in the password).
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      throw new ConfigError(`DATABASE_URL has a malformed percent-escape in the ${what} (write a literal % as %25)`)
    }
  }
  const database = decode(url.pathname.replace(/^\//, ''), 'database name')
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(database)) {
    throw new ConfigError('DATABASE_URL must name a database (letters, digits, _ or $), e.g. mysql://root@127.0.0.1:3306/blog_db')
  }
  if (!url.hostname) throw new ConfigError('DATABASE_URL must name a host')
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 3306,
    user: decode(url.username, 'user name') || 'root',
    password: decode(url.password, 'password'),
    database
  }
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '[::]'])

/**
 * The loopback names are always allowed (a rebinding page's Host is its own name, never
 * localhost), and so is HOST when it is one address rather than every interface.
 */
export function allowedHosts(list: string, host: string): ReadonlySet<string> | null {
  const names = list.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean)
  if (names.includes('*')) return null
  const listen = host.toLowerCase()
  if (!WILDCARD_ADDRESSES.has(listen)) names.push(listen.includes(':') && !listen.startsWith('[') ? `[${listen}]` : listen)
  return new Set([...LOOPBACK_HOSTS, ...names])
}

export function parsed<T>(name: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${name} ${(err as Error).message}`)
  }
}

/**
 * TRUST_PROXY as Fastify's trustProxy: none, the first n hops, or these proxies' addresses.
 * `true` is refused: it believes the left-most X-Forwarded-For entry, which any client writes
 * itself, so a client could choose its own address (and a fresh write and sign-in budget).
 * Throws a plain Error (load.ts names the variable).
 */
export function trustProxy(raw: string): AppConfig['trustProxy'] {
  const v = raw.trim()
  if (v === 'false') return false
  if (v === 'true') {
    throw new Error('is true, which believes any client\'s own X-Forwarded-For (a client could choose its address and escape the rate limits): set the number of proxies in front of the app (TRUST_PROXY=1 behind one nginx) or their own addresses (e.g. TRUST_PROXY=10.0.0.5)')
  }
  if (/^\d+$/.test(v)) {
    const hops = Number(v)
    return (_address, hop) => hop < hops
  }
  const list = v.split(',').map((a) => a.trim())
  // Fastify would throw its own error (and a stack) on an entry that is not an address.
  trustedSources(list.join(','))
  return list
}

/** True for a HOST that only this machine can reach (a loopback name or address). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h)
}
