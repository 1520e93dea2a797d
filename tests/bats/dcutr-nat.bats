#!/usr/bin/env bats
# dcutr-nat: DCUtR hole punching (libcommon/relay/dcutr_service.h) between
# two peers behind two MASQUERADE NATs, in the lab of tests/lib/netns.bash:
# an-relay on the public side (198.18.0.1), an-testpeer --reserve --dcutr in
# "home" (DCUtR's B: it receives the relayed connection and drives the
# punch), an-testpeer --dial CIRCUIT --dcutr in "client" (A).  Neither
# router forwards anything from outside that does not belong to a
# connection opened from inside, so a direct connection exists only if the
# punch opened both NATs.
#
# Each peer offers its NAT's public address with its own listen port
# (--dcutr-addr): MASQUERADE keeps a source port that is free, and the host
# dials from its listen port, so that is the address the other NAT sees.
# B primes (--dcutr-prime 2): its SYN passes its router (hop 1) and dies at
# pub (hop 2), before A's router, whose RST would close B's mapping; A's
# dial on SYNC then reaches B's listener.  The spec's plain "both dial"
# gives a true TCP simultaneous open here, which the host cannot upgrade
# (both sides would run Noise as initiator; see dcutr_service.h).
#
# The routers track TCP liberally (nf_conntrack_tcp_be_liberal=1, set in
# their own namespaces): B's mapping was made by the primed SYN, whose
# sequence number is not that of the connection B's listener then
# answers, and strict window tracking marks the listener's packets
# invalid, leaves them un-NATed and the handshake stalls (seen in this
# lab: TCP connects, Noise times out).  Home routers differ; the strict
# case needs the host to upgrade a simultaneous open with DCUtR's roles.
# Every process and namespace goes in teardown_file; every wait has a deadline.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/netns

RELAY_PORT=4001
HOME_PUB=198.18.1.2
CLIENT_PUB=198.18.2.2

setup_file() {
	local bin
	bin=$(command -v an-relay) || { echo "an-relay is not on PATH" >&2; return 1; }
	export AN_TESTPEER=${AN_TESTPEER:-$(dirname "$bin")/../tests/tools/an-testpeer}
	[ -x "$AN_TESTPEER" ] || { echo "no C test peer at $AN_TESTPEER" >&2; return 1; }
	lab_setup_file || return 1
	[ -n "$LAB_SKIP" ] && return 0
	local r
	for r in hrt crt; do
		lab_exec "$r" sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=1 || return 1
	done
	an-keygen -k "$NET/relay.key" >"$NET/relay.id"
	export RELAY_ID RELAY_ADDR
	RELAY_ID=$(jq -r .peerId "$NET/relay.id")
	RELAY_ADDR=/ip4/$LAB_PUB_IP/tcp/$RELAY_PORT/p2p/$RELAY_ID
	bg relay ip netns exec "$LAB_NS_pub" an-relay -k "$NET/relay.key" --listen "/ip4/$LAB_PUB_IP/tcp/$RELAY_PORT"
	wait_for "$NET/relay.out" '"event":"ready"' 20
}

teardown_file() {
	lab_teardown_file
}

setup() {
	lab_skip
	T=$BATS_TEST_TMPDIR
	# ports of their own per test: the routers' conntrack entries of an
	# earlier test's connections would make MASQUERADE pick other ports
	HOME_PORT=$((4100 + 2 * BATS_TEST_NUMBER))
	CLIENT_PORT=$((HOME_PORT + 1))
}

teardown() {
	[ -n "${LAB_SKIP:-}" ] && return 0
	local n
	for n in home client; do
		[ -f "$NET/$n.pid" ] && kill "$(cat "$NET/$n.pid")" 2>/dev/null || true
	done
	return 0
}

# home: B behind hrt, reserving on the relay; extra args after the fixed ones.
start_home() {
	bg home ip netns exec "$LAB_NS_home" "$AN_TESTPEER" --key "$T/home.key" \
		--listen "/ip4/$LAB_HOME_IP/tcp/$HOME_PORT" --reserve "$RELAY_ADDR" --dcutr \
		--dcutr-addr "/ip4/$HOME_PUB/tcp/$HOME_PORT" --serve-for 30 --timeout 9 "$@"
	wait_for "$NET/home.out" '"event":"reserved"' 15
	export HOME_ID
	HOME_ID=$(jq -r 'select(.event == "listening") | .peerId' "$NET/home.out")
}

# client: A behind crt, dialing home through the relay.
start_client() {
	bg client ip netns exec "$LAB_NS_client" "$AN_TESTPEER" --key "$T/client.key" \
		--listen "/ip4/$LAB_CLIENT_IP/tcp/$CLIENT_PORT" --dcutr \
		--dcutr-addr "/ip4/$CLIENT_PUB/tcp/$CLIENT_PORT" --serve-for 12 --timeout 9 \
		--dial "$RELAY_ADDR/p2p-circuit/p2p/$HOME_ID"
}

@test "home is not reachable directly from the client" {
	start_home --dcutr-prime 2
	run --separate-stderr ip netns exec "$LAB_NS_client" timeout 5 "$AN_TESTPEER" --timeout 2 \
		--dial "/ip4/$HOME_PUB/tcp/$HOME_PORT/p2p/$HOME_ID"
	# home's router forwards nothing unasked: its own stack refuses the SYN
	[ "$status" -eq 4 ]
	[ "$output" = '{"event":"error","action":"dial","message":"Connection refused"}' ]
	# and home, still up behind it, saw no connection from the client
	alive "$(cat "$NET/home.pid")"
	run ! grep -F "$CLIENT_PUB" "$NET/home.out" "$NET/home.err"
}

@test "a primed punch gives home a direct connection dialed by the client" {
	start_home --dcutr-prime 2
	start_client
	wait_for "$NET/home.out" '"event":"dcutr"' 20
	run jq -c 'select(.event == "dcutr")' "$NET/home.out"
	[[ $output == *'"ok":true'* ]]
	[[ $output == *'"direction":"inbound"'* ]]
	[[ $output == *"\"remoteAddr\":\"/ip4/$CLIENT_PUB/tcp/$CLIENT_PORT\""* ]]
}

@test "the client's end of the punch is outbound to home's NAT" {
	start_home --dcutr-prime 2
	start_client
	wait_for "$NET/client.out" '"event":"dcutr"' 20
	run jq -c 'select(.event == "dcutr")' "$NET/client.out"
	[[ $output == *'"ok":true'* ]]
	[[ $output == *'"direction":"outbound"'* ]]
	[[ $output == *"\"remoteAddr\":\"/ip4/$HOME_PUB/tcp/$HOME_PORT\""* ]]
}
