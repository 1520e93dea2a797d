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

@test "js dials js: the handshake authenticates both peer IDs" {
	start_listener js a
	dial js --ping 1
	[ "$status" -eq 0 ]
	[ "$(ev connected .remotePeer)" = "$LISTEN_ID" ]
	dialer_id=$(ev connected .peerId)
	wait_for "$T/a.out" '"event":"connection","direction":"inbound"' 10
	[ "$(jq -r 'select(.event == "connection") | .peerId' "$T/a.out")" = "$dialer_id" ]
}

@test "js dials js: a dial to the wrong /p2p/ peer ID fails" {
	start_listener js a
	start_listener js b
	wrong=${LISTEN_ADDR%/p2p/*}/p2p/$(jq -r 'select(.event == "listening") | .peerId' "$T/a.out")
	LISTEN_ADDR=$wrong
	dial js --ping 1 --timeout 10
	[ "$status" -eq 4 ]
	[ "$(ev error .action)" = dial ]
}

@test "js dials js: the dialer's identify shows the listener's protocols, addresses and agent" {
	start_listener js a
	dial js --identify
	[ "$status" -eq 0 ]
	[ "$(ev identify .peerId)" = "$LISTEN_ID" ]
	[ "$(ev identify .agentVersion)" = js-a ]
	[ "$(ev identify '.protocols | index("/ipfs/ping/1.0.0") != null')" = true ]
	[ "$(ev identify '.protocols | index("/ipfs/id/1.0.0") != null')" = true ]
	[ "$(ev identify '.protocols | index("/an/test/echo/1.0.0") != null')" = true ]
	[ "$(ev identify '.listenAddrs[0]')" = "${LISTEN_ADDR%/p2p/*}" ]
	[[ "$(ev identify .observedAddr)" == /ip4/127.0.0.1/tcp/* ]]
}

@test "js dials js: the listener's identify shows the dialer's protocols, addresses and agent" {
	start_listener js a
	dial js --identify
	[ "$status" -eq 0 ]
	wait_for "$T/a.out" '"event":"peer-identify"' 10
	id=$(jq -c 'select(.event == "peer-identify")' "$T/a.out" | head -1)
	[ "$(jq -r .peerId <<<"$id")" = "$(ev connected .peerId)" ]
	[ "$(jq -r .agentVersion <<<"$id")" = js-dialer ]
	[ "$(jq -r '.protocols | index("/ipfs/ping/1.0.0") != null' <<<"$id")" = true ]
	[[ "$(jq -r '.listenAddrs[0]' <<<"$id")" == /ip4/127.0.0.1/tcp/* ]]
}

@test "js dials js: 100 pings all answered" {
	start_listener js a
	dial js --ping 100
	[ "$status" -eq 0 ]
	[ "$(grep -c '"event":"ping",' <<<"$output")" -eq 100 ]
	[ "$(ev ping-summary .ok)" -eq 100 ]
}

@test "js dials js: a 64 MiB stream is echoed back with the same sha256" {
	start_listener js a
	dial js --echo 67108864
	[ "$status" -eq 0 ]
	[ "$(ev echo .recvBytes)" -eq 67108864 ]
	[ "$(ev echo .sentSha256)" = "$(ev echo .recvSha256)" ]
	[ "$(ev echo .ok)" = true ]
}

@test "js dials js: 200 concurrent echo streams on one connection" {
	start_listener js a --quiet
	dial js --streams 200
	[ "$status" -eq 0 ]
	[ "$(ev streams .ok)" -eq 200 ]
	[ "$(ev streams .failed)" -eq 0 ]
	[ "$(grep -c '"event":"connected"' <<<"$output")" -eq 1 ]
}

@test "js dials js: after a half-close the dialer still reads the whole echo" {
	start_listener js a
	dial js --half-close
	[ "$status" -eq 0 ]
	[ "$(ev half-close .writeStatusAfterClose)" = closed ]
	[ "$(ev half-close .recvAfterClose)" -eq 65536 ]
	[ "$(ev half-close .sentSha256)" = "$(ev half-close .recvSha256)" ]
}

@test "js dials js: a reset from the dialer reaches the listener and the connection survives" {
	start_listener js a
	dial js --reset
	[ "$status" -eq 0 ]
	[ "$(ev reset .connectionStatus)" = open ]
	[ "$(ev reset .echoAfter)" = true ]
	[ "$(ev reset .pingAfter)" = true ]
	wait_for "$T/a.out" '"protocol":"/an/test/echo/1.0.0".*"result":"reset"' 10
}

@test "js dials js: a reset from the listener reaches the dialer and the connection survives" {
	start_listener js a
	dial js --remote-reset
	[ "$status" -eq 0 ]
	[ "$(ev remote-reset .sawReset)" = true ]
	[ "$(ev remote-reset .echoAfter)" = true ]
	[ "$(ev remote-reset .pingAfter)" = true ]
}

@test "js and js dial each other at once: both connections work" {
	# Each waits for the other's address in a file, then dials at once.
	start_peer js a --listen /ip4/127.0.0.1/tcp/0 --dial "@$T/b.addr" --ping 3 --identify --serve-for 10
	start_peer js b --listen /ip4/127.0.0.1/tcp/0 --dial "@$T/a.addr" --ping 3 --identify --serve-for 10
	wait_for "$T/a.out" '"event":"listening"' 20
	wait_for "$T/b.out" '"event":"listening"' 20
	jq -r 'select(.event == "listening") | .addrs[0]' "$T/a.out" >"$T/a.tmp"
	jq -r 'select(.event == "listening") | .addrs[0]' "$T/b.out" >"$T/b.tmp"
	mv "$T/a.tmp" "$T/a.addr"
	mv "$T/b.tmp" "$T/b.addr"
	wait_for "$T/a.out" '"event":"(done|error)"' 60
	wait_for "$T/b.out" '"event":"(done|error)"' 60
	for p in a b; do
		[ "$(jq -r 'select(.event == "done") | .ok' "$T/$p.out")" = true ]
		[ "$(jq -r 'select(.event == "ping-summary") | .ok' "$T/$p.out")" -eq 3 ]
	done
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' "$T/a.out")" = js-b ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' "$T/b.out")" = js-a ]
}

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
