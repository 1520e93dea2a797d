// tls-peer.mjs: a js-libp2p peer whose only connection encrypter is
// @libp2p/tls (/tls/1.0.0 over TCP, then yamux), for tests/interop/tls.bats.
// The test protocols, echo and the JSON lines come from peer.mjs.
//
//   node tls-peer.mjs --listen MA [--serve-for S]
//       {"event":"listening","peerId":...,"addrs":[...]}, then serves
//       (ping, identify, /an/test/*) for S seconds (default 60); every
//       inbound connection is a {"event":"connection",...} line.
//   node tls-peer.mjs --dial MA [--echo BYTES] [--timeout S]
//       {"event":"connected",...}, {"event":"ping","rtt":...},
//       {"event":"identify",...} (the listener's identify), and with --echo
//       {"event":"echo",...ok}; exit 0 if all worked, 1 if a check failed,
//       4 if the dial failed.
import './shim.mjs'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { emit, echoOnce, formatIdentify, registerTestProtocols } from './peer.mjs'

const { values: args } = parseArgs({
  options: {
    listen: { type: 'string' },
    dial: { type: 'string' },
    echo: { type: 'string' },
    timeout: { type: 'string', default: '30' },
    'serve-for': { type: 'string', default: '60' }
  }
})
if ((args.listen == null) === (args.dial == null)) {
  console.error('usage: node tls-peer.mjs --listen MA [--serve-for S] | --dial MA [--echo BYTES] [--timeout S]')
  process.exit(2)
}
const timeoutMs = Number(args.timeout) * 1000
const hard = setTimeout(() => process.exit(4), timeoutMs + Number(args['serve-for']) * 1000 + 10_000)
hard.unref()

const node = await createLibp2p({
  addresses: { listen: args.listen ? [args.listen] : [] },
  transports: [tcp()],
  connectionEncrypters: [tls()],
  streamMuxers: [yamux()],
  services: { identify: identify({ timeout: 10_000 }), ping: ping() },
  nodeInfo: { userAgent: 'js-tls' }
})
await registerTestProtocols(node, { quiet: true })
node.addEventListener('connection:open', (evt) => {
  const c = evt.detail
  emit({ event: 'connection', direction: c.direction, peerId: c.remotePeer.toString(), encryption: c.encryption ?? null })
})

let code = 0
if (args.listen) {
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  await new Promise((resolve) => {
    setTimeout(resolve, Number(args['serve-for']) * 1000)
    process.on('SIGTERM', resolve)
  })
} else {
  try {
    const signal = AbortSignal.timeout(timeoutMs)
    const conn = await node.dial(multiaddr(args.dial), { signal })
    emit({ event: 'connected', remotePeer: conn.remotePeer.toString(), encryption: conn.encryption ?? null, multiplexer: conn.multiplexer ?? null })
    const rtt = await node.services.ping.ping(conn.remotePeer, { signal })
    emit({ event: 'ping', rtt })
    const id = await node.services.identify.identify(conn, { signal })
    emit({ event: 'identify', ...formatIdentify(id) })
    if (args.echo != null) {
      const r = await echoOnce(conn, Number(args.echo), signal)
      emit({ event: 'echo', ...r })
      if (!r.ok) code = 1
    }
  } catch (err) {
    emit({ event: 'error', message: String(err?.message ?? err) })
    code = 4
  }
}
await Promise.race([node.stop(), new Promise((resolve) => setTimeout(resolve, 3000))]).catch(() => {})
process.exit(code)
