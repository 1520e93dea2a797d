#!/usr/bin/env bats
# tls.bats: the libp2p TLS certificate (libp2p/specs tls/tls.md) between our
# crypto/tls_cert.c and js-libp2p's @libp2p/tls (pinned in
# tests/interop/package.json): each side checks what the other makes, and
# refuses a certificate for another peer.  C side: tests/tools/an-tlscert;
# js side: tests/interop/js/tls-cert.mjs (generateCertificate,
# verifyPeerCertificate).
#
# Then /tls/1.0.0 over TCP on 127.0.0.1 against a js-libp2p node whose only
# connection encrypter is @libp2p/tls (tests/interop/js/tls-peer.mjs), both
# directions: the handshake with peer-ID checks, ping, identify and an echo
# checked byte for byte.  js dials an-testpeer (a C listener takes /tls/1.0.0
# after /noise); C dials with tests/tools/an-tlsdial (the host's dial_tls).
# Every process is bounded and stopped in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup"
}

setup() {
	JS=$AN_TOP/tests/interop/js
	bin=$(dirname "$(command -v an-keygen)")
	TLSCERT=${AN_TLSCERT:-$bin/../tests/tools/an-tlscert}
	TLSDIAL=${AN_TLSDIAL:-$bin/../tests/tools/an-tlsdial}
	TESTPEER=${AN_TESTPEER:-$bin/../tests/tools/an-testpeer}
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
}

teardown() {
	stop_all
}

# js_listener: tls-peer.mjs listening on 127.0.0.1:0; sets ADDR (with /p2p/).
js_listener() {
	bg js timeout 90 node "$JS/tls-peer.mjs" --listen /ip4/127.0.0.1/tcp/0 --serve-for 60
	wait_for "$RUNDIR/js.out" '"event":"listening"' 30
	ADDR=$(jq -r 'select(.event == "listening") | .addrs[0]' "$RUNDIR/js.out")
}

# c_listener: an-testpeer listening on 127.0.0.1:0; sets ADDR and ID.
c_listener() {
	bg c timeout 90 "$TESTPEER" --key "$T/c.key" --agent c-tls --listen /ip4/127.0.0.1/tcp/0 --serve-for 60
	wait_for "$RUNDIR/c.out" '"event":"listening"' 30
	ADDR=$(jq -r 'select(.event == "listening") | .addrs[0]' "$RUNDIR/c.out")
	ID=$(jq -r 'select(.event == "listening") | .peerId' "$RUNDIR/c.out")
}

@test "js-libp2p accepts a certificate made in C and names its peer" {
	run --separate-stderr "$TLSCERT" make
	[ "$status" -eq 0 ]
	c=$output
	run --separate-stderr timeout 60 node "$JS/tls-cert.mjs" verify "$(jq -r .der <<<"$c")" "$(jq -r .peerId <<<"$c")"
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$(jq -r .peerId <<<"$output")" = "$(jq -r .peerId <<<"$c")" ]
}

@test "js-libp2p refuses a certificate made in C for another peer" {
	run --separate-stderr "$TLSCERT" make
	[ "$status" -eq 0 ]
	c=$output
	run --separate-stderr "$TLSCERT" make
	other=$(jq -r .peerId <<<"$output")
	run --separate-stderr timeout 60 node "$JS/tls-cert.mjs" verify "$(jq -r .der <<<"$c")" "$other"
	[ "$status" -eq 1 ]
	[ "$(jq -r .error <<<"$output")" = UnexpectedPeerError ]
}

@test "C accepts a certificate js-libp2p made and names its peer" {
	run --separate-stderr timeout 60 node "$JS/tls-cert.mjs" gen
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	js=$output
	run --separate-stderr "$TLSCERT" verify "$(jq -r .der <<<"$js")" "$(jq -r .peerId <<<"$js")"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$(jq -r .peerId <<<"$output")" = "$(jq -r .peerId <<<"$js")" ]
}

@test "C refuses a certificate js-libp2p made for another peer, saying why" {
	run --separate-stderr timeout 60 node "$JS/tls-cert.mjs" gen
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	js=$output
	run --separate-stderr "$TLSCERT" make
	other=$(jq -r .peerId <<<"$output")
	run --separate-stderr "$TLSCERT" verify "$(jq -r .der <<<"$js")" "$other"
	[ "$status" -eq 1 ]
	[[ "$(jq -r .reason <<<"$output")" == "peer is $(jq -r .peerId <<<"$js"), not $other" ]]
}

@test "js dials C over /tls/1.0.0: peer IDs, ping, identify, a 4 MiB echo" {
	c_listener
	run --separate-stderr timeout 60 node "$JS/tls-peer.mjs" --dial "$ADDR" --echo 4194304
	[ "$status" -eq 0 ] || { echo "$output $stderr"; cat "$RUNDIR/c.err"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .encryption' <<<"$output")" = /tls/1.0.0 ]
	[ "$(jq -r 'select(.event == "connected") | .remotePeer' <<<"$output")" = "$ID" ]
	jq -se '.[] | select(.event == "ping") | .rtt >= 0' <<<"$output"
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" = c-tls ]
	jq -se '.[] | select(.event == "echo") | .ok and .recvBytes == 4194304' <<<"$output"
}

@test "C dials js over /tls/1.0.0: peer IDs, ping, identify, a 4 MiB echo" {
	js_listener
	run --separate-stderr timeout 60 "$TLSDIAL" "$ADDR" 4194304
	[ "$status" -eq 0 ] || { echo "$output $stderr"; cat "$RUNDIR/js.err"; return 1; }
	[ "$(jq -r 'select(.event == "connected") | .remotePeer' <<<"$output")" = "${ADDR##*/}" ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' <<<"$output")" = js-tls ]
	jq -se '.[] | select(.event == "echo") | .ok' <<<"$output"
	wait_for "$RUNDIR/js.out" '"encryption":"/tls/1.0.0"' 5
}

@test "C dialing js over /tls/1.0.0 under another peer ID is refused" {
	js_listener
	run --separate-stderr "$TLSCERT" make
	other=$(jq -r .peerId <<<"$output")
	run --separate-stderr timeout 60 "$TLSDIAL" "${ADDR%/p2p/*}/p2p/$other" 1024
	[ "$status" -eq 1 ]
	[ "$(jq -r 'select(.event == "error") | .step' <<<"$output")" = dial ]
	[ "$(jq -r 'select(.event == "error") | .message' <<<"$output")" = "key does not match the claimed identity" ]
}
