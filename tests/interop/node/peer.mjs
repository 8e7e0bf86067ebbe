// A Node.js peer for wsframed, on the `ws` package with `@msgpack/msgpack` and `cbor-x`,
// and JSON Lines with JSON.stringify / JSON.parse.
//
//   node peer.mjs '{"url": "ws://127.0.0.1:PORT/", "codec": "msgpack", "seed": 1, "count": 300}'
//
// Conversation with tests/interop/test_node.py's server:
//   1. Encode known items, then `count` random ones (seeded), then an end marker, with the
//      JavaScript library for the codec; concatenate the bytes and send them cut at random
//      offsets into binary messages (empty, 1 byte, small, large), so frames straddle
//      message boundaries.
//   2. Decode the server's byte stream incrementally with the same library: one reply per
//      item (["echo", i, item], or for length-prefixed frames sha256(payload) + reversed
//      payload), a summary of what the server received, then items of the server's own.
//   3. Wait for the close frame; print one JSON line: digests of the raw bytes each way,
//      the items sent and received (tagged JSON, see toJson), mismatches, the close code.
//
// Config keys: url, codec ("length" | "msgpack" | "cbor" | "jsonl"), seed, count, maxChunk,
// tagUint8Array (cbor-x Encoder option; null keeps cbor-x's default: tag 64 on Node).

import { createHash } from 'node:crypto'
import { once } from 'node:events'
import WebSocket from 'ws'
import { Encoder as MsgpackEncoder, decodeMultiStream } from '@msgpack/msgpack'
import { Encoder as CborEncoder, DecoderStream as CborDecoderStream } from 'cbor-x'

const config = { count: 300, seed: 1, maxChunk: 2048, tagUint8Array: null, ...JSON.parse(process.argv[2]) }
const END_MARKER = 'wsframed-interop:end'

// Seeded PRNG (mulberry32), so a failure can be replayed with the same seed.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = rng(config.seed)
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1))
const pick = (items) => items[int(0, items.length - 1)]

function randomBytes(n) {
  const out = Buffer.alloc(n)
  for (let i = 0; i < n; i++) out[i] = int(0, 255)
  return out
}

function randomString(n) {
  // Any Unicode scalar value: ASCII, Latin-1, BMP and astral planes, never a lone surrogate.
  let s = ''
  for (let i = 0; i < n; i++) {
    const range = pick([[0x20, 0x7e], [0x00, 0x1f], [0xa0, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xfffd], [0x10000, 0x10ffff]])
    s += String.fromCodePoint(int(range[0], range[1]))
  }
  return s
}

function randomKey() {
  // Letters only: JavaScript objects put integer-like keys first, which would reorder maps.
  let s = ''
  for (let i = int(1, 8); i > 0; i--) s += String.fromCharCode(pick([int(0x41, 0x5a), int(0x61, 0x7a)]))
  return s
}

// A JavaScript value for the codec. Byte strings are Node Buffers for CBOR (cbor-x tags a
// plain Uint8Array with 64 on Node) and plain Uint8Arrays for msgpack. JSON has neither
// byte strings nor BigInts: strings and Numbers within the safe-integer range instead.
function randomValue(codec, depth = 0) {
  const kinds = ['null', 'bool', 'small', 'int32', 'float', 'string', 'bytes', 'bigint']
  if (depth < 3) kinds.push('array', 'map', 'array', 'map')
  switch (pick(kinds)) {
    case 'null': return null
    case 'bool': return random() < 0.5
    case 'small': return int(-40, 300)
    case 'int32': return int(-(2 ** 31), 2 ** 32 - 1)
    case 'float': return (random() - 0.5) * 10 ** int(-5, 12) + 0.5 ** 20 // never an integer
    case 'string': return randomString(random() < 0.05 ? int(300, 3000) : int(0, 40))
    case 'bytes': {
      if (codec === 'jsonl') return randomString(int(0, 64))
      const bytes = randomBytes(random() < 0.05 ? int(300, 5000) : int(0, 64))
      return codec === 'cbor' ? bytes : new Uint8Array(bytes)
    }
    case 'bigint': // outside the safe-integer range, so the peer must keep all 64 bits
      if (codec === 'jsonl') return pick([1, -1]) * (2 ** 53 - int(1, 2 ** 30)) // within it
      return pick([1n, -1n]) * (2n ** 53n + BigInt(int(1, 2 ** 30)) * 2n ** BigInt(int(10, 30)))
    case 'array': return Array.from({ length: int(0, 6) }, () => randomValue(codec, depth + 1))
    case 'map': {
      const map = {}
      for (let i = int(0, 5); i > 0; i--) map[randomKey()] = randomValue(codec, depth + 1)
      return map
    }
  }
}

