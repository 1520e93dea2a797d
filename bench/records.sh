#!/usr/bin/env bash
# records.sh: records signed and verified per second by an-sign / an-verify
# on a stream of N records (default 100000), against libsodium's raw Ed25519
# sign / verify rate on one thread, measured on the same machine in the same
# run.  an-verify runs twice: with -j 1 (one thread does everything) and with
# its default -j (the number of online CPUs, printed as "jobs").
# Target (issue 2): an-verify at least 0.9x the raw single-thread verify rate.
#
#   PATH with an-keygen, an-sign, an-verify; AN_BENCH_BIN with sodium_rate.
#   RECORDS=N to change the stream length; RUNS=N (default 3) timed runs of
#   each, of which the best is kept (the machine is shared and noisy).
#   Prints one JSON line; exits 1 when the default -j misses the target.
set -eu
n=${RECORDS:-100000}
runs=${RUNS:-3}
bin=${AN_BENCH_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/bench}
tmp=$(mktemp -d /tmp/an-bench-records.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
# best RATE...: the largest
best() { printf '%s\n' "$@" | sort -n | tail -1; }
# timed_rate COMMAND...: records per second of one run, stdin from $tmp/signed.json
timed_rate() {
	local t0 t1
	t0=$(now)
	"$@" <"$tmp/signed.json" >"$tmp/out.json"
	t1=$(now)
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}
field() { sed -E "s/.*\"$1\":([0-9]+).*/\\1/" <<<"$2"; }

an-keygen -k "$tmp/key" >/dev/null
# Partial records: the root record of a distinct name each, with one address.
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"type\":\"root\",\"lookup\":\"an://site%d\",\"multiaddrs\":[\"/ip4/198.51.100.7/tcp/4001\"]}\n", i }' \
	>"$tmp/partial.json"
an-sign -k "$tmp/key" <"$tmp/partial.json" >"$tmp/signed.json"
lines=$(wc -l <"$tmp/signed.json")
[ "$lines" -eq "$n" ] || { echo "records.sh: expected $n records, got $lines" >&2; exit 1; }

jobs=$(nproc)
sign=() verify1=() verifyj=() raw_sign=() raw_verify=()
for _ in $(seq "$runs"); do
	sign+=("$(timed_rate an-sign -k "$tmp/key" --resign)")
	verify1+=("$(timed_rate an-verify -q -j 1)")
	verifyj+=("$(timed_rate an-verify -q)")
	raw=$("$bin/sodium_rate" 20000)
	raw_sign+=("$(field sign_per_s "$raw")")
	raw_verify+=("$(field verify_per_s "$raw")")
done
awk -v n="$n" -v runs="$runs" -v jobs="$jobs" -v s="$(best "${sign[@]}")" \
	-v v1="$(best "${verify1[@]}")" -v vj="$(best "${verifyj[@]}")" \
	-v rs="$(best "${raw_sign[@]}")" -v rv="$(best "${raw_verify[@]}")" 'BEGIN {
	printf "{\"bench\":\"records\",\"records\":%d,\"runs\":%d,\"jobs\":%d,", n, runs, jobs
	printf "\"raw_sign_per_s\":%d,\"raw_verify_per_s\":%d,", rs, rv
	printf "\"sign_per_s\":%d,\"verify_j1_per_s\":%d,\"verify_per_s\":%d,", s, v1, vj
	printf "\"sign_ratio\":%.3f,\"verify_j1_ratio\":%.3f,\"verify_ratio\":%.3f,\"verify_target\":0.9}\n",
		s / rs, v1 / rv, vj / rv
	exit (vj / rv >= 0.9 ? 0 : 1) }'
