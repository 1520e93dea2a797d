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

# table_has PEER_ID: 0 if the C node's routing table lists PEER_ID, 1 if it
# does not, 2 (with a message) if `an-dht peers` failed or the C daemon is
# gone: a crashed node has an empty table, which proves nothing.
table_has() {
	local t
	alive "$(cat "$NET/c.pid")" || { echo "the C daemon is gone:" >&2; cat "$NET/c.err" >&2; return 2; }
	t=$(node_peers c) || { echo "an-dht peers failed" >&2; return 2; }
	grep -qF -- "$1" <<<"$t" || return 1
}

# in_table PEER_ID SECONDS: poll until the C node's table lists PEER_ID.
in_table() {
	local deadline=$((SECONDS + $2)) rc
	while :; do
		rc=0
		table_has "$1" || rc=$?
		[ "$rc" -ne 0 ] || return 0
		[ "$rc" -eq 1 ] || return 1
		[ "$SECONDS" -lt "$deadline" ] || { echo "$1 not in the table after $2 s" >&2; return 1; }
		sleep 0.2
	done
}

# out_of_table PEER_ID SECONDS: poll until the table no longer lists PEER_ID.
out_of_table() {
	local deadline=$((SECONDS + $2)) rc
	while :; do
		rc=0
		table_has "$1" || rc=$?
		[ "$rc" -ne 1 ] || return 0
		[ "$rc" -eq 0 ] || return 1
		[ "$SECONDS" -lt "$deadline" ] || { echo "$1 still in the table after $2 s" >&2; return 1; }
		sleep 0.2
	done
}

# stays_out PEER_ID SECONDS: a negative check: the table never lists
# PEER_ID in SECONDS (polled; fails at once if it does, or if the node dies).
stays_out() {
	local deadline=$((SECONDS + $2)) rc
	while [ "$SECONDS" -lt "$deadline" ]; do
		rc=0
		table_has "$1" || rc=$?
		[ "$rc" -eq 1 ] || { [ "$rc" -ne 0 ] || echo "$1 is in the table" >&2; return 1; }
		sleep 0.2
	done
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
	# identify runs within a second of the connection: 3 s and it is still out
	stays_out "$JSID" 3
}

@test "a js peer switching to server mode is added; back to client mode, removed" {
	stays_out "$JSID" 1
	echo server >&8
	wait_for "$NET/js.out" '"mode":"server"' 10
	in_table "$JSID" 10
	echo client >&8
	wait_for "$NET/js.out" '"mode":"client"' 10
	out_of_table "$JSID" 10
	alive "$(cat "$NET/c.pid")"
}
