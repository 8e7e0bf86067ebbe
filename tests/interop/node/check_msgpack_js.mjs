// Cross-checks examples/browser/msgpack.js (the browser example's small msgpack) against
// @msgpack/msgpack: same bytes for the same values, each decodes the other's output, and
// the stream decoder yields the same values whatever the cuts.
//
//   node check_msgpack_js.mjs PATH/TO/msgpack.js [count] [seed]
//
// Prints one JSON line: {"checked": n, "failures": [...]}.

import { readFileSync } from 'node:fs'
import { encode as refEncode, decode as refDecode } from '@msgpack/msgpack'

// A data: URL imports the file as an ES module whatever package.json is near it.
const source = readFileSync(process.argv[2])
const mine = await import(`data:text/javascript;base64,${source.toString('base64')}`)
const count = Number(process.argv[3] || 500)
let seed = Number(process.argv[4] || 7) >>> 0

function random() { // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1))
const pick = (xs) => xs[int(0, xs.length - 1)]

const boundaries = [0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]
function value(depth = 0) {
  const kinds = ['null', 'bool', 'int', 'float', 'str', 'bin']
  if (depth < 3) kinds.push('array', 'map')
  switch (pick(kinds)) {
    case 'null': return null
    case 'bool': return random() < 0.5
    case 'int': { const b = pick(boundaries) + int(-2, 2); return pick([1, -1]) * Math.min(b < 0 ? 0 : b, 2 ** 53 - 1) }
    case 'float': return (random() - 0.5) * 10 ** int(-3, 9) + 0.5 ** 20
    case 'str': {
      const n = (depth === 0 && random() < 0.02 ? pick([65535, 65536]) : pick([0, 1, 5, 31, 32, 200, 255, 256])) + int(0, 2)
      let s = ''
      for (let i = 0; i < n; i++) s += String.fromCodePoint(pick([int(0x20, 0x7e), int(0xa0, 0x7ff), int(0x10000, 0x1ffff)]))
      return s
    }
    case 'bin': {
      const out = new Uint8Array((depth === 0 && random() < 0.05 ? pick([65535, 65536]) : pick([0, 1, 255, 256])) + int(0, 1))
      for (let i = 0; i < out.length; i += 97) out[i] = int(0, 255)
      return out
    }
    case 'array': return Array.from({ length: depth === 0 ? pick([0, 3, 15, 16, 17]) : int(0, 3) }, () => value(depth + 1))
    case 'map': {
      const map = {}
      for (let i = depth === 0 ? pick([0, 2, 15, 16]) : int(0, 3); i > 0; i--) map[`k${i}_${int(0, 999)}`] = value(depth + 1)
      return map
    }
  }
}

const hex = (b) => Buffer.from(b).toString('hex')
const same = (a, b) => JSON.stringify(a, (k, v) => (v instanceof Uint8Array ? hex(v) : v)) ===
  JSON.stringify(b, (k, v) => (v instanceof Uint8Array ? hex(v) : v))

const failures = []
const values = Array.from({ length: count }, () => value())
for (const [i, v] of values.entries()) {
  const ours = mine.encode(v)
  const theirs = refEncode(v)
  if (hex(ours) !== hex(theirs)) failures.push({ i, problem: 'different bytes', ours: hex(ours).slice(0, 80), theirs: hex(theirs).slice(0, 80) })
  if (!same(refDecode(ours), v)) failures.push({ i, problem: '@msgpack/msgpack decodes ours differently' })
  if (!same(mine.decode(theirs), v)) failures.push({ i, problem: 'ours decodes @msgpack/msgpack differently' })
}
// Stream decoding: every value, concatenated, cut at random offsets (1 byte to 4 KiB).
const stream = Buffer.concat(values.map((v) => refEncode(v)))
const decoder = new mine.StreamDecoder()
const decoded = []
for (let at = 0; at < stream.length;) {
  const size = pick([1, 2, 3, int(4, 64), int(65, 4096)])
  decoded.push(...decoder.push(stream.subarray(at, at + size)))
  at += size
}
if (decoded.length !== values.length || decoder.buffered) failures.push({ problem: `stream: ${decoded.length} values, ${decoder.buffered} bytes left` })
else decoded.forEach((v, i) => { if (!same(v, values[i])) failures.push({ i, problem: 'stream decode differs' }) })
// 64-bit integers past the safe range come back as BigInt, both ways.
for (const big of [2n ** 63n - 1n, 2n ** 64n - 1n, -(2n ** 63n)]) {
  const back = mine.decode(refEncode(big, { useBigInt64: true }))
  if (back !== big) failures.push({ problem: `bigint ${big} decoded as ${back}` })
  if (refDecode(mine.encode(big), { useBigInt64: true }) !== big) failures.push({ problem: `bigint ${big} encoded wrongly` })
}
process.stdout.write(JSON.stringify({ checked: values.length, failures: failures.slice(0, 10), failure_count: failures.length }) + '\n')
