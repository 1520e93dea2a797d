// an-validator.mjs: the kad-dht validator and selector for the `/an/` record
// namespace (keys `/an/<peer_hash>@<fqdn>`), written from man/an-record.5
// alone (plus RFC 8785 and RFC 8259), so the interop tests check the C
// implementation (libcommon/record, an-verify) against an independent one.
//
// js kad-dht rejects PUT_VALUE for a namespace it has no validator for (it
// resets the stream) and get() throws MissingSelectorError without a selector
// (digest section 10, pitfall K1), so the interop peer registers both.
//
// Exports:
//   verifyRecord(bytes, { now, key, root }) -> { valid, field, error, lookup }
//       the record check of an-record(5) "Verification", steps 1-8, in that
//       order; `field` names the member that failed ("" for the whole record),
//       as an-verify does.  now: seconds since the epoch (default: the clock).
//       key (Uint8Array or string): also require the record's own DHT key.
//       root (bytes or string): the root record of a subdomain; see below.
//   compareRecords(a, b) -> >0 a better, <0 b better, 0 equal (selection rule)
//   anValidate(key, value)           kad-dht ValidateFn (throws to refuse)
//   anSelect(key, records)           kad-dht SelectFn (index of the best)
//   createAnValidator({ datastore }) a ValidateFn that also refuses a value
//       worse than the one the node holds under the key (lower seq, or equal
//       seq and earlier expires): js kad-dht's PUT_VALUE handler overwrites
//       whatever it holds without asking the selector.
//   validators, selectors            { an: ... } for kadDHT({ validators, selectors })
//
// Subdomain records: a kad-dht validator sees one key and one value, never
// the root record, and must not go to the network.  Without `root`, a
// subdomain record is accepted here when everything the record itself can
// show holds: every field, the signature by publisherPublicKey (the key
// whose peer hash is in lookup), the validity window, its name under
// root[0].context, and root[0].target being the did of
// an://<same peer hash>@<context> (the did depends only on publisher and
// name).  What it cannot check is that the root record exists, is still
// valid, and that root[0].signature is its current signature.  The C node
// is stricter: it refuses a subdomain whose root it does not hold
// (libcommon/dht/validate.h).  With `root` given, step 8 is checked in full.

import { createHash, createPublicKey, verify as edVerify } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { base32 } from 'multiformats/bases/base32'
import { base58btc } from 'multiformats/bases/base58'
import { multiaddr } from '@multiformats/multiaddr'
import { Key } from 'interface-datastore'
import { Libp2pRecord } from '@libp2p/record'

export const RECORD_MAX = 8192 // canonical bytes of a whole record, signature included
export const INT_MAX = 9007199254740991 // 2^53-1
const ADDRS_MAX = 16
const ADDR_MAX = 256
const TEXT_MAX = 4096
const FQDN_MAX = 253
const VALID_MAX = 30 * 86400
const SKEW = 300
const DOMAIN = 'alternet-record-v1'
const TYPES = ['root', 'A', 'CNAME', 'TXT']
// ,"signature":"ed25519=<128 hex>" in canonical form
const SIG_MEMBER_LEN = ',"signature":"ed25519='.length + 128 + 1
// jansson's nesting limit: deeper input does not parse in C either.
const DEPTH_MAX = 2048

class Refusal extends Error {
  constructor (field, message) {
    super(message)
    this.field = field
  }
}

function refuse (field, message) {
  throw new Refusal(field, message)
}

// ------------------------------------------------------------ strict JSON

// JSON.parse would take duplicate member names (the last wins), lone
// surrogate escapes, \u0000 and integers beyond 2^53 (silently rounded); the
// spec refuses all of them, and tells integers from numbers with a fraction
// or exponent.  So: a small RFC 8259 parser.  Numbers come back as JS
// numbers, with integer literals remembered in `ints` (a WeakMap would not
// hold primitives, so containers record which of their slots were integer
// literals).
const INTS = Symbol('integer slots')
const HUGE = Symbol('path of the first huge number')

