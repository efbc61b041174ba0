import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config'
import { DEFAULT_TRUSTED_TRACE_SOURCES, trustedSources } from '../../src/lib/addresses'

describe('TRUSTED_TRACE_SOURCES', () => {
  it('trusts loopback and the private ranges by default, IPv4-mapped IPv6 included', () => {
    const trusted = trustedSources(DEFAULT_TRUSTED_TRACE_SOURCES)
    for (const ip of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.1.2.3', '172.31.255.1', '192.168.0.7', 'fd00::1']) expect(trusted(ip), ip).toBe(true)
    for (const ip of ['8.8.8.8', '172.32.0.1', '::ffff:8.8.8.8', '2001:db8::1', '', 'not-an-ip']) expect(trusted(ip), ip).toBe(false)
  })

  it('takes single addresses, CIDRs and *, and nothing at all from an empty list', () => {
    expect(trustedSources('203.0.113.5')('203.0.113.5')).toBe(true)
    expect(trustedSources('203.0.113.5')('203.0.113.6')).toBe(false)
    expect(trustedSources('203.0.113.0/24, 2001:db8::/32')('2001:db8::9')).toBe(true)
    expect(trustedSources('*')('8.8.8.8')).toBe(true)
    expect(trustedSources('')('127.0.0.1')).toBe(false)
  })

  it('stops start-up with the variable named when an entry is not an address', () => {
    expect(() => loadConfig({ TRUSTED_TRACE_SOURCES: '10.0.0.0/8,evil.example' })).toThrow(/TRUSTED_TRACE_SOURCES.*evil\.example/)
    expect(() => loadConfig({ TRUSTED_TRACE_SOURCES: '10.0.0.0/40' })).toThrow(/TRUSTED_TRACE_SOURCES/)
  })
})

describe('TRUST_PROXY', () => {
  it('is off by default and takes a hop count or proxy addresses', () => {
    expect(loadConfig({}).trustProxy).toBe(false)
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false)
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 10.0.0.0/8' }).trustProxy).toEqual(['10.0.0.1', '10.0.0.0/8'])
    const hops = loadConfig({ TRUST_PROXY: '1' }).trustProxy as (a: string, i: number) => boolean
    expect([hops('x', 0), hops('x', 1)]).toEqual([true, false])
    expect(() => loadConfig({ TRUST_PROXY: 'yes please' })).toThrow(/TRUST_PROXY/)
  })

  it('refuses true (any client could choose its own address), pointing to a hop count or the proxy addresses', () => {
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(ConfigError)
    expect(() => loadConfig({ TRUST_PROXY: ' true ' })).toThrow(/TRUST_PROXY is true.*number of proxies.*TRUST_PROXY=1.*addresses/)
  })

  it('refuses an address list entry that is not an address or CIDR, naming the variable', () => {
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.1, 10.0.0' })).toThrow(/TRUST_PROXY.*10\.0\.0/)
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' })).toThrow(ConfigError)
  })
})
