#!/usr/bin/env bats
# Bare-name claims (an-dht(1), BARE-NAME CLAIMS): a claim carries a proof of
# work bound to the claimant's key and the name; storing nodes keep
# established claimants against a flood of fresh keys, and a publisher
# whose claim was refused is told, in its output and its exit status.  A
# private network of daemons on 127.0.0.1 requiring AN_CLAIM_BITS=8; every
# daemon is killed in teardown; every wait is bounded.

bats_require_minimum_version 1.5.0
load ../lib/common

N=5
THROWAWAYS=20

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	export AN_CLAIM_BITS=8
	start_network "$N" -q
	an-keygen -k "$NET/real.key" >"$NET/real.id"
	export REAL=$(jq -r .peerHash "$NET/real.id")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# publish KEY NAME [an-dht args...]: sign a root record for NAME with KEY and
# put it from an in-process node with that key; output and status in run's.
publish() {
	local key=$1 name=$2
	shift 2
	an-sign -k "$key" --name "$name" --type root --addr /ip4/127.0.0.1/tcp/4001 >"$T/$name.json"
	run --separate-stderr timeout 30 an-dht put -k "$key" -s "$T/pub" --bootstrap "$BOOT" "$@" \
		<"$T/$name.json"
}

@test "the first publisher of a name is told its claim was stored" {
	publish "$NET/real.key" mysite
	[ "$status" -eq 0 ]
	[ "$(jq -r .claim <<<"$output")" = stored ]
	[ "$(jq -r .stored <<<"$output")" -ge 1 ]
}

@test "$THROWAWAYS throwaway keys claiming the name: refused claims exit 1 and say so" {
	local t refused=0 claim
	# first-seen times are whole seconds and equal ones rank by peer ID: the
	# flood comes after the second in which the real claim was first seen
	sleep 1.1
	for ((t = 1; t <= THROWAWAYS; t++)); do
		an-keygen -k "$T/t$t.key" >/dev/null
		publish "$T/t$t.key" mysite
		claim=$(jq -r .claim <<<"$output")
		case $claim in
		stored) [ "$status" -eq 0 ] || { echo "t$t: stored but exit $status" >&2; return 1; } ;;
		refused)
			[ "$status" -eq 1 ] || { echo "t$t: refused but exit $status" >&2; return 1; }
			[[ $stderr == *"claim was refused"* ]] || { echo "t$t: $stderr" >&2; return 1; }
			refused=$((refused + 1))
			;;
		*) echo "t$t: no claim in '$output' (exit $status): $stderr" >&2; return 1 ;;
		esac
		# the record itself is stored either way
		[ "$(jq -r .stored <<<"$output")" -ge 1 ]
	done
	# each node keeps 20 claimants: the real one and 19 throwaways at most
	[ "$refused" -ge 1 ]
}

@test "after the flood the providers of the name still list the real publisher first" {
	local n
	for ((n = 0; n < N; n++)); do
		run --separate-stderr an-dht providers -s "$NET/n$n" mysite
		[ "$status" -eq 0 ]
		[ "$(jq -r .peerHash <<<"${lines[0]}")" = "$REAL" ] ||
			{ echo "n$n lists first: ${lines[0]}; in all: $(jq -r .peerHash <<<"$output" | tr '\n' ' ')" >&2; return 1; }
	done
}

@test "a refused claim through the daemon is in its reply and exit status" {
	# n1 publishes under its own identity: the name's lists are full
	an-sign -k "$NET/n1/identity.key" --name mysite --type root \
		--addr /ip4/127.0.0.1/tcp/4001 >"$T/d.json"
	run --separate-stderr timeout 30 an-dht put -s "$NET/n1" <"$T/d.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .claim <<<"$output")" = refused ]
	[[ $stderr == *"claim was refused"* ]]
}

@test "a new name with the claim paid is stored from a fresh key" {
	an-keygen -k "$T/new.key" >/dev/null
	publish "$T/new.key" othersite
	[ "$status" -eq 0 ]
	[ "$(jq -r .claim <<<"$output")" = stored ]
}
