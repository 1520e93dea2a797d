#!/usr/bin/env bats
# sybil.bats: one cheap attacker cannot censor a name (issue 16).  N honest
# an-dht daemons and one an-sybil process on 127.0.0.2 playing IDS kad nodes
# whose peer IDs it ground to be closer to one name's key than any honest
# node.  The attackers echo PUT_VALUE without storing it, answer GET_VALUE
# with no value, and name only each other as closer peers; they dial the
# honest nodes closest to the key so those take them into their tables.
#
# Honest node i listens on 127.(i+1).0.1: every honest node is a network of
# its own under any grouping of loopback addresses (by /24 or by address),
# and the attacker's 127.0.0.2 is one network, as on the Internet.  The
# daemons run with AN_KAD_LOOPBACK_SUBNETS=1, the knob that makes the
# diversity limits group loopback addresses instead of exempting them.
#
# What the defences must guarantee, one check each: `an-dht put` counts
# verified holders only (never an attacker) and reaches r of them, every
# honest node resolves the name, and no honest routing table holds more
# 127.0.0.2 peers than the per-network cap.  With the defences off
# (AN_KAD_DEFENCES_OFF=all, or a build before them) all three fail: the
# publisher is told "stored":20 by the attackers, only the nodes the record
# happens to reach (3 or 4 of 24) resolve it, and a table holds 20
# attackers.
#
# SYBIL_PUT=selective runs a smarter attacker (not in the suite): it keeps
# each record and returns it to the peer that put it, and to nobody else,
# so a publisher's read-back passes; the put check then fails on the one
# attacker the per-network limit lets into the holders.
#
# Tests run in order and share the network.  Every process is in $NET/pids
# and killed in teardown_file; every wait has a deadline.

bats_require_minimum_version 1.5.0
load ../lib/common

N=${SYBIL_HONEST:-24}
IDS=${SYBIL_IDS:-20}
# the most peers of one network (the attacker's /24 or address) an honest
# routing table may hold: the table-wide cap of the diversity filter
CAP=${SYBIL_TABLE_CAP:-3}
PUT_MODE=${SYBIL_PUT:-echo}
# r: the verified holders on distinct networks a put must reach (an-dht's default)
R=${SYBIL_R:-20}
PAR=4

setup_file() {
	local bin
	bin=$(dirname "$(command -v an-dht)")
	SYBIL=${AN_SYBIL:-$bin/../tests/tools/an-sybil}
	[ -x "$SYBIL" ] || { echo "no an-sybil at $SYBIL" >&2; return 1; }
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate AN_CLAIM_BITS=8 AN_KAD_LOOPBACK_SUBNETS=1
	local i
	spawn_node n0 -q --listen /ip4/127.1.0.1/tcp/0
	node_ready n0 20 || return 1
	for ((i = 1; i < N; i++)); do
		spawn_node "n$i" -q --listen "/ip4/127.$((i + 1)).0.1/tcp/0" --bootstrap "$(cat "$NET/n0.addr")"
	done
	for ((i = 1; i < N; i++)); do node_ready "n$i" 20 || return 1; done
	wait_network "$N" 3 30 || return 1
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	PH=$(jq -r .peerHash "$NET/site.id")
	export PH
	an-sign -k "$NET/site.key" --name censored --type root --addr /ip4/127.0.0.1/tcp/4001 >"$NET/rec.json" ||
		return 1
	# the attacker joins before the name is published, as one would
	local boot=() i
	for ((i = 0; i < N; i++)); do boot+=(--bootstrap "$(cat "$NET/n$i.addr")"); done
	bg sybil "$SYBIL" --target "$PH@censored" --ids "$IDS" --listen 127.0.0.2 "${boot[@]}" \
		--put "$PUT_MODE" --runtime 120 --grind-time 20 --scout-time 10
	wait_for "$NET/sybil.out" '"event":"ready"' 60 || return 1
	jq -r 'select(.event == "sybil") | .peerId' "$NET/sybil.out" >"$NET/sybil.ids"
	# the honest nodes have met them: identify runs right after each dial
	local deadline=$((SECONDS + 15))
	until any_table_with_sybils; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "no honest table took an attacker" >&2; return 1; }
		sleep 0.2
	done
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# how many 127.0.0.2 peers node $1's routing table holds
sybils_in_table() {
	node_peers "$1" | jq -s '[.[] | select(any(.addrs[]; startswith("/ip4/127.0.0.2/")))] | length'
}

