#!/usr/bin/env bats
# autonat-nat: AutoNAT in the lab of network namespaces (tests/lib/netns.bash).
# An an-relay --dht on the public side (198.18.0.1) answers AutoNAT; one node
# in "home" behind a MASQUERADE router and one on the public side ask it and
# must learn "private" and "public".  Every node allows the lab's range
# (AN_AUTONAT_ALLOW=198.18.0.0/15: 198.18/15 is not public otherwise) and logs
# its reachability changes (AN_DEBUG).  Only lab addresses are used; every
# wait has a deadline; teardown_file stops every process and removes the lab.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/netns

SERVER_PORT=4001
PUBLIC_PORT=4004
HOME_PORT=4003

# an-relay --dht NAME NS LISTEN [BOOTSTRAP]: a node with AutoNAT (node.c).
node() {
	local name=$1 ns="LAB_NS_$2" listen=$3 boot=${4:-}
	an-keygen -k "$NET/$name.key" >/dev/null
	# no timeout(1) around it: its SIGTERM on top of stop_all's would hit
	# an-relay during its graceful shutdown; stop_all ends it (relay-nat.bats)
	bg "$name" ip netns exec "${!ns}" env AN_AUTONAT_ALLOW=198.18.0.0/15 AN_DEBUG=1 \
		an-relay -k "$NET/$name.key" --listen "$listen" --dht \
		-s "$NET/$name.state" ${boot:+--bootstrap "$boot"}
	wait_for "$NET/$name.out" '"event":"ready"' 30
}

setup_file() {
	lab_setup_file || return 1
	[ -n "$LAB_SKIP" ] && return 0
	unset AN_BOOTSTRAP AN_AUTONAT
	node server pub "/ip4/$LAB_PUB_IP/tcp/$SERVER_PORT"
	export SERVER_ADDR
	SERVER_ADDR=$(jq -r '.addrs[0]' "$NET/server.out")
	node home home "/ip4/$LAB_HOME_IP/tcp/$HOME_PORT" "$SERVER_ADDR"
	node public pub "/ip4/$LAB_PUB_IP/tcp/$PUBLIC_PORT" "$SERVER_ADDR"
}

teardown_file() {
	lab_teardown_file
}

setup() {
	lab_skip
}

@test "a node behind a MASQUERADE NAT learns it is private" {
	wait_for "$NET/home.err" 'autonat: reachability (private|public)' 45
	run grep -E 'autonat: reachability' "$NET/home.err"
	# after the timestamp servers put on log lines once ready
	[[ ${lines[0]} == *"an-relay: autonat: reachability private" ]]
	# its NAT's outside address, as the server observed it, is among the private ones
	wait_for "$NET/home.err" "autonat: /ip4/198\.18\.1\.2/tcp/[0-9]+ is private" 45
	run ! grep -q 'is public' "$NET/home.err"
}

@test "a node on the public side learns it is public" {
	wait_for "$NET/public.err" 'autonat: reachability (private|public)' 45
	run grep -E 'autonat: reachability' "$NET/public.err"
	# after the timestamp servers put on log lines once ready
	[[ ${lines[0]} == *"an-relay: autonat: reachability public" ]]
	grep -qE "autonat: /ip4/$LAB_PUB_IP/tcp/$PUBLIC_PORT is public" "$NET/public.err"
	run ! grep -q 'is private' "$NET/public.err"
}
