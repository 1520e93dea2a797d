// route-get.mjs: an unmodified js-libp2p node (peer.mjs's configuration)
// as a /an/route/1.0.0 client of an-serve (man/an-route.7): it dials ADDR,
// opens a stream, writes the route line and one request, half-closes, and
// reads the whole response.  Written from the man page, so the C server is
// checked against the spec, not against our own client.
//
//   node route-get.mjs --addr MA --host HOST [--target T] [--method M]
//        [--header 'Name: value']... [--did DID] [--big-header BYTES]
//        [--stall] [--then-get T] [--data TEXT] [--body] [--timeout SECS]
//
// --did replaces the did computed from the address's /p2p/ peer ID and
// HOST; --big-header adds a field of that many bytes; --stall sends the
// route line and half a request head and never finishes it (nor closes).
// --then-get requests T on the same connection afterwards (the connection
// must survive a misbehaving stream).  --data sends TEXT as a request body
// with Content-Length; --body adds the response body (UTF-8) to the line.
//
// stdout: one JSON line per response {"status","headers":{lowercase
// name: value},"bytes","sha256","end":"eof"|"reset","peerId":<ours>}; a
// stream that ended without a response head is {"status":0,"end":...}.
// Exit status: 0 responses read (whatever their statuses), 2 usage, 4 dial
// failure or timeout.

import './shim.mjs'
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { base58btc } from 'multiformats/bases/base58'
import { base32 } from 'multiformats/bases/base32'
import { peerIdFromString } from '@libp2p/peer-id'
import { createPeer, emit, multiaddr } from './peer.mjs'

const PROTOCOL = '/an/route/1.0.0'

const sha256 = (b) => createHash('sha256').update(b).digest()
const peerHash = (id) => base32.baseEncode(sha256(id.toMultihash().bytes).subarray(0, 10))
const didOf = (lookup) => 'dns:' + base58btc.baseEncode(sha256(Buffer.from(lookup)).subarray(0, 16))

function usage (msg) {
  process.stderr.write(`route-get.mjs: ${msg}\n`)
  process.exit(2)
}

const { values: o } = parseArgs({
  options: {
    addr: { type: 'string' },
    host: { type: 'string' },
    target: { type: 'string', default: '/' },
    method: { type: 'string', default: 'GET' },
    header: { type: 'string', multiple: true, default: [] },
    did: { type: 'string' },
    'big-header': { type: 'string' },
    stall: { type: 'boolean', default: false },
    'then-get': { type: 'string' },
    data: { type: 'string' },
    body: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '30' }
  }
})
if (!o.addr || !o.host) usage('--addr and --host are required')
const timeoutMs = Number(o.timeout) * 1000
if (!(timeoutMs > 0)) usage('bad --timeout')

// Parse a whole response: head fields, then the body as framed.
function parseResponse (buf) {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return { status: 0, headers: {}, body: Buffer.alloc(0) }
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(lines[0].split(' ')[1])
  const headers = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  let rest = buf.subarray(end + 4)
  if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') {
    const parts = []
    for (;;) {
      const nl = rest.indexOf('\r\n')
      const size = parseInt(rest.subarray(0, nl).toString('latin1'), 16)
      if (!(size > 0)) break
      parts.push(rest.subarray(nl + 2, nl + 2 + size))
      rest = rest.subarray(nl + 2 + size + 2)
    }
    rest = Buffer.concat(parts)
  }
  return { status, headers, body: rest }
}

async function request (conn, peer, target, { stall = false } = {}) {
  const signal = AbortSignal.timeout(timeoutMs)
  const stream = await conn.newStream(PROTOCOL, { signal })
  const did = o.did ?? didOf(`an://${peerHash(peer)}@${o.host}`)
  const chunks = []
  let ended = 'eof'
  const done = new Promise((resolve) => {
    stream.addEventListener('message', (evt) => {
      const d = evt.data
      if (d.subarray) chunks.push(Buffer.from(d.subarray()))
      else for (const b of d) chunks.push(Buffer.from(b))
    })
    // the response ends with the server's FIN ('end'), even while our side
    // stays open (--stall); a reset closes the stream with an error
    const reset = () => stream.status === 'reset' || stream.status === 'aborted'
    stream.addEventListener('end', () => { if (reset()) ended = 'reset'; resolve() })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null || reset()) ended = 'reset'
      resolve()
    })
  })
  let head = `AN-ROUTE/1.0 ${did} ${o.host}\r\n${o.method} ${target} HTTP/1.1\r\nHost: ${o.host}\r\n`
  for (const h of o.header) head += `${h}\r\n`
  if (o['big-header']) head += `X-Big: ${'a'.repeat(Number(o['big-header']))}\r\n`
  const data = o.data != null ? Buffer.from(o.data) : null
  if (data) head += `Content-Length: ${data.length}\r\n`
  if (stall) {
    stream.send(Buffer.from(head)) // no blank line, no FIN: the server must time this out
  } else {
    stream.send(Buffer.concat([Buffer.from(head + '\r\n'), data ?? Buffer.alloc(0)]))
    await stream.close({ signal }).catch(() => {})
  }
  const timer = new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(new Error('timeout'))))
  await Promise.race([done, timer])
  const r = parseResponse(Buffer.concat(chunks))
  const line = { status: r.status, headers: r.headers, bytes: r.body.length, sha256: sha256(r.body).toString('hex'), end: ended, peerId: node.peerId.toString() }
  if (o.body) line.body = r.body.toString('utf8')
  emit(line)
  if (ended === 'eof') stream.close().catch(() => {})
}

const node = await createPeer({ listen: [] })
let status = 0
try {
  const ma = multiaddr(o.addr)
  const peer = peerIdFromString(o.addr.split('/p2p/')[1] ?? '')
  const conn = await node.dial(ma, { signal: AbortSignal.timeout(timeoutMs) })
  await request(conn, peer, o.target, { stall: o.stall })
  if (o['then-get']) {
    o.did = undefined
    o['big-header'] = undefined
    o.header = []
    o.data = undefined
    await request(conn, peer, o['then-get'])
  }
} catch (err) {
  process.stderr.write(`route-get.mjs: ${err.message}\n`)
  status = 4
}
await node.stop()
process.exit(status)
