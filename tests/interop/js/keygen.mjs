// keygen.mjs: make an Ed25519 identity with js-libp2p and write its key file.
//
//   node keygen.mjs KEYFILE
//
// Writes KEYFILE (mode 0600, must not exist) with the libp2p PrivateKey
// protobuf from @libp2p/crypto privateKeyToProtobuf, the bytes js-libp2p
// stores, and prints one JSON line: {"peerId": ..., "publicKey": ...}, the
// peer ID from @libp2p/peer-id peerIdFromPrivateKey and the base64 of
// publicKeyToProtobuf.  Exit 0, or 1 with a message on stderr.
import './shim.mjs'
import { writeFileSync } from 'node:fs'
import { generateKeyPair, privateKeyToProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const path = process.argv[2]
if (!path) {
  console.error('usage: node keygen.mjs KEYFILE')
  process.exit(1)
}
const key = await generateKeyPair('Ed25519')
writeFileSync(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
const peerId = peerIdFromPrivateKey(key)
console.log(JSON.stringify({
  peerId: peerId.toString(),
  publicKey: Buffer.from(publicKeyToProtobuf(key.publicKey)).toString('base64')
}))
