#!/usr/bin/env bats
# relay-nat: an an-serve behind a NAT, reachable only through a relay, in a
# lab of network namespaces (tests/lib/netns.bash): an-relay and an
# `an-dht daemon` on the public side (198.18.0.1), an-serve --relay in
# "home" behind one MASQUERADE router, an-resolve and an-dial in "client"
# behind another.  Only addresses inside the lab are used (198.18.0.0/15,
# 198.19.x inside it); every process and namespace is removed in
# teardown_file, and every wait has a deadline.  Each process has a state
# directory of its own: a Unix socket crosses network namespaces, and a
# shared one would let the programs talk to the daemon without the network.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/netns

RELAY_PORT=4001
DHT_PORT=4002
HOME_PORT=4003

setup_file() {
	lab_setup_file || return 1
	[ -n "$LAB_SKIP" ] && return 0
	unset AN_BOOTSTRAP
	an-keygen -k "$NET/relay.key" >"$NET/relay.id"
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export RELAY_ID PH SITE_ID
	RELAY_ID=$(jq -r .peerId "$NET/relay.id")
	SITE_ID=$(jq -r .peerId "$NET/site.id")
	PH=$(jq -r .peerHash "$NET/site.id")
	export RELAY_ADDR=/ip4/$LAB_PUB_IP/tcp/$RELAY_PORT/p2p/$RELAY_ID
	mkdir -p "$NET/site"
	head -c 300000 /dev/urandom >"$NET/site/blob.bin"
	echo '<h1>behind nat</h1>' >"$NET/site/index.html"

	start_relay
	bg dht ip netns exec "$LAB_NS_pub" an-dht daemon -q -s "$NET/dht" --listen "/ip4/$LAB_PUB_IP/tcp/$DHT_PORT"
	wait_for "$NET/dht.out" '"event":"ready"' 20
	export DHT_ADDR
	DHT_ADDR=$(jq -r '.addrs[0]' "$NET/dht.out")
	bg serve ip netns exec "$LAB_NS_home" an-serve -k "$NET/site.key" --name site -s "$NET/home" \
		--listen "/ip4/$LAB_HOME_IP/tcp/$HOME_PORT" --relay "$RELAY_ADDR" \
		--bootstrap "$DHT_ADDR" -t 10s "$NET/site"
	wait_for "$NET/serve.out" '"event":"ready"' 30
}

# The relay on the public side (again after a restart: same key and port).
# Circuits may carry 4 MiB each way (the default 128 KiB is less than the file).
start_relay() {
	bg relay ip netns exec "$LAB_NS_pub" an-relay -k "$NET/relay.key" --listen "/ip4/$LAB_PUB_IP/tcp/$RELAY_PORT" \
		--circuit-data 4m
	wait_for "$NET/relay.out" '"event":"ready"' 20
}

teardown_file() {
	lab_teardown_file
}

setup() {
	lab_skip
	T=$BATS_TEST_TMPDIR
}

# an-dial in the client namespace, with its own state directory.
client() {
	lab_exec client env AN_STATE_DIR="$T/client" "$@"
}

@test "an-serve behind the NAT reserves a slot on the relay" {
	wait_for "$NET/serve.err" "reserved a slot on relay '$RELAY_ADDR'" 10
}

@test "the ready line lists the direct and the circuit address" {
	run jq -r '.addrs[]' "$NET/serve.out"
	[ "$status" -eq 0 ]
	[[ $output == *"/ip4/$LAB_HOME_IP/tcp/$HOME_PORT/p2p/$SITE_ID"* ]]
	[[ $output == *"$RELAY_ADDR/p2p-circuit/p2p/$SITE_ID"* ]]
	run jq -r .published "$NET/serve.out"
	[ "$output" = true ]
}

@test "the home's direct address is unreachable from the client" {
	run --separate-stderr client an-dial -t 3s \
		--connect-to "/ip4/$LAB_HOME_IP/tcp/$HOME_PORT/p2p/$SITE_ID" "an://$PH@site/index.html"
	[ "$status" -eq 4 ]
	[[ $stderr == *"unable to connect"* ]]
}

@test "an-resolve from the client finds the circuit address in the signed record" {
	run --separate-stderr client an-resolve --bootstrap "$DHT_ADDR" --addrs "an://$PH@site"
	[ "$status" -eq 0 ]
	[[ $output == *"$RELAY_ADDR/p2p-circuit/p2p/$SITE_ID"* ]]
}

@test "an-dial from the client fetches a file through the relay" {
	run --separate-stderr client an-dial -v -t 5s --bootstrap "$DHT_ADDR" \
		-o "$T/blob.bin" "an://$PH@site/blob.bin"
	[ "$status" -eq 0 ]
	[[ $stderr == *"connected through a relay: $RELAY_ADDR/p2p-circuit/p2p/$SITE_ID"* ]]
	[ "$(sha256sum <"$T/blob.bin")" = "$(sha256sum <"$NET/site/blob.bin")" ]
}

@test "an-dial refuses --connect-to a circuit whose target is not the URL's peer" {
	an-keygen -k "$T/other.key" >"$T/other.id"
	other=$(jq -r .peerId "$T/other.id")
	run --separate-stderr client an-dial -t 5s \
		--connect-to "$RELAY_ADDR/p2p-circuit/p2p/$other" "an://$PH@site/index.html"
	[ "$status" -ne 0 ]
	[[ $stderr == *"names a peer other than $PH"* ]]
}

@test "after the relay restarts an-serve reserves again and is reachable" {
	kill "$(cat "$NET/relay.pid")"
	wait_for "$NET/serve.err" "lost the connection to relay" 20
	start_relay
	# the second "reserved" line: the first came at start
	local deadline=$((SECONDS + 30))
	while [ "$(grep -c "reserved a slot" "$NET/serve.err")" -lt 2 ] && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.2
	done
	[ "$(grep -c "reserved a slot" "$NET/serve.err")" -ge 2 ]
	run --separate-stderr client an-dial -t 5s \
		--connect-to "$RELAY_ADDR/p2p-circuit/p2p/$SITE_ID" "an://$PH@site/index.html"
	[ "$status" -eq 0 ]
	[ "$output" = '<h1>behind nat</h1>' ]
}
