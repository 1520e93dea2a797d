// route-relay-get.mjs: an unmodified js-libp2p node with the Circuit Relay
// v2 transport fetches one path from an an-serve reachable through a relay:
// it dials RELAYADDR/p2p/RELAY/p2p-circuit/p2p/PEER, opens /an/route/1.0.0
// on that (limited) connection - js opens a protocol on a limited
// connection only when asked (runOnLimitedConnection) - sends the route
// line and a GET (man/an-route.7), half-closes and reads the response.
//
//   node route-relay-get.mjs --addr CIRCUIT_MA --host HOST [--target T] [--timeout SECS]
//
// stdout: one JSON line {"status","bytes","sha256","limited","remoteAddr"}.
// Exit status: 0 a response was read, 2 usage, 4 dial failure or timeout.

import './shim.mjs'
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { base58btc } from 'multiformats/bases/base58'
import { base32 } from 'multiformats/bases/base32'
import { peerIdFromString } from '@libp2p/peer-id'
import { emit, multiaddr } from './peer.mjs'

const PROTOCOL = '/an/route/1.0.0'
const sha256 = (b) => createHash('sha256').update(b).digest()
const peerHash = (id) => base32.baseEncode(sha256(id.toMultihash().bytes).subarray(0, 10))
const didOf = (name) => 'dns:' + base58btc.baseEncode(sha256(Buffer.from(name)).subarray(0, 16))

const { values: o } = parseArgs({
  options: {
    addr: { type: 'string' },
    host: { type: 'string' },
    target: { type: 'string', default: '/' },
    timeout: { type: 'string', default: '30' }
  }
})
if (!o.addr || !o.host) {
  process.stderr.write('route-relay-get.mjs: --addr and --host are required\n')
  process.exit(2)
}
const signal = AbortSignal.timeout(Number(o.timeout) * 1000)

const node = await createLibp2p({
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify({ timeout: 10_000 }) }
})
let status = 0
try {
  const parts = o.addr.split('/p2p/')
  const peer = peerIdFromString(parts[parts.length - 1])
  const conn = await node.dial(multiaddr(o.addr), { signal })
  const stream = await conn.newStream(PROTOCOL, { signal, runOnLimitedConnection: true })
  const chunks = []
  const done = new Promise((resolve) => {
    stream.addEventListener('message', (evt) => {
      const d = evt.data
      if (d.subarray) chunks.push(Buffer.from(d.subarray()))
      else for (const b of d) chunks.push(Buffer.from(b))
    })
    stream.addEventListener('close', resolve)
    stream.addEventListener('end', resolve)
  })
  const did = didOf(`an://${peerHash(peer)}@${o.host}`)
  stream.send(Buffer.from(`AN-ROUTE/1.0 ${did} ${o.host}\r\nGET ${o.target} HTTP/1.1\r\nHost: ${o.host}\r\n\r\n`))
  await stream.close({ signal }).catch(() => {})
  await Promise.race([done, new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(new Error('timeout'))))])
  const buf = Buffer.concat(chunks)
  const end = buf.indexOf('\r\n\r\n')
  const head = end < 0 ? '' : buf.subarray(0, end).toString('latin1')
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1)
  let body = end < 0 ? Buffer.alloc(0) : buf.subarray(end + 4)
  if (length >= 0) body = body.subarray(0, length)
  emit({ status: Number(head.split(' ')[1] ?? 0), bytes: body.length, sha256: sha256(body).toString('hex'),
    limited: conn.limits != null, remoteAddr: conn.remoteAddr.toString() })
} catch (err) {
  process.stderr.write(`route-relay-get.mjs: ${err.message}\n`)
  status = 4
}
await node.stop()
process.exit(status)
