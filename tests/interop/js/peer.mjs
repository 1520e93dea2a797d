// peer.mjs: one unmodified js-libp2p peer (TCP + Noise + yamux + identify +
// ping, optionally kad-dht) for the interop tests and the benchmarks, driven
// by flags.  stdout: one JSON object per line (events and results); stderr:
// messages for people.  Every run ends by itself: each action has a deadline
// and the whole process a hard one.
//
//   node peer.mjs [--key FILE] [--listen MA]... [--dial MA|@FILE] [actions]
//
// Run `node peer.mjs --help` for the flags; tests/interop/README.md lists the
// JSON lines and the test protocols (/an/test/{echo,discard,reset}/1.0.0)
// that the C test peer (tests/tools/an-testpeer) mirrors.
//
// Also a module: bench/js/*.mjs import createPeer() and the stream helpers,
// so the benchmarks run exactly the configuration the interop tests run.
//
// Exit status (the project's table): 0 every action succeeded, 1 a check
// failed (checksum mismatch, missing reset...), 2 usage, 4 network error or
// timeout.

import './shim.mjs'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile, stat } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { setMaxListeners } from 'node:events'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryDatastore } from 'datastore-core'
import { createAnValidator, selectors as anSelectors } from './an-validator.mjs'

// For scripts outside tests/interop (bench/js), which cannot resolve bare
// package names from where they live.
export { multiaddr }

export const PROTO_ECHO = '/an/test/echo/1.0.0'
export const PROTO_DISCARD = '/an/test/discard/1.0.0'
export const PROTO_RESET = '/an/test/reset/1.0.0'
export const DHT_PROTOCOL = '/an/kad/1.0.0'

// Enough for the 200-concurrent-streams test with room to spare (js's
// default is 32 inbound / 64 outbound streams per protocol and connection).
const MAX_TEST_STREAMS = 1024
// The reset handler resets after this many bytes (or the first data frame).
const RESET_AFTER = 64 * 1024
const CHUNK = 64 * 1024

const USAGE = `usage: node peer.mjs [options]
  --key FILE          libp2p PrivateKey protobuf (raw bytes); created (Ed25519) if absent
  --listen MA         listen on MA (repeatable), e.g. /ip4/127.0.0.1/tcp/0
  --dial MA|@FILE     dial MA (a multiaddr, /p2p/ optional), or wait for FILE and dial its contents
  --ping N            N pings on the dialed connection, RTT of each
  --identify          print the dialed peer's identify
  --echo BYTES        echo BYTES of random data over ${PROTO_ECHO}, compare sha256
  --streams N         N concurrent echo streams of --stream-bytes each (default 4096)
  --stream-bytes B    size of each --streams stream
  --half-close        write 64 KiB, close the write side, then read the whole echo
  --reset             reset an echo stream mid-transfer, then check the connection still works
  --remote-reset      have the remote reset a ${PROTO_RESET} stream, then check the connection
  --discard BYTES     send BYTES over ${PROTO_DISCARD} (one direction), print throughput
  --serve-for SECS    stay up answering for SECS (listener default 60; after actions default 0)
  --timeout SECS      deadline of each action (default 30)
  --agent STRING      identify agentVersion to announce
  --dht               enable kad-dht (${DHT_PROTOCOL}, server mode, an validator)
  --dht-protocol P    kad protocol ID (default ${DHT_PROTOCOL})
  --dht-put KEY       (with --dht) put the contents of --dht-value FILE under KEY
  --dht-value FILE    the value for --dht-put
  --dht-get KEY       (with --dht) get KEY, print the selected value
  --quiet             do not print per-stream "served" and per-connection events
  --help              this text`

// ---------------------------------------------------------------- output

export function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function warn (msg) {
  process.stderr.write(`peer.mjs: ${msg}\n`)
}

// ---------------------------------------------------------------- keys

