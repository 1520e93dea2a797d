#!/usr/bin/env bats
# dht.bats: the C DHT (an-dht daemon, an-dht put/get, an-resolve) and js-libp2p
# kad-dht in one network on 127.0.0.1 (issue 4): C puts and js gets, js puts
# and C gets, invalid records offered by a raw client are neither stored nor
# served by C or js nodes, and a mixed network of 10 js and 10 C nodes in
# which every node resolves every name.
#
# One network for the whole file: 10 C daemons (n0 first, the others
# bootstrap from it) and 10 js nodes in ONE node process (js/dht-net.mjs;
# ten libp2p nodes in one process cost about what one idle js process does),
# each js node in server mode with passthroughMapper, /an/kad/1.0.0, the js
# an validator and selector (digest K1-K5), dialing n0 and n5.  Invalid
# records go in through js/dht-inject.mjs, a raw kad client that writes
# PUT_VALUE by hand with no validation; the same tool asks a node over the
# wire what it serves under a key.  Every process is bounded (--serve-for,
# timeout(1), -t) and killed in teardown_file.

bats_require_minimum_version 1.5.0

NC=10
NJS=10

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

start_c() {
	local name=$1
	shift
	an-dht daemon -q -s "$NET/$name" "$@" >"$NET/$name.out" 2>"$NET/$name.err" &
	echo $! >>"$NET/pids"
	wait_for "$NET/$name.out" '"event":"ready"' 10 || return 1
	jq -r '.addrs[0]' "$NET/$name.out" >"$NET/$name.addr"
}

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	command -v an-dht >/dev/null || { echo "an-dht is not on PATH" >&2; return 1; }
	export NET=$BATS_FILE_TMPDIR/net
	export JS=$AN_TOP/tests/interop/js
	mkdir -p "$NET/keys"
	: >"$NET/pids"
	export AN_STATE_DIR=$NET/nostate
	start_c n0 || return 1
	local i
	for i in $(seq 1 $((NC - 1))); do start_c "n$i" --bootstrap "$(cat "$NET/n0.addr")" || return 1; done
	timeout 600 node "$JS/dht-net.mjs" --nodes "$NJS" --key-dir "$NET/keys" --socket "$NET/js.sock" \
		--serve-for 500 --bootstrap "$(cat "$NET/n0.addr")" --bootstrap "$(cat "$NET/n5.addr")" \
		>"$NET/js.out" 2>"$NET/js.err" &
	echo $! >>"$NET/pids"
	wait_for "$NET/js.out" '"event":"ready"' 60 || { cat "$NET/js.err" >&2; return 1; }
	# every js node admitted a peer (identify + ping) and every C node knows others
	local deadline=$((SECONDS + 30))
	until jsnet '{"cmd":"status"}' | jq -e 'all(.nodes[]; .rt >= 1)' >/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "js nodes have empty routing tables" >&2; return 1; }
		sleep 0.2
	done
	for i in $(seq 0 $((NC - 1))); do
		deadline=$((SECONDS + 20))
		until [ "$(an-dht peers -s "$NET/n$i" | wc -l)" -ge 2 ]; do
			[ "$SECONDS" -lt "$deadline" ] || { echo "n$i did not bootstrap" >&2; return 1; }
			sleep 0.1
		done
	done
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	an-keygen -k "$NET/other.key" >/dev/null
}

