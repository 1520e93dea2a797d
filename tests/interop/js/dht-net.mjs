// dht-net.mjs: N js-libp2p kad-dht nodes in one Node process (one process
// keeps memory sane: ~10 nodes cost about what one idle process does), each
// with its own key, listen port, datastore and the interop configuration of
// peer.mjs (server mode, passthroughMapper, /an/kad/1.0.0, the an validator
// that also refuses worse values, the an selector), driven over a Unix
// control socket.
//
//   node dht-net.mjs --nodes N --key-dir DIR --socket PATH [--bootstrap MA]...
//                    [--serve-for SECS] [--first I] [--dial-timeout SECS]
//                    [--no-conn-monitor]
//   node dht-net.mjs --call PATH 'REQUEST'      one request, prints the reply
//
// The network prints {"event":"ready","nodes":[{"peerId","addr","keyFile"}]}
// once every node listens and has dialed the bootstrap peers; node i's key
// is DIR/js<I+i>.key (created if absent, so tests can sign with it), I the
// --first index (0): several processes can share one key directory and so
// spread one js network over several cores (bench/dht.sh runs one node a
// process, as js nodes are deployed).  Each bootstrap dial has --dial-timeout
// seconds (20); --no-conn-monitor turns off js-libp2p's connection monitor
// (a ping stream on every connection every 10 s).  Requests name nodes
// 0..N-1.  It stops after --serve-for seconds (default 300) or on SIGTERM.
//
// Requests (one JSON line; one JSON line back):
//   {"cmd":"status"}                     {"ok":true,"nodes":[{"peerId","rt"}]}
//   {"cmd":"put","node":I,"key":K,"value":S,"timeoutMs":N}
//                                        {"ok":B,"storedAt":[ID],"error":S|null}
//                                        (at the deadline: the peers that
//                                        acknowledged so far)
//   {"cmd":"get","node":I,"key":K,"timeoutMs":N}
//                                        {"ok":B,"value":S|null,"error":S|null}
//   {"cmd":"getall","keys":[K],"nodes":[I],"timeoutMs":N,"parallel":P}
//                                        every node (or those in "nodes") gets
//                                        every key, P at a time
//                                        {"ok":B,"results":[{"node","key","value"}]}
//   {"cmd":"held","node":I,"key":K}      what node I's datastore holds under K,
//                                        unvalidated: {"ok":true,"value":S|null}
//   {"cmd":"held","node":I,"keys":[K]}   the same for several keys:
//                                        {"ok":true,"values":[S|null]}
// Exit status: 0 stopped cleanly, 2 usage, 4 could not start.

//
// The client (--call) loads nothing but node:net: tests call it many times,
// and loading libp2p costs about a second of CPU per process.

import { createServer, connect } from 'node:net'
import { rmSync } from 'node:fs'
import { parseArgs } from 'node:util'

let args
try {
  args = parseArgs({
    options: {
      nodes: { type: 'string' },
      'key-dir': { type: 'string' },
      socket: { type: 'string' },
      bootstrap: { type: 'string', multiple: true },
      'serve-for': { type: 'string' },
      first: { type: 'string' },
      'no-conn-monitor': { type: 'boolean' },
      'dial-timeout': { type: 'string' },
      call: { type: 'string' }
    },
    allowPositionals: true
  })
} catch (err) {
  process.stderr.write(`dht-net.mjs: ${err.message}\n`)
  process.exit(2)
}

if (args.values.call != null) {
  // client mode: one request, one reply, bounded
  const sock = connect(args.values.call)
  const req = args.positionals[0] ?? '{"cmd":"status"}'
  let buf = ''
  const t = setTimeout(() => { process.stderr.write('dht-net.mjs: no reply in 120 s\n'); process.exit(4) }, 120_000)
  sock.on('error', (err) => { process.stderr.write(`dht-net.mjs: ${err.message}\n`); process.exit(4) })
  let done = false
  sock.on('data', (d) => {
    if (done) return
    buf += d
    const nl = buf.indexOf('\n')
    if (nl >= 0) {
      done = true
      clearTimeout(t)
      sock.destroy()
      // exit only once the (possibly large) reply is written out to the pipe
      process.stdout.write(buf.slice(0, nl + 1), () => process.exit(JSON.parse(buf.slice(0, nl)).ok ? 0 : 1))
    }
  })
  sock.write(req.trim() + '\n')
} else {
  await serve(args.values)
}