class Parser {
  constructor (text) {
    this.s = text
    this.i = 0
    this.path = [] // member names and [index] of the value being read
    this.huge = null // path of the first number beyond 2^53-1
  }

  pathText () {
    return this.path.map((x, n) => typeof x === 'number' ? `[${x}]` : (n ? '.' : '') + x).join('')
  }

  fail (what) {
    refuse('', `not JSON: ${what} at byte ${this.i}`)
  }

  ws () {
    const s = this.s
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i)
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break
      this.i++
    }
  }

  // Sets this.lastInt: was the value just read an integer literal?
  value (depth) {
    this.ws()
    const c = this.s[this.i]
    let v
    if (c === '-' || (c >= '0' && c <= '9')) return this.number()
    if (c === '{') v = this.object(depth + 1)
    else if (c === '[') v = this.array(depth + 1)
    else if (c === '"') v = this.string()
    else {
      const word = ['true', 'false', 'null'].find((w) => this.s.startsWith(w, this.i))
      if (word === undefined) this.fail('unexpected token')
      this.i += word.length
      v = JSON.parse(word)
    }
    this.lastInt = false
    return v
  }

  object (depth) {
    if (depth > DEPTH_MAX) this.fail('too deep')
    const obj = {}
    const ints = new Set()
    Object.defineProperty(obj, INTS, { value: ints })
    this.i++
    this.ws()
    if (this.s[this.i] === '}') {
      this.i++
      return obj
    }
    for (;;) {
      this.ws()
      if (this.s[this.i] !== '"') this.fail('expected a member name')
      const name = this.string()
      if (Object.prototype.hasOwnProperty.call(obj, name)) this.fail(`duplicate member "${name}"`)
      this.ws()
      if (this.s[this.i] !== ':') this.fail('expected ":"')
      this.i++
      this.path.push(name)
      const v = this.value(depth)
      this.path.pop()
      if (this.lastInt) ints.add(name)
      Object.defineProperty(obj, name, { value: v, enumerable: true, writable: true, configurable: true })
      this.ws()
      const c = this.s[this.i++]
      if (c === '}') return obj
      if (c !== ',') this.fail('expected "," or "}"')
    }
  }

  array (depth) {
    if (depth > DEPTH_MAX) this.fail('too deep')
    const arr = []
    const ints = new Set()
    Object.defineProperty(arr, INTS, { value: ints })
    this.i++
    this.ws()
    if (this.s[this.i] === ']') {
      this.i++
      return arr
    }
    for (;;) {
      this.path.push(arr.length)
      const v = this.value(depth)
      this.path.pop()
      if (this.lastInt) ints.add(arr.length)
      arr.push(v)
      this.ws()
      const c = this.s[this.i++]
      if (c === ']') return arr
      if (c !== ',') this.fail('expected "," or "]"')
    }
  }

  string () {
    const s = this.s
    let out = ''
    this.i++
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string')
      const c = s.charCodeAt(this.i)
      if (c === 0x22) {
        this.i++
        return out
      }
      if (c < 0x20) this.fail('control character in string')
      if (c !== 0x5c) {
        // Text came through a fatal UTF-8 decoder: surrogates here are pairs.
        out += s[this.i++]
        continue
      }
      const e = s[this.i + 1]
      this.i += 2
      const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[e]
      if (simple !== undefined) {
        out += simple
        continue
      }
      if (e !== 'u') this.fail('bad escape')
      const u = this.hex4()
      if (u === 0) this.fail('\\u0000 in string')
      if (u >= 0xdc00 && u <= 0xdfff) this.fail('lone low surrogate')
      if (u >= 0xd800 && u <= 0xdbff) {
        if (s[this.i] !== '\\' || s[this.i + 1] !== 'u') this.fail('lone high surrogate')
        this.i += 2
        const lo = this.hex4()
        if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone high surrogate')
        out += String.fromCharCode(u, lo)
        continue
      }
      out += String.fromCharCode(u)
    }
  }

  hex4 () {
    const h = this.s.slice(this.i, this.i + 4)
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('bad \\u escape')
    this.i += 4
    return parseInt(h, 16)
  }

  number () {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i, this.i + 400))
    if (!m) this.fail('bad number')
    this.i += m[0].length
    const isInt = m[2] === undefined && m[3] === undefined
    const v = Number(m[0])
    if (!Number.isFinite(v)) this.fail('number out of range')
    // Beyond 2^53-1 a number cannot be carried exactly (an-record(5) Limits):
    // refused once the record parsed, naming the first one's path, as the C
    // verifier does.  An integer literal is compared exactly, not after
    // rounding; one beyond 64 bits does not even parse in C (jansson).
    const big = isInt ? BigInt(m[0]) : null
    if (isInt && (big > 2n ** 63n - 1n || big < -(2n ** 63n))) this.fail('too big integer')
    if (isInt ? big > BigInt(INT_MAX) || big < -BigInt(INT_MAX) : Math.abs(v) > INT_MAX) {
      if (this.huge === null) this.huge = this.pathText()
    }
    this.lastInt = isInt
    return v
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Parse record bytes (Uint8Array) or text: the object, or throw a Refusal. */
export function parseRecord (input) {
  let text = input
  if (typeof input !== 'string') {
    try {
      text = utf8.decode(input)
    } catch {
      refuse('', 'not valid UTF-8')
    }
  }
  const p = new Parser(text)
  p.ws()
  if (p.s[p.i] !== '{') refuse('', 'not a JSON object')
  const v = p.value(0)
  p.ws()
  if (p.i !== text.length) p.fail('text after the value')
  if (p.huge !== null) Object.defineProperty(v, HUGE, { value: p.huge })
  return v
}