// Known items at fixed indexes; test_node.py asserts how Python decoded each one.
function knownItems(codec) {
  const pattern = Buffer.alloc(100000)
  for (let i = 0; i < pattern.length; i++) pattern[i] = i % 251
  if (codec === 'length') {
    return [Buffer.alloc(0), Buffer.from([0]), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), pattern]
  }
  if (codec === 'jsonl') {
    return [
      'héllo ✓ 😀', // 0
      -129, // 1
      Number.MAX_SAFE_INTEGER, // 2
      Number.MIN_SAFE_INTEGER, // 3
      1.5, // 4
      0.1, // 5
      1e-7, // 6: JavaScript writes 1e-7, Python 1e-07
      1e21, // 7: JavaScript writes 1e+21
      [], // 8
      {}, // 9
      { nested: [1, [2, [3, { deep: true }]]] }, // 10
      'x'.repeat(60000), // 11: spans many messages, within the 64 KiB line limit
      null, true, false, // 12, 13, 14
      '"\\/\b\f\n\r\t\u0000\u001f\u007f\u2028\u2029', // 15: escapes
      2.0, // 16: a Number with an integer value: JSON.stringify writes 2
    ]
  }
  const bin = codec === 'cbor' ? Buffer.from([0, 1, 2, 255]) : new Uint8Array([0, 1, 2, 255])
  const items = [
    'héllo ✓ 😀', // 0
    -129, // 1
    2 ** 32, // 2: a Number past 32 bits: both libraries send a float64 (msgpack: with useBigInt64)
    2n ** 64n - 1n, // 3
    -(2n ** 63n), // 4
    1.5, // 5
    bin, // 6
    [], // 7
    {}, // 8
    { nested: [1, [2, [3, { deep: true }]]] }, // 9
    codec === 'cbor' ? pattern : new Uint8Array(pattern), // 10: spans many messages
    'x'.repeat(70000), // 11
    null, true, false, // 12, 13, 14
    2n ** 32n, // 15: the same integer as a BigInt: an integer on the wire
  ]
  if (codec === 'cbor') items.push(new Uint8Array([0, 1, 2, 255])) // 16: tag 64 unless tagUint8Array: false
  return items
}

// Tagged JSON, so Python can rebuild exact values: bytes, big integers and tags survive.
function toJson(value, codec) {
  if (value === null || value === undefined || value === Symbol.for(null)) return null
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
    // With CBOR the JavaScript type matters: cbor-x decodes tag 64 (RFC 8746, "uint8 typed
    // array") as a plain Uint8Array and encodes one with that tag unless told otherwise,
    // while a Buffer is a plain byte string both ways.
    return codec === 'cbor' && !Buffer.isBuffer(value) ? { $u8: hex } : { $bytes: hex }
  }
  if (Array.isArray(value)) return value.map((v) => toJson(v, codec))
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [toJson(k, codec), toJson(v, codec)]) }
  if (value.constructor && value.constructor.name === 'Tag') return { $tag: value.tag, value: toJson(value.value, codec) }
  const out = {}
  for (const [k, v] of Object.entries(value)) out[k] = toJson(v, codec)
  return out
}

