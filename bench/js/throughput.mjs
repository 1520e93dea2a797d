// throughput.mjs: single-stream throughput, js dialer.  One connection, one
// /an/test/discard/1.0.0 stream carrying N MiB one way; the listener answers
// with the byte count after our FIN, so the clock stops only when every byte
// has crossed Noise + yamux and been read.  Repeated --runs times on fresh
// streams of the same connection; prints the median and best.
// Prints one JSON line: {"bench":"throughput","impl":"js",...,"gbps"}.
//
//   node bench/js/throughput.mjs [--mib 256] [--runs 3] [--target MULTIADDR]
//
// Without --target it starts a js listener in another process (js to js);
// with --target it sends to that listener (which must serve the discard
// protocol, see tests/interop/README.md).

import { count, createPeer, deadline, discardOnce, multiaddr, options, percentile, r3, spawnJsListener } from './common.mjs'

const USAGE = 'usage: node throughput.mjs [--mib N] [--runs R] [--target MULTIADDR]'
const o = options(USAGE, { mib: '256', runs: '3', target: '' })
const mib = count('mib', o.mib)
const runs = count('runs', o.runs)
deadline(600_000, 'throughput')

const listener = o.target === '' ? await spawnJsListener(['--quiet']) : null
const node = await createPeer({ quiet: true })
const gbps = []
try {
  const conn = await node.dial(multiaddr(listener?.addr ?? o.target), { signal: AbortSignal.timeout(10_000) })
  for (let i = 0; i < runs; i++) {
    const bytes = mib * 1024 * 1024
    const r = await discardOnce(conn, bytes, AbortSignal.timeout(300_000))
    if (!r.ok) throw new Error(`listener acknowledged ${r.acked} of ${bytes} bytes`)
    gbps.push(bytes * 8 / 1e9 / (r.ms / 1000))
  }
} finally {
  await node.stop()
  listener?.proc.kill()
}
process.stdout.write(JSON.stringify({
  bench: 'throughput',
  impl: 'js',
  listener: listener != null ? 'js' : 'external',
  mib,
  runs,
  gbps: r3(percentile(gbps, 50)),
  gbpsBest: r3(Math.max(...gbps))
}) + '\n')
process.exit(0)
