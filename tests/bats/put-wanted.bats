#!/usr/bin/env bats
# put-wanted.bats: `an-dht put` says when fewer peers verifiably hold a
# record than it wanted (issue 16: "the exit status says when fewer than r
# were reached").  Two honest daemons on 127.0.0.1 and three an-sybil
# identities on 127.0.0.2 that echo PUT_VALUE and store nothing: the
# publisher's lookup finds four peers, so it wants four holders, and only
# the honest one returns the record on the read-back.  Before the check the
# put said "stored":1 and exited 0.  Every process is killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

setup() {
	T=$BATS_TEST_TMPDIR
	export NET=$T/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate AN_CLAIM_BITS=8
	SYBIL=${AN_SYBIL:-$(dirname "$(command -v an-dht)")/../tests/tools/an-sybil}
	[ -x "$SYBIL" ] || { echo "no an-sybil at $SYBIL" >&2; return 1; }
}

teardown() {
	stop_all
}

@test "put: fewer verified holders than wanted is exit 1, with stored and wanted in its line" {
	local boot=()
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	PH=$(jq -r .peerHash "$NET/site.id")
	an-sign -k "$NET/site.key" --name short --type root --addr /ip4/127.0.0.1/tcp/4001 >"$NET/rec.json"
	bg sybil "$SYBIL" --target "$PH@short" --ids 3 --listen 127.0.0.2 --runtime 90 --grind-time 10
	wait_for "$NET/sybil.out" '"event":"ready"' 30
	start_node h0 -q
	boot=(--bootstrap "$(cat "$NET/h0.addr")")
	while read -r a; do boot+=(--bootstrap "$a"); done < <(jq -r 'select(.event == "sybil") | .addr' "$NET/sybil.out")
	[ "${#boot[@]}" -eq 8 ]
	start_node h1 -q "${boot[@]}"
	run --separate-stderr timeout 60 an-dht put -t 30s -s "$NET/h1" <"$NET/rec.json"
	echo "put: $output / $stderr"
	[ "$status" -eq 1 ]
	[ "$(jq .stored <<<"$output")" -eq 1 ]
	[ "$(jq -r '.peers[0]' <<<"$output")" = "$(cat "$NET/h0.id")" ]
	[ "$(jq .wanted <<<"$output")" -ge 2 ]
	[[ $stderr == *"stored by 1 of the $(jq .wanted <<<"$output") peers wanted"* ]]
}

@test "put: every wanted holder verified is exit 0, stored equal to wanted" {
	local i
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	PH=$(jq -r .peerHash "$NET/site.id")
	an-sign -k "$NET/site.key" --name full --type root --addr /ip4/127.0.0.1/tcp/4001 >"$NET/rec.json"
	start_node h0 -q
	for i in 1 2 3; do start_node "h$i" -q --bootstrap "$(cat "$NET/h0.addr")"; done
	run --separate-stderr timeout 60 an-dht put -t 30s -s "$NET/h3" <"$NET/rec.json"
	echo "put: $output / $stderr"
	[ "$status" -eq 0 ]
	[ "$(jq .stored <<<"$output")" -ge 1 ]
	[ "$(jq .stored <<<"$output")" -eq "$(jq .wanted <<<"$output")" ]
}
