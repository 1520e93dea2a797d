#!/usr/bin/env bats
# an-dht daemons when the network is not there yet: a daemon whose
# bootstrap peer is down retries with a backoff (1 s doubling to 60 s,
# jittered) instead of waiting for the next routing refresh (10 min), and
# joins once the peer comes up.  Every daemon is killed in teardown; every
# wait is bounded.

bats_require_minimum_version 1.5.0
load ../lib/common

# in_table NODE PEER_ID SECONDS: poll NODE's routing table for PEER_ID
in_table() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		node_peers "$1" | grep -qF -- "$2" && return 0
		sleep 0.2
	done
	return 1
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
	# its first bootstrap found nobody
	wait_for "$NET/late.err" 'bootstrap' 10
	! in_table late "$id" 1
	sleep 2
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
	sleep 3
	run ! grep -F 'bootstrapping again' "$NET/joined.err"
}