/** Load a PrivateKey protobuf from FILE, or create an Ed25519 one there (0600). */
export async function loadOrCreateKey (file) {
  try {
    return privateKeyFromProtobuf(new Uint8Array(await readFile(file)))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  const key = await generateKeyPair('Ed25519')
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}

// ---------------------------------------------------------------- node

/**
 * Create and start a js-libp2p node in the interop configuration (digest
 * section 17).  opts: { privateKey, listen: [ma], dht: bool, dhtProtocol,
 * agent, quiet, datastore (default: a new MemoryDatastore) }.  The
 * connection manager's per-host inbound rate limit (5/s by default) is lifted: tests and benchmarks open many connections
 * from 127.0.0.1.
 */
export async function createPeer (opts = {}) {
  const services = {
    identify: identify({ timeout: 10_000 }),
    ping: ping({ maxInboundStreams: 8, maxOutboundStreams: 8 })
  }
  // The node's datastore is ours, so the an validator can refuse a value
  // worse than the one held (an-validator.mjs createAnValidator).
  const datastore = opts.datastore ?? new MemoryDatastore()
  if (opts.dht) {
    services.dht = kadDHT({
      protocol: opts.dhtProtocol ?? DHT_PROTOCOL,
      clientMode: false,
      peerInfoMapper: passthroughMapper,
      validators: { an: createAnValidator({ datastore }) },
      selectors: anSelectors
    })
  }
  const init = {
    datastore,
    addresses: { listen: opts.listen ?? [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: 4096,
      inboundConnectionThreshold: 100_000,
      maxIncomingPendingConnections: 1024
    },
    services
  }
  if (opts.privateKey != null) init.privateKey = opts.privateKey
  if (opts.agent != null) init.nodeInfo = { userAgent: opts.agent }
  const node = await createLibp2p(init)
  await registerTestProtocols(node, { quiet: opts.quiet })
  return node
}

/** Register the /an/test/* handlers (see README.md for their behaviour). */
export async function registerTestProtocols (node, { quiet = false } = {}) {
  const served = (protocol, connection, bytes, result) => {
    if (!quiet) {
      emit({ event: 'served', protocol, peerId: connection.remotePeer.toString(), bytes, result })
    }
  }
  const limits = { maxInboundStreams: MAX_TEST_STREAMS, maxOutboundStreams: MAX_TEST_STREAMS }
  await node.handle(PROTO_ECHO, (stream, connection) => {
    serveEcho(stream).then(({ bytes, result }) => served(PROTO_ECHO, connection, bytes, result))
  }, limits)
  await node.handle(PROTO_DISCARD, (stream, connection) => {
    serveDiscard(stream).then(({ bytes, result }) => served(PROTO_DISCARD, connection, bytes, result))
  }, limits)
  await node.handle(PROTO_RESET, (stream, connection) => {
    serveReset(stream).then(({ bytes, result }) => served(PROTO_RESET, connection, bytes, result))
  }, limits)
}

// ---------------------------------------------------------------- streams

function chunksOf (data) {
  return data instanceof Uint8Array ? [data] : [...data]
}

function isReset (stream) {
  return stream.status === 'reset' || stream.status === 'aborted'
}

function closeResult (stream, evt) {
  return evt?.error != null || isReset(stream) ? 'reset' : 'ok'
}

/**
 * Echo every byte back; after the remote's FIN (and once everything read is
 * echoed) close our side.  Backpressure: stop reading (which withholds yamux
 * window updates) while our send buffer is full.  Resolves { bytes, result }
 * when the stream is finished, result 'ok' or 'reset'.
 */
export function serveEcho (stream) {
  let bytes = 0
  return new Promise((resolve) => {
    stream.addEventListener('message', (evt) => {
      bytes += evt.data.byteLength
      try {
        if (!stream.send(evt.data)) {
          stream.pause()
          stream.onDrain().then(() => {
            if (stream.readStatus === 'paused') stream.resume()
          }, () => {})
        }
      } catch (err) {
        stream.abort(err)
      }
    })
    stream.addEventListener('end', () => {
      stream.close().catch((err) => stream.abort(err))
    })
    stream.addEventListener('close', (evt) => resolve({ bytes, result: closeResult(stream, evt) }))
  })
}

/** Read everything; after the remote's FIN write the byte count as "N\n" and close. */
export function serveDiscard (stream) {
  let bytes = 0
  return new Promise((resolve) => {
    stream.addEventListener('message', (evt) => { bytes += evt.data.byteLength })
    stream.addEventListener('end', () => {
      try {
        stream.send(new TextEncoder().encode(`${bytes}\n`))
        stream.close().catch((err) => stream.abort(err))
      } catch (err) {
        stream.abort(err)
      }
    })
    stream.addEventListener('close', (evt) => resolve({ bytes, result: closeResult(stream, evt) }))
  })
}

/** Read until RESET_AFTER bytes (or FIN) arrived, then reset the stream. */
export function serveReset (stream) {
  let bytes = 0
  let done = false
  const reset = () => {
    if (done) return
    done = true
    stream.abort(new Error('reset by ' + PROTO_RESET))
  }
  return new Promise((resolve) => {
    stream.addEventListener('message', (evt) => {
      bytes += evt.data.byteLength
      if (bytes >= RESET_AFTER) reset()
    })
    stream.addEventListener('end', reset)
    stream.addEventListener('close', () => resolve({ bytes, result: done ? 'reset-sent' : 'closed' }))
  })
}

/**
 * Feed every received chunk to onChunk; resolve at the remote's FIN (all data
 * delivered), reject if the stream closes with an error (reset, abort).
 */
export function consume (stream, onChunk = () => {}) {
  return new Promise((resolve, reject) => {
    let settled = false
    const finish = (err) => {
      if (settled) return
      settled = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      if (err != null) reject(err)
      else resolve()
    }
    const onMessage = (evt) => { for (const b of chunksOf(evt.data)) onChunk(b) }
    // A reset also ends the readable side: tell the two apart by status.
    const onEnd = () => finish(isReset(stream) ? new Error(`stream ${stream.status}`) : undefined)
    const onClose = (evt) => {
      if (evt.error != null || isReset(stream)) {
        finish(evt.error ?? new Error(`stream ${stream.status}`))
      } else {
        finish()
      }
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) finish()
  })
}

/** Send total bytes from next(n) in chunks, honouring backpressure. */
export async function sendAll (stream, total, next, signal) {
  let sent = 0
  while (sent < total) {
    signal?.throwIfAborted()
    const n = Math.min(CHUNK, total - sent)
    const buf = next(n)
    if (!stream.send(buf)) await stream.onDrain({ signal })
    sent += n
  }
}

function randomSource (hash) {
  return (n) => {
    const buf = randomBytes(n)
    hash?.update(buf)
    return buf
  }
}

function openStream (conn, protocol, signal, extra = {}) {
  return conn.newStream(protocol, { signal, maxOutboundStreams: MAX_TEST_STREAMS, ...extra })
}

/** One echo stream of `bytes` random bytes; { bytes, recvBytes, sentSha256, recvSha256, ms, ok }. */
export async function echoOnce (conn, bytes, signal) {
  const t0 = performance.now()
  const stream = await openStream(conn, PROTO_ECHO, signal)
  const sentHash = createHash('sha256')
  const recvHash = createHash('sha256')
  let recvBytes = 0
  const reading = consume(stream, (b) => { recvHash.update(b); recvBytes += b.byteLength })
  try {
    await sendAll(stream, bytes, randomSource(sentHash), signal)
    await stream.close({ signal })
    await withSignal(reading, signal)
  } catch (err) {
    stream.abort(err)
    reading.catch(() => {})
    throw err
  }
  const ms = performance.now() - t0
  const sentSha256 = sentHash.digest('hex')
  const recvSha256 = recvHash.digest('hex')
  return {
    bytes, recvBytes, sentSha256, recvSha256, ms: round(ms),
    ok: recvBytes === bytes && sentSha256 === recvSha256
  }
}

/** Send bytes one way over the discard protocol; { bytes, acked, ms, ok }. */
export async function discardOnce (conn, bytes, signal) {
  const block = randomBytes(CHUNK) // reused: measure the stack, not the PRNG
  const stream = await openStream(conn, PROTO_DISCARD, signal)
  let reply = ''
  const dec = new TextDecoder()
  const reading = consume(stream, (b) => { reply += dec.decode(b, { stream: true }) })
  const t0 = performance.now()
  try {
    await sendAll(stream, bytes, (n) => n === CHUNK ? block : block.subarray(0, n), signal)
    await stream.close({ signal })
    await withSignal(reading, signal)
  } catch (err) {
    stream.abort(err)
    reading.catch(() => {})
    throw err
  }
  const ms = performance.now() - t0
  const acked = Number.parseInt(reply.trim(), 10)
  return { bytes, acked, ms: round(ms), ok: acked === bytes }
}

function withSignal (promise, signal) {
  if (signal == null) return promise
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'))
    if (signal.aborted) { onAbort(); return }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * js-libp2p rejects some waits (stream.onDrain, for one) with the Event that
 * ended them, which prints as "[object Event]": name its type and the error
 * it carries instead.
 */
function describeError (err) {
  if (typeof Event !== 'undefined' && err instanceof Event) {
    const inner = err.error != null ? `: ${err.error?.message ?? err.error}` : ''
    return `the stream's "${err.type}" event${inner}`
  }
  return String(err?.message ?? err)
}

function round (x, digits = 3) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? null : s[Math.floor((s.length - 1) / 2)]
}

export function formatIdentify (r) {
  return {
    peerId: r.peerId.toString(),
    protocols: [...r.protocols].sort(),
    listenAddrs: r.listenAddrs.map((a) => a.toString()),
    agentVersion: r.agentVersion ?? null,
    protocolVersion: r.protocolVersion ?? null,
    observedAddr: r.observedAddr?.toString() ?? null
  }
}

// ---------------------------------------------------------------- actions

async function actPing (node, conn, count, signal) {
  const rtts = []
  for (let i = 0; i < count; i++) {
    const rtt = await node.services.ping.ping(conn.remotePeer, { signal })
    rtts.push(rtt)
    emit({ event: 'ping', seq: i, rttMs: round(rtt) })
  }
  emit({
    event: 'ping-summary', count, ok: rtts.length,
    minMs: round(Math.min(...rtts)), medianMs: round(median(rtts)), maxMs: round(Math.max(...rtts))
  })
  return rtts.length === count
}

async function actIdentify (node, conn, identified, signal) {
  // js identifies every new connection by itself and the remote accepts only
  // one identify stream at a time: wait for that result before asking again.
  let r = await withSignal(identified(conn.id), AbortSignal.any([signal, AbortSignal.timeout(10_000)]))
    .catch(() => null)
  if (r == null) r = await node.services.identify.identify(conn, { signal })
  emit({ event: 'identify', ...formatIdentify(r) })
  return true
}

async function actEcho (conn, bytes, signal) {
  const r = await echoOnce(conn, bytes, signal)
  const mbps = r.ms > 0 ? round(bytes / 1e6 / (r.ms / 1000)) : null
  emit({ event: 'echo', ...r, MBps: mbps })
  return r.ok
}

async function actStreams (conn, count, size, signal) {
  const t0 = performance.now()
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => echoOnce(conn, size, signal)))
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value.ok).length
  const errors = [...new Set(results.filter((r) => r.status === 'rejected').map((r) => String(r.reason?.message ?? r.reason)))]
  emit({
    event: 'streams', count, bytesEach: size, ok, failed: count - ok,
    ms: round(performance.now() - t0), errors: errors.slice(0, 5)
  })
  return ok === count
}

