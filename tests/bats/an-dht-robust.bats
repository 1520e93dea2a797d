#!/usr/bin/env bats
# an-dht daemons when the network is not there yet: a daemon whose
# bootstrap peer is down retries with a backoff (1 s doubling to 60 s,
# jittered) instead of waiting for the next routing refresh (10 min), and
# joins once the peer comes up.  Every daemon is killed in teardown; every
# wait is bounded.

bats_require_minimum_version 1.5.0
load ../lib/common

# table_has NODE PEER_ID: 0 if NODE's routing table lists PEER_ID, 1 if it
# does not, 2 (with a message) if `an-dht peers` itself failed: a dead or
# deaf daemon is not an empty table.
table_has() {
	local t
	t=$(node_peers "$1") || { echo "an-dht peers on $1 failed" >&2; return 2; }
	grep -qF -- "$2" <<<"$t" || return 1
}

# in_table NODE PEER_ID SECONDS: poll until NODE's table lists PEER_ID; fail
# at once if `an-dht peers` fails, or after SECONDS.
in_table() {
	local deadline=$((SECONDS + $3)) rc
	while :; do
		rc=0
		table_has "$1" "$2" || rc=$?
		[ "$rc" -ne 2 ] || return 1
		[ "$rc" -ne 0 ] || return 0
		[ "$SECONDS" -lt "$deadline" ] || { echo "$2 not in $1's table after $3 s" >&2; return 1; }
		sleep 0.2
	done
}

# count_at_least FILE ERE N SECONDS: poll until N lines of FILE match ERE.
count_at_least() {
	local deadline=$((SECONDS + $4))
	until [ "$(grep -cE -- "$2" "$1" 2>/dev/null)" -ge "$3" ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "fewer than $3 /$2/ in $1" >&2; return 1; }
		sleep 0.05
	done
}

# absent_for FILE ERE SECONDS: a negative check: fail as soon as a line of
# FILE matches ERE; pass if none has after SECONDS.
absent_for() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if grep -E -- "$2" "$1"; then
			echo "/$2/ appeared in $1" >&2
			return 1
		fi
		sleep 0.1
	done
}

setup() {
	export NET=$BATS_TEST_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	# no help from the refresh: only the bootstrap retry can find the peer
	export AN_KAD_REFRESH_INTERVAL=600s
}

teardown() {
	stop_all KILL
}

@test "a daemon started before its bootstrap peer joins it once the peer comes up" {
	# the seed's identity and port, then the seed goes away
	start_node seed
	stop_node seed
	local addr id
	addr=$(cat "$NET/seed.addr")
	id=$(cat "$NET/seed.id")
	start_node late --bootstrap "$addr"
	# its first bootstrap found nobody, and it says it will try again
	wait_for "$NET/late.err" 'bootstrap: no peer reached' 10
	run table_has late "$id"
	[ "$status" -eq 1 ]
	# a retry failed too (a join below is a later retry, not the first try)
	count_at_least "$NET/late.err" 'bootstrapping again' 2 10
	run table_has late "$id"
	[ "$status" -eq 1 ]
	# the seed comes back on the same address, bootstrapping from nobody
	start_node seed --listen "${addr%/p2p/*}"
	# retries at about 1, 2, 4, 8 s: well within 20 s
	in_table late "$id" 20
}

@test "a daemon whose bootstrap peer answers at once does not keep bootstrapping" {
	start_node seed
	local addr id
	addr=$(cat "$NET/seed.addr")
	id=$(cat "$NET/seed.id")
	start_node joined --bootstrap "$addr"
	in_table joined "$id" 10
	# a retry would come within about 1 s (then 2 s): none in 3 s
	absent_for "$NET/joined.err" 'bootstrapping again' 3
	alive "$(cat "$NET/joined.pid")"
	run table_has joined "$id"
	[ "$status" -eq 0 ]
}
