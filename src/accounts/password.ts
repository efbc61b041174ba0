import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

// scrypt from node:crypto at one of OWASP's equivalent settings (N=2^16, r=8, p=2): 64 MiB and
// about 0.3-0.6 s of one core per hash. The parameters are stored with each hash, so they can be
// raised later without locking anyone out.
const PARAMS = { log2N: 16, r: 8, p: 2 }
const KEY_BYTES = 32
const SALT_BYTES = 16

function derive(password: string, salt: Buffer, log2N: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** log2N
  // maxmem must exceed 128 * N * r, or OpenSSL refuses.
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** `scrypt$16$8$2$<salt>$<key>` (base64url): never the password. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, PARAMS.log2N, PARAMS.r, PARAMS.p)
  return ['scrypt', PARAMS.log2N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

// A hash of nothing anyone knows: an unknown email costs the same time as a wrong password.
let decoy: Promise<string> | undefined

/** True when `password` matches `stored`; a null or malformed `stored` never matches. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? '').split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    await verifyPassword(password, await (decoy ??= hashPassword(randomBytes(16).toString('hex'))))
    return false
  }
  const [, log2N, r, p, salt, key] = parts as [string, string, string, string, string, string]
  const expected = Buffer.from(key, 'base64url')
  const actual = await derive(password, Buffer.from(salt, 'base64url'), Number(log2N), Number(r), Number(p))
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