any_table_with_sybils() {
	local i
	for ((i = 0; i < N; i++)); do
		[ "$(sybils_in_table "n$i")" -eq 0 ] || return 0
	done
	return 1
}

@test "sybil: the attacker ground $IDS IDs closer to the name's key than every honest node" {
	run --separate-stderr jq -c 'select(.event == "ground")' "$NET/sybil.out"
	[ "$status" -eq 0 ]
	[ "$(jq .ids <<<"$output")" -eq "$IDS" ]
	[ "$(jq .scouted <<<"$output")" = true ]
	echo "# $(jq -r '"\(.ids) IDs in \(.generations) key generations, \(.ms) ms"' <<<"$output")" >&3
	[ "$(wc -l <"$NET/sybil.ids")" -eq "$IDS" ]
}

@test "sybil: an-dht put counts verified holders only, never an attacker, and reaches $R" {
	run --separate-stderr timeout 60 an-dht put -t 30s -s "$NET/n5" <"$NET/rec.json"
	echo "$output" >"$NET/put.out"
	echo "# put: $(jq -c '{stored, claim}' <<<"$output")" >&3
	[ "$status" -eq 0 ] || { echo "$stderr" >&2; return 1; }
	local liars
	liars=$(jq -r '.peers[]' <<<"$output" | grep -cxF -f "$NET/sybil.ids" || true)
	[ "$liars" -eq 0 ] || { echo "$liars attackers counted as holders: $output" >&2; return 1; }
	[ "$(jq .stored <<<"$output")" -ge "$R" ]
	[ "$(jq '.peers | unique | length' <<<"$output")" -ge "$R" ]
}

@test "sybil: every honest node resolves the name" {
	local want
	want=$(jq -r .signature "$NET/rec.json")
	seq 0 $((N - 1)) | xargs -P "$PAR" -I{} sh -c '
		if timeout 40 an-dht get -t 20s -s "$NET/n{}" "$PH@censored" >"$NET/got.{}" 2>/dev/null &&
			[ "$(jq -r .signature "$NET/got.{}")" = "$1" ]
		then echo "ok n{}"; else echo "fail n{}"; fi' sh "$want" >"$T/res"
	local ok
	ok=$(grep -c '^ok ' "$T/res" || true)
	echo "# $ok of $N honest nodes resolved the name" >&3
	[ "$ok" -eq "$N" ] || { grep '^fail ' "$T/res" | head >&2; return 1; }
}

@test "sybil: no honest routing table holds more than $CAP peers of the attacker's address" {
	# "NODE COUNT" lines, 4 tables read at a time
	export -f node_peers sybils_in_table
	seq 0 $((N - 1)) | xargs -P "$PAR" -I{} bash -c 'echo "n{} $(sybils_in_table n{})"' >"$T/tables"
	[ "$(wc -l <"$T/tables")" -eq "$N" ]
	local worst
	worst=$(sort -k2,2n "$T/tables" | tail -n 1 | cut -d' ' -f2)
	echo "# at most $worst attackers in one honest table" >&3
	[ "$worst" -le "$CAP" ]
}

@test "sybil: the attacker was asked (the attack ran)" {
	kill -USR1 "$(cat "$NET/sybil.pid")"
	wait_for "$NET/sybil.out" '"event":"stats"' 10
	local s
	s=$(jq -c 'select(.event == "stats")' "$NET/sybil.out" | tail -n 1)
	echo "# attacker: $s" >&3
	[ "$(jq '.findNode + .get + .put' <<<"$s")" -ge 1 ]
}
