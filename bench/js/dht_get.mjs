// dht_get.mjs: drives DHT nodes through their Unix control sockets and times
// each request from the client side, so the C daemons (an-dht daemon's
// control.sock) and the js nodes (tests/interop/js/dht-net.mjs's socket) are
// measured by the same clock in the same client process.
//
//   node dht_get.mjs --targets FILE --keys FILE [--op get|put] [--values DIR]
//                    [--n 200] [--warmup 10] [--parallel 1] [--timeout-ms 20000]
//                    [--seed S] [--label L]
//
// --targets: one target a line, "c PATH" (a C daemon's control socket) or
// "js PATH I" (node I of a dht-net.mjs process at PATH).  get: --n requests,
// each for the next key (round robin) through a target drawn at random;
// put: every key once (value: the record in DIR/<index>.json, the key's
// line number from 0), through targets drawn at random, --parallel at a
// time.  One connection per socket, kept open; requests on one connection
// are sequential, so a sample is one request's round trip.
// Prints one JSON line: {"op","label","n","ok","failed","p50Ms","p99Ms","meanMs",
// "minMs","maxMs","wallS"}, plus "storedMean" (puts: peers that acknowledged
// each put) and "errors" (failure reasons, counted) when there are any.
// Exit status: 0 every request succeeded, 1 some failed, 2 usage, 4 error.

import { connect } from 'node:net'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

let a
try {
  a = parseArgs({
    options: {
      targets: { type: 'string' },
      keys: { type: 'string' },
      op: { type: 'string', default: 'get' },
      values: { type: 'string' },
      n: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '10' },
      parallel: { type: 'string', default: '1' },
      'timeout-ms': { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      label: { type: 'string', default: '' }
    }
  }).values
} catch (err) {
  process.stderr.write(`dht_get.mjs: ${err.message}\n`)
  process.exit(2)
}
if (a.targets == null || a.keys == null || !['get', 'put'].includes(a.op) || (a.op === 'put' && a.values == null)) {
  process.stderr.write('usage: node dht_get.mjs --targets FILE --keys FILE [--op get|put] [--values DIR] [--n N]\n')
  process.exit(2)
}

const lines = (f) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '')
const targets = lines(a.targets).map((l) => {
  const [kind, path, node] = l.trim().split(/\s+/)
  return { kind, path, node: node == null ? undefined : Number(node) }
})
const keys = lines(a.keys)
const timeoutMs = Number(a['timeout-ms'])

// a small seeded PRNG (mulberry32), so both sides draw targets alike
let s = Number(a.seed) >>> 0
const rand = () => {
  s = (s + 0x6D2B79F5) >>> 0
  let t = s
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// one connection per socket path; a queue keeps its requests sequential
const conns = new Map()
function conn (path) {
  let c = conns.get(path)
  if (c != null) return c
  const sock = connect(path)
  c = { sock, buf: '', waiters: [], chain: Promise.resolve() }
  sock.setEncoding('utf8')
  sock.on('data', (d) => {
    c.buf += d
    let nl
    while ((nl = c.buf.indexOf('\n')) >= 0) {
      const line = c.buf.slice(0, nl)
      c.buf = c.buf.slice(nl + 1)
      const w = c.waiters.shift()
      if (w) w.resolve(line)
    }
  })
  sock.on('error', (err) => { for (const w of c.waiters.splice(0)) w.reject(err) })
  conns.set(path, c)
  return c
}

function request (t, req) {
  const c = conn(t.path)
  const run = () => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('client timeout')), timeoutMs + 5000)
    c.waiters.push({
      resolve: (l) => { clearTimeout(timer); resolve(l) },
      reject: (e) => { clearTimeout(timer); reject(e) }
    })
    c.sock.write(JSON.stringify(req) + '\n')
  })
  const p = c.chain.then(run, run)
  c.chain = p.catch(() => {})
  return p
}

// one timed request; true when the node answered with a value / stored it
async function one (op, t, key, value) {
  const req = t.kind === 'js'
    ? { cmd: op, node: t.node, key, timeoutMs, ...(op === 'put' ? { value } : {}) }
    : (op === 'put' ? { cmd: 'put', record: JSON.parse(value), timeoutMs } : { cmd: 'get', key, timeoutMs })
  const t0 = process.hrtime.bigint()
  let ok = false
  let error = null
  let stored = null
  try {
    const r = JSON.parse(await request(t, req))
    if (t.kind === 'js') {
      ok = r.ok === true
      if (op === 'put') stored = (r.storedAt ?? []).length
    } else if (op === 'get') {
      ok = r.ok === true && Array.isArray(r.results) && r.results.length > 0
    } else {
      stored = Math.max(0, ...(r.results ?? []).map((x) => x.stored ?? 0))
      ok = r.ok === true && stored >= 1
    }
    if (!ok) error = String(r.error ?? r.message ?? (r.ok ? 'no value' : 'failed'))
  } catch (err) {
    error = err.message
  }
  return { ok, ms: Number(process.hrtime.bigint() - t0) / 1e6, error, stored }
}

const pick = () => targets[Math.floor(rand() * targets.length)]
const jobs = []
if (a.op === 'get') {
  const warm = Number(a.warmup)
  for (let i = 0; i < warm + Number(a.n); i++) jobs.push({ key: keys[i % keys.length], t: pick(), warm: i < warm })
} else {
  keys.forEach((key, i) => jobs.push({ key, t: pick(), value: readFileSync(`${a.values}/${i}.json`, 'utf8').trim() }))
}

const samples = []
const errors = {}
const storedCounts = []
let failed = 0
let next = 0
const began = process.hrtime.bigint()
await Promise.all(Array.from({ length: Math.max(1, Number(a.parallel)) }, async () => {
  while (next < jobs.length) {
    const j = jobs[next++]
    const r = await one(a.op, j.t, j.key, j.value)
    if (j.warm) continue
    if (r.stored != null) storedCounts.push(r.stored)
    if (r.ok) {
      samples.push(r.ms)
    } else {
      failed++
      // the first words of the reason, so a few kinds of failure show
      const why = r.error.slice(0, 60)
      errors[why] = (errors[why] ?? 0) + 1
    }
  }
}))
const wallS = Number(process.hrtime.bigint() - began) / 1e9
for (const c of conns.values()) c.sock.destroy()

samples.sort((x, y) => x - y)
const q = (p) => samples.length ? samples[Math.min(samples.length - 1, Math.ceil(p * samples.length) - 1)] : null
const r3 = (x) => x == null ? null : Math.round(x * 1000) / 1000
process.stdout.write(JSON.stringify({
  op: a.op,
  label: a.label,
  n: samples.length + failed,
  ok: samples.length,
  failed,
  p50Ms: r3(q(0.5)),
  p99Ms: r3(q(0.99)),
  meanMs: r3(samples.length ? samples.reduce((x, y) => x + y, 0) / samples.length : null),
  minMs: r3(samples[0] ?? null),
  maxMs: r3(samples[samples.length - 1] ?? null),
  wallS: r3(wallS),
  ...(storedCounts.length ? { storedMean: r3(storedCounts.reduce((x, y) => x + y, 0) / storedCounts.length) } : {}),
  ...(failed ? { errors } : {})
}) + '\n')
process.exit(failed ? 1 : 0)
