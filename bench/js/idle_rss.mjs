// idle_rss.mjs: resident memory of one node holding 100 idle inbound
// connections.  This process is the "other process": it runs --conns
// separate js-libp2p dialers (each its own peer ID, so the node sees
// --conns distinct peers), each opening one connection (which runs identify),
// waits --settle seconds, then reads the node's VmRSS from /proc.
// Prints one JSON line: {"bench":"idle_rss","impl":"js",...,"rssMB"}.
//
//   node bench/js/idle_rss.mjs [--conns 100] [--settle 5]
//   node bench/js/idle_rss.mjs --target MULTIADDR --pid PID   (e.g. a C node)
//
// Without --target it starts a js listener (tests/interop/js/peer.mjs) and
// measures that.  baselineRssMB is the node's RSS before any connection.

import { count, createPeer, deadline, multiaddr, options, r3, rssMB, spawnJsListener } from './common.mjs'

const USAGE = 'usage: node idle_rss.mjs [--conns N] [--settle SECS] [--target MULTIADDR --pid PID]'
const o = options(USAGE, { conns: '100', settle: '5', target: '', pid: '' })
const conns = count('conns', o.conns)
const settle = count('settle', o.settle, 0)
if ((o.target === '') !== (o.pid === '')) {
  process.stderr.write('--target and --pid go together\n' + USAGE + '\n')
  process.exit(2)
}
deadline(300_000, 'idle_rss')

const listener = o.target === '' ? await spawnJsListener(['--quiet']) : null
const pid = listener?.pid ?? count('pid', o.pid)
const target = multiaddr(listener?.addr ?? o.target)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const dialers = []
let result
try {
  await sleep(settle * 1000)
  const baseline = rssMB(pid)
  for (let i = 0; i < conns; i++) {
    const node = await createPeer({ quiet: true })
    dialers.push(node)
    await node.dial(target, { signal: AbortSignal.timeout(10_000) })
  }
  await sleep(settle * 1000)
  const open = dialers.filter((d) => d.getConnections().some((c) => c.status === 'open')).length
  if (open !== conns) throw new Error(`only ${open} of ${conns} connections stayed open`)
  result = {
    bench: 'idle_rss',
    impl: 'js',
    node: listener != null ? 'js' : 'external',
    conns: open,
    rssMB: r3(rssMB(pid)),
    baselineRssMB: r3(baseline)
  }
} finally {
  await Promise.all(dialers.map((d) => d.stop().catch(() => {})))
  listener?.proc.kill()
}
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
