import type { HrTime } from '@opentelemetry/api'

/*
 * A protobuf writer for the app's OTLP span encoder (./otlp-proto.ts): strings and ids go through
 * Buffer's native UTF-8 and hex writers, in one pass over one reused buffer.
 */

// Wire types.
export const VARINT = 0
export const FIXED64 = 1
export const BYTES = 2
export const FIXED32 = 5

const TWO_32 = 4294967296
/** Strings up to this length are copied in JavaScript; longer ones by Buffer's native writer (its call costs more than a short loop). */
const SHORT_STRING = 32
/** Distinct strings remembered per field by `cached`. */
const CACHE_MAX = 1024

/**
 * One growing buffer, reused by every call: serialising is synchronous, and what a call returns
 * is a copy, since the transport may keep it for a retry.
 */
export class Writer {
  buf = Buffer.allocUnsafe(64 * 1024)
  pos = 0

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const bigger = Buffer.allocUnsafe(size)
    this.buf.copy(bigger, 0, 0, this.pos)
    this.buf = bigger
  }

  /** An unsigned 32-bit value. */
  varint(v: number): void {
    this.room(5)
    const buf = this.buf
    let pos = this.pos
    while (v > 127) {
      buf[pos++] = (v & 127) | 128
      v >>>= 7
    }
    buf[pos++] = v
    this.pos = pos
  }

  /** An int64 field's value: a safe integer of any sign (negative ones take ten bytes). */
  int64(v: number): void {
    if (v >= 0 && v < TWO_32) return this.varint(v >>> 0)
    this.room(10)
    let u = BigInt.asUintN(64, BigInt(v))
    while (u > 127n) {
      this.buf[this.pos++] = Number(u & 127n) | 128
      u >>= 7n
    }
    this.buf[this.pos++] = Number(u)
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire)
  }

  fixed32(v: number): void {
    this.room(4)
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos)
  }

  double(v: number): void {
    this.room(8)
    this.pos = this.buf.writeDoubleLE(v, this.pos)
  }

  /** [seconds, nanoseconds] as fixed64 nanoseconds since the epoch, without a BigInt. */
  time(t: HrTime): void {
    this.room(8)
    // seconds * 1e9 exceeds 2^53: split the seconds at 2^16 so each product is exact.
    const hiSec = Math.floor(t[0] / 65536)
    const loSec = t[0] - hiSec * 65536
    const a = hiSec * 1e9 // < 2^46, to be shifted left by 16 bits
    const aHi = Math.floor(a / 65536) // a * 2^16 = aHi * 2^32 + aLo * 2^16
    const aLo = a - aHi * 65536
    const low = aLo * 65536 + loSec * 1e9 + t[1] // < 2^48, exact
    const carry = Math.floor(low / TWO_32)
    this.buf.writeUInt32LE((low - carry * TWO_32) >>> 0, this.pos)
    this.buf.writeUInt32LE((aHi + carry) >>> 0, this.pos + 4)
    this.pos += 8
  }

  /** A length-delimited field's tag and a one-byte placeholder for its length: end() fills it. */
  begin(field: number): number {
    this.tag(field, BYTES)
    this.room(1)
    return this.pos++
  }

  /** Writes the length of what followed begin(); one that needs more than a byte moves it along. */
  end(at: number): void {
    const length = this.pos - at - 1
    if (length < 128) {
      this.buf[at] = length
      return
    }
    let size = 2
    while (length >= 2 ** (7 * size)) size++
    this.room(size - 1)
    this.buf.copy(this.buf, at + size, at + 1, this.pos)
    const after = this.pos + size - 1
    this.pos = at
    this.varint(length)
    this.pos = after
  }

  string(field: number, s: string): void {
    this.tag(field, BYTES)
    const n = s.length
    // Three bytes per UTF-16 unit at most, and a length of up to five.
    this.room(n * 3 + 5)
    if (n <= SHORT_STRING) {
      const buf = this.buf
      let pos = this.pos + 1
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c > 127) break
        buf[pos++] = c
      }
      if (i === n) {
        buf[this.pos] = n
        this.pos = pos
        return
      }
    }
    const at = this.pos++
    this.pos += this.buf.write(s, this.pos, 'utf8')
    this.end(at)
  }

  /** A trace or span id: `size` bytes from its hex form (zeros past an invalid character). */
  hexId(field: number, hex: string, size: number): void {
    this.tag(field, BYTES)
    this.room(size + 1)
    this.buf[this.pos++] = size
    const written = this.buf.write(hex, this.pos, size, 'hex')
    if (written < size) this.buf.fill(0, this.pos + written, this.pos + size)
    this.pos += size
  }

  /**
   * A string field whose values repeat (attribute keys, span names): its tag, length and bytes
   * are encoded once and copied after. Bounded per field; past it, written as any string.
   */
  cached(field: number, s: string): void {
    const byField = (this.cache[field] ??= new Map<string, Uint8Array>())
    const bytes = byField.get(s)
    if (bytes === undefined) {
      const at = this.pos
      this.string(field, s)
      if (byField.size < CACHE_MAX) byField.set(s, new Uint8Array(this.buf.subarray(at, this.pos)))
      return
    }
    const n = bytes.length
    this.room(n)
    const buf = this.buf
    let pos = this.pos
    for (let i = 0; i < n; i++) buf[pos++] = bytes[i]!
    this.pos = pos
  }

  private readonly cache: Map<string, Uint8Array>[] = []

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, BYTES)
    this.varint(b.length)
    this.room(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  /** A copy of what was written. */
  /** Bytes written elsewhere by a Writer, as they are (a message already encoded). */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  take(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos)
    this.buf.copy(out, 0, 0, this.pos)
    return out
  }
}
