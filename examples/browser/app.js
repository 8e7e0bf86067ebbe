// The page's logic: one WebSocket to a wsframed server, msgpack frames as a byte stream.
//
// Outgoing frames are concatenated and cut into binary messages of `chunk` bytes, so a
// frame may straddle messages and a message may hold parts of several frames: wsframed
// reads the messages as one byte stream, not one frame per message. Incoming messages go
// through the same kind of stream decoder. The server answers {id, text} with
// {id, upper, length, sha256}.

import { encode, StreamDecoder } from './msgpack.js'

const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
const url = params.get('ws') || `${scheme}//${location.host}/ws`

let ws = null
let nextId = 1
const stats = { frames: 0, bytes: 0, messages: 0 }

function show(id, text, state) {
  const element = $(id)
  element.textContent = text
  if (state !== undefined) element.dataset.state = state
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

function addReply(value) {
  const item = document.createElement('li')
  if (value && typeof value === 'object' && 'hello' in value) {
    show('server', `${value.hello} (codec: ${value.codec})`)
    return
  }
  if (value && typeof value === 'object' && 'upper' in value) {
    item.className = 'reply'
    item.dataset.id = String(value.id)
    item.dataset.upper = value.upper
    item.dataset.sha256 = hex(value.sha256)
    item.textContent = `#${value.id} ${value.upper} (${value.length} characters, sha256 ${hex(value.sha256).slice(0, 16)}…)`
  } else {
    item.className = 'other'
    item.textContent = JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? hex(v) : typeof v === 'bigint' ? String(v) : v))
  }
  $('replies').append(item)
}

function connect() {
  const decoder = new StreamDecoder()
  ws = new WebSocket(url)
  ws.binaryType = 'arraybuffer'
  show('status', `connecting to ${url}`, 'connecting')
  ws.onopen = () => show('status', `open: ${url}`, 'open')
  ws.onmessage = (event) => {
    if (typeof event.data === 'string') {
      addReply({ unexpected_text: event.data })
      return
    }
    for (const value of decoder.push(new Uint8Array(event.data))) addReply(value)
  }
  ws.onerror = () => show('status', 'error (see the browser console)', 'error')
  ws.onclose = (event) => {
    // 1003 "unsupported data": wsframed refuses text messages on a binary byte stream.
    show('status', `closed: ${event.code}${event.reason ? ' ' + event.reason : ''}`, 'closed')
    $('close-code').textContent = String(event.code)
    $('close-reason').textContent = event.reason
  }
}

/** Send `count` frames {id, text}, as one byte stream cut into `chunk`-byte messages. */
function sendFrames(text, count, chunk) {
  const frames = []
  for (let i = 0; i < count; i++) frames.push(encode({ id: nextId++, text }))
  const size = frames.reduce((n, f) => n + f.length, 0)
  const stream = new Uint8Array(size)
  let offset = 0
  for (const frame of frames) { stream.set(frame, offset); offset += frame.length }
  for (let at = 0; at < stream.length; at += chunk) {
    ws.send(stream.subarray(at, at + chunk))
    stats.messages++
  }
  stats.frames += count
  stats.bytes += size
  show('sent', `${stats.frames} frames, ${stats.bytes} bytes, in ${stats.messages} messages`)
}

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const chunk = Math.max(1, Number($('chunk').value) || 1)
  const count = Math.max(1, Number($('count').value) || 1)
  sendFrames($('text').value, count, chunk)
})

$('send-text').addEventListener('click', () => ws.send($('text').value))

connect()
