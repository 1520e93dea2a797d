#!/usr/bin/env bats
# relay-route.bats: an unmodified js-libp2p client (js/route-relay-get.mjs,
# with the Circuit Relay v2 transport) fetches from an an-serve that is
# reachable only through an-relay (an-serve --relay --no-direct): js dials
# the circuit address from the ready line, runs Noise + yamux inside it and
# /an/route/1.0.0 on the limited connection.  Only 127.0.0.1; every process
# is killed in teardown_file; every client bounded by --timeout.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/interop

setup_file() {
	interop_setup_file || return 1
	mkdir -p "$D/site"
	printf '<h1>through the relay</h1>\n' >"$D/site/index.html"
	head -c 1048576 /dev/urandom >"$D/site/1m.bin"
	an-keygen -k "$D/relay.key" >/dev/null
	an-keygen -k "$D/site.key" >/dev/null
	bg relay an-relay -q -k "$D/relay.key" --circuit-data 4m
	wait_for "$D/relay.out" '"event":"ready"' 15 || return 1
	bg serve an-serve -k "$D/site.key" --name mysite -s "$D/state" \
		--relay "$(jq -r '.addrs[0]' "$D/relay.out")" --no-direct "$D/site"
	wait_for "$D/serve.out" '"event":"ready"' 20 || return 1
	export CIRCUIT
	CIRCUIT=$(jq -r '.addrs[0]' "$D/serve.out")
}

teardown_file() {
	stop_all
}

get() {
	run --separate-stderr timeout 60 node "$AN_TOP/tests/interop/js/route-relay-get.mjs" --timeout 30 \
		--addr "$CIRCUIT" --host mysite "$@"
}

@test "js fetches a page from an-serve through an-relay on a limited connection" {
	[[ $CIRCUIT == */p2p-circuit/p2p/* ]]
	get --target /index.html
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = 200 ]
	[ "$(jq -r .limited <<<"$output")" = true ]
	[ "$(jq -r .sha256 <<<"$output")" = "$(sha "$D/site/index.html")" ]
}

@test "js fetches a 1 MiB file through the relay, byte-identical" {
	get --target /1m.bin
	[ "$status" -eq 0 ]
	[ "$(jq -r .bytes <<<"$output")" = 1048576 ]
	[ "$(jq -r .sha256 <<<"$output")" = "$(sha "$D/site/1m.bin")" ]
}
