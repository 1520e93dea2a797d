// dht-inject.mjs: a raw Kademlia client, js transport (TCP + Noise + yamux)
// but no kad-dht service: it writes PUT_VALUE and GET_VALUE messages by hand
// over /an/kad/1.0.0, with no validation at all, so tests can offer a node
// records that a real DHT client would never send, and ask a node directly
// what it serves under a key.
//
//   node dht-inject.mjs --dial MA [--put KEY --value FILE]... [--get KEY]...
//                       [--protocol P] [--timeout SECS]
//
// --put and --value pair up in order (repeatable, so one process and one
// connection serve many records: a node process takes about a second to
// start); all puts run first, then all gets, each on its own stream.
//
// Output (one JSON line per action, in that order):
//   {"event":"put","key":S,"accepted":B,"reply":"echo|other|none|reset","error":S|null}
//       accepted: the node echoed the record (kad PUT_VALUE success, K8);
//       a refusing node resets the stream (js) or closes it without an echo
//   {"event":"get","key":S,"value":S|null,"reply":"message|none|reset","error":S|null}
//       the record value the node itself returned (UTF-8), null if none;
//       reply "message" when the node answered at all
// Exit status: 0 the actions ran (whatever the node answered), 2 usage,
// 4 no connection.

import './shim.mjs'
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { createPeer, consume, emit, multiaddr, DHT_PROTOCOL } from './peer.mjs'

// ---- protobuf, the few fields of kad's Message and Record we need

function varint (n) {
  const out = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Buffer.from(out)
}

function field (num, wire, payload) {
  const tag = varint(num * 8 + wire)
  if (wire === 0) return Buffer.concat([tag, varint(payload)])
  const b = Buffer.from(payload)
  return Buffer.concat([tag, varint(b.length), b])
}

// Message { type = 1; key = 2; record = 3 }, Record { key = 1; value = 2; timeReceived = 5 }
function encodeMessage (type, key, value) {
  const parts = [field(1, 0, type), field(2, 2, key)]
  if (value != null) {
    // K19: an RFC 3339 time with a 9-digit fraction, as js writes it
    const t = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')
    parts.push(field(3, 2, Buffer.concat([field(1, 2, key), field(2, 2, value), field(5, 2, Buffer.from(t))])))
  }
  return Buffer.concat(parts)
}

function readVarint (b, pos) {
  let n = 0
  let mul = 1
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint')
    const c = b[pos++]
    n += (c & 0x7f) * mul
    mul *= 128
    if (c < 0x80) return [n, pos]
  }
}

/** The length-delimited fields of a protobuf message: Map num -> [Buffer]. */
function decodeFields (b) {
  const out = new Map()
  let pos = 0
  while (pos < b.length) {
    let tag, n
    [tag, pos] = readVarint(b, pos)
    const wire = tag & 7
    if (wire === 0) {
      [n, pos] = readVarint(b, pos)
      continue
    }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire}`)
    ;[n, pos] = readVarint(b, pos)
    const v = b.subarray(pos, pos + n)
    pos += n
    if (!out.has(tag >> 3)) out.set(tag >> 3, [])
    out.get(tag >> 3).push(v)
  }
  return out
}

/**
 * One request on a fresh stream; the first response message (or null) and
 * how the stream ended.  Our side closes only once the reply is in: js
 * kad-dht's handler loop reads the next request right after writing a reply,
 * and a FIN read there is an "unexpected EOF" on which it aborts the stream,
 * dropping a reply still queued (about one GET_VALUE in four on a busy node).
 */
async function rpc (conn, protocol, msg, signal) {
  const stream = await conn.newStream(protocol, { signal })
  const chunks = []
  let frame = null
  let gotFrame
  const framed = new Promise((resolve) => { gotFrame = resolve })
  const reading = consume(stream, (c) => {
    chunks.push(Buffer.from(c))
    const all = Buffer.concat(chunks)
    try {
      const [len, pos] = readVarint(all, 0)
      if (frame == null && all.length >= pos + len) {
        frame = all.subarray(pos, pos + len)
        gotFrame()
      }
    } catch {} // the length prefix is still incomplete
  })
  const aborted = new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
  stream.send(Buffer.concat([varint(msg.length), msg]))
  let ended = 'fin'
  try {
    await Promise.race([framed, reading, aborted])
  } catch (err) {
    ended = 'reset'
    stream.abort(err)
  }
  if (frame == null) return { msg: null, ended }
  // the reply is in: close our side; what the remote then does is not the answer
  reading.catch(() => {})
  await stream.close({ signal }).catch(() => {})
  return { msg: decodeFields(frame), ended }
}

function recordValue (msg) {
  const rec = msg?.get(3)?.[0]
  return rec == null ? null : decodeFields(rec).get(2)?.[0] ?? Buffer.alloc(0)
}

// ---- main

let args
try {
  args = parseArgs({
    options: {
      dial: { type: 'string' },
      put: { type: 'string', multiple: true },
      value: { type: 'string', multiple: true },
      get: { type: 'string', multiple: true },
      protocol: { type: 'string' },
      timeout: { type: 'string' }
    }
  }).values
} catch (err) {
  process.stderr.write(`dht-inject.mjs: ${err.message}\n`)
  process.exit(2)
}
args.put ??= []
args.value ??= []
args.get ??= []
if (args.dial == null || (args.put.length === 0 && args.get.length === 0) || args.put.length !== args.value.length) {
  process.stderr.write('usage: node dht-inject.mjs --dial MA [--put KEY --value FILE]... [--get KEY]...\n')
  process.exit(2)
}
const protocol = args.protocol ?? DHT_PROTOCOL
const timeoutMs = Number(args.timeout ?? 20) * 1000
const hard = setTimeout(() => { process.stderr.write('dht-inject.mjs: hard deadline\n'); process.exit(4) }, timeoutMs * 3)
hard.unref()

const node = await createPeer({ listen: [], quiet: true })
let conn
try {
  conn = await node.dial(multiaddr(args.dial), { signal: AbortSignal.timeout(timeoutMs) })
} catch (err) {
  process.stderr.write(`dht-inject.mjs: dial ${args.dial}: ${err.message}\n`)
  process.exit(4)
}

for (const [i, keyText] of args.put.entries()) {
  const value = await readFile(args.value[i])
  const key = Buffer.from(keyText)
  let out
  try {
    const r = await rpc(conn, protocol, encodeMessage(0, key, value), AbortSignal.timeout(timeoutMs))
    const echoed = recordValue(r.msg)
    const reply = r.msg == null ? (r.ended === 'reset' ? 'reset' : 'none') : echoed?.equals(value) ? 'echo' : 'other'
    out = { event: 'put', key: keyText, accepted: reply === 'echo', reply, error: null }
  } catch (err) {
    out = { event: 'put', key: keyText, accepted: false, reply: 'reset', error: err.message }
  }
  emit(out)
}
for (const keyText of args.get) {
  let out
  try {
    const r = await rpc(conn, protocol, encodeMessage(1, Buffer.from(keyText)), AbortSignal.timeout(timeoutMs))
    const v = recordValue(r.msg)
    const reply = r.msg != null ? 'message' : r.ended === 'reset' ? 'reset' : 'none'
    out = { event: 'get', key: keyText, value: v == null ? null : v.toString('utf8'), reply, error: null }
  } catch (err) {
    out = { event: 'get', key: keyText, value: null, reply: 'reset', error: err.message }
  }
  emit(out)
}
await node.stop()
process.exit(0)
