// keygen-read.mjs: read a key file with js-libp2p and print its identity.
//
//   node keygen-read.mjs KEYFILE
//
// Decodes KEYFILE with @libp2p/crypto privateKeyFromProtobuf and prints one
// JSON line: {"peerId", "cid", "publicKey", "keyType", "privateKey"} from
// @libp2p/peer-id peerIdFromPrivateKey (toString() and toCID()),
// publicKeyToProtobuf in base64, and privateKeyToProtobuf of the decoded key
// in hex (what js-libp2p would write back).  Exit 0, or 1 with a message on stderr.
import './shim.mjs'
import { readFileSync } from 'node:fs'
import { privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const path = process.argv[2]
if (!path) {
  console.error('usage: node keygen-read.mjs KEYFILE')
  process.exit(1)
}
try {
  const key = privateKeyFromProtobuf(readFileSync(path))
  const peerId = peerIdFromPrivateKey(key)
  console.log(JSON.stringify({
    peerId: peerId.toString(),
    cid: peerId.toCID().toString(),
    publicKey: Buffer.from(publicKeyToProtobuf(key.publicKey)).toString('base64'),
    keyType: key.type,
    privateKey: Buffer.from(privateKeyToProtobuf(key)).toString('hex')
  }))
} catch (err) {
  console.error(`keygen-read: ${path}: ${err.message}`)
  process.exit(1)
}
