// route-serve.mjs: an unmodified js-libp2p node (peer.mjs's configuration)
// that serves /an/route/1.0.0 (man/an-route.7) from a directory per host,
// simple GET and HEAD only: the "C client against a js server" interop peer
// of tests/interop/route-dial.bats.  Written from the man page, not from our
// C server, so the two ends are checked against the spec independently.
//
//   node route-serve.mjs --key FILE --listen MA --site HOST=DIR [--site ...]
//                        [--serve-for SECS]
//
// Two targets exist for the client's error paths: /__hang is never answered
// (the stream stays open), /__reset sends a head announcing 100000 bytes,
// 1000 of them, then resets the stream.
//
// stdout: {"event":"listening","peerId","peerHash","addrs":[...]} once, then
// {"event":"served","host","target","status","bytes"} per request.
// Exit status: 0 after --serve-for, 2 usage, 4 start failure.

import './shim.mjs'
import { createHash } from 'node:crypto'
import { open, stat, realpath } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { base58btc } from 'multiformats/bases/base58'
import { base32 } from 'multiformats/bases/base32'
import { createPeer, emit, loadOrCreateKey } from './peer.mjs'

const PROTOCOL = '/an/route/1.0.0'
const HEAD_MAX = 16384
const CHUNK = 64 * 1024
const TYPES = {
  html: 'text/html', css: 'text/css', js: 'text/javascript', png: 'image/png',
  svg: 'image/svg+xml', txt: 'text/plain', json: 'application/json', bin: 'application/octet-stream'
}

const sha256 = (b) => createHash('sha256').update(b).digest()

// peer hash: first 80 bits of SHA-256 of the binary peer ID, base32 lowercase, no padding
function peerHash (peerId) {
  return base32.baseEncode(sha256(peerId.toMultihash().bytes).subarray(0, 10))
}

// did: "dns:" + base58btc of the first 16 bytes of SHA-256 of "an://<peerHash>@<host>"
function didOf (lookup) {
  return 'dns:' + base58btc.baseEncode(sha256(Buffer.from(lookup)).subarray(0, 16))
}

