#!/usr/bin/env bats
# an-dht daemons when the network is not there yet: a daemon whose
# bootstrap peer is down retries with a backoff (1 s doubling to 60 s,
# jittered) instead of waiting for the next routing refresh (10 min), and
# joins once the peer comes up.  Every daemon is killed in teardown; every
# wait is bounded.

bats_require_minimum_version 1.5.0

# wait_for FILE ERE SECONDS
wait_for() {
	local file=$1 re=$2 deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out waiting for /$re/ in $file" >&2
	return 1
}

# start_node NAME [ARGS...]: a daemon in $NET/NAME; its address (with /p2p/)
# in $NET/NAME.addr, its peer ID in $NET/NAME.id
start_node() {
	local name=$1
	shift
	an-dht daemon -s "$NET/$name" "$@" >"$NET/$name.out" 2>>"$NET/$name.err" &
	echo $! >"$NET/$name.pid"
	echo $! >>"$NET/pids"
	wait_for "$NET/$name.out" '"event":"ready"' 10 || return 1
	jq -r '.addrs[0]' "$NET/$name.out" >"$NET/$name.addr"
	jq -r '.peerId' "$NET/$name.out" >"$NET/$name.id"
}

stop_node() {
	local pid
	pid=$(cat "$NET/$1.pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null || true
}

# in_table NODE PEER_ID SECONDS: poll NODE's routing table for PEER_ID
in_table() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		timeout 10 an-dht peers -t 5s -s "$NET/$1" | grep -qF -- "$2" && return 0
		sleep 0.2
	done
	return 1
}

setup() {
	export NET=$BATS_TEST_TMPDIR/net
	mkdir -p "$NET"
	: >"$NET/pids"
	export AN_STATE_DIR=$NET/nostate
	# no help from the refresh: only the bootstrap retry can find the peer
	export AN_KAD_REFRESH_INTERVAL=600s
}

teardown() {
	local pid
	while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$NET/pids"
	while read -r pid; do wait "$pid" 2>/dev/null || true; done <"$NET/pids"
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
