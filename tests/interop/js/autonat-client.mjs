// autonat-client.mjs: asks a peer to check an address with AutoNAT, speaking
// the protocol through unmodified js-libp2p (TCP + Noise + yamux + identify)
// and the message codecs of @libp2p/autonat-v2 and @libp2p/autonat (their
// own protons code).  js's AutoNAT *services* never ask about private
// addresses (loopback included), so on a test machine they would never send
// a request; this script sends what they send.
//
//   node autonat-client.mjs --peer MA [--v1] [--target MA] [--closed]
//
// Listens on 127.0.0.1 (port 0) and serves /libp2p/autonat/2/dial-back.
// --target: the address to ask about (default: our listen address);
// --closed: a closed port instead.  stdout: one JSON line
// {"status":N,"dialStatus":N,"addrIdx":N,"dialData":BYTES,"dialBack":bool}
// (v1: {"status":N,"addr":MA|null}).  Exit 0 when an answer came, 4 on a
// network error or the 20 s deadline.

import './shim.mjs'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
// The packages export only their services; the codecs are their own files.
import { Message as Message2, DialBack, DialBackResponse } from '../node_modules/@libp2p/autonat-v2/dist/src/pb/index.js'
import { Message as Message1 } from '../node_modules/@libp2p/autonat/dist/src/pb/index.js'

const { values } = parseArgs({
  options: {
    peer: { type: 'string' },
    v1: { type: 'boolean', default: false },
    target: { type: 'string' },
    closed: { type: 'boolean', default: false }
  }
})
if (values.peer == null) {
  console.error('usage: node autonat-client.mjs --peer MA [--v1] [--target MA] [--closed]')
  process.exit(2)
}
const hard = setTimeout(() => { console.error('deadline'); process.exit(4) }, 20_000)

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() }
})
const nonce = BigInt(Math.floor(Math.random() * Number.MAX_SAFE_INTEGER)) + 1n
let dialBack = false
await node.handle('/libp2p/autonat/2/dial-back', async (stream) => {
  const pb = pbStream(stream)
  const m = await pb.read(DialBack)
  if (m.nonce === nonce) dialBack = true
  await pb.write({ status: DialBackResponse.DialBackStatus.OK }, DialBackResponse)
  await stream.close()
})

const listen = node.getMultiaddrs()[0].decapsulateCode(421)
let target = values.target != null ? multiaddr(values.target) : listen
if (values.closed) target = multiaddr('/ip4/127.0.0.1/tcp/1')
const signal = AbortSignal.timeout(15_000)
try {
  const conn = await node.dial(multiaddr(values.peer), { signal })
  if (values.v1) {
    const stream = await conn.newStream('/libp2p/autonat/1.0.0', { signal })
    const pb = pbStream(stream).pb(Message1)
    await pb.write({
      type: Message1.MessageType.DIAL,
      dial: { peer: { id: node.peerId.toMultihash().bytes, addrs: [target.bytes] } }
    }, { signal })
    const r = await pb.read({ signal })
    const addr = r.dialResponse?.addr != null && r.dialResponse.addr.length > 0 ? multiaddr(r.dialResponse.addr).toString() : null
    console.log(JSON.stringify({ type: r.type, status: r.dialResponse?.status ?? null, addr }))
  } else {
    const stream = await conn.newStream('/libp2p/autonat/2/dial-request', { signal })
    const pb = pbStream(stream).pb(Message2)
    await pb.write({ dialRequest: { addrs: [target.bytes], nonce } }, { signal })
    let dialData = 0
    let r = await pb.read({ signal })
    if (r.dialDataRequest != null) {
      const chunk = new Uint8Array(4096)
      while (dialData < Number(r.dialDataRequest.numBytes)) {
        await pb.write({ dialDataResponse: { data: chunk } }, { signal })
        dialData += chunk.length
      }
      r = await pb.read({ signal })
    }
    console.log(JSON.stringify({
      status: r.dialResponse?.status ?? null,
      dialStatus: r.dialResponse?.dialStatus ?? null,
      addrIdx: r.dialResponse?.addrIdx ?? null,
      dialData,
      dialBack
    }))
  }
} catch (err) {
  console.error(`autonat-client: ${err.message}`)
  clearTimeout(hard)
  await node.stop()
  process.exit(4)
}
clearTimeout(hard)
await node.stop()
process.exit(0)
