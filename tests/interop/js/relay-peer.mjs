// relay-peer.mjs: an unmodified js-libp2p node with @libp2p/circuit-relay-v2's
// transport, for tests/interop/relay.bats.  JSON lines on stdout, messages on
// stderr.
//
//   --key FILE           PrivateKey protobuf (created if absent)
//   --relay              be a relay: js-libp2p's circuitRelayServer on a TCP
//                        listener (127.0.0.1, port 0); prints
//                        {"event":"listening","peerId","addrs"}
//   --relay-unlimited    with --relay: no default limit on reservations
//                        (applyDefaultLimit false), so circuits are not limited
//   --reserve RELAYADDR  listen on RELAYADDR/p2p-circuit (reserve a slot on the
//                        relay); prints {"event":"reserved","addrs":[...]} with the
//                        node's /p2p-circuit addresses, then serves echo
//   --dial ADDR          dial ADDR (a .../p2p-circuit/p2p/PEER address) and print
//                        {"event":"connected","remoteAddr","limited"}
//   --identify           the dialed peer's identify (the one js ran itself on the
//                        new connection): {"event":"identify","peerId","protocols",...}
//   --ping N             N pings on the dialed connection: {"event":"ping","rttMs"}
//   --echo BYTES         BYTES of random data through the echo protocol,
//                        {"event":"echo","bytes","recvBytes","ok"}; a failure is
//                        {"event":"echo-error","message"} (the relay's data limit)
//   --hop-connect PEER   raw CONNECT for PEER on the hop protocol of the dialed
//                        relay: {"event":"hop-status","status":"NO_RESERVATION"} (js enum name)
//   --hold SECS          after the actions, wait up to SECS for the dialed
//                        connection to close: {"event":"closed","afterMs"} or
//                        {"event":"open","afterMs"} (the relay's duration limit)
//   --serve-for SECS     stay up (default 60 with --reserve or --relay, else 0)
//
// Every identify js completes is printed as {"event":"peer-identify",
// "direction","limited",...} (a relayed peer that js identified).
//   --timeout SECS       deadline of each action (20)
//
// The echo protocol (/an/test/echo/1.0.0, peer.mjs) is registered with
// runOnLimitedConnection: a relayed connection with a Limit is "limited" in
// js and only such protocols get streams on it.
import './shim.mjs'
import { createHash, randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { peerIdFromString } from '@libp2p/peer-id'
import { HopMessage } from '../node_modules/@libp2p/circuit-relay-v2/dist/src/pb/index.js'
import { emit, formatIdentify, loadOrCreateKey, multiaddr, PROTO_ECHO, serveEcho, consume, sendAll } from './peer.mjs'

const { values: opts } = parseArgs({
  options: {
    key: { type: 'string' },
    relay: { type: 'boolean', default: false },
    'relay-unlimited': { type: 'boolean', default: false },
    identify: { type: 'boolean', default: false },
    reserve: { type: 'string' },
    dial: { type: 'string' },
    ping: { type: 'string', default: '0' },
    echo: { type: 'string', default: '0' },
    'hop-connect': { type: 'string' },
    hold: { type: 'string', default: '0' },
    'serve-for': { type: 'string' },
    timeout: { type: 'string', default: '20' }
  }
})

const warn = (msg) => process.stderr.write(`relay-peer.mjs: ${msg}\n`)
const timeoutMs = Number(opts.timeout) * 1000
const signal = () => AbortSignal.timeout(timeoutMs)

const listen = []
if (opts.reserve) listen.push(`${opts.reserve}/p2p-circuit`)
if (opts.relay) listen.push('/ip4/127.0.0.1/tcp/0')
const services = { identify: identify(), ping: ping() }
if (opts.relay) {
  services.relay = circuitRelayServer({
    reservations: { applyDefaultLimit: !opts['relay-unlimited'] }
  })
}
const node = await createLibp2p({
  privateKey: opts.key ? await loadOrCreateKey(opts.key) : undefined,
  addresses: { listen },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 100_000 },
  services
})

// Identify results by connection, as js gets them (it identifies every new
// connection itself, relayed ones included: identify runs on limited ones).
const idResults = new Map()
const idWaiters = new Map()
node.addEventListener('peer:identify', (evt) => {
  const r = evt.detail
  const id = r.connection?.id
  idResults.set(id, r)
  idWaiters.get(id)?.resolve(r)
  emit({ event: 'peer-identify', direction: r.connection?.direction ?? null,
    limited: r.connection?.limits != null, remoteAddr: r.connection?.remoteAddr?.toString() ?? null, ...formatIdentify(r) })
})
const identified = (connId) => {
  if (idResults.has(connId)) return Promise.resolve(idResults.get(connId))
  if (!idWaiters.has(connId)) idWaiters.set(connId, Promise.withResolvers())
  return idWaiters.get(connId).promise
}
await node.handle(PROTO_ECHO, (stream) => { serveEcho(stream).catch(() => {}) },
  { runOnLimitedConnection: true })