async function actHalfClose (conn, signal) {
  // Small enough to sit in the yamux windows (256 KiB each way) while we do
  // not read, so nothing stalls: all of the echo is read after our FIN.
  const bytes = 64 * 1024
  const stream = await openStream(conn, PROTO_ECHO, signal)
  stream.pause()
  const sentHash = createHash('sha256')
  const recvHash = createHash('sha256')
  let recvBytes = 0
  await sendAll(stream, bytes, randomSource(sentHash), signal)
  await stream.close({ signal })
  const writeStatus = stream.writeStatus
  const reading = consume(stream, (b) => { recvHash.update(b); recvBytes += b.byteLength })
  stream.resume()
  await withSignal(reading, signal)
  const sentSha256 = sentHash.digest('hex')
  const recvSha256 = recvHash.digest('hex')
  const ok = writeStatus === 'closed' && recvBytes === bytes && sentSha256 === recvSha256
  emit({ event: 'half-close', bytes, writeStatusAfterClose: writeStatus, recvAfterClose: recvBytes, sentSha256, recvSha256, ok })
  return ok
}

async function checkConnection (node, conn, signal) {
  const after = await echoOnce(conn, 4096, signal).catch(() => ({ ok: false }))
  const rtt = await node.services.ping.ping(conn.remotePeer, { signal }).catch(() => null)
  return { connectionStatus: conn.status, echoAfter: after.ok, pingAfter: rtt != null }
}

