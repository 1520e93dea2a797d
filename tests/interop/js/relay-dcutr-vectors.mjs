// relay-dcutr-vectors.mjs: DCUtR HolePunch messages as js-libp2p's codec
// (@libp2p/dcutr, pinned) encodes them, hex, one per line: the byte vectors
// of tests/unit/test_dcutr.c.
import './shim.mjs'
import { multiaddr } from '@multiformats/multiaddr'
import { HolePunch } from '../node_modules/@libp2p/dcutr/dist/src/pb/message.js'

const hex = (b) => Buffer.from(b).toString('hex')
const ma = (s) => multiaddr(s).bytes
const cases = {
  connect: { type: HolePunch.Type.CONNECT, observedAddresses: [ma('/ip4/1.2.3.4/tcp/4001')] },
  connectTwo: {
    type: HolePunch.Type.CONNECT,
    observedAddresses: [ma('/ip4/198.51.100.7/tcp/4001'), ma('/ip6/2001:db8::1/tcp/4002')]
  },
  sync: { type: HolePunch.Type.SYNC, observedAddresses: [] }
}
for (const [name, msg] of Object.entries(cases)) {
  console.log(`${name} ${hex(HolePunch.encode(msg))}`)
}
