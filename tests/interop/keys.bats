#!/usr/bin/env bats
# keys.bats: key files move between an-keygen and js-libp2p unchanged.
# js side: tests/interop/js/keygen.mjs (generateKeyPair + privateKeyToProtobuf,
# peerIdFromPrivateKey) and keygen-read.mjs (privateKeyFromProtobuf), with the
# pinned @libp2p/crypto and @libp2p/peer-id of tests/interop/package.json.
# No network.

bats_require_minimum_version 1.5.0

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup"
}

setup() {
	JS=$AN_TOP/tests/interop/js
	T=$BATS_TEST_TMPDIR
}

@test "an-keygen -y prints the peer ID js-libp2p gives a key js-libp2p made" {
	run --separate-stderr timeout 60 node "$JS/keygen.mjs" "$T/js.key"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	js=$output
	run --separate-stderr an-keygen -y -k "$T/js.key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" = "$(jq -r .peerId <<<"$js")" ]
}

@test "an-keygen -y prints the public key protobuf js-libp2p encodes" {
	run --separate-stderr timeout 60 node "$JS/keygen.mjs" "$T/js.key"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	js=$output
	run --separate-stderr an-keygen -y -k "$T/js.key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .publicKey <<<"$output")" = "$(jq -r .publicKey <<<"$js")" ]
}

@test "js-libp2p reads a key made by an-keygen and gives the same peer ID and CID" {
	c=$(an-keygen -k "$T/c.key")
	run --separate-stderr timeout 60 node "$JS/keygen-read.mjs" "$T/c.key"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$(jq -r .keyType <<<"$output")" = Ed25519 ]
	[ "$(jq -r .peerId <<<"$output")" = "$(jq -r .peerId <<<"$c")" ]
	[ "$(jq -r .cid <<<"$output")" = "$(jq -r .cid <<<"$c")" ]
	[ "$(jq -r .publicKey <<<"$output")" = "$(jq -r .publicKey <<<"$c")" ]
}

@test "the key file an-keygen writes is byte-for-byte what js-libp2p re-encodes" {
	an-keygen -k "$T/c.key" >/dev/null
	run --separate-stderr timeout 60 node "$JS/keygen-read.mjs" "$T/c.key"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$(jq -r .privateKey <<<"$output")" = "$(od -An -v -tx1 "$T/c.key" | tr -d ' \n')" ]
}