async function actReset (node, conn, signal) {
  // Stream 4 MiB into the echo and reset once some of it came back, so the
  // reset lands with data in flight both ways.
  const stream = await openStream(conn, PROTO_ECHO, signal)
  let recvBytes = 0
  const gotSome = Promise.withResolvers()
  const reading = consume(stream, (b) => {
    recvBytes += b.byteLength
    if (recvBytes >= 128 * 1024) gotSome.resolve()
  })
  reading.then(() => gotSome.reject(new Error('echo ended before the reset')), (e) => gotSome.reject(e))
  const writing = sendAll(stream, 4 * 1024 * 1024, randomSource(null), signal).catch(() => {})
  await withSignal(gotSome.promise, signal)
  stream.abort(new Error('reset by test'))
  await writing
  await reading.catch(() => {})
  const status = stream.status
  const after = await checkConnection(node, conn, signal)
  const ok = status !== 'open' && after.connectionStatus === 'open' && after.echoAfter && after.pingAfter
  emit({ event: 'reset', recvBeforeReset: recvBytes, streamStatus: status, ...after, ok })
  return ok
}

async function actRemoteReset (node, conn, signal) {
  const stream = await openStream(conn, PROTO_RESET, signal)
  const reading = consume(stream)
  try {
    await sendAll(stream, 16 * 1024 * 1024, randomSource(null), signal)
    await stream.close({ signal })
  } catch {}
  await withSignal(reading, signal).catch(() => {})
  const status = stream.status
  const sawReset = status === 'reset' // set only by a RST from the remote
  const after = await checkConnection(node, conn, signal)
  const ok = sawReset && status === 'reset' && after.connectionStatus === 'open' && after.echoAfter && after.pingAfter
  emit({ event: 'remote-reset', sawReset, streamStatus: status, ...after, ok })
  return ok
}

