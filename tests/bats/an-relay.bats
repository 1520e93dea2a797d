#!/usr/bin/env bats
# an-relay: options and errors, the ready line, identify and ping against
# the running relay (an-dht id / ping), stats on SIGUSR1, SIGTERM and SIGINT.
# The relay's hop service itself is covered by test_relay_server (C) and
# tests/interop/relay.bats (js-libp2p clients).  Bounded waits; every relay
# started here is killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

start_relay() {
	an-relay -k "$T/relay.sec" "$@" >"$T/out" 2>"$T/err" &
	RELAY=$!
	echo "$RELAY" >>"$T/pids"
	wait_for "$T/out" '"event":"ready"' 10
}

setup() {
	T=$BATS_TEST_TMPDIR
	run_dir "$T"
	an-keygen -k "$T/relay.sec" >"$T/relay.json"
	PEER=$(jq -r .peerId "$T/relay.json")
	export AN_STATE_DIR=$T/nostate
	unset AN_BOOTSTRAP
}

teardown() {
	stop_all
}

@test "--help prints the usage and every limit option" {
	run --separate-stderr an-relay --help
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
	for o in --key --listen --announce --reservation-ttl --max-reservations --max-reservations-per-ip \
		--max-circuits --max-circuits-per-peer --circuit-duration --circuit-data --dht --bootstrap \
		--protocol --state-dir --quiet; do
		[[ "$output" == *"$o"* ]] || { echo "missing $o"; return 1; }
	done
}

@test "no key file is a usage error" {
	run --separate-stderr an-relay
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == "an-relay: missing -k KEYFILE"* ]]
}

@test "an operand is a usage error" {
	run --separate-stderr an-relay -k "$T/relay.sec" extra
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: too many arguments"* ]]
}

@test "bad limit values are usage errors naming the value" {
	run --separate-stderr an-relay -k "$T/relay.sec" --max-circuits lots
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: invalid circuit count 'lots'"* ]]
	run --separate-stderr an-relay -k "$T/relay.sec" --max-reservations 0
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: invalid reservation count '0'"* ]]
	run --separate-stderr an-relay -k "$T/relay.sec" --circuit-data 12q
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: invalid circuit data '12q'"* ]]
	run --separate-stderr an-relay -k "$T/relay.sec" --circuit-duration 1500ms
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: invalid circuit duration '1500ms'"* ]]
	run --separate-stderr an-relay -k "$T/relay.sec" --reservation-ttl soon
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: invalid reservation ttl 'soon'"* ]]
}

@test "DHT options without --dht are a usage error" {
	run --separate-stderr an-relay -k "$T/relay.sec" --bootstrap /ip4/127.0.0.1/tcp/1
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-relay: --bootstrap, --protocol and --state-dir need --dht"* ]]
}

@test "a missing key file is exit 4, a key readable by others exit 3" {
	run --separate-stderr an-relay -k "$T/none.sec"
	[ "$status" -eq 4 ]
	[[ "$stderr" == "an-relay: unable to load key '$T/none.sec': "* ]]
	chmod 0644 "$T/relay.sec"
	run --separate-stderr an-relay -k "$T/relay.sec"
	[ "$status" -eq 3 ]
}

@test "an address it cannot listen on is exit 4" {
	run --separate-stderr an-relay -k "$T/relay.sec" --listen /ip4/192.0.2.1/tcp/4001
	[ "$status" -eq 4 ]
	[[ "$stderr" == "an-relay: unable to listen on '/ip4/192.0.2.1/tcp/4001': "* ]]
	run --separate-stderr an-relay -k "$T/relay.sec" --listen /dns4/example.com/tcp/1
	[ "$status" -eq 4 ]
}

@test "the ready line names the key's peer ID and the bound address" {
	start_relay --listen /ip4/127.0.0.1/tcp/0
	[ "$(jq -r .peerId "$T/out")" = "$PEER" ]
	[ "$(jq -r '.addrs | length' "$T/out")" -eq 1 ]
	[[ "$(jq -r '.addrs[0]' "$T/out")" =~ ^/ip4/127\.0\.0\.1/tcp/[1-9][0-9]*/p2p/$PEER$ ]]
}

@test "--announce replaces the listen addresses in the ready line" {
	start_relay --announce /dns4/relay.example/tcp/4001
	[ "$(jq -r '.addrs[0]' "$T/out")" = "/dns4/relay.example/tcp/4001/p2p/$PEER" ]
}

@test "the relay answers identify with the hop protocol, and ping" {
	start_relay
	addr=$(jq -r '.addrs[0]' "$T/out")
	run --separate-stderr an-dht id -t 5s "$addr"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" = "$PEER" ]
	[ "$(jq -r .agentVersion <<<"$output")" = "an-relay/0.1.0" ]
	jq -e '.protocols | index("/libp2p/circuit/relay/0.2.0/hop")' <<<"$output" >/dev/null
	run --separate-stderr an-dht ping -t 5s "$addr"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" = "$PEER" ]
}

@test "SIGUSR1 prints a stats line and the relay keeps running" {
	start_relay
	kill -USR1 "$RELAY"
	wait_for "$T/out" '"event":"stats"' 5
	line=$(grep '"event":"stats"' "$T/out")
	[ "$(jq -r .reservations <<<"$line")" -eq 0 ]
	[ "$(jq -r .circuitsOpened <<<"$line")" -eq 0 ]
	[ "$(jq -r .bytesRelayed <<<"$line")" -eq 0 ]
	kill -0 "$RELAY"
}

@test "SIGTERM stops it with exit 0 and a message on stderr" {
	start_relay
	kill -TERM "$RELAY"
	wait_exit "$RELAY" 5
	[ "$status" -eq 0 ]
	grep -q "an-relay: signal 15: shutting down" "$T/err"
	[ "$(grep -c . "$T/out")" -eq 1 ] # only the ready line on stdout
}

@test "SIGINT stops it with exit 0; -q keeps stderr empty" {
	start_relay -q
	kill -INT "$RELAY"
	wait_exit "$RELAY" 5
	[ "$status" -eq 0 ]
	[ ! -s "$T/err" ]
}

@test "--dht serves kad on the relay's host, and a daemon bootstraps from it" {
	start_relay --dht -s "$T/relaystate"
	addr=$(jq -r '.addrs[0]' "$T/out")
	run --separate-stderr an-dht id -t 5s "$addr"
	[ "$status" -eq 0 ]
	jq -e '.protocols | index("/an/kad/1.0.0")' <<<"$output" >/dev/null
	jq -e '.protocols | index("/libp2p/circuit/relay/0.2.0/hop")' <<<"$output" >/dev/null
	start_node d -q --bootstrap "$addr"
	local deadline=$((SECONDS + 10))
	until node_peers d | grep -q "$PEER"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "the relay is not in the daemon's table"; return 1; }
		sleep 0.1
	done
}
