#!/usr/bin/env bats
# relay.bats: an-relay between unmodified js-libp2p nodes using
# @libp2p/circuit-relay-v2's transport (js/relay-peer.mjs).  js node B
# reserves a slot on our relay and listens on its /p2p-circuit address; js
# node A dials B through the relay, pings it and echoes data; the relay's
# data limit ends a circuit; an unlimited relay carries a 4 MiB echo (splice
# backpressure); CONNECT to a peer without a reservation is NO_RESERVATION.
#
# The C client (tests/tools/an-testpeer --reserve / --dial .../p2p-circuit/...)
# against js in both directions: C reserves on a js relay (js-libp2p's
# circuitRelayServer, relay-peer.mjs --relay) and js dials C through it; C
# dials js through a js relay; C dials js through an-relay and js dials C
# through an-relay.  Each runs identify, pings and a 3 MiB echo compared by
# sha256 over the relayed connection.
# Only 127.0.0.1 and port 0; every process is bounded (--serve-for,
# --timeout, timeout(1)) and killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	local bin
	bin=$(command -v an-relay) || { echo "an-relay is not on PATH" >&2; return 1; }
	export AN_TESTPEER=${AN_TESTPEER:-$(dirname "$bin")/../tests/tools/an-testpeer}
	[ -x "$AN_TESTPEER" ] || { echo "no C test peer at $AN_TESTPEER" >&2; return 1; }
}

setup() {
	JS="$AN_TOP/tests/interop/js/relay-peer.mjs"
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
	an-keygen -k "$T/relay.sec" >/dev/null
}

teardown() {
	stop_all
}

# start_relay [an-relay options]: RELAY (pid), RADDR (its /p2p address).
start_relay() {
	bg relay an-relay -q -k "$T/relay.sec" "$@"
	RELAY=$BG_PID
	wait_for "$T/relay.out" '"event":"ready"' 10
	RADDR=$(jq -r '.addrs[0]' "$T/relay.out")
}

# start_target: js node B reserving on the relay; BADDR its circuit address.
start_target() {
	timeout 90 node "$JS" --key "$T/b.key" --reserve "$RADDR" --serve-for 60 >"$T/b.out" 2>"$T/b.err" &
	echo $! >>"$T/pids"
	wait_for "$T/b.out" '"event":"(reserved|error)"' 30
	BADDR=$(jq -r 'select(.event == "reserved") | .addrs[0]' "$T/b.out")
	[ -n "$BADDR" ] || { cat "$T/b.out" "$T/b.err"; return 1; }
}

# has FILTER [FILE]: some JSON line of FILE (or stdin) satisfies FILTER
# (jq -e with select looks only at the last line's result).
has() {
	jq -s -e "any(.[]; $1)" ${2:+"$2"} >/dev/null
}

# start_js_relay [relay-peer.mjs options]: a js-libp2p relay (circuitRelayServer);
# RELAY (pid), RADDR (its /p2p address).
start_js_relay() {
	bg relay timeout 90 node "$JS" --relay --serve-for 60 "$@"
	RELAY=$BG_PID
	wait_for "$T/relay.out" '"event":"listening"' 30
	RADDR=$(jq -r 'select(.event == "listening") | .addrs[0]' "$T/relay.out")
	[ -n "$RADDR" ] && [ "$RADDR" != null ] || { cat "$T/relay.out" "$T/relay.err"; return 1; }
}

# start_c_target: the C peer reserving on the relay; CADDR its circuit address.
start_c_target() {
	timeout 90 "$AN_TESTPEER" --key "$T/c.key" --reserve "$RADDR" --serve-for 60 --timeout 20 \
		>"$T/c.out" 2>"$T/c.err" &
	echo $! >>"$T/pids"
	wait_for "$T/c.out" '"event":"(reserved|error)"' 30
	CADDR=$(jq -r 'select(.event == "reserved") | .addrs[0]' "$T/c.out")
	[ -n "$CADDR" ] || { cat "$T/c.out" "$T/c.err"; return 1; }
}