function isInt (container, slot) {
  return container[INTS]?.has(slot) === true
}

// ------------------------------------------------------------ JCS (RFC 8785)

/** The canonical form of a parsed value (strings as JSON.stringify writes
 * them, which is exactly RFC 8785 section 3.2.2.2; numbers as
 * Number::toString; members sorted by UTF-16 code units, JS's own order). */
export function canonicalize (v, skip) {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number') return Object.is(v, -0) ? '0' : String(v)
    return JSON.stringify(v)
  }
  if (Array.isArray(v)) return '[' + v.map((x) => canonicalize(x)).join(',') + ']'
  const names = Object.keys(v).filter((k) => k !== skip).sort()
  return '{' + names.map((k) => JSON.stringify(k) + ':' + canonicalize(v[k])).join(',') + '}'
}

// ------------------------------------------------------------ names, times, keys

const sha256 = (data) => createHash('sha256').update(data).digest()

function labelValid (l) {
  return l.length >= 1 && l.length <= 63 && /^[a-z0-9-]+$/.test(l) && l[0] !== '-' && l[l.length - 1] !== '-'
}

export function fqdnValid (s) {
  return typeof s === 'string' && s.length >= 1 && s.length <= FQDN_MAX && s.split('.').every(labelValid)
}

/** "an://<peerHash>@<fqdn>" -> { peerHash, fqdn }, or null. */
export function parseName (s) {
  const m = /^an:\/\/([a-z2-7]{16})@(.*)$/s.exec(s)
  if (!m || !fqdnValid(m[2])) return null
  return { peerHash: m[1], fqdn: m[2] }
}

export function peerHashOf (peerId) {
  return base32.baseEncode(sha256(peerId.toMultihash().bytes).subarray(0, 10))
}

export function didOf (lookup) {
  return 'dns:' + base58btc.baseEncode(sha256(Buffer.from(lookup, 'utf8')).subarray(0, 16))
}

export function dhtKeyOf (peerHash, fqdn) {
  return `/an/${peerHash}@${fqdn}`
}

