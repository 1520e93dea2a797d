#!/usr/bin/env bats
# A C DHT node follows a js-libp2p kad-dht peer that switches modes: the js
# node connects in client mode (not in the C node's routing table), switches
# to server mode (its identify push lists /an/kad/1.0.0: the C node adds
# it), then back to client mode (the push drops the protocol: the C node
# removes it).  js/dht-mode.mjs takes its commands on a fifo; every wait is
# bounded and every process killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

JS=$AN_TOP/tests/interop/js

# in_table PEER_ID WANT(0|1) SECONDS: poll the C node's table until PEER_ID
# is (1) or is not (0) in it
in_table() {
	local deadline=$((SECONDS + $3)) have
	while [ "$SECONDS" -lt "$deadline" ]; do
		have=0
		node_peers c | grep -qF -- "$1" && have=1
		[ "$have" -eq "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

setup_file() {
	"$AN_TOP/tests/interop/setup" || return 1
}

setup() {
	export NET=$BATS_TEST_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	start_node c -q
	mkfifo "$NET/cmd"
	# not bg: the fifo must be opened by the node, not by this shell (the
	# open blocks until the writer below opens it)
	node "$JS/dht-mode.mjs" --dial "$NODE_ADDR" --deadline 60 \
		<"$NET/cmd" >"$NET/js.out" 2>"$NET/js.err" &
	echo $! >>"$NET/pids"
	exec 8>"$NET/cmd" # keeps the fifo open: the js node reads commands from it
	wait_for "$NET/js.out" '"event":"connected"' 30
	JSID=$(jq -r 'select(.event == "connected") | .peerId' "$NET/js.out")
}

teardown() {
	exec 8>&- || true
	stop_all KILL
}

@test "a js peer in client mode stays out of the C node's table" {
	sleep 1 # identify has run
	in_table "$JSID" 0 1
}

@test "a js peer switching to server mode is added; back to client mode, removed" {
	in_table "$JSID" 0 1
	echo server >&8
	wait_for "$NET/js.out" '"mode":"server"' 10
	in_table "$JSID" 1 10
	echo client >&8
	wait_for "$NET/js.out" '"mode":"client"' 10
	in_table "$JSID" 0 10
}
