#!/usr/bin/env bats
# dht.bats: the C DHT (an-dht daemon, an-dht put/get, an-resolve) and js-libp2p
# kad-dht in one network on 127.0.0.1 (issue 4): C puts and js gets, js puts
# and C gets, invalid records offered by a raw client (js or C) are neither
# stored, served nor returned by C or js nodes, and a mixed network of 10 js
# and 10 C nodes in which every node resolves every name.
#
# One network for the whole file: 10 C daemons (n0 first, the others
# bootstrap from it) and 10 js nodes in ONE node process (js/dht-net.mjs;
# ten libp2p nodes in one process cost about what one idle js process does),
# each js node in server mode with passthroughMapper, /an/kad/1.0.0, the js
# an validator and selector (digest K1-K5), dialing n0 and n5.  Invalid
# records go in through two raw kad clients that send PUT_VALUE with no
# validation: js/dht-inject.mjs (js transport, message written by hand) and
# an-testpeer --kad-put-raw (our transport and kad_msg codec); the same tools
# ask a node over the wire what it serves under a key (GET_VALUE).  Every
# process is bounded (--serve-for, timeout(1), -t) and killed in
# teardown_file.

bats_require_minimum_version 1.5.0

NC=10
NJS=10
JSPROCS=2 # js nodes run in this many processes (one core each), NJS / JSPROCS per process
JSPER=$((NJS / JSPROCS))

wait_for() {
	local file=$1 re=$2 deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out waiting for /$re/ in $file" >&2
	cat "$file" >&2
	return 1
}

# start_c NAME [args]: an an-dht daemon in the background (see wait_c)
start_c() {
	local name=$1
	shift
	an-dht daemon -q -s "$NET/$name" "$@" >"$NET/$name.out" 2>"$NET/$name.err" &
	echo $! >>"$NET/pids"
}

# wait_c NAME: the daemon is ready; its first address in NET/NAME.addr
wait_c() {
	wait_for "$NET/$1.out" '"event":"ready"' 10 || return 1
	jq -r '.addrs[0]' "$NET/$1.out" >"$NET/$1.addr"
}

# bad_records DIR PREFIX: the refused kinds, one file each, names PREFIX-KIND
# (each test its own names, so one test's leak cannot pass or fail another).
# The two re-signed kinds of every prefix are signed in one js call per key.
bad_records() {
	local d=$1 p=$2 pad
	mkdir -p "$d"
	sign "$p-badsig" | jq -c '.multiaddrs = ["/ip4/203.0.113.1/tcp/1"]' >"$d/badsig.json"
	sign "$p-expired" -t 2026-01-01T00:00:00Z --valid 1h >"$d/expired.json"
	sign "$p-wrongkey" >"$d/wrongkey.unsigned"
	pad=$(head -c 8200 /dev/zero | tr '\0' x)
	sign "$p-oversized" | jq -c --arg p "$pad" '.pad = $p' >"$d/oversized.unsigned"
}