function errorResponse (status, reason) {
  const body = `${status} ${reason}\n`
  return Buffer.from(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}`)
}

// The path of a target, per the man page's static-file rules; null: refuse (400).
function normalize (target) {
  if (!target.startsWith('/')) return null
  const path = target.split('?')[0]
  if (/%2f|%5c|%00/i.test(path) || path.includes('\\')) return null
  let decoded
  try { decoded = decodeURIComponent(path) } catch { return null }
  if (/[\x00-\x1f\x7f]/.test(decoded)) return null
  const segs = decoded.split('/')
  if (segs.includes('..')) return null
  const kept = segs.filter((s) => s !== '' && s !== '.')
  return '/' + kept.join('/') + (decoded.endsWith('/') && kept.length ? '/' : '')
}

async function serve (stream, sites, ourHash) {
  const chunks = []
  let len = 0
  let headDone = false
  const finish = (status, target, host, bytes) => emit({ event: 'served', host, target, status, bytes })
  const sendAll = async (buf) => { if (!stream.send(buf)) await stream.onDrain() }
  const onHead = async (head) => {
    const lines = head.split('\r\n')
    const route = lines[0].split(' ')
    const req = (lines[1] ?? '').split(' ')
    if (route.length !== 3 || route[0] !== 'AN-ROUTE/1.0' || req.length !== 3 || req[2] !== 'HTTP/1.1') {
      await sendAll(errorResponse(400, 'Bad Request'))
      return finish(400, req[1], route[2], 0)
    }
    const [, did, host] = route
    const [method, target] = req
    const dir = sites.get(host)
    if (dir == null || didOf(`an://${ourHash}@${host}`) !== did) {
      await sendAll(errorResponse(421, 'Misdirected Request'))
      return finish(421, target, host, 0)
    }
    // test hooks: a server that never answers, one that resets mid-body
    if (target === '/__hang') { finish(0, target, host, 0); return new Promise(() => {}) }
    if (target === '/__reset') {
      await sendAll(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000)))
      finish(-1, target, host, 1000)
      throw new Error('reset on purpose')
    }
    if (method !== 'GET' && method !== 'HEAD') {
      await sendAll(errorResponse(405, 'Method Not Allowed'))
      return finish(405, target, host, 0)
    }
    let path = normalize(target)
    if (path == null) {
      await sendAll(errorResponse(400, 'Bad Request'))
      return finish(400, target, host, 0)
    }
    if (path.endsWith('/')) path += 'index.html'
    let file = null
    try {
      const real = await realpath(dir + path)
      if (!real.startsWith(dir + '/')) throw new Error('outside')
      const st = await stat(real)
      if (st.isDirectory()) {
        const loc = target.split('?')[0] + '/'
        await sendAll(Buffer.from(`HTTP/1.1 301 Moved Permanently\r\nLocation: ${loc}\r\nContent-Length: 0\r\n\r\n`))
        return finish(301, target, host, 0)
      }
      file = await open(real, 'r')
      const ext = path.split('.').pop()
      await sendAll(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: ${TYPES[ext] ?? 'application/octet-stream'}\r\n` +
        `Content-Length: ${st.size}\r\n\r\n`))
      let sent = 0
      if (method === 'GET') {
        const buf = Buffer.alloc(CHUNK)
        while (sent < st.size) {
          const { bytesRead } = await file.read(buf, 0, CHUNK, sent)
          if (bytesRead === 0) throw new Error('file shrank')
          await sendAll(Buffer.from(buf.subarray(0, bytesRead)))
          sent += bytesRead
        }
      }
      finish(200, target, host, sent)
    } catch (err) {
      if (file == null) {
        await sendAll(errorResponse(404, 'Not Found'))
        return finish(404, target, host, 0)
      }
      throw err
    } finally {
      await file?.close()
    }
  }
  stream.addEventListener('message', (evt) => {
    if (headDone) return
    for (const b of (evt.data instanceof Uint8Array ? [evt.data] : [...evt.data])) {
      chunks.push(b)
      len += b.byteLength
    }
    const all = Buffer.concat(chunks, len)
    const end = all.indexOf('\r\n\r\n')
    if (end < 0 && len <= HEAD_MAX) return
    headDone = true
    const work = end < 0
      ? sendAll(errorResponse(431, 'Request Header Fields Too Large'))
      : onHead(all.subarray(0, end).toString('latin1'))
    work.then(() => stream.close(), (err) => stream.abort(err)).catch((err) => stream.abort(err))
  })
}

async function main () {
  const { values: args } = parseArgs({
    options: {
      key: { type: 'string' },
      listen: { type: 'string', multiple: true },
      site: { type: 'string', multiple: true },
      'serve-for': { type: 'string', default: '60' }
    }
  })
  if (!args.site?.length) {
    process.stderr.write('usage: node route-serve.mjs --key FILE --listen MA --site HOST=DIR...\n')
    process.exit(2)
  }
  const sites = new Map()
  for (const s of args.site) {
    const i = s.indexOf('=')
    sites.set(s.slice(0, i), await realpath(s.slice(i + 1)))
  }
  const privateKey = args.key != null ? await loadOrCreateKey(args.key) : undefined
  const node = await createPeer({ privateKey, listen: args.listen ?? ['/ip4/127.0.0.1/tcp/0'], quiet: true })
  const ourHash = peerHash(node.peerId)
  await node.handle(PROTOCOL, (stream) => {
    serve(stream, sites, ourHash).catch((err) => stream.abort(err))
  }, { maxInboundStreams: 256 })
  emit({ event: 'listening', peerId: node.peerId.toString(), peerHash: ourHash, addrs: node.getMultiaddrs().map(String) })
  setTimeout(async () => { await node.stop(); process.exit(0) }, Number(args['serve-for']) * 1000)
}

main().catch((err) => {
  process.stderr.write(`route-serve.mjs: ${err?.stack ?? err}\n`)
  process.exit(4)
})
