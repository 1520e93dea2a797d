#!/usr/bin/env bats
# an-dht-diversity.bats: routing-table admission per network (issue 16).
# One an-dht daemon on 127.1.0.1 and one an-sybil process playing 12 kad
# identities on 127.0.0.2 that all dial it.  With AN_KAD_LOOPBACK_SUBNETS=1
# each loopback address is one network, so the daemon's table takes at most
# 3 of them (the table-wide cap; 2 per bucket); by default loopback is
# exempt (tests run many daemons on 127.0.0.1) and it takes them all, and
# AN_KAD_DEFENCES_OFF=diversity turns the limit off.  Every process is
# killed in teardown; every wait is bounded.

bats_require_minimum_version 1.5.0
load ../lib/common

IDS=12

setup() {
	export NET=$BATS_TEST_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	local bin
	bin=$(dirname "$(command -v an-dht)")
	SYBIL=${AN_SYBIL:-$bin/../tests/tools/an-sybil}
	[ -x "$SYBIL" ] || { echo "no an-sybil at $SYBIL" >&2; return 1; }
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	PH=$(jq -r .peerHash "$NET/site.id")
}

teardown() {
	stop_all KILL
}

# attack: the honest daemon n0 on 127.1.0.1, then IDS identities on
# 127.0.0.2 dialing it; waits until they are ready and the daemon has
# identified them (its table stops growing for 2 s)
attack() {
	start_node n0 -q --listen /ip4/127.1.0.1/tcp/0 || return 1
	bg sybil "$SYBIL" --target "$PH@div" --ids "$IDS" --no-scout --listen 127.0.0.2 \
		--bootstrap "$(cat "$NET/n0.addr")" --dial-max 1 --runtime 60 --grind-time 10
	wait_for "$NET/sybil.out" '"event":"ready"' 40 || return 1
	local last=-1 now stable=0 deadline=$((SECONDS + 20))
	while [ "$stable" -lt 10 ]; do
		now=$(in_table)
		[ "$now" -eq "$last" ] && stable=$((stable + 1)) || stable=0
		last=$now
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.2
	done
}

# how many 127.0.0.2 peers n0's routing table holds
in_table() {
	node_peers n0 | jq -s '[.[] | select(any(.addrs[]; startswith("/ip4/127.0.0.2/")))] | length'
}

@test "one address's $IDS identities get at most 3 places in a daemon's table" {
	export AN_KAD_LOOPBACK_SUBNETS=1
	attack
	run --separate-stderr in_table
	echo "# $output of $IDS attackers in the table" >&3
	[ "$status" -eq 0 ]
	[ "$output" -ge 1 ]
	[ "$output" -le 3 ]
}

@test "with the diversity defence off the same identities fill the table" {
	export AN_KAD_LOOPBACK_SUBNETS=1 AN_KAD_DEFENCES_OFF=diversity
	attack
	run --separate-stderr in_table
	echo "# $output of $IDS attackers in the table" >&3
	[ "$status" -eq 0 ]
	[ "$output" -gt 3 ]
}

@test "loopback is exempt by default: many daemons may share 127.0.0.1" {
	unset AN_KAD_LOOPBACK_SUBNETS
	attack
	run --separate-stderr in_table
	[ "$status" -eq 0 ]
	[ "$output" -gt 3 ]
}
