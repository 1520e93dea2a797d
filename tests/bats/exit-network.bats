#!/usr/bin/env bats
# "Network down" is not "not found" (issue 11): an-resolve, an-dial and
# an-dht get, put and republish exit 1 only when peers answered and none had
# the name (or stored the record); an unreachable bootstrap peer, a daemon
# that accepts its socket and never answers, and a daemon with nobody to ask
# exit 4 and name the cause on stderr, without AN_DEBUG.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	unset AN_DEBUG AN_BOOTSTRAP
	two_nodes
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
	# a loopback port nothing listens on: every dial to it is refused
	export DEAD=/ip4/127.0.0.1/tcp/$(free_port)/p2p/$(jq -r .peerId "$NET/site.id")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
	unset AN_DEBUG
}

teardown() {
	[ -z "${HUNG_PID:-}" ] || kill "$HUNG_PID" 2>/dev/null || true
}

sign_root() {
	an-sign -k "$NET/site.key" --name "$1" --type root --addr /ip4/127.0.0.1/tcp/4001
}

# hung_daemon DIR: a control socket in DIR that accepts and never answers (60 s at most)
hung_daemon() {
	mkdir -p -m 700 "$1"
	timeout 60 python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
print("listening", flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$1/control.sock" >"$T/hung.out" &
	HUNG_PID=$!
	echo "$HUNG_PID" >>"$RUNDIR/pids"
	wait_for "$T/hung.out" listening 30
}

@test "an-dht get: a key nobody stored, peers answering, exits 1 not found" {
	run --separate-stderr an-dht get -t 15s -s "$T/s" --bootstrap "$BOOT" "$PH@nobody-has-this"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not found"* ]]
}

@test "an-dht get: an unreachable bootstrap peer exits 4 and says no peer is reachable" {
	run --separate-stderr an-dht get -t 3s -s "$T/s" --bootstrap "$DEAD" "$PH@nobody-has-this"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
	[[ $stderr != *"not found"* ]]
}

@test "an-dht put: an unreachable bootstrap peer exits 4" {
	sign_root down1 >"$T/r.json"
	run --separate-stderr an-dht put -t 3s -s "$T/s" --bootstrap "$DEAD" <"$T/r.json"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
}

@test "an-dht republish: an unreachable bootstrap peer exits 4" {
	sign_root down2 >"$T/r.json"
	# the record is in this state directory's store; then every peer is gone
	an-dht put -t 20s -k "$NET/site.key" -s "$T/s" --bootstrap "$BOOT" <"$T/r.json" >/dev/null
	rm "$T/s/routing.snap" # else the live nodes it learned are asked again
	run --separate-stderr an-dht republish --force -t 3s -k "$NET/site.key" -s "$T/s" --bootstrap "$DEAD"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
}

@test "an-resolve: a name nobody published, peers answering, exits 1" {
	run --separate-stderr an-resolve -t 15s -s "$T/s" --bootstrap "$BOOT" "$PH@nobody-has-this"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not found"* ]]
}

@test "an-resolve: an unreachable bootstrap peer exits 4 and says so" {
	run --separate-stderr an-resolve -t 3s -s "$T/s" --bootstrap "$DEAD" "$PH@nobody-has-this"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
	[[ $stderr != *"not found"* ]]
}

@test "an-resolve: a bare name with an unreachable bootstrap peer exits 4" {
	run --separate-stderr an-resolve -t 3s -s "$T/s" --bootstrap "$DEAD" nobody-has-this
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
}

@test "an-dial: an unreachable bootstrap peer exits 4 and says so" {
	run --separate-stderr an-dial -t 3s --state-dir "$T/s" --bootstrap "$DEAD" "an://$PH@nobody-has-this/"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
}

@test "an-dial: a name nobody published, peers answering, exits 1" {
	run --separate-stderr an-dial -t 15s --state-dir "$T/s" --bootstrap "$BOOT" "an://$PH@nobody-has-this/"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not found"* ]]
}

@test "an-dht get through a hung daemon exits 4: daemon not answering" {
	hung_daemon "$T/h"
	run --separate-stderr timeout 20 an-dht get -t 1s -s "$T/h" "$PH@x"
	[ "$status" -eq 4 ]
	[[ $stderr == *"not answering"* ]]
}

@test "an-resolve through a hung daemon exits 4: daemon not answering" {
	hung_daemon "$T/h"
	run --separate-stderr timeout 20 an-resolve -t 1s -s "$T/h" "$PH@x"
	[ "$status" -eq 4 ]
	[[ $stderr == *"not answering"* ]]
}

@test "an-dial through a hung daemon exits 4: daemon not answering" {
	hung_daemon "$T/h"
	run --separate-stderr timeout 20 an-dial -t 1s --state-dir "$T/h" "an://$PH@x/"
	[ "$status" -eq 4 ]
	[[ $stderr == *"not answering"* ]]
}

@test "an-dht get through a daemon with no peer exits 4, through one with peers 1" {
	start_node lone -q
	run --separate-stderr an-dht get -t 3s -s "$NET/lone" "$PH@nobody-has-this"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
	run --separate-stderr an-dht get -t 15s -s "$NET/n1" "$PH@nobody-has-this"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not found"* ]]
}

@test "an-resolve through a daemon with no peer exits 4" {
	start_node lone2 -q
	run --separate-stderr an-resolve -t 3s -s "$NET/lone2" "$PH@nobody-has-this"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no peer reachable"* ]]
}