# js_dials_c: js dials CADDR with identify, 3 pings and a 3 MiB echo; checks
# js's side (identify of the C peer over the relayed connection, pings, the
# echo's sha256) and C's (an inbound relayed connection, js identified).
js_dials_c() {
	run --separate-stderr timeout 90 node "$JS" --dial "$CADDR" --identify --ping 3 --echo 3145728 --timeout 40
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .remoteAddr' <<<"$output")" = "$CADDR" ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" = an-testpeer/0.1.0 ]
	has '.event == "identify" and (.protocols | index("/an/test/echo/1.0.0"))' <<<"$output"
	[ "$(jq -s '[.[] | select(.event == "ping")] | length' <<<"$output")" -eq 3 ]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ] || { echo "$output"; return 1; }
	local js
	js=$(jq -r 'select(.event == "connected") | .remoteAddr' <<<"$output")
	wait_for "$T/c.out" '"event":"served".*"bytes":3145728' 10
	has '.event == "connection" and .direction == "inbound" and .relayed == true' "$T/c.out"
	# C identified js over the relayed connection too
	has '.event == "peer-identify" and .direction == "inbound" and
		(.agentVersion | startswith("js-libp2p")) and
		(.protocols | index("/ipfs/ping/1.0.0"))' "$T/c.out" || { cat "$T/c.out"; return 1; }
}

# c_dials_js: C dials BADDR (js behind the relay) with identify, 3 pings and
# a 3 MiB echo; checks C's side and that js identified C.
c_dials_js() {
	run --separate-stderr timeout 90 "$AN_TESTPEER" --dial "$BADDR" --identify --ping 3 --echo 3145728 --timeout 40
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .remoteAddr' <<<"$output")" = "$BADDR" ]
	[ "$(jq -r 'select(.event == "connected") | .relayed' <<<"$output")" = true ]
	[[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" == js-libp2p/* ]]
	[ "$(jq -r 'select(.event == "identify") | .peerId' <<<"$output")" = "$(jq -r 'select(.event == "reserved") | .peerId' "$T/b.out")" ]
	[ "$(jq -s '[.[] | select(.event == "ping")] | length' <<<"$output")" -eq 3 ]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ] || { echo "$output"; return 1; }
	[ "$(jq -r 'select(.event == "done") | .ok' <<<"$output")" = true ]
	# js identified the C peer over the relayed connection
	has '.event == "peer-identify" and .agentVersion == "an-testpeer/0.1.0" and
		(.remoteAddr | contains("/p2p-circuit"))' "$T/b.out" || { cat "$T/b.out"; return 1; }
}

# relay_stats: the relay's counters (SIGUSR1) as one JSON line.
relay_stats() {
	local n
	n=$(grep -c '"event":"stats"' "$T/relay.out")
	kill -USR1 "$RELAY"
	local deadline=$((SECONDS + 5))
	until [ "$(grep -c '"event":"stats"' "$T/relay.out")" -gt "$n" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
	grep '"event":"stats"' "$T/relay.out" | tail -1
}

@test "js reserves on an-relay and listens on a /p2p-circuit address through it" {
	start_relay
	start_target
	[ "$BADDR" = "$RADDR/p2p-circuit/p2p/$(jq -r .peerId "$T/b.out")" ]
	stats=$(relay_stats)
	[ "$(jq -r .reservations <<<"$stats")" -eq 1 ]
	[ "$(jq -r .reservationsAccepted <<<"$stats")" -ge 1 ]
}

@test "js dials js through an-relay: a limited connection, pings and an echo" {
	start_relay
	start_target
	run --separate-stderr timeout 60 node "$JS" --dial "$BADDR" --ping 3 --echo 20000
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .remoteAddr' <<<"$output")" = "$BADDR" ]
	[ "$(jq -r 'select(.event == "connected") | .limited' <<<"$output")" = true ]
	[ "$(jq -s '[.[] | select(.event == "ping")] | length' <<<"$output")" -eq 3 ]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ]
	stats=$(relay_stats)
	[ "$(jq -r .circuitsOpened <<<"$stats")" -ge 1 ]
	[ "$(jq -r .bytesRelayed <<<"$stats")" -ge 40000 ]
}

@test "the relay's data limit ends the circuit" {
	start_relay --circuit-data 64k
	start_target
	run --separate-stderr timeout 60 node "$JS" --dial "$BADDR" --echo 1048576 --timeout 20
	[ "$(jq -r 'select(.event == "connected") | .limited' <<<"$output")" = true ]
	has '.event == "echo-error"' <<<"$output" || { echo "$output"; return 1; }
	stats=$(relay_stats)
	[ "$(jq -r .circuitsLimited <<<"$stats")" -ge 1 ]
	[ "$(jq -r .bytesRelayed <<<"$stats")" -le $((2 * 65536 + 16384)) ]
}

@test "the relay's duration limit ends the circuit" {
	start_relay --circuit-duration 2s
	start_target
	run --separate-stderr timeout 60 node "$JS" --dial "$BADDR" --ping 1 --hold 10
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	after=$(jq -r 'select(.event == "closed") | .afterMs' <<<"$output")
	[ -n "$after" ] || { echo "$output"; return 1; }
	[ "$after" -le 5000 ]
	stats=$(relay_stats)
	[ "$(jq -r .circuitsLimited <<<"$stats")" -ge 1 ]
}

@test "an unlimited relay carries a 4 MiB echo and its connection is not limited" {
	start_relay --circuit-data 0 --circuit-duration 0
	start_target
	run --separate-stderr timeout 90 node "$JS" --dial "$BADDR" --echo 4194304 --timeout 60
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .limited' <<<"$output")" = false ]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ]
}

@test "CONNECT to a peer without a reservation is NO_RESERVATION" {
	start_relay
	an-keygen -k "$T/unreserved.sec" >"$T/unreserved.json"
	run --separate-stderr timeout 30 node "$JS" --dial "$RADDR" --hop-connect "$(jq -r .peerId "$T/unreserved.json")"
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "hop-status") | .status' <<<"$output")" = NO_RESERVATION ]
}

