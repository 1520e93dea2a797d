#!/usr/bin/env bats
# js-js.bats: proves the interop harness itself.  An unmodified js-libp2p
# listener and an unmodified js-libp2p dialer (tests/interop/js/peer.mjs) run
# every case that c-js.bats runs against the C node: handshake, identify both
# ways, 100 pings, a 64 MiB echo with checksums, 200 concurrent streams,
# half-close, reset from either side, simultaneous dial.  If one of these
# fails, the harness (or the pinned js set) is broken, not the C node.
#
# Only 127.0.0.1 and port 0.  Every process is started with a bounded
# --serve-for / --timeout and killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/interop

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup"
}

setup() {
	PEER="$AN_TOP/tests/interop/js/peer.mjs"
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
	DIAL_TIMEOUT=40 DIAL_LIMIT=90
}

teardown() {
	stop_all
}

# The cases c-js.bats runs, with the same functions (tests/lib/interop.bash).

@test "js dials js: the handshake authenticates both peer IDs" { check_handshake js js; }
@test "js dials js: a dial to the wrong /p2p/ peer ID fails" { check_wrong_peer_id js js; }
@test "js dials js: the dialer's identify shows the listener's protocols, addresses and agent" { check_identify_dialer_view js js; }
@test "js dials js: the listener's identify shows the dialer's protocols, addresses and agent" { check_identify_listener_view js js; }
@test "js dials js: 100 pings all answered" { check_pings js js; }
@test "js dials js: a 64 MiB stream is echoed back with the same sha256" { check_echo_64mib js js; }
@test "js dials js: 200 concurrent echo streams on one connection" { check_streams_200 js js; }
@test "js dials js: after a half-close the dialer still reads the whole echo" { check_half_close js js; }
@test "js dials js: a reset from the dialer reaches the listener and the connection survives" { check_reset_by_dialer js js; }
@test "js dials js: a reset from the listener reaches the dialer and the connection survives" { check_reset_by_listener js js; }
@test "js and js dial each other at once: both connections work" { check_simultaneous_dial js js; }

# ---- the js peer's own options

@test "js peer: --key keeps the same peer ID across runs" {
	start_listener js a --serve-for 1
	first=$LISTEN_ID
	run timeout 30 node "$PEER" --key "$T/a.key" --listen /ip4/127.0.0.1/tcp/0 --serve-for 1
	[ "$status" -eq 0 ]
	[ "$(jq -r 'select(.event == "listening") | .peerId' <<<"$output")" = "$first" ]
}

@test "js peer: --dht serves kad on /an/kad/1.0.0" {
	start_listener js a --dht
	dial js --identify
	[ "$status" -eq 0 ]
	[ "$(ev identify '.protocols | index("/an/kad/1.0.0") != null')" = true ]
	[ "$(ev identify '.protocols | index("/ipfs/kad/1.0.0") != null')" = false ]
}

@test "js peer: --dht stores an /an/ record put by one peer and serves it to another" {
	start_listener js a --dht
	node "$AN_TOP/tests/interop/js/dht-sign.mjs" -k "$T/pub.key" --name example >"$T/rec.json"
	local key
	key=/an/$(jq -r '.lookup | ltrimstr("an://")' "$T/rec.json")
	dial js --dht --dht-put "$key" --dht-value "$T/rec.json"
	[ "$status" -eq 0 ]
	[ "$(ev dht-put '.storedAt[0]')" = "$LISTEN_ID" ]
	run --separate-stderr timeout 90 node "$PEER" --timeout 40 --dial "$LISTEN_ADDR" \
		--dht --dht-get "$key"
	[ "$status" -eq 0 ]
	[ "$(ev dht-get .value)" = "$(cat "$T/rec.json")" ]
}

@test "js peer: --dht rejects an /an/ value the an validator refuses" {
	start_listener js a --dht
	printf 'not json' >"$T/bad.json"
	dial js --dht --dht-put /an/aaaaaaaaaaaaaaaa@example --dht-value "$T/bad.json"
	[ "$status" -eq 1 ]
	[ "$(ev dht-put '.storedAt | length')" -eq 0 ]
}