// For comparing an echoed value with the one sent: what a round trip through Python may
// legitimately change (integer width, Uint8Array vs Buffer) is normalised away.
function canonical(value, codec) {
  return JSON.stringify(toJson(value, codec), (key, v) => {
    if (v && typeof v === 'object' && '$bigint' in v) {
      const n = BigInt(v.$bigint)
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : v
    }
    if (v && typeof v === 'object' && '$u8' in v) return { $bytes: v.$u8 }
    return v
  })
}

function encoderFor(codec) {
  if (codec === 'msgpack') {
    const encoder = new MsgpackEncoder({ useBigInt64: true })
    return (item) => encoder.encode(item)
  }
  if (codec === 'cbor') {
    // useRecords: false, or `new Encoder()` writes objects as cbor-x "records" (its own
    // tag-105/57343 extension, which only cbor-x reads) instead of CBOR maps.
    const options = { useRecords: false }
    if (config.tagUint8Array !== null) options.tagUint8Array = config.tagUint8Array
    const encoder = new CborEncoder(options)
    return (item) => encoder.encode(item)
  }
  if (codec === 'jsonl') return (item) => Buffer.from(JSON.stringify(item) + '\n')
  return (payload) => {
    const header = Buffer.alloc(4)
    header.writeUInt32BE(payload.length)
    return Buffer.concat([header, payload])
  }
}

// An async iterable of the payloads in a length-prefixed stream (u32 big-endian header).
async function* lengthPrefixed(chunks) {
  let buffer = Buffer.alloc(0)
  for await (const chunk of chunks) {
    buffer = Buffer.concat([buffer, chunk])
    while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
      const end = 4 + buffer.readUInt32BE(0)
      yield buffer.subarray(4, end)
      buffer = buffer.subarray(end)
    }
  }
  if (buffer.length) throw new Error(`stream ended inside a frame (${buffer.length} bytes left)`)
}

// An async iterable of the values in a JSON Lines stream: lines cut at "\n" (a trailing
// "\r" dropped), UTF-8 decoded strictly, blank lines skipped.
async function* jsonLines(chunks) {
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  let buffer = Buffer.alloc(0)
  for await (const chunk of chunks) {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk
    let start = 0
    for (let end = buffer.indexOf(10); end !== -1; end = buffer.indexOf(10, start)) {
      const line = utf8.decode(buffer.subarray(start, end)).replace(/\r$/, '')
      start = end + 1
      if (line.trim()) yield JSON.parse(line)
    }
    buffer = buffer.subarray(start)
  }
  if (buffer.length) throw new Error(`stream ended inside a line (${buffer.length} bytes left)`)
}

async function* cborItems(chunks) {
  const stream = new CborDecoderStream({ mapsAsObjects: true })
  const pump = (async () => {
    for await (const chunk of chunks) stream.write(chunk)
    stream.end()
  })()
  pump.catch((error) => stream.destroy(error))
  for await (const item of stream) yield item
  await pump
}

function decoderFor(codec, chunks) {
  if (codec === 'msgpack') return decodeMultiStream(chunks, { useBigInt64: true })
  if (codec === 'cbor') return cborItems(chunks)
  if (codec === 'jsonl') return jsonLines(chunks)
  return lengthPrefixed(chunks)
}

// The WebSocket's binary messages as an async iterable of Buffers, ending at the close.
function messages(ws, received) {
  const queue = []
  let wake = null
  let done = false
  ws.on('message', (data, isBinary) => {
    if (!isBinary) throw new Error('the server sent a text message')
    received.update(data)
    queue.push(data)
    if (wake) wake()
  })
  ws.on('close', () => { done = true; if (wake) wake() })
  return (async function* () {
    for (;;) {
      if (queue.length) { yield queue.shift(); continue }
      if (done) return
      await new Promise((resolve) => { wake = resolve })
      wake = null
    }
  })()
}