@test "js dialing a /p2p-circuit address of an unreserved peer fails with NO_RESERVATION" {
	start_relay
	an-keygen -k "$T/unreserved.sec" >"$T/unreserved.json"
	run --separate-stderr timeout 30 node "$JS" --dial "$RADDR/p2p-circuit/p2p/$(jq -r .peerId "$T/unreserved.json")"
	[ "$status" -eq 1 ]
	[[ "$(jq -r 'select(.event == "error") | .message' <<<"$output")" == *"NO_RESERVATION"* ]] ||
		[[ "$(jq -r 'select(.event == "error") | .message' <<<"$output")" == *"204"* ]] || { echo "$output"; return 1; }
}

@test "C reserves on a js relay and prints its /p2p-circuit address" {
	start_js_relay --relay-unlimited
	start_c_target
	[ "$CADDR" = "$RADDR/p2p-circuit/p2p/$(jq -r 'select(.event == "reserved") | .peerId' "$T/c.out")" ]
	[ "$(jq -r 'select(.event == "reserved") | .expire' "$T/c.out")" -gt "$(date +%s)" ]
}

@test "js dials C through a js relay: identify, pings, a 3 MiB echo" {
	start_js_relay --relay-unlimited
	start_c_target
	js_dials_c
	[ "$(jq -r 'select(.event == "connected") | .limited' <<<"$output")" = false ]
}

@test "C dials js through a js relay: identify, pings, a 3 MiB echo" {
	start_js_relay --relay-unlimited
	start_target
	c_dials_js
}

