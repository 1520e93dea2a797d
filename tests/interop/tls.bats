#!/usr/bin/env bats
# tls.bats: the libp2p TLS certificate (libp2p/specs tls/tls.md) between our
# crypto/tls_cert.c and js-libp2p's @libp2p/tls (pinned in
# tests/interop/package.json): each side checks what the other makes, and
# refuses a certificate for another peer.  C side: tests/tools/an-tlscert;
# js side: tests/interop/js/tls-cert.mjs (generateCertificate,
# verifyPeerCertificate).  No network.  (/tls/1.0.0 handshakes over TCP
# are not here yet.)

bats_require_minimum_version 1.5.0

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup"
}

setup() {
	JS=$AN_TOP/tests/interop/js
	bin=$(dirname "$(command -v an-keygen)")
	TLSCERT=${AN_TLSCERT:-$bin/../tests/tools/an-tlscert}
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
