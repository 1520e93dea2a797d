#!/usr/bin/env bash
# records.sh: records signed and verified per second by an-sign / an-verify
# on a stream of N records (default 100000), against libsodium's raw Ed25519
# sign / verify rate measured on the same machine in the same run.
# Target (issue 2): an-verify at least 0.9x the raw verify rate.
#
#   PATH with an-keygen, an-sign, an-verify; AN_BENCH_BIN with sodium_rate.
#   RECORDS=N to change the stream length.  Prints one JSON line.
set -eu
n=${RECORDS:-100000}
bin=${AN_BENCH_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/bench}
tmp=$(mktemp -d /tmp/an-bench-records.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

an-keygen -k "$tmp/key" >/dev/null
# Partial records: the root record of a distinct name each, with one address.
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"type\":\"root\",\"lookup\":\"an://site%d\",\"multiaddrs\":[\"/ip4/198.51.100.7/tcp/4001\"]}\n", i }' \
	>"$tmp/partial.json"
an-sign -k "$tmp/key" <"$tmp/partial.json" >"$tmp/signed.json"

t0=$(now)
an-sign -k "$tmp/key" --resign <"$tmp/signed.json" >"$tmp/resigned.json"
t1=$(now)
an-verify -q <"$tmp/resigned.json"
t2=$(now)
lines=$(wc -l <"$tmp/resigned.json")
[ "$lines" -eq "$n" ] || { echo "records.sh: expected $n records, got $lines" >&2; exit 1; }

raw=$("$bin/sodium_rate" 20000)
raw_sign=$(sed -E 's/.*"sign_per_s":([0-9]+).*/\1/' <<<"$raw")
raw_verify=$(sed -E 's/.*"verify_per_s":([0-9]+).*/\1/' <<<"$raw")
sign=$(rate "$n" "$t0" "$t1")
verify=$(rate "$n" "$t1" "$t2")
awk -v n="$n" -v s="$sign" -v v="$verify" -v rs="$raw_sign" -v rv="$raw_verify" 'BEGIN {
	printf "{\"bench\":\"records\",\"records\":%d,\"sign_per_s\":%d,\"verify_per_s\":%d,", n, s, v
	printf "\"raw_sign_per_s\":%d,\"raw_verify_per_s\":%d,", rs, rv
	printf "\"sign_ratio\":%.3f,\"verify_ratio\":%.3f,\"verify_target\":0.9}\n", s / rs, v / rv
	exit (v / rv >= 0.9 ? 0 : 1) }'