@test "C dials js through an-relay: identify, pings, a 3 MiB echo" {
	start_relay --circuit-data 0 --circuit-duration 0
	start_target
	c_dials_js
	stats=$(relay_stats)
	[ "$(jq -r .bytesRelayed <<<"$stats")" -ge $((2 * 3145728)) ]
}

@test "js dials C through an-relay: identify, pings, a 3 MiB echo" {
	start_relay --circuit-data 0 --circuit-duration 0
	start_c_target
	js_dials_c
	stats=$(relay_stats)
	[ "$(jq -r .reservations <<<"$stats")" -eq 1 ]
	[ "$(jq -r .bytesRelayed <<<"$stats")" -ge $((2 * 3145728)) ]
}

@test "a js relay's default limit: js sees a limited connection to C, identify and ping still run both ways" {
	start_js_relay
	start_c_target
	has '.event == "reserved" and .limit.data == 131072' "$T/c.out" || { cat "$T/c.out"; return 1; }
	run --separate-stderr timeout 60 node "$JS" --dial "$CADDR" --identify --ping 2 --echo 20000
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .limited' <<<"$output")" = true ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" = an-testpeer/0.1.0 ]
	[ "$(jq -s '[.[] | select(.event == "ping")] | length' <<<"$output")" -eq 2 ]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ]
	wait_for "$T/c.out" '"event":"peer-identify","direction":"inbound".*js-libp2p' 10
	has '.event == "circuit" and .limitData == 131072' "$T/c.out"
}

@test "C dials js through a js relay's default limit: pings and a small echo on the limited connection" {
	start_js_relay
	start_target
	run --separate-stderr timeout 60 "$AN_TESTPEER" --dial "$BADDR" --identify --ping 2 --echo 20000 --timeout 20
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .relayed' <<<"$output")" = true ]
	[[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" == js-libp2p/* ]]
	[ "$(jq -r 'select(.event == "echo") | .ok' <<<"$output")" = true ]
}

@test "C dialing a /p2p-circuit address of a peer without a reservation fails with NO_RESERVATION" {
	start_relay
	an-keygen -k "$T/unreserved.sec" >"$T/unreserved.json"
	run --separate-stderr timeout 30 "$AN_TESTPEER" --dial "$RADDR/p2p-circuit/p2p/$(jq -r .peerId "$T/unreserved.json")" --timeout 10
	[ "$status" -eq 4 ]
	[ "$(jq -r 'select(.event == "error") | .message' <<<"$output")" = NO_RESERVATION ]
}

@test "C refreshes its reservation before it expires: reachable after several lifetimes" {
	start_relay --reservation-ttl 3s
	start_c_target
	# wait (bounded) until the first reservation has expired and the relay
	# has accepted two refreshes; the first refresh came before that expiry
	# (at 1 s of the 3: a re-reservation after a lapse does not count)
	local first_expire accepted=0 early=0 deadline=$((SECONDS + 20))
	first_expire=$(jq -r 'select(.event == "reserved") | .expire' "$T/c.out")
	[ "$first_expire" -gt 0 ]
	until [ "$(date +%s)" -gt "$first_expire" ] && [ "$accepted" -ge 3 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "$accepted reservations accepted in 20 s" >&2; cat "$T/c.out"; return 1; }
		sleep 0.25
		accepted=$(relay_stats | jq -r .reservationsAccepted)
		[ "$(date +%s)" -ge "$first_expire" ] || [ "$accepted" -lt 2 ] || early=1
	done
	[ "$early" -eq 1 ] || { echo "no refresh before the first reservation expired" >&2; return 1; }
	run --separate-stderr timeout 60 node "$JS" --dial "$CADDR" --ping 1 --timeout 20
	[ "$status" -eq 0 ] || { echo "$output $stderr"; cat "$T/c.out"; return 1; }
	[ "$(jq -s '[.[] | select(.event == "ping")] | length' <<<"$output")" -eq 1 ]
	stats=$(relay_stats)
	[ "$(jq -r .reservationsAccepted <<<"$stats")" -ge 3 ]
}