async function actDiscard (conn, bytes, signal) {
  const r = await discardOnce(conn, bytes, signal)
  const secs = r.ms / 1000
  emit({ event: 'discard', ...r, MBps: round(bytes / 1e6 / secs), Gbps: round(bytes * 8 / 1e9 / secs) })
  return r.ok
}

// js queries wait for a non-empty routing table (digest pitfall K4): wait,
// bounded, until the dialed peer passed admission (identify + ping).
async function dhtReady (node, signal) {
  const rt = node.services.dht.routingTable
  while (rt.size === 0) {
    signal.throwIfAborted()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function actDhtPut (node, key, valueFile, signal) {
  await dhtReady(node, signal)
  const value = new Uint8Array(await readFile(valueFile))
  // Peers that answered PUT_VALUE (a rejecting peer resets the stream: that
  // shows as a QUERY_ERROR, not a response).
  const peers = new Set()
  const errors = []
  for await (const ev of node.services.dht.put(new TextEncoder().encode(key), value, { signal })) {
    if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') peers.add(ev.from.toString())
    if (ev.name === 'QUERY_ERROR') errors.push(`${ev.from}: ${ev.error?.message ?? ev.error}`)
  }
  emit({ event: 'dht-put', key, bytes: value.byteLength, storedAt: [...peers], errors: errors.slice(0, 5), ok: peers.size > 0 })
  return peers.size > 0
}

async function actDhtGet (node, key, signal) {
  await dhtReady(node, signal)
  let value = null
  let from = null
  for await (const ev of node.services.dht.get(new TextEncoder().encode(key), { signal })) {
    if (ev.name === 'VALUE') {
      value = new TextDecoder().decode(ev.value)
      from = ev.from.toString()
    }
  }
  emit({ event: 'dht-get', key, value, from, ok: value != null })
  return value != null
}

// ---------------------------------------------------------------- main

async function resolveDialTarget (arg, signal) {
  if (!arg.startsWith('@')) return multiaddr(arg)
  const file = arg.slice(1)
  for (;;) {
    signal.throwIfAborted()
    try {
      if ((await stat(file)).size > 0) {
        return multiaddr((await readFile(file, 'utf8')).trim())
      }
    } catch (err) {
      if (err.code !== 'ENOENT') throw err
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function parseCount (name, value, { min = 0 } = {}) {
  if (value == null) return null
  if (!/^[0-9]+$/.test(value) || Number(value) < min) {
    warn(`invalid --${name} '${value}'`)
    process.exit(2)
  }
  return Number(value)
}

async function main () {
  let args
  try {
    args = parseArgs({
      options: {
        key: { type: 'string' },
        listen: { type: 'string', multiple: true },
        dial: { type: 'string' },
        ping: { type: 'string' },
        identify: { type: 'boolean' },
        echo: { type: 'string' },
        streams: { type: 'string' },
        'stream-bytes': { type: 'string' },
        'half-close': { type: 'boolean' },
        reset: { type: 'boolean' },
        'remote-reset': { type: 'boolean' },
        discard: { type: 'string' },
        'serve-for': { type: 'string' },
        timeout: { type: 'string' },
        agent: { type: 'string' },
        dht: { type: 'boolean' },
        'dht-protocol': { type: 'string' },
        'dht-put': { type: 'string' },
        'dht-value': { type: 'string' },
        'dht-get': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    warn(err.message)
    process.stderr.write(USAGE + '\n')
    process.exit(2)
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const pings = parseCount('ping', args.ping, { min: 1 })
  const echoBytes = parseCount('echo', args.echo)
  const streams = parseCount('streams', args.streams, { min: 1 })
  const streamBytes = parseCount('stream-bytes', args['stream-bytes']) ?? 4096
  const discardBytes = parseCount('discard', args.discard)
  const timeoutMs = (parseCount('timeout', args.timeout, { min: 1 }) ?? 30) * 1000
  const listen = args.listen ?? []
  const hasActions = pings != null || args.identify || echoBytes != null || streams != null ||
    args['half-close'] || args.reset || args['remote-reset'] || discardBytes != null ||
    args['dht-put'] != null || args['dht-get'] != null
  if ((args['dht-put'] != null || args['dht-get'] != null) && !args.dht) {
    warn('--dht-put and --dht-get need --dht')
    process.exit(2)
  }
  if ((args['dht-put'] != null) !== (args['dht-value'] != null)) {
    warn('--dht-put and --dht-value go together')
    process.exit(2)
  }
  if (hasActions && args.dial == null) {
    warn('actions need --dial')
    process.exit(2)
  }
  if (args.dial == null && listen.length === 0) {
    warn('nothing to do: give --listen and/or --dial')
    process.exit(2)
  }
  const serveFor = parseCount('serve-for', args['serve-for']) ?? (args.dial == null ? 60 : 0)

  // Hard deadline for the whole run, whatever hangs.
  const nActions = [pings, args.identify, echoBytes, streams, args['half-close'], args.reset,
    args['remote-reset'], discardBytes, args['dht-put'], args['dht-get']].filter((x) => x != null && x !== false).length
  const hardMs = serveFor * 1000 + (nActions + 2) * timeoutMs + 10_000
  setTimeout(() => {
    emit({ event: 'error', action: 'run', message: `hard deadline of ${hardMs} ms passed` })
    process.exit(4)
  }, hardMs)

  const privateKey = args.key != null ? await loadOrCreateKey(args.key) : undefined
  const node = await createPeer({
    privateKey, listen, dht: args.dht, dhtProtocol: args['dht-protocol'], agent: args.agent, quiet: args.quiet
  })

  // Identify results of every connection, both directions, as they arrive.
  const idResults = new Map()
  const idWaiters = new Map()
  node.addEventListener('peer:identify', (evt) => {
    const r = evt.detail
    const id = r.connection?.id
    idResults.set(id, r)
    idWaiters.get(id)?.resolve(r)
    if (!args.quiet) emit({ event: 'peer-identify', direction: r.connection?.direction ?? null, ...formatIdentify(r) })
  })
  const identified = (connId) => {
    if (idResults.has(connId)) return Promise.resolve(idResults.get(connId))
    if (!idWaiters.has(connId)) idWaiters.set(connId, Promise.withResolvers())
    return idWaiters.get(connId).promise
  }
  if (!args.quiet) {
    node.addEventListener('connection:open', (evt) => {
      const c = evt.detail
      emit({ event: 'connection', direction: c.direction, peerId: c.remotePeer.toString(), remoteAddr: c.remoteAddr.toString() })
    })
  }

  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    await Promise.race([node.stop(), new Promise((resolve) => setTimeout(resolve, 5000))]).catch(() => {})
    process.exit(code)
  }
  process.on('SIGTERM', () => { stop(0) })
  process.on('SIGINT', () => { stop(0) })

  if (listen.length > 0) {
    emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  }

  let code = 0
  if (args.dial != null) {
    let action = 'dial'
    let conn
    try {
      const target = await resolveDialTarget(args.dial, AbortSignal.timeout(timeoutMs))
      const t0 = performance.now()
      conn = await node.dial(target, { signal: AbortSignal.timeout(timeoutMs), force: true })
      emit({
        event: 'connected', peerId: node.peerId.toString(), remotePeer: conn.remotePeer.toString(),
        remoteAddr: conn.remoteAddr.toString(), direction: conn.direction, ms: round(performance.now() - t0)
      })
      const steps = []
      if (args.identify) steps.push(['identify', (s) => actIdentify(node, conn, identified, s)])
      if (pings != null) steps.push(['ping', (s) => actPing(node, conn, pings, s)])
      if (echoBytes != null) steps.push(['echo', (s) => actEcho(conn, echoBytes, s)])
      if (streams != null) steps.push(['streams', (s) => actStreams(conn, streams, streamBytes, s)])
      if (args['half-close']) steps.push(['half-close', (s) => actHalfClose(conn, s)])
      if (args.reset) steps.push(['reset', (s) => actReset(node, conn, s)])
      if (args['remote-reset']) steps.push(['remote-reset', (s) => actRemoteReset(node, conn, s)])
      if (discardBytes != null) steps.push(['discard', (s) => actDiscard(conn, discardBytes, s)])
      if (args['dht-put'] != null) steps.push(['dht-put', (s) => actDhtPut(node, args['dht-put'], args['dht-value'], s)])
      if (args['dht-get'] != null) steps.push(['dht-get', (s) => actDhtGet(node, args['dht-get'], s)])
      for (const [name, run] of steps) {
        action = name
        const signal = AbortSignal.timeout(timeoutMs)
        setMaxListeners(Infinity, signal) // one listener per concurrent stream
        if (!await run(signal)) code = 1
      }
      emit({ event: 'done', ok: code === 0 })
    } catch (err) {
      emit({ event: 'error', action, message: describeError(err), connection: conn?.status })
      warn(`${action}: ${err?.stack ?? describeError(err)}`)
      code = 4
    }
  }
  if (serveFor > 0 && code !== 4) {
    await new Promise((resolve) => setTimeout(resolve, serveFor * 1000))
  }
  await stop(code)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    emit({ event: 'error', action: 'start', message: String(err?.message ?? err) })
    warn(err?.stack ?? String(err))
    process.exit(4)
  })
}
