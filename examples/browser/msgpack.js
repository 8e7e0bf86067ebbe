// A small msgpack encoder and stream decoder in plain JavaScript (an ES module, no build).
//
// Enough of https://github.com/msgpack/msgpack/blob/master/spec.md for this demo and for
// what wsframed's MsgpackCodec sends by default: nil, booleans, integers (BigInt past
// Number.MAX_SAFE_INTEGER), float64 (float32 decoded), str, bin (Uint8Array), arrays and
// maps (objects when every key is a string, else Map). An ext value decodes as
// {extType, data}. For real applications use @msgpack/msgpack, which is tested against
// wsframed in tests/interop.

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

class Writer {
  constructor() { this.bytes = new Uint8Array(64); this.view = new DataView(this.bytes.buffer); this.length = 0 }
  reserve(n) {
    if (this.length + n <= this.bytes.length) return
    const bytes = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n))
    bytes.set(this.bytes.subarray(0, this.length))
    this.bytes = bytes
    this.view = new DataView(bytes.buffer)
  }
  u8(v) { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1 }
  u16(v) { this.reserve(2); this.view.setUint16(this.length, v); this.length += 2 }
  u32(v) { this.reserve(4); this.view.setUint32(this.length, v); this.length += 4 }
  u64(v) { this.reserve(8); this.view.setBigUint64(this.length, v); this.length += 8 }
  i64(v) { this.reserve(8); this.view.setBigInt64(this.length, v); this.length += 8 }
  f64(v) { this.reserve(8); this.view.setFloat64(this.length, v); this.length += 8 }
  raw(bytes) { this.reserve(bytes.length); this.bytes.set(bytes, this.length); this.length += bytes.length }
  head(size, fix, fixMax, codes) { // a str/bin/array/map header: fix form, then 8/16/32-bit lengths
    if (fix !== null && size <= fixMax) return this.u8(fix | size)
    if (codes[0] !== null && size < 0x100) { this.u8(codes[0]); return this.u8(size) }
    if (size < 0x10000) { this.u8(codes[1]); return this.u16(size) }
    this.u8(codes[2]); this.u32(size)
  }
}

function encodeInteger(w, v) {
  if (v >= 0) {
    if (v < 0x80) return w.u8(v)
    if (v < 0x100) { w.u8(0xcc); return w.u8(v) }
    if (v < 0x10000) { w.u8(0xcd); return w.u16(v) }
    if (v < 0x100000000) { w.u8(0xce); return w.u32(v) }
    w.u8(0xcf); return w.u64(BigInt(v))
  }
  if (v >= -0x20) return w.u8(v & 0xff)
  if (v >= -0x80) { w.u8(0xd0); return w.u8(v & 0xff) }
  if (v >= -0x8000) { w.u8(0xd1); return w.u16(v & 0xffff) }
  if (v >= -0x80000000) { w.u8(0xd2); return w.u32(v >>> 0) }
  w.u8(0xd3); w.i64(BigInt(v))
}

function encodeValue(w, v) {
  if (v === null || v === undefined) return w.u8(0xc0)
  if (v === false) return w.u8(0xc2)
  if (v === true) return w.u8(0xc3)
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return encodeInteger(w, v)
    w.u8(0xcb); return w.f64(v)
  }
  if (typeof v === 'bigint') {
    if (v >= 0n) { w.u8(0xcf); return w.u64(v) }
    w.u8(0xd3); return w.i64(v)
  }
  if (typeof v === 'string') {
    const bytes = utf8Encoder.encode(v)
    w.head(bytes.length, 0xa0, 31, [0xd9, 0xda, 0xdb])
    return w.raw(bytes)
  }
  if (v instanceof Uint8Array) {
    w.head(v.length, null, 0, [0xc4, 0xc5, 0xc6])
    return w.raw(v)
  }
  if (Array.isArray(v)) {
    w.head(v.length, 0x90, 15, [null, 0xdc, 0xdd])
    for (const item of v) encodeValue(w, item)
    return
  }
  const entries = v instanceof Map ? [...v] : Object.entries(v)
  w.head(entries.length, 0x80, 15, [null, 0xde, 0xdf])
  for (const [key, item] of entries) { encodeValue(w, key); encodeValue(w, item) }
}

/** Encode one value as a msgpack object; returns a Uint8Array. */
export function encode(value) {
  const w = new Writer()
  encodeValue(w, value)
  return w.bytes.slice(0, w.length)
}

const INCOMPLETE = Symbol('incomplete')