class Digest {
  constructor() { this.length = 0; this.sha = createHash('sha256') }
  update(data) { this.length += data.length; this.sha.update(data) }
  result() { return { length: this.length, sha256: this.sha.digest('hex') } }
}

async function main() {
  const { codec } = config
  const encode = encoderFor(codec)
  const items = [...knownItems(codec)]
  for (let i = 0; i < config.count; i++) {
    items.push(codec === 'length' ? randomBytes(random() < 0.05 ? int(300, 20000) : int(0, 200)) : randomValue(codec))
  }
  const end = codec === 'length' ? Buffer.from(END_MARKER) : { 'wsframed-interop': 'end', count: items.length }
  const frames = [...items, end].map((item) => encode(item))
  const wire = Buffer.concat(frames)

  const ws = new WebSocket(config.url, { perMessageDeflate: false })
  const received = new Digest()
  const incoming = messages(ws, received)
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  await once(ws, 'open')

  // Cut the byte stream at random offsets: empty messages, single bytes, small and large.
  const sent = new Digest()
  const sizes = []
  for (let offset = 0; offset < wire.length;) {
    const r = random()
    const size = r < 0.05 ? 0 : r < 0.3 ? 1 : r < 0.8 ? int(2, 64) : int(65, config.maxChunk)
    const chunk = wire.subarray(offset, offset + size)
    offset += chunk.length
    sizes.push(chunk.length)
    sent.update(chunk)
    ws.send(chunk, { binary: true })
  }

  // How the cuts fell: frames split across messages, messages holding several frames.
  const frameEnds = []
  for (let offset = 0, i = 0; i < frames.length; i++) frameEnds.push(offset += frames[i].length)
  const cuts = []
  for (let offset = 0, i = 0; i < sizes.length; i++) if (sizes[i]) cuts.push(offset += sizes[i])
  const split = frameEnds.filter((end, i) => {
    const start = i ? frameEnds[i - 1] : 0
    return cuts.some((cut) => cut > start && cut < end)
  }).length
  let packed = 0
  for (let i = 0, f = 0, start = 0; i < cuts.length; start = cuts[i++]) {
    let ends = 0
    while (f < frameEnds.length && frameEnds[f] <= cuts[i]) if (frameEnds[f++] > start) ends++
    if (ends >= 2) packed++
  }

  const mismatches = []
  const receivedItems = []
  let replies = 0
  let summary = null
  for await (const frame of decoderFor(codec, incoming)) {
    if (replies < items.length) {
      const index = replies++
      const item = items[index]
      if (codec === 'length') {
        const expected = Buffer.concat([createHash('sha256').update(item).digest(), Buffer.from(item).reverse()])
        if (!expected.equals(Buffer.from(frame))) mismatches.push({ index, expected: expected.length, got: frame.length })
      } else if (!Array.isArray(frame) || frame[0] !== 'echo' || frame[1] !== index ||
                 canonical(frame[2], codec) !== canonical(item, codec)) {
        mismatches.push({ index, sent: toJson(item, codec), got: toJson(frame, codec) })
      }
    } else if (summary === null) {
      summary = codec === 'length' ? JSON.parse(Buffer.from(frame).toString()) : toJson(frame, codec)
    } else {
      receivedItems.push(toJson(frame, codec))
    }
  }
  const close = await closed
  const result = {
    codec,
    seed: config.seed,
    messages: sizes.length,
    empty_messages: sizes.filter((n) => n === 0).length,
    frames_split: split,
    messages_with_several_frames: packed,
    sent: sent.result(),
    received: received.result(),
    items_sent: items.map((item) => toJson(item, codec)),
    replies,
    mismatches: mismatches.slice(0, 5),
    mismatch_count: mismatches.length,
    summary,
    received_items: receivedItems,
    close,
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((error) => {
  process.stderr.write(`peer.mjs: ${error && error.stack ? error.stack : error}\n`)
  process.exit(1)
})
