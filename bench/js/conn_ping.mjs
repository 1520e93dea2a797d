// conn_ping.mjs: connection setup + first ping, js dialer.  N times: dial a
// fresh connection (TCP + mss + Noise XX + mss + yamux), ping once over it,
// close it; the time from dial() to the ping's answer is one sample.
// Prints one JSON line: {"bench":"conn_ping","impl":"js",...,"medianMs","p99Ms"}.
//
//   node bench/js/conn_ping.mjs [--n 200] [--warmup 10] [--target MULTIADDR]
//
// Without --target it starts a js listener (tests/interop/js/peer.mjs) in
// another process: js dials js.  With --target it dials that listener (which
// must answer /ipfs/ping/1.0.0), e.g. a C node: then listener is "external".

import { count, createPeer, deadline, multiaddr, options, percentile, r3, spawnJsListener } from './common.mjs'

const USAGE = 'usage: node conn_ping.mjs [--n N] [--warmup W] [--target MULTIADDR]'
const o = options(USAGE, { n: '200', warmup: '10', target: '' })
const n = count('n', o.n)
const warmup = count('warmup', o.warmup, 0)
deadline(300_000, 'conn_ping')

const listener = o.target === '' ? await spawnJsListener(['--quiet']) : null
const target = multiaddr(listener?.addr ?? o.target)
const node = await createPeer({ quiet: true })
const samples = []
try {
  for (let i = 0; i < warmup + n; i++) {
    const signal = AbortSignal.timeout(10_000)
    const t0 = performance.now()
    const conn = await node.dial(target, { signal, force: true })
    await node.services.ping.ping(conn.remotePeer, { signal })
    const ms = performance.now() - t0
    await conn.close()
    if (i >= warmup) samples.push(ms)
  }
} finally {
  await node.stop()
  listener?.proc.kill()
}
const mean = samples.reduce((a, b) => a + b, 0) / samples.length
process.stdout.write(JSON.stringify({
  bench: 'conn_ping',
  impl: 'js',
  listener: listener != null ? 'js' : 'external',
  n,
  medianMs: r3(percentile(samples, 50)),
  p99Ms: r3(percentile(samples, 99)),
  meanMs: r3(mean),
  minMs: r3(Math.min(...samples))
}) + '\n')
process.exit(0)