# resign_bad_records DIR...: sign the wrongkey records with other.key and the
# oversized ones with site.key (dht-sign --raw signs as given, no checks)
resign_bad_records() {
	local d
	cat "${@/%//wrongkey.unsigned}" | node "$JS/dht-sign.mjs" -k "$NET/other.key" --raw >"$NET/wrongkey.all" &
	cat "${@/%//oversized.unsigned}" | node "$JS/dht-sign.mjs" -k "$NET/site.key" --raw >"$NET/oversized.all" || return 1
	wait $! || return 1
	local i=1
	for d in "$@"; do
		sed -n "${i}p" "$NET/wrongkey.all" >"$d/wrongkey.json"
		sed -n "${i}p" "$NET/oversized.all" >"$d/oversized.json"
		rm "$d/wrongkey.unsigned" "$d/oversized.unsigned"
		i=$((i + 1))
	done
	[ "$(ls "$@" | grep -c '\.json$')" -eq $((4 * $#)) ]
}

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	command -v an-dht >/dev/null || { echo "an-dht is not on PATH" >&2; return 1; }
	export AN_TESTPEER=${AN_TESTPEER:-$(dirname "$(command -v an-dht)")/../tests/tools/an-testpeer}
	[ -x "$AN_TESTPEER" ] || { echo "no C test peer at $AN_TESTPEER" >&2; return 1; }
	export NET=$BATS_FILE_TMPDIR/net
	export JS=$AN_TOP/tests/interop/js
	mkdir -p "$NET/keys"
	: >"$NET/pids"
	export AN_STATE_DIR=$NET/nostate
	# n0, then the other nine at once (all bootstrap from n0)
	start_c n0
	wait_c n0 || return 1
	local i
	for i in $(seq 1 $((NC - 1))); do start_c "n$i" --bootstrap "$(cat "$NET/n0.addr")"; done
	for i in $(seq 1 $((NC - 1))); do wait_c "n$i" || return 1; done
	local p
	for p in $(seq 0 $((JSPROCS - 1))); do
		timeout 600 node "$JS/dht-net.mjs" --nodes "$JSPER" --first $((p * JSPER)) --key-dir "$NET/keys" \
			--socket "$NET/js$p.sock" --serve-for 500 --bootstrap "$(cat "$NET/n0.addr")" \
			--bootstrap "$(cat "$NET/n5.addr")" >"$NET/js$p.out" 2>"$NET/js$p.err" &
		echo $! >>"$NET/pids"
	done
	# while the js nodes start: keys and the bad records of every test
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	an-keygen -k "$NET/other.key" >/dev/null
	local b
	for b in js2c js2js c2c c2js; do bad_records "$NET/bad/$b" "$b" || return 1; done
	resign_bad_records "$NET"/bad/* || { echo "unable to sign the bad records" >&2; return 1; }
	for p in $(seq 0 $((JSPROCS - 1))); do
		wait_for "$NET/js$p.out" '"event":"ready"' 60 || { cat "$NET/js$p.err" >&2; return 1; }
	done
	# every C node knows others, and every js node admitted a peer (identify + ping)
	local deadline
	for i in $(seq 0 $((NC - 1))); do
		deadline=$((SECONDS + 20))
		until [ "$(an-dht peers -s "$NET/n$i" | wc -l)" -ge 2 ]; do
			[ "$SECONDS" -lt "$deadline" ] || { echo "n$i did not bootstrap" >&2; return 1; }
			sleep 0.1
		done
	done
	deadline=$((SECONDS + 30))
	until jsnet '{"cmd":"status"}' | jq -e --argjson n "$NJS" '(.nodes | length) == $n and all(.nodes[]; .rt >= 1)' >/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "js nodes have empty routing tables" >&2; return 1; }
		sleep 0.2
	done
}

teardown_file() {
	local pid
	while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$NET/pids"
	while read -r pid; do wait "$pid" 2>/dev/null || true; done <"$NET/pids"
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# jsnet_call P REQUEST: one request to js process P, its reply on stdout
jsnet_call() {
	timeout 130 node "$JS/dht-net.mjs" --call "$NET/js$1.sock" "$2"
}

# jsnet REQUEST: one request to the js network (nodes numbered 0..NJS-1 over
# all processes), one reply on stdout.  A request for one node goes to its
# process; status and getall go to every process (at once), their replies
# merged with the node numbers made global.
jsnet() {
	local req=$1 p n
	if jq -e 'has("node")' <<<"$req" >/dev/null; then
		n=$(jq .node <<<"$req")
		jsnet_call $((n / JSPER)) "$(jq -c --argjson n $((n % JSPER)) '.node = $n' <<<"$req")"
		return
	fi
	local pids=() dir
	dir=$(mktemp -d "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/jsnet.XXXXXX")
	for p in $(seq 0 $((JSPROCS - 1))); do
		# this process's share of "nodes" (all of its nodes when absent)
		n=$(jq -c --argjson p "$p" --argjson k "$JSPER" \
			'if has("nodes") then [.nodes[] | select(. >= $p * $k and . < ($p + 1) * $k) | . - $p * $k]
			 else [range(0; $k)] end' <<<"$req")
		[ "$n" != "[]" ] || continue
		jsnet_call "$p" "$(jq -c --argjson n "$n" 'if .cmd == "getall" then .nodes = $n else . end' <<<"$req")" \
			>"$dir/$p" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	# node numbers back to global: process p's node i is p * JSPER + i
	for p in $(seq 0 $((JSPROCS - 1))); do
		[ -s "$dir/$p" ] && jq -c --argjson o $((p * JSPER)) '.results = [(.results // [])[] | .node += $o]' "$dir/$p"
	done | jq -sc '{ok: all(.[]; .ok), nodes: [.[].nodes // [] | .[]], results: [.[].results[]]}'
}

js_addr() { jq -r ".nodes[$(($1 % JSPER))].addr" "$NET/js$(($1 / JSPER)).out"; }
js_key() { jq -r ".nodes[$(($1 % JSPER))].keyFile" "$NET/js$(($1 / JSPER)).out"; }

# key_of FILE: the DHT key of the record in FILE
key_of() { echo "/an/$(jq -r '.lookup | ltrimstr("an://")' "$1")"; }

# sign NAME [an-sign args]: a root record of site.key for NAME
sign() {
	local name=$1
	shift
	an-sign -k "$NET/site.key" --name "$name" --type root --addr /ip4/127.0.0.1/tcp/4001 "$@"
}

# inject ADDR [--put KEY --value FILE]... [--get KEY]...: the raw js client
# (one process, one connection; puts first, then gets; one JSON line each)
inject() {
	local addr=$1
	shift
	timeout 60 node "$JS/dht-inject.mjs" --dial "$addr" "$@"
}

# cinject ADDR KEY FILE: the raw C client offers FILE's bytes under KEY to
# the node at ADDR, then asks for KEY; prints the kad-put-raw and kad-get-raw lines
cinject() {
	timeout 60 "$AN_TESTPEER" --dial "$1" --quiet --serve-for 0 --timeout 20 \
		--kad-put-raw "$2" --kad-value "$3" --kad-get-raw "$2" | grep -E '"event":"kad-(put|get)-raw"'
}

@test "dht: a record C puts is found by js get" {
	sign cput >"$T/r.json"
	run --separate-stderr timeout 60 an-dht put -t 20s -s "$NET/n3" <"$T/r.json"
	[ "$status" -eq 0 ]
	[ "$(jq .stored <<<"$output")" -ge 1 ]
	run --separate-stderr jsnet "$(jq -nc --arg k "$(key_of "$T/r.json")" '{cmd:"get",node:7,key:$k}')"
	[ "$status" -eq 0 ]
	[ "$(jq -r .value <<<"$output")" = "$(cat "$T/r.json")" ]
}

@test "dht: a record a js node signs and puts is found by an-dht get and an-resolve" {
	node "$JS/dht-sign.mjs" -k "$(js_key 2)" --name jsput --addr /ip4/127.0.0.1/tcp/4002 >"$T/r.json"
	run --separate-stderr jsnet "$(jq -nc --arg k "$(key_of "$T/r.json")" --arg v "$(cat "$T/r.json")" \
		'{cmd:"put",node:2,key:$k,value:$v}')"
	[ "$status" -eq 0 ]
	run --separate-stderr timeout 60 an-dht get -t 20s -s "$NET/n8" "$(key_of "$T/r.json")"
	[ "$status" -eq 0 ]
	[ "$(jq -c . <<<"$output")" = "$(cat "$T/r.json")" ]
	run --separate-stderr timeout 60 an-resolve -t 20s -s "$NET/n6" --addrs "$(jq -r .lookup "$T/r.json")"
	[ "$status" -eq 0 ]
	[ "$output" = /ip4/127.0.0.1/tcp/4002 ]
}

# refused_by ADDR DIR: the raw js client offers every record in DIR under
# its own key to ADDR, then asks for each: none is accepted, none served
refused_by() {
	local f args=() gets=()
	for f in "$2"/*.json; do
		args+=(--put "$(key_of "$f")" --value "$f")
		gets+=(--get "$(key_of "$f")")
	done
	run --separate-stderr inject "$1" "${args[@]}" "${gets[@]}"
	[ "$status" -eq 0 ] || return 1
	[ "$(jq -s '[.[] | select(.event == "put")] | length' <<<"$output")" -eq 4 ] || { echo "$output" >&2; return 1; }
	[ "$(jq -s '[.[] | select(.event == "put" and .accepted == false)] | length' <<<"$output")" -eq 4 ] ||
		{ echo "accepted: $output" >&2; return 1; }
	# each GET answered (a message, not a reset), without a record
	[ "$(jq -s '[.[] | select(.event == "get" and .reply == "message" and .value == null)] | length' <<<"$output")" -eq 4 ] ||
		{ echo "served: $output" >&2; return 1; }
}

# c_refused_by ADDR FILE: the raw C client offers FILE under its own key to
# ADDR: refused (not echoed), and the node's answer to GET_VALUE has no record
c_refused_by() {
	local key
	key=$(key_of "$2")
	run --separate-stderr cinject "$1" "$key" "$2"
	[ "$status" -eq 0 ] || { echo "an-testpeer: $stderr" >&2; return 1; }
	[ "$(jq -rs 'map(select(.event == "kad-put-raw"))[0] | .accepted' <<<"$output")" = false ] ||
		{ echo "accepted: $output" >&2; return 1; }
	# the node answered the GET (a message, not a reset), without a record
	[ "$(jq -rs 'map(select(.event == "kad-get-raw"))[0] | "\(.reply) \(.value)"' <<<"$output")" = "message null" ] ||
		{ echo "served: $output" >&2; return 1; }
}

# not_returned_by_js NODE... -- FILE...: js gets from NODEs find none of the records
not_returned_by_js() {
	local nodes=() f
	while [ "$1" != -- ]; do nodes+=("$1"); shift; done
	shift
	for f in "$@"; do key_of "$f"; done >"$T/js-keys"
	run --separate-stderr jsnet "$(jq -Rnc --argjson n "$(printf '%s\n' "${nodes[@]}" | jq -sc .)" \
		'{cmd:"getall",keys:[inputs],nodes:$n,timeoutMs:10000,parallel:8}' <"$T/js-keys")"
	[ "$(jq '.results | length' <<<"$output")" -eq $((${#nodes[@]} * $#)) ] || { echo "$output" >&2; return 1; }
	[ "$(jq '[.results[] | select(.value != null)] | length' <<<"$output")" -eq 0 ] ||
		{ echo "returned by js: $output" >&2; return 1; }
}

# not_held_by_js NODE FILE...: js node NODE's datastore holds none of the records
not_held_by_js() {
	local n=$1 f
	shift
	for f in "$@"; do key_of "$f"; done >"$T/held-keys"
	run --separate-stderr jsnet "$(jq -Rnc --argjson n "$n" '{cmd:"held",node:$n,keys:[inputs]}' <"$T/held-keys")"
	[ "$status" -eq 0 ] || return 1
	[ "$(jq '.values | length' <<<"$output")" -eq $# ] || { echo "$output" >&2; return 1; }
	[ "$(jq '[.values[] | select(. != null)] | length' <<<"$output")" -eq 0 ] ||
		{ echo "stored: $output" >&2; return 1; }
}

# not_returned_by_c NODE FILE...: an-dht get through daemon NODE finds none (exit 1)
not_returned_by_c() {
	local n=$1 f
	shift
	for f in "$@"; do
		run --separate-stderr timeout 60 an-dht get -t 10s -s "$NET/$n" "$(key_of "$f")"
		[ "$status" -eq 1 ] || { echo "an-dht get $f: status $status: $output" >&2; return 1; }
	done
}

@test "dht: C nodes refuse and never serve records a raw js client injects (bad signature, wrong key, expired, oversized)" {
	refused_by "$(cat "$NET/n4.addr")" "$NET/bad/js2c"
	not_returned_by_c n4 "$NET"/bad/js2c/*.json
}

@test "dht: js nodes refuse and never store or serve records a raw js client injects (bad signature, wrong key, expired, oversized)" {
	refused_by "$(js_addr 4)" "$NET/bad/js2js"
	not_held_by_js 4 "$NET"/bad/js2js/*.json
}

@test "dht: C nodes refuse and never serve or return records a raw C client injects (bad signature, wrong key, expired, oversized)" {
	local f n=0
	for f in "$NET"/bad/c2c/*.json; do
		c_refused_by "$(cat "$NET/n7.addr")" "$f" || { echo "record: $f" >&2; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq 4 ]
	not_returned_by_c n7 "$NET"/bad/c2c/*.json
	not_returned_by_js 3 -- "$NET"/bad/c2c/*.json
}

@test "dht: js nodes refuse and never store, serve or return records a raw C client injects (bad signature, wrong key, expired, oversized)" {
	local f n=0
	for f in "$NET"/bad/c2js/*.json; do
		c_refused_by "$(js_addr 8)" "$f" || { echo "record: $f" >&2; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq 4 ]
	not_held_by_js 8 "$NET"/bad/c2js/*.json
	not_returned_by_js 8 1 -- "$NET"/bad/c2js/*.json
	not_returned_by_c n1 "$NET"/bad/c2js/*.json
}

# lower_seq NAME: T/s5.json and T/s4.json, NAME at seq 5 and 4; K their key
lower_seq() {
	sign "$1" --seq 5 >"$T/s5.json"
	sign "$1" --seq 4 >"$T/s4.json"
	K=$(key_of "$T/s5.json")
}

@test "dht: a lower seq a raw js client injects into a C node does not replace the higher one it holds" {
	lower_seq lowseq
	run --separate-stderr inject "$(cat "$NET/n2.addr")" --put "$K" --value "$T/s5.json" --put "$K" --value "$T/s4.json" --get "$K"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	[ "$(jq -rs '.[2].value | fromjson | .seq' <<<"$output")" -eq 5 ]
}

@test "dht: a lower seq a raw js client injects into a js node is refused and does not replace the higher one" {
	lower_seq lowseqjs
	run --separate-stderr inject "$(js_addr 6)" --put "$K" --value "$T/s5.json" --put "$K" --value "$T/s4.json" --get "$K"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	[ "$(jq -rs '.[1].accepted' <<<"$output")" = false ]
	[ "$(jq -rs '.[2].value | fromjson | .seq' <<<"$output")" -eq 5 ]
}

@test "dht: a lower seq a raw C client injects into a C node is refused and does not replace the higher one" {
	lower_seq lowseqc
	run --separate-stderr cinject "$(cat "$NET/n3.addr")" "$K" "$T/s5.json"
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	run --separate-stderr cinject "$(cat "$NET/n3.addr")" "$K" "$T/s4.json"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = false ]
	[ "$(jq -rs '.[1].value | fromjson | .seq' <<<"$output")" -eq 5 ]
	run --separate-stderr timeout 60 an-dht get -t 10s -s "$NET/n3" "$K"
	[ "$status" -eq 0 ]
	[ "$(jq .seq <<<"$output")" -eq 5 ]
}

@test "dht: a lower seq a raw C client injects into a js node is refused and does not replace the higher one" {
	lower_seq lowseqcjs
	run --separate-stderr cinject "$(js_addr 9)" "$K" "$T/s5.json"
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	run --separate-stderr cinject "$(js_addr 9)" "$K" "$T/s4.json"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = false ]
	[ "$(jq -rs '.[1].value | fromjson | .seq' <<<"$output")" -eq 5 ]
	run --separate-stderr jsnet "$(jq -nc --arg k "$K" '{cmd:"held",node:9,key:$k}')"
	[ "$(jq -r '.value | fromjson | .seq' <<<"$output")" -eq 5 ]
}

@test "dht: mixed network of $NC C and $NJS js nodes: every node resolves every name" {
	local i k pids=()
	for i in $(seq 0 $((NC - 1))); do sign "mix-c$i" >"$T/c$i.json"; done
	# each js node signs its own name
	for i in $(seq 0 $((NJS - 1))); do
		node "$JS/dht-sign.mjs" -k "$(js_key "$i")" --name "mix-js$i" --addr /ip4/127.0.0.1/tcp/4003 >"$T/j$i.json" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || return 1; done
	# publish: each C daemon its name, each js node its own, all at once
	pids=()
	for i in $(seq 0 $((NC - 1))); do
		timeout 60 an-dht put -t 20s -s "$NET/n$i" <"$T/c$i.json" >"$T/cput$i" &
		pids+=($!)
	done
	for i in $(seq 0 $((NJS - 1))); do
		jsnet "$(jq -nc --argjson n "$i" --arg k "$(key_of "$T/j$i.json")" --arg v "$(cat "$T/j$i.json")" \
			'{cmd:"put",node:$n,key:$k,value:$v}')" >"$T/jput$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for f in "$T"/c*.json "$T"/j*.json; do key_of "$f"; done >"$T/keys"
	[ "$(sort -u "$T/keys" | wc -l)" -eq $((NC + NJS)) ]
	# every js node gets every key (in the js processes) while every C
	# daemon gets every key (an-dht get, 6 at a time)
	jsnet "$(jq -Rnc '{cmd:"getall",keys:[inputs],timeoutMs:30000,parallel:16}' <"$T/keys")" >"$T/getall" &
	local jspid=$!
	for i in $(seq 0 $((NC - 1))); do
		while read -r k; do echo "$i $k"; done <"$T/keys"
	done | xargs -P 6 -n 2 sh -c 'timeout 60 an-dht get -t 20s -s "$0/n$1" "$2" >/dev/null || echo "n$1 $2"' "$NET" >"$T/failed"
	wait "$jspid" || true
	[ ! -s "$T/failed" ] || { cat "$T/failed" >&2; return 1; }
	[ "$(jq '.results | length' "$T/getall")" -eq $((NJS * (NC + NJS))) ]
	[ "$(jq '[.results[] | select(.value == null)] | length' "$T/getall")" -eq 0 ] ||
		{ jq -c '.results[] | select(.value == null)' "$T/getall" >&2; return 1; }
}
