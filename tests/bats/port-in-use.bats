#!/usr/bin/env bats
# A port already in use is an error (issue 11): every server that listens
# exits 4 with "Address already in use" when its port is taken, and the
# node already there keeps answering with its own identity.  A second
# an-serve with the same key and name in the same state directory refuses
# instead of publishing over the live site's records.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	unset AN_DEBUG AN_BOOTSTRAP
	two_nodes
	export PORT=${BOOT#/ip4/127.0.0.1/tcp/}
	PORT=${PORT%%/*}
	export N0=$(cat "$NET/n0.id")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
	mkdir -p "$T/www"
	echo hello >"$T/www/index.html"
}

@test "a second daemon on a busy port exits 4: Address already in use" {
	run --separate-stderr timeout 20 an-dht daemon -q -s "$T/second" --listen "/ip4/127.0.0.1/tcp/$PORT"
	[ "$status" -eq 4 ]
	[[ $stderr == *"Address already in use"* ]]
	[ -z "$output" ] # no ready line
}

@test "the first node keeps its identity on its port" {
	# the second daemon runs (if it can) while the port is dialled
	bg second timeout 30 an-dht daemon -q -s "$T/second" --listen "/ip4/127.0.0.1/tcp/$PORT"
	bg_expect_fail second
	local deadline=$((SECONDS + 10))
	until [ -s "$NET/second.out" ] || ! alive "$(cat "$NET/second.pid")"; do
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.05
	done
	for i in 1 2 3 4 5 6 7 8 9 10; do
		run --separate-stderr an-dht id -t 5s "/ip4/127.0.0.1/tcp/$PORT"
		[ "$status" -eq 0 ]
		[ "$(jq -r .peerId <<<"$output")" = "$N0" ]
	done
	stop_node second
}

@test "an-serve on a busy port exits 4: Address already in use" {
	an-keygen -k "$T/site.key" >/dev/null
	run --separate-stderr timeout 20 an-serve -q -k "$T/site.key" --name busy -s "$T/s" \
		--bootstrap "$BOOT" --listen "/ip4/127.0.0.1/tcp/$PORT" "$T/www"
	[ "$status" -eq 4 ]
	[[ $stderr == *"Address already in use"* ]]
}

@test "an-relay on a busy port exits 4: Address already in use" {
	an-keygen -k "$T/relay.key" >/dev/null
	run --separate-stderr timeout 20 an-relay -k "$T/relay.key" --listen "/ip4/127.0.0.1/tcp/$PORT"
	[ "$status" -eq 4 ]
	[[ $stderr == *"Address already in use"* ]]
}

@test "the gateway on a busy port exits 4: Address already in use" {
	run --separate-stderr timeout 20 an-dial --gateway "127.0.0.1:$PORT"
	[ "$status" -eq 4 ]
	[[ $stderr == *"Address already in use"* ]]
}

@test "a second an-serve with the same key and name refuses and the first keeps serving" {
	an-keygen -k "$T/site.key" >/dev/null
	serve first -k "$T/site.key" --name twice -s "$T/s" "$T/www"
	run --separate-stderr timeout 30 an-serve -q -k "$T/site.key" --name twice -s "$T/s" \
		--bootstrap "$BOOT" "$T/www"
	[ "$status" -eq 4 ]
	[[ $stderr == *"already served"* ]]
	[[ $stderr == *"pid $(cat "$NET/first.pid")"* ]]
	alive "$(cat "$NET/first.pid")"
	# the published record still names the first server's addresses
	local addr
	addr=$(jq -r 'select(.event == "ready") | .addrs[0]' "$NET/first.out")
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" --addrs "$(jq -r 'select(.event == "ready") | .peerHash // empty' "$NET/first.out")@twice"
	[ "$status" -eq 0 ]
	[[ $output == *"${addr%%/p2p/*}"* ]]
	stop_node first
}

@test "the same key under another name is not refused" {
	an-keygen -k "$T/site.key" >/dev/null
	serve one -k "$T/site.key" --name name-one -s "$T/s" "$T/www"
	serve two -k "$T/site.key" --name name-two -s "$T/s" "$T/www"
	alive "$(cat "$NET/one.pid")"
	alive "$(cat "$NET/two.pid")"
	stop_node one
	stop_node two
}
