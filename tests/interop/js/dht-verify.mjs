// dht-verify.mjs: the js an-record verifier (an-validator.mjs) as a command,
// with an-verify's verdict lines, so tests compare the two record by record.
//
//   node dht-verify.mjs [-t TIME] [-r ROOTFILE] [-k KEY] [--select] [FILE...]
//
// Each non-empty line of each FILE (or of stdin) is one record.  For each:
//   {"lookup":S|null,"valid":true}
//   {"lookup":S|null,"valid":false,"error":S,"field":S}
// -t TIME      verify as of TIME (RFC 3339 UTC) instead of now
// -r ROOTFILE  the root record for subdomain records (first line of the file);
//              without it subdomains get the js-only check (an-validator.mjs)
// -k KEY       also require the record's own DHT key to be KEY (the validator's view)
// --select     instead of verdicts print {"best":I} (the kad-dht selector's
//              index among all records read, 0-based)
// Exit status: 0 every record valid (or --select done), 1 some record not
// valid, 2 usage.

import './shim.mjs'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { verifyRecord, anSelect, parseTime } from './an-validator.mjs'

function usage (msg) {
  if (msg) process.stderr.write(`dht-verify.mjs: ${msg}\n`)
  process.stderr.write('usage: node dht-verify.mjs [-t TIME] [-r ROOTFILE] [-k KEY] [--select] [FILE...]\n')
  process.exit(2)
}

let args
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      time: { type: 'string', short: 't' },
      root: { type: 'string', short: 'r' },
      key: { type: 'string', short: 'k' },
      select: { type: 'boolean' }
    }
  })
} catch (err) {
  usage(err.message)
}
const { values: opt, positionals: files } = args
let now
if (opt.time != null) {
  now = parseTime(opt.time)
  if (now === null) usage(`bad time "${opt.time}"`)
}

// Lines as bytes: invalid UTF-8 must reach the verifier undecoded.
function lines (buf) {
  const out = []
  let start = 0
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      const line = buf.subarray(start, i)
      if (line.length > 0) out.push(line)
      start = i + 1
    }
  }
  return out
}

const records = []
for (const f of files.length ? files : ['-']) {
  records.push(...lines(readFileSync(f === '-' ? 0 : f)))
}
const root = opt.root != null ? lines(readFileSync(opt.root))[0] : undefined

if (opt.select) {
  if (records.length === 0) usage('--select needs records')
  process.stdout.write(JSON.stringify({ best: anSelect(undefined, records) }) + '\n')
  process.exit(0)
}

let bad = false
for (const r of records) {
  const v = verifyRecord(r, { now, root, key: opt.key })
  const out = { lookup: v.lookup, valid: v.valid }
  if (!v.valid) {
    out.error = v.error
    out.field = v.field
    bad = true
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}
process.exit(bad ? 1 : 0)
