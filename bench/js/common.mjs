// common.mjs: what the js halves of the benchmarks share.  The js-libp2p
// configuration is tests/interop/js/peer.mjs's (imported from there, so the
// pinned packages in tests/interop/node_modules resolve; run
// tests/interop/setup first).

import '../../tests/interop/js/shim.mjs'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export * from '../../tests/interop/js/peer.mjs'

export const PEER = fileURLToPath(new URL('../../tests/interop/js/peer.mjs', import.meta.url))

/** parseArgs over `spec` (name -> default string or boolean); exit 2 on misuse. */
export function options (usage, spec) {
  const opts = { help: { type: 'boolean' } }
  for (const [k, v] of Object.entries(spec)) {
    opts[k] = typeof v === 'boolean' ? { type: 'boolean' } : { type: 'string' }
  }
  let values
  try {
    values = parseArgs({ options: opts, strict: true, allowPositionals: false }).values
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}\n`)
    process.exit(2)
  }
  if (values.help) {
    process.stdout.write(usage + '\n')
    process.exit(0)
  }
  const out = {}
  for (const [k, v] of Object.entries(spec)) out[k] = values[k] ?? v
  return out
}

export function count (name, value, min = 1) {
  if (!/^[0-9]+$/.test(String(value)) || Number(value) < min) {
    process.stderr.write(`invalid --${name} '${value}'\n`)
    process.exit(2)
  }
  return Number(value)
}

/** Kill the whole run if it takes longer than ms (benchmarks end by themselves). */
export function deadline (ms, name) {
  setTimeout(() => {
    process.stderr.write(`${name}: deadline of ${ms} ms passed\n`)
    process.exit(4)
  }, ms).unref()
}

/**
 * Start a js listener (peer.mjs) in its own process on 127.0.0.1:0.
 * Resolves { proc, pid, addr, peerId, lines } once it listens; lines collects
 * its later JSON lines.  Call proc.kill() when done.
 */
export function spawnJsListener (extra = [], timeoutMs = 30_000) {
  const proc = spawn(process.execPath, [PEER, '--listen', '/ip4/127.0.0.1/tcp/0', '--serve-for', '900', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill(); reject(new Error('js listener did not start')) }, timeoutMs)
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`js listener exited (${code})`)) })
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let ev
      try { ev = JSON.parse(line) } catch { return }
      lines.push(ev)
      if (ev.event === 'listening') {
        clearTimeout(timer)
        resolve({ proc, pid: proc.pid, addr: ev.addrs[0], peerId: ev.peerId, lines })
      }
    })
  })
}

/** Resident set size of a process in MB (VmRSS from /proc). */
export function rssMB (pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m == null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) / 1024
}

export function percentile (xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return null
  return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)]
}

export function r3 (x) {
  return x == null ? null : Math.round(x * 1000) / 1000
}