/** Seconds since the epoch of an exact "YYYY-MM-DDTHH:MM:SSZ" (year >= 1970), or null. */
export function parseTime (s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(s)
  if (!m) return null
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number)
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return null
  const ms = Date.UTC(y, mo - 1, d, h, mi, se)
  if (new Date(ms).getUTCDate() !== d) return null // 31 April, 29 February of 2027
  return ms / 1000
}

// ------------------------------------------------------------ field checks

function getString (obj, name, field, required) {
  if (!Object.prototype.hasOwnProperty.call(obj, name)) {
    if (required) refuse(field, 'missing')
    return null
  }
  const v = obj[name]
  if (typeof v !== 'string') refuse(field, 'not a string')
  return v
}

function getUint (obj, name, field, min, max) {
  if (!Object.prototype.hasOwnProperty.call(obj, name)) refuse(field, 'missing')
  if (typeof obj[name] !== 'number' || !isInt(obj, name)) refuse(field, 'not an integer')
  const v = obj[name]
  if (v < min || v > max) refuse(field, `${v} out of range ${min}..${max}`)
  return v
}

function getTime (obj, name, field) {
  const t = parseTime(getString(obj, name, field, true))
  if (t === null) refuse(field, 'not an RFC 3339 UTC time like 2026-11-23T20:00:00Z')
  return t
}

function isObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function multiaddrCanonical (s) {
  if (s.length > ADDR_MAX) return false
  try {
    return multiaddr(s).toString() === s
  } catch {
    return false
  }
}

function checkVersion (rec) {
  const v = getString(rec, 'version', 'version', true)
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v)
  if (!m) refuse('version', 'not MAJOR.MINOR.PATCH')
  if (Number(m[1]) !== 1) refuse('version', `major version ${m[1]} not supported (1 is)`)
}

function checkPublisher (text) {
  let id
  try {
    if (!text.startsWith('12D3KooW')) throw new Error('prefix')
    id = peerIdFromString(text)
  } catch {
    if (text.startsWith('Qm')) refuse('publisherPublicKey', 'not an Ed25519 peer ID (only Ed25519 publishers are accepted)')
    refuse('publisherPublicKey', 'not a base58btc Ed25519 peer ID')
  }
  if (id.type !== 'Ed25519' || id.publicKey == null || id.toString() !== text) {
    refuse('publisherPublicKey', 'not an Ed25519 peer ID (only Ed25519 publishers are accepted)')
  }
  return id
}

function checkDns (rec, p) {
  if (!Object.prototype.hasOwnProperty.call(rec, 'dns')) refuse('dns', 'missing')
  const dns = rec.dns
  if (!isObject(dns)) refuse('dns', 'not an object')
  const name = getString(dns, 'name', 'dns.name', true)
  const proto = getString(dns, 'protocol', 'dns.protocol', true)
  if (proto !== 'an') refuse('dns.protocol', 'not "an"')
  if (!Object.prototype.hasOwnProperty.call(dns, 'isRoot')) refuse('dns.isRoot', 'missing')
  if (typeof dns.isRoot !== 'boolean') refuse('dns.isRoot', 'not a boolean')
  if (dns.isRoot !== p.isRoot) refuse('dns.isRoot', `does not match type "${p.type}"`)
  if (p.isRoot) {
    if (name !== p.fqdn) refuse('dns.name', 'does not match the name in lookup')
  } else {
    if (!p.fqdn.includes('.')) refuse('lookup', 'a subdomain name needs at least two labels')
    if (!p.fqdn.startsWith(name + '.') || name.includes('.') || name === '') {
      refuse('dns.name', 'is not the leftmost label of the name in lookup')
    }
  }
}

