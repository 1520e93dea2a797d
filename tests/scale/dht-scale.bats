#!/usr/bin/env bats
# dht-scale.bats: the DHT at scale and under faults (issue 4).  100 an-dht
# daemons (processes) on 127.0.0.1 publish 200 names and resolve each from a
# random node; 30% of the nodes are killed with SIGKILL at random, and within
# one (shortened) re-replication interval at least 99% of the names still
# resolve; a killed node restarted alone still serves what its store held.
#
# Timers are shortened through the environment (AN_KAD_*_INTERVAL): the
# re-replication interval (REPL_S seconds), the maintenance tick that looks
# for due records, and the routing refresh (60 s: the kill test counts on
# tables refreshed within the re-replication interval; a node whose
# bootstrap dial was refused no longer waits for it, it retries within
# seconds, see kad_node.h).  Not shorter: every holder re-replicates each record it holds (about 40 a node,
# a lookup and 20 PUTs each), and a 10 s interval or a 15 s refresh of 15
# buckets keeps 2 cores saturated with 100 nodes.
# Nodes start in batches, bootstrapping from five seeds, because one seed
# accepts at most 64 handshakes at a time (AN_HOST_DEFAULT_MAX_PENDING).
#
# The Sybil attacker (issue 16): before anything is published, one an-sybil
# process on 127.0.0.2 grinds SYBIL_IDS peer IDs closer than any honest node
# to each of the first SYBIL_NAMES names' keys, dials the honest nodes
# closest to each key, echoes PUT_VALUE without storing it, answers
# GET_VALUE with no value and names only its own IDs as closer peers.  Honest
# node i listens on 127.(i+1).0.1, so each is a network of its own under any
# grouping of loopback addresses (AN_KAD_LOOPBACK_SUBNETS=1 makes the
# diversity limits group them) and the attacker is one.  With the defences
# no attacker counts as a holder and every honest node resolves every
# attacked name.  DHT_SCALE_SYBIL_NAMES=0 runs without the attacker.
# Tests run in order and share the network: publish, resolve, kill, restart.
# Every process is recorded in $NET/pids and killed in teardown_file; every
# wait has a deadline; every client call has -t and timeout(1).

bats_require_minimum_version 1.5.0
load ../lib/common

N=${DHT_SCALE_NODES:-100}
NAMES=${DHT_SCALE_NAMES:-200}
KILL=$((N * 30 / 100))
REPL_S=${DHT_SCALE_REPLICATE_S:-60}
PAR=4 # client calls at a time (2 shared cores)
SYBIL_NAMES=${DHT_SCALE_SYBIL_NAMES:-10}
SYBIL_IDS=${DHT_SCALE_SYBIL_IDS:-20}

# listen_opt I: the --listen option of honest node nI (a network of its own)
listen_opt() {
	printf -- '--listen /ip4/127.%d.0.1/tcp/0' "$(($1 + 1))"
}

# seeds: --bootstrap options for the five seed nodes
seeds() {
	local i
	for i in 0 1 2 3 4; do printf -- '--bootstrap %s ' "$(cat "$NET/n$i.addr")"; done
}

