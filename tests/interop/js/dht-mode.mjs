// dht-mode.mjs: one js-libp2p kad-dht node that switches between DHT client
// and server mode on command, for the test that a C node follows identify
// pushes (tests/interop/dht-mode.bats).
//
//   node dht-mode.mjs --dial MA [--protocol P] [--deadline SECONDS]
//
// Starts in client mode (the protocol is not served, so identify does not
// list it), listens on 127.0.0.1, dials MA and
// prints {"event":"connected","peerId":...}.  Then reads commands, one a
// line, from stdin: "server" or "client" calls kad-dht's setMode (the
// identifyPush service pushes to connected peers when protocols change) and prints
// {"event":"mode","mode":...}.  EOF or the deadline (default 60 s) ends it.
// Exit status: 0, 2 usage, 4 dial failed or deadline.

import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    dial: { type: 'string' },
    protocol: { type: 'string', default: '/an/kad/1.0.0' },
    deadline: { type: 'string', default: '60' }
  }
})
if (values.dial == null) {
  console.error('usage: node dht-mode.mjs --dial MA [--protocol P] [--deadline SECONDS]')
  process.exit(2)
}
const hard = setTimeout(() => {
  console.error('dht-mode: deadline')
  process.exit(4)
}, Number(values.deadline) * 1000)

await import('./shim.mjs')
const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify, identifyPush } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
const { multiaddr } = await import('@multiformats/multiaddr')

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
// peer.mjs's interop configuration plus identifyPush: since js-libp2p 2 the
// push is a service of its own, and without it a mode switch is not pushed.
const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify({ timeout: 10_000 }),
    identifyPush: identifyPush(),
    ping: ping(),
    dht: kadDHT({ protocol: values.protocol, clientMode: true, peerInfoMapper: passthroughMapper })
  }
})
const dht = node.services.dht
try {
  const conn = await node.dial(multiaddr(values.dial), { signal: AbortSignal.timeout(10_000) })
  emit({ event: 'connected', peerId: node.peerId.toString(), remote: conn.remotePeer.toString() })
} catch (err) {
  console.error(`dht-mode: dial ${values.dial}: ${err.message}`)
  process.exit(4)
}

for await (const line of createInterface({ input: process.stdin })) {
  const mode = line.trim()
  if (mode !== 'server' && mode !== 'client') continue
  await dht.setMode(mode)
  emit({ event: 'mode', mode })
}
clearTimeout(hard)
await node.stop()
process.exit(0)