function checkTypeFields (rec, p) {
  const has = (k) => Object.prototype.hasOwnProperty.call(rec, k)
  const isA = p.type === 'A'
  if (!has('multiaddrs')) {
    if (isA) refuse('multiaddrs', 'missing (an A record needs an address)')
  } else {
    const a = rec.multiaddrs
    if (!Array.isArray(a)) refuse('multiaddrs', 'not an array')
    if (a.length > ADDRS_MAX) refuse('multiaddrs', `more than ${ADDRS_MAX} addresses`)
    if (isA && a.length === 0) refuse('multiaddrs', 'empty (an A record needs an address)')
    a.forEach((v, i) => {
      if (typeof v !== 'string') refuse(`multiaddrs[${i}]`, 'not a string')
      if (!multiaddrCanonical(v)) refuse(`multiaddrs[${i}]`, `not a canonical multiaddr of at most ${ADDR_MAX} characters`)
    })
  }
  const cname = p.type === 'CNAME'
  const txt = p.type === 'TXT'
  const target = getString(rec, 'target', 'target', cname)
  if (target !== null && !cname) refuse('target', 'only CNAME records have a target')
  if (target !== null && parseName(target) === null) refuse('target', 'not an an://<peerHash>@<name>')
  const text = getString(rec, 'text', 'text', txt)
  if (text !== null && !txt) refuse('text', 'only TXT records have text')
  if (text !== null && Buffer.byteLength(text, 'utf8') > TEXT_MAX) refuse('text', `longer than ${TEXT_MAX} bytes`)
}

function signatureBytes (s) {
  const m = /^ed25519=([0-9a-f]{128})$/.exec(s)
  return m ? Buffer.from(m[1], 'hex') : null
}

function checkRootRef (rec, p) {
  const has = Object.prototype.hasOwnProperty.call(rec, 'root')
  if (p.isRoot) {
    if (has) refuse('root', 'a root record has no root reference')
    return null
  }
  if (!has) refuse('root', 'missing (a subdomain references its root record)')
  const r = rec.root
  if (!Array.isArray(r) || r.length !== 1 || !isObject(r[0])) refuse('root', 'not an array of one object')
  const o = r[0]
  const target = getString(o, 'target', 'root[0].target', true)
  if (!target.startsWith('dns:')) refuse('root[0].target', 'not a did')
  const context = getString(o, 'context', 'root[0].context', true)
  if (!fqdnValid(context)) refuse('root[0].context', 'not a name')
  const sig = getString(o, 'signature', 'root[0].signature', true)
  if (signatureBytes(sig) === null) refuse('root[0].signature', 'not "ed25519=" and 128 hex digits')
  if (!p.fqdn.endsWith('.' + context)) refuse('root[0].context', 'the name in lookup is not under it')
  return o
}

