#!/usr/bin/env bats
# autonat.bats: AutoNAT v1 and v2 between our node (an-relay --dht, which
# runs AutoNAT through cmd/common/node.c) and unmodified js-libp2p.
#
# Our server, js client (js/autonat-client.mjs: js-libp2p with the codecs
# of @libp2p/autonat-v2 and @libp2p/autonat): an address js listens on is
# dialed back (v2: OK with js's nonce back on dial-back; v1: OK naming it),
# a closed one is E_DIAL_ERROR, another IP costs js dial data first.
# js's AutoNAT client services never ask about private addresses, and the
# tests may use only loopback, so the script sends the requests they send.
#
# js server, our client (js/autonat-server.mjs: js's own services): js
# decodes our v2 request (its log names our address), and a js node with v1
# only gets our v1 request (its log names our peer ID).  js refuses to dial
# private addresses, so our node must learn nothing from those refusals.
#
# Only 127.0.0.0/8 and port 0; the js processes are bounded (timeout) and
# every process is stopped in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	command -v an-relay >/dev/null || { echo "an-relay is not on PATH" >&2; return 1; }
}

setup() {
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
	CLIENT="$AN_TOP/tests/interop/js/autonat-client.mjs"
	SERVER="$AN_TOP/tests/interop/js/autonat-server.mjs"
	an-keygen -k "$T/node.key" >/dev/null
	unset AN_BOOTSTRAP AN_AUTONAT
	# our node: AutoNAT allowed to dial loopback, changes logged (AN_DEBUG)
	# (no timeout(1) around it: a second SIGTERM during its graceful
	# shutdown would kill it; teardown's stop_all ends it, as in relay.bats)
	bg node env AN_AUTONAT_ALLOW=127.0.0.0/8 AN_DEBUG=1 \
		an-relay -k "$T/node.key" --listen /ip4/127.0.0.1/tcp/0 --dht -s "$T/state"
	wait_for "$T/node.out" '"event":"ready"' 20
	ADDR=$(jq -r '.addrs[0]' "$T/node.out")
	ID=$(jq -r '.peerId' "$T/node.out")
}

teardown() {
	stop_all
}

js_client() {
	run --separate-stderr timeout 30 node "$CLIENT" --peer "$ADDR" "$@"
	[ "$status" -eq 0 ] || { echo "$stderr" >&2; return 1; }
}

@test "v2: our server dials a js listener back, and js gets its nonce" {
	js_client
	[ "$(jq -r .status <<<"$output")" = OK ]
	[ "$(jq -r .dialStatus <<<"$output")" = OK ]
	[ "$(jq -r .dialBack <<<"$output")" = true ]
	[ "$(jq -r .dialData <<<"$output")" = 0 ]
}

@test "v2: a closed port is E_DIAL_ERROR" {
	js_client --closed
	[ "$(jq -r .status <<<"$output")" = OK ]
	[ "$(jq -r .dialStatus <<<"$output")" = E_DIAL_ERROR ]
	[ "$(jq -r .dialBack <<<"$output")" = false ]
}

@test "v2: another IP than js's costs dial data first" {
	js_client --target /ip4/127.0.0.2/tcp/1
	[ "$(jq -r .dialStatus <<<"$output")" = E_DIAL_ERROR ]
	local paid
	paid=$(jq -r .dialData <<<"$output")
	[ "$paid" -ge 30000 ] && [ "$paid" -le 104096 ]
}

@test "v1: our server dials a js listener back and names the address" {
	js_client --v1
	[ "$(jq -r .status <<<"$output")" = OK ]
	[[ $(jq -r .addr <<<"$output") == /ip4/127.0.0.1/tcp/* ]]
	js_client --v1 --closed
	[ "$(jq -r .status <<<"$output")" = E_DIAL_ERROR ]
}

@test "v1: our server refuses another IP than the requester's" {
	js_client --v1 --target /ip4/127.0.0.2/tcp/1
	[ "$(jq -r .status <<<"$output")" = E_DIAL_REFUSED ]
}

# js's server, our client: js runs DEBUG logging; our node asks it.
js_server() {
	bg js env DEBUG='libp2p:auto-nat*' timeout -k 5 30 node "$SERVER" --dial "$ADDR" "$@"
	wait_for "$T/js.out" '"event":"ready"' 20
}

@test "v2: a js server decodes our request (and refuses loopback)" {
	js_server
	wait_for "$T/js.err" 'Requested address had private IP "/ip4/127\.0\.0\.1/tcp/[0-9]+"' 20
	run ! grep -q 'autonat: reachability' "$T/node.err"
}

@test "v1: a js node with only v1 gets our v1 request from our peer ID" {
	js_server --v1-only
	wait_for "$T/js.err" "libp2p:auto-nat incoming request from $ID" 20
	wait_for "$T/js.err" "refused to dial all multiaddrs for $ID" 5
	run ! grep -q 'autonat: reachability' "$T/node.err"
}
