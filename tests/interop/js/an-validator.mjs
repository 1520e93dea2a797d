// an-validator.mjs: the kad-dht validator and selector for the `/an/` record
// namespace (keys `/an/<peer_hash>@<fqdn>`).
//
// js kad-dht rejects PUT_VALUE for a namespace it has no validator for (it
// resets the stream) and get() throws MissingSelectorError without a selector
// (digest section 10, pitfall K1), so the interop peer registers both.
//
// PLACEHOLDER until issue 4: it accepts any value that is valid UTF-8 JSON
// object text and selects the record with the highest numeric `seq` (first
// wins on ties).  Issue 4 replaces this with the real record checks
// (signature, validity window, key/publisher match) and the real selection
// (highest seq, then latest validity).

const decoder = new TextDecoder('utf-8', { fatal: true })

function parse (value) {
  const doc = JSON.parse(decoder.decode(value))
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error('an record is not a JSON object')
  }
  return doc
}

/** kad-dht ValidateFn: throw to reject. */
export async function anValidate (key, value) {
  const k = decoder.decode(key)
  if (!k.startsWith('/an/')) {
    throw new Error(`not an /an/ key: ${k}`)
  }
  parse(value)
}

/** kad-dht SelectFn: index of the best record. */
export function anSelect (key, records) {
  let best = 0
  let bestSeq = -Infinity
  records.forEach((r, i) => {
    let seq = -Infinity
    try {
      const s = parse(r).seq
      if (typeof s === 'number') seq = s
    } catch {}
    if (seq > bestSeq) { best = i; bestSeq = seq }
  })
  return best
}

export const validators = { an: anValidate }
export const selectors = { an: anSelect }