/** Step 1-5 of Verification: the record's own shape (no signature, clock or root). */
function checkShape (rec) {
  const p = {}
  if (rec[HUGE] !== undefined) refuse(rec[HUGE], 'huge number (beyond 2^53-1)')
  checkVersion(rec)
  p.type = getString(rec, 'type', 'type', true)
  if (!TYPES.includes(p.type)) refuse('type', 'not root, A, CNAME or TXT')
  p.isRoot = p.type === 'root'
  const pk = getString(rec, 'publisherPublicKey', 'publisherPublicKey', true)
  p.id = checkPublisher(pk)
  const ph = peerHashOf(p.id)
  p.lookup = getString(rec, 'lookup', 'lookup', true)
  const n = parseName(p.lookup)
  if (n === null) refuse('lookup', 'not an://<peerHash>@<name> (lowercase LDH labels)')
  p.peerHash = n.peerHash
  p.fqdn = n.fqdn
  if (p.peerHash !== ph) refuse('lookup', `peer hash ${p.peerHash} is not that of publisherPublicKey (${ph})`)
  const did = getString(rec, 'did', 'did', true)
  const want = didOf(p.lookup)
  if (did !== want) refuse('did', `is not the did of lookup (${want})`)
  checkDns(rec, p)
  checkTypeFields(rec, p)
  p.ref = checkRootRef(rec, p)
  if (!Object.prototype.hasOwnProperty.call(rec, 'ttl')) refuse('ttl', 'missing')
  const ttl = rec.ttl
  if (!isObject(ttl)) refuse('ttl', 'not an object')
  getUint(ttl, 'timesRepublished', 'ttl.timesRepublished', 0, INT_MAX)
  p.stamp = getTime(ttl, 'timestampRepublished', 'ttl.timestampRepublished')
  getUint(ttl, 'timeToLive', 'ttl.timeToLive', 1, VALID_MAX)
  p.expires = getTime(rec, 'expires', 'expires')
  p.seq = getUint(rec, 'seq', 'seq', 0, INT_MAX)
  if (p.expires <= p.stamp) refuse('expires', 'not after ttl.timestampRepublished')
  if (p.expires - p.stamp > VALID_MAX) refuse('expires', `more than ${VALID_MAX / 86400} days after ttl.timestampRepublished`)
  return p
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

function checkSignature (rec, p) {
  const sig = signatureBytes(getString(rec, 'signature', 'signature', true))
  if (sig === null) refuse('signature', 'not "ed25519=" and 128 hex digits')
  const canon = Buffer.from(canonicalize(rec, 'signature'), 'utf8')
  if (canon.length > RECORD_MAX - SIG_MEMBER_LEN) refuse('', `record over ${RECORD_MAX} bytes in canonical form`)
  const digest = sha256(Buffer.concat([Buffer.from(DOMAIN + '\0', 'latin1'), canon]))
  const pub = createPublicKey({ key: Buffer.concat([SPKI_ED25519, p.id.publicKey.raw]), format: 'der', type: 'spki' })
  return { sig, digest, pub }
}

function fmtTime (t) {
  return new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function checkTime (p, now) {
  if (now >= p.expires) refuse('expires', `expired at ${fmtTime(p.expires)}`)
  if (p.stamp > now + SKEW) refuse('ttl.timestampRepublished', `not valid yet (signed for ${fmtTime(p.stamp)})`)
}

function checkAgainstRoot (p, rootInput, now) {
  const ref = p.ref
  if (rootInput == null) {
    // The js-only rule (see the top of this file): what the reference alone shows.
    const rootLookup = `an://${p.peerHash}@${ref.context}`
    if (ref.target !== didOf(rootLookup)) refuse('root[0].target', `is not the did of ${rootLookup}`)
    return
  }
  const root = typeof rootInput === 'object' && !(rootInput instanceof Uint8Array) ? rootInput : parseRecord(rootInput)
  const rv = verifyParsed(root, { now })
  if (!rv.valid) refuse('root', `the root record is not valid: ${rv.field}${rv.field ? ': ' : ''}${rv.error}`)
  const rp = rv.parsed
  if (!rp.isRoot) refuse('root', `the given root record is of type ${rp.type}`)
  if (!rp.id.equals(p.id)) refuse('publisherPublicKey', 'not the publisher of the root record')
  if (ref.target !== root.did) refuse('root[0].target', "does not match the root record's did")
  if (ref.context !== rp.fqdn) refuse('root[0].context', "does not match the root record's name")
  if (ref.signature !== root.signature) refuse('root[0].signature', 'does not match the root record')
}

function verifyParsed (rec, { now, root } = {}) {
  try {
    if (!isObject(rec)) refuse('', 'not a JSON object')
    const p = checkShape(rec)
    const { sig, digest, pub } = checkSignature(rec, p)
    let ok = false
    try {
      ok = edVerify(null, digest, pub, sig)
    } catch {}
    if (!ok) refuse('signature', 'does not verify with publisherPublicKey')
    checkTime(p, now)
    if (!p.isRoot) checkAgainstRoot(p, root, now)
    return { valid: true, field: '', error: '', parsed: p }
  } catch (err) {
    if (!(err instanceof Refusal)) throw err
    return { valid: false, field: err.field, error: err.message }
  }
}

const toText = (k) => (typeof k === 'string' ? k : new TextDecoder().decode(k))

/**
 * Verify one record (Uint8Array or string).  opts.now: seconds since the
 * epoch (default now); opts.key: the DHT key it is stored under (checked
 * first, as the C validator does, so a record under another name costs no
 * signature check); opts.root: its root record, for a subdomain.
 * Returns { valid, field, error, lookup, seq, expires }.
 */
export function verifyRecord (input, opts = {}) {
  const now = opts.now ?? Math.floor(Date.now() / 1000)
  let rec
  try {
    if (typeof input !== 'string' && input.byteLength > RECORD_MAX) {
      refuse('', `record of ${input.byteLength} bytes, over the ${RECORD_MAX}-byte limit`)
    }
    rec = parseRecord(input)
    if (opts.key != null) {
      const n = typeof rec.lookup === 'string' ? parseName(rec.lookup) : null
      if (n !== null && dhtKeyOf(n.peerHash, n.fqdn) !== toText(opts.key)) {
        refuse('lookup', `the record of ${dhtKeyOf(n.peerHash, n.fqdn)} is not for this key`)
      }
    }
  } catch (err) {
    if (!(err instanceof Refusal)) throw err
    return { valid: false, field: err.field, error: err.message, lookup: null }
  }
  const r = verifyParsed(rec, { now, root: opts.root })
  const lookup = typeof rec.lookup === 'string' ? rec.lookup : null
  if (!r.valid) return { valid: false, field: r.field, error: r.error, lookup }
  return { valid: true, field: '', error: '', lookup, seq: r.parsed.seq, expires: r.parsed.expires }
}

// ------------------------------------------------------------ selection

function rank (bytes) {
  try {
    const rec = parseRecord(bytes)
    const seq = isInt(rec, 'seq') && typeof rec.seq === 'number' ? rec.seq : -1
    const exp = typeof rec.expires === 'string' ? parseTime(rec.expires) ?? -1 : -1
    return { seq, exp }
  } catch {
    return null
  }
}

/** > 0: a is better, < 0: b is better, 0: neither (highest seq, then latest expires). */
export function compareRecords (a, b) {
  const ra = rank(a)
  const rb = rank(b)
  if (ra === null || rb === null) return ra ? 1 : rb ? -1 : 0
  if (ra.seq !== rb.seq) return ra.seq > rb.seq ? 1 : -1
  return ra.exp > rb.exp ? 1 : ra.exp < rb.exp ? -1 : 0
}

// ------------------------------------------------------------ kad-dht glue

/** kad-dht ValidateFn: throw to refuse. */
export async function anValidate (key, value) {
  const k = toText(key)
  if (!k.startsWith('/an/')) throw new Error(`not an /an/ key: ${k}`)
  const r = verifyRecord(value, { key: k })
  if (!r.valid) throw new Error(`invalid an record: ${r.field ? r.field + ': ' : ''}${r.error}`)
}

/** kad-dht SelectFn: index of the best record (the first of equals). */
export function anSelect (key, records) {
  let best = 0
  for (let i = 1; i < records.length; i++) {
    if (compareRecords(records[i], records[best]) > 0) best = i
  }
  return best
}

/**
 * A ValidateFn that also refuses a value worse than the valid one held under
 * the same key in datastore (kad-dht's layout: `<prefix>/record/<base32 of
 * key>` holding a serialized Record; kad-dht/src/utils.ts bufferToRecordKey).  kad-dht calls
 * validators before storing a PUT_VALUE and on every record a get() sees,
 * the held one included (equal is not worse, so that one passes).
 */
export function createAnValidator ({ datastore, prefix = '/dht' }) {
  return async function anValidateHeld (key, value) {
    await anValidate(key, value)
    const dsKey = new Key(`${prefix}/record/${base32.baseEncode(key)}`, false)
    let held
    try {
      held = Libp2pRecord.deserialize(await datastore.get(dsKey)).value
    } catch {
      return // nothing held (or unreadable: the new valid value may replace it)
    }
    if (!verifyRecord(held, { key }).valid) return
    if (compareRecords(value, held) < 0) {
      throw new Error('invalid an record: worse than the one held (lower seq, or same seq and earlier expires)')
    }
  }
}

export const validators = { an: anValidate }
export const selectors = { an: anSelect }
