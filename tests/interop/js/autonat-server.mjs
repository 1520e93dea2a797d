// autonat-server.mjs: an unmodified js-libp2p node (TCP + Noise + yamux +
// identify) running js's AutoNAT services as shipped: @libp2p/autonat-v2
// (client and server) and @libp2p/autonat (v1), or v1 alone with --v1-only.
//
//   DEBUG='libp2p:auto-nat*' node autonat-server.mjs [--v1-only] [--dial MA]
//
// Listens on 127.0.0.1 (port 0), dials MA (the node under test, so that it
// has a connection to ask over); stdout: {"event":"ready","addrs":[...]}.
// js refuses to dial private addresses (loopback and 198.18.0.0/15 included),
// so here it answers our requests with refusals, and its debug log (stderr)
// says what it decoded.  Ends by itself after 60 s.

import './shim.mjs'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { autoNAT } from '@libp2p/autonat'
import { autoNATv2 } from '@libp2p/autonat-v2'

import { multiaddr } from '@multiformats/multiaddr'

const { values } = parseArgs({
  options: { 'v1-only': { type: 'boolean', default: false }, dial: { type: 'string' } }
})
const services = { identify: identify(), autonat: autoNAT() }
if (!values['v1-only']) services.autonatv2 = autoNATv2()
const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services
})
if (values.dial != null) await node.dial(multiaddr(values.dial), { signal: AbortSignal.timeout(10_000) })
console.log(JSON.stringify({ event: 'ready', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) }))
const stop = async () => { await node.stop(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setTimeout(stop, 60_000)
