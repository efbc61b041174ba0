import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** Loopback and the private ranges: a load generator or a proxy on the same network. */
export const DEFAULT_TRUSTED_TRACE_SOURCES = '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7'

/**
 * Parses a comma list of addresses and CIDRs ('*': everyone, '': no one) into a test of an IP
 * (IPv4-mapped IPv6 addresses count as their IPv4). Throws on a malformed entry.
 */
export function trustedSources(spec: string): (ip: string) => boolean {
  const entries = spec.split(',').map((s) => s.trim()).filter(Boolean)
  if (entries.includes('*')) return () => true
  const list = new BlockList()
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/')
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
    const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits)
    if (!family || !/^\d{1,3}$/.test(bits ?? '0') || prefix > (family === 'ipv4' ? 32 : 128)) throw new Error(`not an address or CIDR: ${entry}`)
    list.addSubnet(address, prefix, family)
  }
  return (ip) => {
    const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip
    if (isIPv4(v4)) return list.check(v4, 'ipv4')
    return isIPv6(v4) && list.check(v4, 'ipv6')
  }
}
