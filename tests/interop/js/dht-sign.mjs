// dht-sign.mjs: build and sign an-records in js (man/an-record.5), so a js
// peer can publish its own names and tests can sign records an-sign would
// refuse to write (to check that verifiers refuse them for the right reason,
// not because the signature broke).
//
//   node dht-sign.mjs -k KEYFILE --name FQDN [--type T] [--addr MA]... [--text S]
//                     [--root ROOTFILE] [--seq N] [--valid SECS] [-t TIME]
//   node dht-sign.mjs -k KEYFILE --raw < objects
//
// Build mode writes one record: publisher = the key, lookup/did/dns from
// --name, type root (default), A, TXT or CNAME (--target), ttl.timeToLive 86400,
// expires = signing time + --valid (default 172800).  A subdomain takes its
// root reference from --root.
// --raw signs each JSON object on stdin (one per line) exactly as given (any
// "signature" member is replaced), with no checks at all.
// Output: each record on one line, in canonical form.  Exit: 0, 2 usage, 3 bad input.
// KEYFILE: libp2p PrivateKey protobuf (an-keygen's format); created if absent.

import './shim.mjs'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { canonicalize, didOf, peerHashOf, parseTime } from './an-validator.mjs'

function die (code, msg) {
  process.stderr.write(`dht-sign.mjs: ${msg}\n`)
  process.exit(code)
}

let args
try {
  args = parseArgs({
    options: {
      key: { type: 'string', short: 'k' },
      raw: { type: 'boolean' },
      name: { type: 'string', short: 'n' },
      type: { type: 'string', short: 'T' },
      addr: { type: 'string', short: 'a', multiple: true },
      text: { type: 'string' },
      target: { type: 'string' },
      root: { type: 'string', short: 'r' },
      seq: { type: 'string' },
      valid: { type: 'string' },
      time: { type: 'string', short: 't' }
    }
  }).values
} catch (err) {
  die(2, err.message)
}
if (args.key == null) die(2, '-k KEYFILE is required')
if (!args.raw && args.name == null) die(2, '--name or --raw is required')

// As peer.mjs's loadOrCreateKey, without loading libp2p (about a second per
// process, and tests sign many records)
async function loadOrCreateKey (file) {
  try {
    return privateKeyFromProtobuf(new Uint8Array(readFileSync(file)))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  const key = await generateKeyPair('Ed25519')
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}

const key = await loadOrCreateKey(args.key)
const id = peerIdFromPrivateKey(key)

function fmtTime (t) {
  return new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

async function sign (rec) {
  delete rec.signature
  const canon = Buffer.from(canonicalize(rec), 'utf8')
  const digest = createHash('sha256').update('alternet-record-v1\0', 'latin1').update(canon).digest()
  const sig = await key.sign(digest)
  rec.signature = 'ed25519=' + Buffer.from(sig).toString('hex')
  return canonicalize(rec)
}

if (args.raw) {
  const text = readFileSync(0, 'utf8')
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let rec
    try {
      rec = JSON.parse(line)
    } catch (err) {
      die(3, `not JSON: ${err.message}`)
    }
    process.stdout.write(await sign(rec) + '\n')
  }
  process.exit(0)
}

const now = args.time != null ? parseTime(args.time) : Math.floor(Date.now() / 1000)
if (now === null) die(2, `bad time "${args.time}"`)
const type = args.type ?? 'root'
const fqdn = args.name.toLowerCase()
const lookup = `an://${peerHashOf(id)}@${fqdn}`
const rec = {
  did: didOf(lookup),
  type,
  publisherPublicKey: id.toString(),
  lookup,
  dns: { name: type === 'root' ? fqdn : fqdn.split('.')[0], protocol: 'an', isRoot: type === 'root' },
  ttl: { timesRepublished: 0, timestampRepublished: fmtTime(now), timeToLive: 86400 },
  expires: fmtTime(now + Number(args.valid ?? 172800)),
  seq: Number(args.seq ?? 0),
  version: '1.0.0'
}
if (args.addr) rec.multiaddrs = args.addr
if (args.text != null) rec.text = args.text
if (args.target != null) rec.target = args.target
if (args.root != null) {
  const root = JSON.parse(readFileSync(args.root, 'utf8').split('\n')[0])
  rec.root = [{ target: root.did, context: root.dns.name, signature: root.signature }]
}
process.stdout.write(await sign(rec) + '\n')