async function serve (opt) {
  await import('./shim.mjs')
  const { MemoryDatastore } = await import('datastore-core')
  const { Key } = await import('interface-datastore')
  const { Libp2pRecord } = await import('@libp2p/record')
  const { base32 } = await import('multiformats/bases/base32')
  const { createPeer, loadOrCreateKey, multiaddr } = await import('./peer.mjs')
  const n = Number(opt.nodes)
  if (!(n >= 1 && n <= 64) || opt['key-dir'] == null || opt.socket == null) {
    process.stderr.write('usage: node dht-net.mjs --nodes N --key-dir DIR --socket PATH [--bootstrap MA]...\n')
    process.exit(2)
  }
  const hard = setTimeout(() => stop(0), Number(opt['serve-for'] ?? 300) * 1000)
  const nodes = []
  const stores = []
  const out = []
  try {
    for (let i = 0; i < n; i++) {
      const first = Number(opt.first ?? 0)
      const keyFile = `${opt['key-dir']}/js${first + i}.key`
      const datastore = new MemoryDatastore()
      const node = await createPeer({
        privateKey: await loadOrCreateKey(keyFile),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        dht: true,
        datastore,
        agent: `js-net-${first + i}`,
        quiet: true
      })
      // js-libp2p's connection monitor pings every connection every 10 s;
      // in a full mesh of N nodes on one host that is N*(N-1)/5 ping streams
      // a second (--no-conn-monitor: off, for benchmarks that must run 100
      // nodes on two cores; kad-dht's own liveness checks stay on)
      if (opt['no-conn-monitor']) node.components?.connectionMonitor?.stop()
      nodes.push(node)
      stores.push(datastore)
      out.push({ peerId: node.peerId.toString(), addr: node.getMultiaddrs()[0].toString(), keyFile })
    }
    // Every node dials every bootstrap peer; admission to the routing tables
    // then runs identify + ping (digest K3, K5).
    const dialMs = Number(opt['dial-timeout'] ?? 20) * 1000
    await Promise.all(nodes.flatMap((node) => (opt.bootstrap ?? []).map((ma) =>
      node.dial(multiaddr(ma), { signal: AbortSignal.timeout(dialMs) }))))
  } catch (err) {
    process.stderr.write(`dht-net.mjs: start: ${err.message}\n`)
    process.exit(4)
  }

  const enc = new TextEncoder()
  const dec = new TextDecoder()
  const pick = (i) => {
    const node = nodes[i]
    if (node == null) throw new Error(`no node ${i}`)
    return node
  }

  async function get (i, key, timeoutMs) {
    let value = null
    for await (const ev of pick(i).services.dht.get(enc.encode(key), { signal: AbortSignal.timeout(timeoutMs ?? 20_000) })) {
      if (ev.name === 'VALUE') value = dec.decode(ev.value)
    }
    return value
  }

  const handlers = {
    status: async () => ({ ok: true, nodes: nodes.map((nd) => ({ peerId: nd.peerId.toString(), rt: nd.services.dht.routingTable.size })) }),
    put: async (r) => {
      const peers = new Set()
      const errors = []
      // kad-dht's put runs its closest-peers query to the end (or to the
      // signal) before the last PUT_VALUE answers; at the deadline it throws
      // an AbortError although some peers may already hold the record, so
      // the reply says where it got to instead of dropping that.
      try {
        for await (const ev of pick(r.node).services.dht.put(enc.encode(r.key), enc.encode(r.value), { signal: AbortSignal.timeout(r.timeoutMs ?? 20_000) })) {
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') peers.add(ev.from.toString())
          if (ev.name === 'QUERY_ERROR') errors.push(String(ev.error?.message ?? ev.error))
        }
      } catch (err) {
        if (peers.size === 0) throw err
        errors.unshift(`stopped at the deadline: ${err.message}`)
      }
      return { ok: peers.size > 0, storedAt: [...peers], error: errors[0] ?? null }
    },
    get: async (r) => {
      const value = await get(r.node, r.key, r.timeoutMs)
      return { ok: value != null, value, error: null }
    },
    getall: async (r) => {
      // all gets at once would make hundreds of concurrent queries: r.parallel (8) at a time
      const which = r.nodes ?? nodes.map((_, i) => i)
      which.forEach(pick)
      const jobs = which.flatMap((i) => r.keys.map((key) => ({ node: i, key })))
      const results = []
      let next = 0
      await Promise.all(Array.from({ length: Math.min(Math.max(r.parallel ?? 8, 1), 64) }, async () => {
        while (next < jobs.length) {
          const j = jobs[next++]
          let value = null
          try { value = await get(j.node, j.key, r.timeoutMs) } catch {}
          results.push({ ...j, value })
        }
      }))
      return { ok: results.every((x) => x.value != null), results }
    },
    held: async (r) => {
      pick(r.node)
      const held = async (key) => {
        const k = new Key(`/dht/record/${base32.baseEncode(enc.encode(key))}`, false)
        try {
          return dec.decode(Libp2pRecord.deserialize(await stores[r.node].get(k)).value)
        } catch {
          return null
        }
      }
      if (r.keys != null) return { ok: true, values: await Promise.all(r.keys.map(held)) }
      return { ok: true, value: await held(r.key) }
    }
  }

  rmSync(opt.socket, { force: true })
  const server = createServer((sock) => {
    let buf = ''
    sock.on('error', () => {})
    sock.on('data', async (d) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let reply
        try {
          const req = JSON.parse(line)
          const h = handlers[req.cmd]
          reply = h ? await h(req) : { ok: false, error: `unknown cmd ${req.cmd}` }
        } catch (err) {
          reply = { ok: false, error: err.message }
        }
        sock.write(JSON.stringify(reply) + '\n')
      }
    })
  })
  server.listen(opt.socket, () => {
    process.stdout.write(JSON.stringify({ event: 'ready', nodes: out }) + '\n')
  })

  let stopping = false
  async function stop (code) {
    if (stopping) return
    stopping = true
    clearTimeout(hard)
    server.close()
    const t = setTimeout(() => process.exit(code), 5000)
    t.unref()
    await Promise.allSettled(nodes.map((nd) => nd.stop()))
    process.exit(code)
  }
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))
}