# resolve_all NODES_FILE OUT: get every name through a node drawn at random
# from NODES_FILE (one node name a line); OUT gets "ok|fail NODE NAME" lines
resolve_all() {
	local nodes=$1 out=$2
	shuf -n "$NAMES" -r "$nodes" >"$out.via"
	paste -d ' ' "$out.via" "$NET/names" |
		xargs -P "$PAR" -n 2 sh -c '
			if timeout 30 an-dht get -t 15s -s "$NET/$0" "$PH@$1" >"$NET/got.$0.$1" 2>/dev/null &&
				[ "$(jq -r .signature "$NET/got.$0.$1")" = "$(jq -r .signature "$NET/rec/$1.json")" ]
			then echo "ok $0 $1"; else echo "fail $0 $1"; fi
			rm -f "$NET/got.$0.$1"' >"$out"
}

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	mkdir -p "$NET/rec"
	export AN_STATE_DIR=$NET/nostate
	export AN_KAD_REPLICATE_INTERVAL=${REPL_S}s AN_KAD_MAINTAIN_INTERVAL=1s AN_KAD_REFRESH_INTERVAL=60s
	export AN_KAD_LOOPBACK_SUBNETS=1
	local i b
	# shellcheck disable=SC2046 # listen_opt and seeds print options to split
	spawn_node n0 -q $(listen_opt 0)
	node_ready n0 20 || return 1
	# shellcheck disable=SC2046
	for i in 1 2 3 4; do spawn_node "n$i" -q $(listen_opt "$i") --bootstrap "$(cat "$NET/n0.addr")"; done
	for i in 1 2 3 4; do node_ready "n$i" 20 || return 1; done
	# the rest in batches of 24, each node dialing all five seeds
	for ((b = 5; b < N; b += 24)); do
		# shellcheck disable=SC2046
		for ((i = b; i < b + 24 && i < N; i++)); do spawn_node "n$i" -q $(listen_opt "$i") $(seeds); done
		for ((i = b; i < b + 24 && i < N; i++)); do node_ready "n$i" 20 || return 1; done
	done
	# every daemon bootstrapped: its table holds at least two peers
	wait_network "$N" 2 60
	seq 0 $((N - 1)) | sed 's/^/n/' >"$NET/alive"
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
	seq -f 'name%03g' 1 "$NAMES" >"$NET/names"
	while read -r name; do
		an-sign -k "$NET/site.key" --name "$name" --type root --addr /ip4/127.0.0.1/tcp/4001 >"$NET/rec/$name.json" ||
			return 1
	done <"$NET/names"
	head -n "$SYBIL_NAMES" "$NET/names" >"$NET/attacked"
	: >"$NET/sybil.ids"
	[ "$SYBIL_NAMES" -gt 0 ] || return 0
	# the attacker joins before anything is published, as one would
	local bin args=()
	bin=$(dirname "$(command -v an-dht)")
	SYBIL=${AN_SYBIL:-$bin/../tests/tools/an-sybil}
	[ -x "$SYBIL" ] || { echo "no an-sybil at $SYBIL" >&2; return 1; }
	while read -r name; do args+=(--target "$PH@$name"); done <"$NET/attacked"
	for ((i = 0; i < N; i++)); do args+=(--bootstrap "$(cat "$NET/n$i.addr")"); done
	bg sybil "$SYBIL" "${args[@]}" --ids "$SYBIL_IDS" --listen 127.0.0.2 --dial-max 20 \
		--runtime 3600 --grind-time 60 --scout-time 20
	wait_for "$NET/sybil.out" '"event":"ready"' 180 || return 1
	jq -r 'select(.event == "sybil") | .peerId' "$NET/sybil.out" >"$NET/sybil.ids"
	[ "$(wc -l <"$NET/sybil.ids")" -eq $((SYBIL_NAMES * SYBIL_IDS)) ] ||
		{ jq -c 'select(.event == "ground")' "$NET/sybil.out" >&2; return 1; }
}

teardown_file() {
	stop_all KILL
}

setup() {
	T=$BATS_TEST_TMPDIR
}

