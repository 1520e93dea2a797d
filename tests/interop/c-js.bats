#!/usr/bin/env bats
# c-js.bats: the C node against unmodified js-libp2p, both directions, and C
# to C over the same cases (issue 3): handshake, identify (each side sees the
# other's protocols, listen addresses and agent), 100 pings, a 64 MiB echo
# with checksums, 200 concurrent streams on one connection, half-close and
# reset from either side, both sides dialing each other at once; and the
# an-dht programs (daemon, ping, id) against js.
#
# The C peer is tests/tools/an-testpeer, which takes the flags of
# tests/interop/js/peer.mjs and prints the same JSON lines (README.md).
# js-js.bats runs the same cases js to js, so a failure here that is not
# there is the C node's.  Only 127.0.0.1 and port 0; every process is bounded
# (--serve-for, --timeout, timeout(1)) and killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/interop

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	local bin
	bin=$(command -v an-dht) || { echo "an-dht is not on PATH" >&2; return 1; }
	export AN_TESTPEER=${AN_TESTPEER:-$(dirname "$bin")/../tests/tools/an-testpeer}
	[ -x "$AN_TESTPEER" ] || { echo "no C test peer at $AN_TESTPEER" >&2; return 1; }
}

setup() {
	PEER="$AN_TOP/tests/interop/js/peer.mjs"
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
}

teardown() {
	stop_all
}

# The cases are tests/lib/interop.bash's check_CASE DIALER LISTENER, the
# same functions js-js.bats calls.

# ---- C dials js

@test "C dials js: the handshake authenticates both peer IDs" { check_handshake c js; }
@test "C dials js: a dial to the wrong /p2p/ peer ID fails" { check_wrong_peer_id c js; }
@test "C dials js: C sees js's protocols, listen addresses and agent" { check_identify_dialer_view c js; }
@test "C dials js: js sees C's protocols, listen addresses and agent" { check_identify_listener_view c js; }
@test "C dials js: 100 pings all answered" { check_pings c js; }
@test "C dials js: a 64 MiB stream is echoed back with the same sha256" { check_echo_64mib c js; }
@test "C dials js: 200 concurrent echo streams on one connection" { check_streams_200 c js; }
@test "C dials js: after C half-closes it still reads the whole echo" { check_half_close c js; }
@test "C dials js: C resets a stream, js sees it, the connection survives" { check_reset_by_dialer c js; }
@test "C dials js: js resets a stream, C sees it, the connection survives" { check_reset_by_listener c js; }

# ---- js dials C

@test "js dials C: the handshake authenticates both peer IDs" { check_handshake js c; }
@test "js dials C: a dial to the wrong /p2p/ peer ID fails" { check_wrong_peer_id js c; }
@test "js dials C: js sees C's protocols, listen addresses and agent" { check_identify_dialer_view js c; }
@test "js dials C: C sees js's protocols, listen addresses and agent" { check_identify_listener_view js c; }
@test "js dials C: 100 pings all answered" { check_pings js c; }
@test "js dials C: a 64 MiB stream is echoed back with the same sha256" { check_echo_64mib js c; }
@test "js dials C: 200 concurrent echo streams on one connection" { check_streams_200 js c; }
@test "js dials C: after js half-closes it still reads the whole echo" { check_half_close js c; }
@test "js dials C: js resets a stream, C sees it, the connection survives" { check_reset_by_dialer js c; }
@test "js dials C: C resets a stream, js sees it, the connection survives" { check_reset_by_listener js c; }

# ---- both at once

@test "C and js dial each other at once: both connections work" { check_simultaneous_dial c js; }
@test "C and C dial each other at once: both connections work" { check_simultaneous_dial c c; }

# ---- C dials C

@test "C dials C: the handshake authenticates both peer IDs" { check_handshake c c; }
@test "C dials C: a dial to the wrong /p2p/ peer ID fails" { check_wrong_peer_id c c; }
@test "C dials C: the dialer sees the listener's protocols, listen addresses and agent" { check_identify_dialer_view c c; }
@test "C dials C: the listener sees the dialer's protocols, listen addresses and agent" { check_identify_listener_view c c; }
@test "C dials C: 100 pings all answered" { check_pings c c; }
@test "C dials C: a 64 MiB stream is echoed back with the same sha256" { check_echo_64mib c c; }
@test "C dials C: 200 concurrent echo streams on one connection" { check_streams_200 c c; }
@test "C dials C: after a half-close the dialer still reads the whole echo" { check_half_close c c; }
@test "C dials C: a reset by the dialer reaches the listener, the connection survives" { check_reset_by_dialer c c; }
@test "C dials C: a reset by the listener reaches the dialer, the connection survives" { check_reset_by_listener c c; }

# ---- the an-dht programs against js

@test "an-dht ping: 100 pings to a js peer, one JSON line each" {
	start_listener js a
	run --separate-stderr timeout 60 an-dht ping -c 100 -t 30 "$LISTEN_ADDR"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 100 ]
	jq -e . <<<"$output" >/dev/null
}

@test "an-dht id: a js peer's protocols, listen addresses and agent" {
	start_listener js a
	run --separate-stderr timeout 60 an-dht id -t 30 "$LISTEN_ADDR"
	[ "$status" -eq 0 ]
	[ "$(jq -r .agentVersion <<<"$output")" = js-a ]
	[ "$(jq -r '.protocols | index("/ipfs/ping/1.0.0") != null' <<<"$output")" = true ]
	[ "$(jq -r '.listenAddrs[0]' <<<"$output")" = "${LISTEN_ADDR%/p2p/*}" ]
}

@test "an-dht daemon: js dials it, identifies it and pings it" {
	spawn_node d -k "$T/daemon.key" --listen /ip4/127.0.0.1/tcp/0
	node_ready d 20
	LISTEN_ADDR=$NODE_ADDR
	dial js --identify --ping 10
	[ "$status" -eq 0 ]
	[ "$(ev identify .peerId)" = "$NODE_PEER" ]
	[ "$(ev identify '.protocols | index("/ipfs/ping/1.0.0") != null')" = true ]
	[ "$(ev ping-summary .ok)" -eq 10 ]
}