let failed = false

async function waitReserved () {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const addrs = node.getMultiaddrs().map(String).filter((a) => a.includes('/p2p-circuit'))
    if (addrs.length) return addrs
    if (Date.now() > deadline) throw new Error('no reservation before the deadline')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function echo (conn, bytes) {
  const stream = await conn.newStream(PROTO_ECHO, { signal: signal(), runOnLimitedConnection: true })
  const sent = createHash('sha256')
  const recv = createHash('sha256')
  let recvBytes = 0
  const reading = consume(stream, (b) => { recv.update(b); recvBytes += b.byteLength })
  try {
    await sendAll(stream, bytes, (n) => { const b = randomBytes(n); sent.update(b); return b }, signal())
    await stream.close({ signal: signal() })
    await reading
  } catch (err) {
    stream.abort(err)
    reading.catch(() => {})
    throw err
  }
  return { bytes, recvBytes, ok: recvBytes === bytes && sent.digest('hex') === recv.digest('hex') }
}

// A hand-written CONNECT on the relay's hop protocol (the refusal cases).
async function hopConnect (conn, peer) {
  const stream = await conn.newStream('/libp2p/circuit/relay/0.2.0/hop', { signal: signal() })
  const msg = HopMessage.encode({ type: HopMessage.Type.CONNECT, peer: { id: peerIdFromString(peer).toMultihash().bytes, addrs: [] } })
  const frame = new Uint8Array(msg.byteLength + 2)
  let n = 0
  let len = msg.byteLength
  do { frame[n++] = (len & 0x7f) | (len > 0x7f ? 0x80 : 0); len >>= 7 } while (len)
  frame.set(msg, n)
  stream.send(frame.subarray(0, n + msg.byteLength))
  const chunks = []
  await consume(stream, (b) => chunks.push(Buffer.from(b.subarray ? b.subarray() : b)))
  const buf = Buffer.concat(chunks)
  let off = 0
  let shift = 0
  let size = 0
  while (buf[off] & 0x80) { size |= (buf[off++] & 0x7f) << shift; shift += 7 }
  size |= buf[off++] << shift
  return HopMessage.decode(buf.subarray(off, off + size))
}

try {
  if (opts.relay) {
    emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String).filter((a) => a.includes('/tcp/')) })
  }
  if (opts.reserve) {
    emit({ event: 'reserved', peerId: node.peerId.toString(), addrs: await waitReserved() })
  }
  if (opts.dial) {
    const conn = await node.dial(multiaddr(opts.dial), { signal: signal() })
    emit({ event: 'connected', remoteAddr: conn.remoteAddr.toString(), limited: conn.limits != null })
    if (opts.identify) {
      let t
      const timer = new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error('no identify before the deadline')), timeoutMs) })
      try {
        emit({ event: 'identify', ...formatIdentify(await Promise.race([identified(conn.id), timer])) })
      } finally {
        clearTimeout(t)
      }
    }
    for (let i = 0; i < Number(opts.ping); i++) {
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal: signal() })
      emit({ event: 'ping', seq: i + 1, rttMs: rtt })
    }
    if (Number(opts.echo) > 0) {
      try {
        emit({ event: 'echo', ...(await echo(conn, Number(opts.echo))) })
      } catch (err) {
        emit({ event: 'echo-error', message: err.message })
      }
    }
    if (Number(opts.hold) > 0) {
      const t0 = Date.now()
      const deadline = t0 + Number(opts.hold) * 1000
      while (conn.status === 'open' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      emit({ event: conn.status === 'open' ? 'open' : 'closed', afterMs: Date.now() - t0 })
    }
    if (opts['hop-connect']) {
      const res = await hopConnect(conn, opts['hop-connect'])
      emit({ event: 'hop-status', status: res.status })
    }
  }
} catch (err) {
  warn(err.message)
  emit({ event: 'error', message: err.message })
  failed = true
}

const serveFor = Number(opts['serve-for'] ?? ((opts.reserve || opts.relay) && !failed ? 60 : 0))
if (serveFor > 0) {
  await new Promise((resolve) => {
    const t = setTimeout(resolve, serveFor * 1000)
    process.once('SIGTERM', () => { clearTimeout(t); resolve() })
  })
}
await node.stop()
process.exit(failed ? 1 : 0)
