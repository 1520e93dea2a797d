#!/usr/bin/env bats
# The DHT simulator (sim/dhtsim, bench/README.md "DHT simulator"): a small
# network over the real routing, lookup, kad_server and validate code gives
# sane figures.  Each run is a few seconds.

bats_require_minimum_version 1.5.0

setup_file() {
	local top an bdir
	top=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	[ -z "${DHTSIM:-}" ] || return 0
	# the simulator is not part of `make all`: build it in the build directory under test
	an=$(command -v an-dht) || { echo "an-dht is not on PATH (put BUILDDIR/bin first)" >&2; return 1; }
	bdir=$(cd "$(dirname "$an")/.." && pwd)
	case $bdir in
	"$top"/*) ;;
	*) echo "$bdir is not a build directory of $top" >&2; return 1 ;;
	esac
	make -s -C "$top" BUILDDIR="${bdir#"$top"/}" sim >/dev/null
	export DHTSIM=$bdir/sim/dhtsim
}

# sim ARGS...: run the simulator quietly, bounded in time.
sim() {
	run --separate-stderr timeout 60 "$DHTSIM" --quiet --seed 7 "$@"
	[ "$status" -eq 0 ] || { echo "dhtsim exited $status: $stderr"; return 1; }
}

# line SCENARIO: the JSON line of that scenario from $output.
line() { jq -c "select(.scenario == \"$1\")" <<<"$output"; }

@test "500 nodes, no adversary: every lookup ends at the closest live node within log2(N/k)+1 hops" {
	sim --nodes 500 --lookups 100
	[ "$(line setup | jq .table_entries_mean)" != null ]
	line lookups | jq -e '.lookups == 100 and .success == 1 and .hops_p50 >= 1
		and .hops_p99 <= (.log2_n_over_k | floor) + 1 and .latency_ms_p50 > 0
		and .requests_per_lookup > 3' || { line lookups; false; }
}

@test "500 nodes, no adversary: every published name is held by 20 honest nodes and every resolver gets it" {
	sim --nodes 500 --lookups 0 --names 10 --resolvers 3
	line names | jq -e '.put_acks_mean == 20 and .honest_holders_mean == 20
		and .get_success == 1 and .censored == 0' || { line names; false; }
}

@test "20 Sybils ground next to each name on one /24 censor every name with the defences off" {
	sim --nodes 500 --lookups 0 --names 10 --resolvers 3 --sybils 200 --subnets 1 --defences off
	line names | jq -e '.put_acks_mean == 20 and .honest_holders_mean == 0
		and .censored == 1' || { line names; false; }
}

@test "with the defences on, the same 20 Sybils per name on one /24 or on 16 /24s censor no name" {
	sim --nodes 500 --lookups 0 --names 10 --resolvers 3 --sybils 200 --subnets 1
	[ "$(line setup | jq -r .defences)" != none ] || skip "this code has no Sybil defences"
	line names | jq -e '.honest_holders_mean >= 10 and .get_success == 1 and .censored == 0' ||
		{ line names; false; }
	sim --nodes 500 --lookups 0 --names 10 --resolvers 3 --sybils 200 --subnets 16
	line names | jq -e '.honest_holders_mean >= 10 and .get_success == 1 and .censored == 0' ||
		{ line names; false; }
}