@test "scale: $NAMES names published through 10 nodes in parallel are each stored by peers" {
	# 10 batches of NAMES/10 records, batch j through node n((10j+5) mod N)
	split -n "l/10" -d "$NET/names" "$T/batch."
	local j f
	for f in "$T"/batch.*; do
		j=${f##*.}
		j=$((10#$j))
		(
			while read -r name; do cat "$NET/rec/$name.json"; done <"$f" |
				timeout 120 an-dht put -t 20s -s "$NET/n$(((j * 10 + 5) % N))" >"$f.out" 2>"$f.err"
			echo $? >"$f.rc"
		) &
	done
	wait
	for f in "$T"/batch.??; do
		[ "$(cat "$f.rc")" -eq 0 ] || { cat "$f.err" >&2; return 1; }
	done
	cat "$T"/batch.??.out >"$T/put.out"
	[ "$(jq -s 'length' "$T/put.out")" -eq "$NAMES" ]
	[ "$(jq -s 'map(select(.stored >= 1)) | length' "$T/put.out")" -eq "$NAMES" ] ||
		{ jq -c 'select(.stored < 1)' "$T/put.out" >&2; return 1; }
	cp "$T/put.out" "$NET/put.out"
}

@test "sybil: no put counted an attacker among the holders of a name" {
	[ "$SYBIL_NAMES" -gt 0 ] || skip "DHT_SCALE_SYBIL_NAMES=0: no attacker"
	local liars
	liars=$(jq -r '.peers[]' "$NET/put.out" | grep -cxF -f "$NET/sybil.ids" || true)
	echo "# $liars attackers counted as holders in $NAMES puts" >&3
	[ "$liars" -eq 0 ]
}

@test "sybil: every one of the $N honest nodes resolves each of the $SYBIL_NAMES attacked names" {
	[ "$SYBIL_NAMES" -gt 0 ] || skip "DHT_SCALE_SYBIL_NAMES=0: no attacker"
	# every (node, name) pair, 4 at a time; "ok|fail NODE NAME"
	seq 0 $((N - 1)) | sed 's/^/n/' | while read -r n; do sed "s/^/$n /" "$NET/attacked"; done |
		xargs -P "$PAR" -n 2 sh -c '
			if timeout 30 an-dht get -t 15s -s "$NET/$0" "$PH@$1" >"$NET/got.$0.$1" 2>/dev/null &&
				[ "$(jq -r .signature "$NET/got.$0.$1")" = "$(jq -r .signature "$NET/rec/$1.json")" ]
			then echo "ok $0 $1"; else echo "fail $0 $1"; fi
			rm -f "$NET/got.$0.$1"' >"$T/res"
	[ "$(wc -l <"$T/res")" -eq $((N * SYBIL_NAMES)) ]
	local name ok censored=0 partial=0
	while read -r name; do
		ok=$(grep -c "^ok .* $name\$" "$T/res" || true)
		if [ "$((ok * 2))" -lt "$N" ]; then
			censored=$((censored + 1))
		elif [ "$ok" -lt "$N" ]; then
			partial=$((partial + 1))
		fi
		echo "# $name: resolved by $ok of $N honest nodes" >&3
	done <"$NET/attacked"
	echo "# attacked names censored (most nodes fail): $censored of $SYBIL_NAMES; partly (some fail): $partial" >&3
	[ "$(grep -c '^ok ' "$T/res")" -eq $((N * SYBIL_NAMES)) ] || { grep '^fail ' "$T/res" | head >&2; return 1; }
}

@test "scale: every one of the $NAMES names resolves from a random node of $N" {
	resolve_all "$NET/alive" "$T/res"
	[ "$(wc -l <"$T/res")" -eq "$NAMES" ]
	[ "$(grep -c '^ok ' "$T/res")" -eq "$NAMES" ] || { grep '^fail ' "$T/res" | head >&2; return 1; }
}

@test "faults: after killing $KILL of $N nodes, >= 99% of names resolve within one re-replication interval" {
	shuf -n "$KILL" "$NET/alive" >"$NET/killed"
	# the node the restart test brings back: which records its store holds
	# now (the record bytes are in its LMDB file), before the crash
	head -1 "$NET/killed" >"$NET/victim"
	local v
	v=$(cat "$NET/victim")
	while read -r name; do
		grep -qaF -- "$(jq -r .signature "$NET/rec/$name.json")" "$NET/$v/store/data.mdb" && echo "$name"
	done <"$NET/names" >"$NET/victim.held"
	while read -r n; do kill -KILL "$(cat "$NET/$n.pid")"; done <"$NET/killed"
	grep -vxF -f "$NET/killed" "$NET/alive" >"$T/alive"
	mv "$T/alive" "$NET/alive"
	[ "$(wc -l <"$NET/alive")" -eq $((N - KILL)) ]
	# resolve every name again and again until 99% do, by the end of one
	# re-replication interval plus two maintenance ticks (and the last
	# round's own time); the last round's count decides
	local ok=0 start=$SECONDS deadline=$((SECONDS + REPL_S + 2)) round=0
	while :; do
		round=$((round + 1))
		resolve_all "$NET/alive" "$T/res"
		ok=$(grep -c '^ok ' "$T/res" || true)
		[ "$((ok * 100))" -lt "$((NAMES * 99))" ] || break
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 1
	done
	echo "# resolved $ok of $NAMES, round $round, $((SECONDS - start)) s after the kill" >&3
	[ "$((ok * 100))" -ge "$((NAMES * 99))" ] || { grep '^fail ' "$T/res" | head >&2; return 1; }
}

@test "faults: no node that was not killed died (crash) during the run" {
	local n dead=0
	while read -r n; do
		alive "$(cat "$NET/$n.pid")" || { echo "$n is gone" >&2; dead=$((dead + 1)); }
	done <"$NET/alive"
	[ "$dead" -eq 0 ]
}

@test "faults: a node killed with SIGKILL and restarted alone still serves every record its store held" {
	local v
	v=$(cat "$NET/victim")
	[ -s "$NET/victim.held" ] # it held some (k = 20 of 100 nodes store each name)
	# alone: no bootstrap and no routing snapshot (one is written only at a
	# clean stop; moved away if there is one), so only its own store answers
	[ ! -e "$NET/$v/routing.snap" ] || mv "$NET/$v/routing.snap" "$T/"
	# shellcheck disable=SC2046
	spawn_node "$v" -q $(listen_opt "${v#n}")
	node_ready "$v" 20
	run --separate-stderr node_peers "$v"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "$v is not alone: $output" >&2; return 1; }
	# 4 at a time; "ok NAME" when the node returned the very record
	xargs -P "$PAR" -n 1 sh -c '
		timeout 20 an-dht get -t 3s -s "$NET/$0" "$PH@$1" >"$NET/got.$1" 2>/dev/null &&
			[ "$(jq -r .signature "$NET/got.$1")" = "$(jq -r .signature "$NET/rec/$1.json")" ] &&
			echo "ok $1" || echo "lost $1"
		rm -f "$NET/got.$1"' "$v" <"$NET/victim.held" >"$T/res"
	local n
	n=$(wc -l <"$NET/victim.held")
	echo "# $v held $n records across the crash" >&3
	[ "$(grep -c '^ok ' "$T/res")" -eq "$n" ] || { grep '^lost ' "$T/res" | head >&2; return 1; }
	[ "$n" -ge 1 ]
	# still alone: every answer came from its own store
	run --separate-stderr node_peers "$v"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "$v is not alone: $output" >&2; return 1; }
}
