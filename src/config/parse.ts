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

export function trustProxy(raw: string): AppConfig['trustProxy'] {
  const v = raw.trim()
  if (v === 'true' || v === 'false') return v === 'true'
  if (/^\d+$/.test(v)) {
    const hops = Number(v)
    return (_address, hop) => hop < hops
  }
  return v.split(',').map((a) => a.trim())
}
