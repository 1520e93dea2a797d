// tls-cert.mjs: the libp2p TLS certificate as js-libp2p's @libp2p/tls makes
// and checks it, for the C certificate code's vectors (tests/unit/test_tls_cert.c,
// tests/interop/tls.bats).
//
//   node tls-cert.mjs gen             a certificate for a fresh Ed25519 key
//   node tls-cert.mjs verify HEX [ID] check a certificate (DER, hex)
//
// gen prints one JSON line {"der": HEX, "peerId": ID}; verify prints
// {"peerId": ID} (exit 0) or {"error": NAME, "message": ...} (exit 1).
import './shim.mjs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateCertificate, verifyPeerCertificate } from '@libp2p/tls/utils'
import * as x509 from '@peculiar/x509'

const [cmd, arg, want] = process.argv.slice(2)
if (cmd === 'gen') {
  const key = await generateKeyPair('Ed25519')
  const { cert } = await generateCertificate(key)
  const der = Buffer.from(new x509.X509Certificate(cert).rawData)
  console.log(JSON.stringify({ der: der.toString('hex'), peerId: peerIdFromPrivateKey(key).toString() }))
} else if (cmd === 'verify' && arg) {
  try {
    const id = await verifyPeerCertificate(new Uint8Array(Buffer.from(arg, 'hex')),
      want ? peerIdFromString(want) : undefined)
    console.log(JSON.stringify({ peerId: id.toString() }))
  } catch (err) {
    console.log(JSON.stringify({ error: err.name, message: err.message }))
    process.exit(1)
  }
} else {
  console.error('usage: node tls-cert.mjs gen | verify HEX [PEERID]')
  process.exit(2)
}