class Reader {
  constructor(bytes) { this.bytes = bytes; this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); this.pos = 0 }
  need(n) { if (this.pos + n > this.bytes.length) throw INCOMPLETE }
  u8() { this.need(1); return this.view.getUint8(this.pos++) }
  u16() { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v }
  u32() { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v }
  int(size, signed) {
    this.need(size)
    const at = this.pos
    this.pos += size
    if (size === 1) return signed ? this.view.getInt8(at) : this.view.getUint8(at)
    if (size === 2) return signed ? this.view.getInt16(at) : this.view.getUint16(at)
    if (size === 4) return signed ? this.view.getInt32(at) : this.view.getUint32(at)
    const big = signed ? this.view.getBigInt64(at) : this.view.getBigUint64(at)
    const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    return safe ? Number(big) : big
  }
  float(size) { this.need(size); const at = this.pos; this.pos += size; return size === 4 ? this.view.getFloat32(at) : this.view.getFloat64(at) }
  take(n) { this.need(n); const bytes = this.bytes.slice(this.pos, this.pos + n); this.pos += n; return bytes }
}

function decodeValue(r) {
  const b = r.u8()
  if (b < 0x80) return b
  if (b >= 0xe0) return b - 0x100
  if (b >= 0xa0 && b <= 0xbf) return utf8Decoder.decode(r.take(b & 0x1f))
  if (b >= 0x90 && b <= 0x9f) return decodeArray(r, b & 0x0f)
  if (b >= 0x80 && b <= 0x8f) return decodeMap(r, b & 0x0f)
  switch (b) {
    case 0xc0: return null
    case 0xc2: return false
    case 0xc3: return true
    case 0xc4: return r.take(r.u8())
    case 0xc5: return r.take(r.u16())
    case 0xc6: return r.take(r.u32())
    case 0xc7: { const n = r.u8(); return { extType: r.int(1, true), data: r.take(n) } }
    case 0xc8: { const n = r.u16(); return { extType: r.int(1, true), data: r.take(n) } }
    case 0xc9: { const n = r.u32(); return { extType: r.int(1, true), data: r.take(n) } }
    case 0xca: return r.float(4)
    case 0xcb: return r.float(8)
    case 0xcc: return r.int(1, false)
    case 0xcd: return r.int(2, false)
    case 0xce: return r.int(4, false)
    case 0xcf: return r.int(8, false)
    case 0xd0: return r.int(1, true)
    case 0xd1: return r.int(2, true)
    case 0xd2: return r.int(4, true)
    case 0xd3: return r.int(8, true)
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {
      const type = r.int(1, true)
      return { extType: type, data: r.take(1 << (b - 0xd4)) }
    }
    case 0xd9: return utf8Decoder.decode(r.take(r.u8()))
    case 0xda: return utf8Decoder.decode(r.take(r.u16()))
    case 0xdb: return utf8Decoder.decode(r.take(r.u32()))
    case 0xdc: return decodeArray(r, r.u16())
    case 0xdd: return decodeArray(r, r.u32())
    case 0xde: return decodeMap(r, r.u16())
    case 0xdf: return decodeMap(r, r.u32())
  }
  throw new Error(`invalid msgpack: byte 0x${b.toString(16)}`)
}

function decodeArray(r, n) {
  const items = []
  for (let i = 0; i < n; i++) items.push(decodeValue(r))
  return items
}

function decodeMap(r, n) {
  const entries = []
  for (let i = 0; i < n; i++) entries.push([decodeValue(r), decodeValue(r)])
  if (entries.every(([key]) => typeof key === 'string')) {
    const object = {}
    for (const [key, value] of entries) {
      Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
    }
    return object
  }
  return new Map(entries)
}

/** Decode one complete msgpack object (throws if bytes are missing or left over). */
export function decode(bytes) {
  const decoder = new StreamDecoder()
  const values = decoder.push(bytes)
  if (values.length !== 1 || decoder.buffered) throw new Error('expected exactly one msgpack object')
  return values[0]
}

/**
 * Decodes a msgpack object stream that arrives in arbitrary pieces: push() each piece
 * (a WebSocket message), get back the objects it completed. Message boundaries mean
 * nothing; an object may span many messages and a message may hold many objects.
 */
export class StreamDecoder {
  constructor() { this.buffer = new Uint8Array(0) }
  get buffered() { return this.buffer.length }
  push(bytes) {
    const joined = new Uint8Array(this.buffer.length + bytes.length)
    joined.set(this.buffer)
    joined.set(bytes, this.buffer.length)
    const values = []
    const reader = new Reader(joined)
    let start = 0
    for (;;) {
      try {
        if (reader.pos >= joined.length) break
        values.push(decodeValue(reader))
        start = reader.pos
      } catch (error) {
        if (error !== INCOMPLETE) throw error
        break // wait for the rest of this object; it is decoded again from its start
      }
    }
    this.buffer = joined.slice(start)
    return values
  }
}
