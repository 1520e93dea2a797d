// relay-vectors.mjs - print the byte vectors of tests/unit/test_relay.c and
// test_envelope.c as the pinned js packages encode them, one "name hex" per
// line, so the C vectors can be checked against js:  node js/relay-vectors.mjs
// (the codecs are not exported by @libp2p/circuit-relay-v2, hence the path).
import { HopMessage, StopMessage, Status, Envelope } from '../node_modules/@libp2p/circuit-relay-v2/dist/src/pb/index.js'
import { ReservationVoucherRecord } from '../node_modules/@libp2p/circuit-relay-v2/dist/src/server/reservation-voucher.js'
import { RecordEnvelope } from '@libp2p/peer-record'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

const hex = (u) => Buffer.from(u).toString('hex')
const out = (name, u) => console.log(`${name} ${hex(u)}`)

// Keys from fixed seeds: relay = 32 x 0x01, peer = 32 x 0x02.
const relayKey = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(1))
const peerKey = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(2))
const relay = peerIdFromPrivateKey(relayKey)
const peer = peerIdFromPrivateKey(peerKey)
console.log(`relay_id ${relay.toString()}`)
console.log(`peer_id ${peer.toString()}`)

out('hop_reserve', HopMessage.encode({ type: HopMessage.Type.RESERVE }))
out('hop_connect', HopMessage.encode({ type: HopMessage.Type.CONNECT, peer: { id: peer.toMultihash().bytes, addrs: [] } }))
out('hop_connect_addr', HopMessage.encode({ type: HopMessage.Type.CONNECT, peer: { id: peer.toMultihash().bytes, addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001').bytes] } }))
out('hop_status_refused', HopMessage.encode({ type: HopMessage.Type.STATUS, status: Status.RESERVATION_REFUSED }))
out('hop_status_ok_rsv', HopMessage.encode({
  type: HopMessage.Type.STATUS,
  status: Status.OK,
  reservation: { expire: 1700000000n, addrs: [multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${relay}`).bytes] },
  limit: { duration: 120, data: 131072n }
}))
out('stop_connect', StopMessage.encode({ type: StopMessage.Type.CONNECT, peer: { id: peer.toMultihash().bytes, addrs: [] }, limit: { duration: 120, data: 131072n } }))
out('stop_status_ok', StopMessage.encode({ type: StopMessage.Type.STATUS, status: Status.OK }))

const v = new ReservationVoucherRecord({ relay, peer, expiration: 1700000000 })
out('voucher', v.marshal())
const env = await RecordEnvelope.seal(v, relayKey)
// js's Reservation.voucher is an embedded Envelope message whose payload is a
// nested ReservationVoucher: round-trip the sealed bytes through that codec.
out('voucher_envelope', env.marshal())
out('voucher_pb_roundtrip', Envelope.encode(Envelope.decode(env.marshal())))
out('hop_status_ok_voucher', HopMessage.encode({
  type: HopMessage.Type.STATUS,
  status: Status.OK,
  reservation: { expire: 1700000000n, addrs: [multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${relay}`).bytes], voucher: Envelope.decode(env.marshal()) }
}))