teardown_file() {
	local pid
	while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$NET/pids"
	while read -r pid; do wait "$pid" 2>/dev/null || true; done <"$NET/pids"
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# jsnet REQUEST: one request to the js network, its reply on stdout
jsnet() {
	timeout 130 node "$JS/dht-net.mjs" --call "$NET/js.sock" "$1"
}

js_addr() { jq -r ".nodes[$1].addr" "$NET/js.out"; }
js_key() { jq -r ".nodes[$1].keyFile" "$NET/js.out"; }

# key_of FILE: the DHT key of the record in FILE
key_of() { echo "/an/$(jq -r '.lookup | ltrimstr("an://")' "$1")"; }

# sign NAME [an-sign args]: a root record of site.key for NAME
sign() {
	local name=$1
	shift
	an-sign -k "$NET/site.key" --name "$name" --type root --addr /ip4/127.0.0.1/tcp/4001 "$@"
}

# inject ADDR KEY FILE: offer FILE's bytes under KEY to the node at ADDR, raw
inject() {
	timeout 60 node "$JS/dht-inject.mjs" --dial "$1" --put "$2" --value "$3" --get "$2"
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

# refused_by ADDR FILE: ADDR refuses FILE under its own key and serves nothing
refused_by() {
	local key
	key=$(key_of "$2")
	run --separate-stderr inject "$1" "$key" "$2"
	[ "$status" -eq 0 ] || return 1
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = false ] || { echo "accepted: $output" >&2; return 1; }
	[ "$(jq -rs '.[1].value' <<<"$output")" = null ] || { echo "served: $output" >&2; return 1; }
}

# bad_records DIR: the refused kinds, one file each
bad_records() {
	local d=$1 pad
	sign badsig >"$d/base.json"
	jq -c '.multiaddrs = ["/ip4/203.0.113.1/tcp/1"]' "$d/base.json" >"$d/badsig.json"
	sign wrongkey | node "$JS/dht-sign.mjs" -k "$NET/other.key" --raw >"$d/wrongkey.json"
	sign expired -t 2026-01-01T00:00:00Z --valid 1h >"$d/expired.json"
	pad=$(head -c 8200 /dev/zero | tr '\0' x)
	sign oversized | jq -c --arg p "$pad" '.pad = $p' | node "$JS/dht-sign.mjs" -k "$NET/site.key" --raw >"$d/oversized.json"
	rm "$d/base.json"
}

@test "dht: C nodes refuse and never serve records a raw js client injects (bad signature, wrong key, expired, oversized)" {
	bad_records "$T"
	local f n=0
	for f in "$T"/*.json; do
		refused_by "$(cat "$NET/n4.addr")" "$f" || { echo "record: $f" >&2; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq 4 ]
	# and no C node returns any of them
	for f in "$T"/*.json; do
		run --separate-stderr timeout 60 an-dht get -t 10s -s "$NET/n4" "$(key_of "$f")"
		[ "$status" -eq 1 ]
	done
}

@test "dht: js nodes refuse and never serve records a raw client injects (bad signature, wrong key, expired, oversized)" {
	bad_records "$T"
	local f n=0
	for f in "$T"/*.json; do
		refused_by "$(js_addr 4)" "$f" || { echo "record: $f" >&2; return 1; }
		run --separate-stderr jsnet "$(jq -nc --arg k "$(key_of "$f")" '{cmd:"held",node:4,key:$k}')"
		[ "$(jq -r .value <<<"$output")" = null ]
		n=$((n + 1))
	done
	[ "$n" -eq 4 ]
}

@test "dht: a lower seq injected into a C node does not replace the higher one it holds" {
	sign lowseq --seq 5 >"$T/s5.json"
	sign lowseq --seq 4 >"$T/s4.json"
	run --separate-stderr inject "$(cat "$NET/n2.addr")" "$(key_of "$T/s5.json")" "$T/s5.json"
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	run --separate-stderr inject "$(cat "$NET/n2.addr")" "$(key_of "$T/s4.json")" "$T/s4.json"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[1].value | fromjson | .seq' <<<"$output")" -eq 5 ]
}

@test "dht: a lower seq injected into a js node is refused and does not replace the higher one" {
	sign lowseqjs --seq 5 >"$T/s5.json"
	sign lowseqjs --seq 4 >"$T/s4.json"
	run --separate-stderr inject "$(js_addr 6)" "$(key_of "$T/s5.json")" "$T/s5.json"
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = true ]
	run --separate-stderr inject "$(js_addr 6)" "$(key_of "$T/s4.json")" "$T/s4.json"
	[ "$status" -eq 0 ]
	[ "$(jq -rs '.[0].accepted' <<<"$output")" = false ]
	[ "$(jq -rs '.[1].value | fromjson | .seq' <<<"$output")" -eq 5 ]
}

@test "dht: mixed network of $NC C and $NJS js nodes: every node resolves every name" {
	local i k
	for i in $(seq 0 $((NC - 1))); do sign "mix-c$i" >"$T/c$i.json"; done
	for i in $(seq 0 $((NJS - 1))); do
		node "$JS/dht-sign.mjs" -k "$(js_key "$i")" --name "mix-js$i" --addr /ip4/127.0.0.1/tcp/4003 >"$T/j$i.json"
	done
	# publish: each C daemon its name, each js node its own (js nodes in parallel)
	for i in $(seq 0 $((NC - 1))); do
		timeout 60 an-dht put -t 20s -s "$NET/n$i" <"$T/c$i.json" >/dev/null &
	done
	for i in $(seq 0 $((NJS - 1))); do
		jsnet "$(jq -nc --argjson n "$i" --arg k "$(key_of "$T/j$i.json")" --arg v "$(cat "$T/j$i.json")" \
			'{cmd:"put",node:$n,key:$k,value:$v}')" >/dev/null &
	done
	wait
	for f in "$T"/c*.json "$T"/j*.json; do key_of "$f"; done >"$T/keys"
	[ "$(sort -u "$T/keys" | wc -l)" -eq $((NC + NJS)) ]
	# js: every node gets every key
	run --separate-stderr jsnet "$(jq -Rnc '{cmd:"getall",keys:[inputs],timeoutMs:20000,parallel:32}' <"$T/keys")"
	[ "$(jq '.results | length' <<<"$output")" -eq $((NJS * (NC + NJS))) ]
	[ "$(jq '[.results[] | select(.value == null)] | length' <<<"$output")" -eq 0 ] ||
		{ jq -c '.results[] | select(.value == null)' <<<"$output" >&2; return 1; }
	# C: every daemon gets every key (4 at a time)
	for i in $(seq 0 $((NC - 1))); do
		while read -r k; do echo "$i $k"; done <"$T/keys"
	done | xargs -P 4 -n 2 sh -c 'timeout 60 an-dht get -t 20s -s "$0/n$1" "$2" >/dev/null || echo "n$1 $2"' "$NET" >"$T/failed"
	[ ! -s "$T/failed" ] || { cat "$T/failed" >&2; return 1; }
}
