#!/usr/bin/env bats
# an-dht DHT commands on a private network of daemons on 127.0.0.1: put from
# one node, get from another, subdomains, claimants, refusal of invalid
# records before anything is sent, expiry, restart, republish and pins.
# Every daemon is killed in teardown; every wait is bounded.

bats_require_minimum_version 1.5.0
load ../lib/common

N=8

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	start_network "$N" -q
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# sign NAME [an-sign args...]: a root record for NAME on stdout
sign_root() {
	local name=$1
	shift
	an-sign -k "$NET/site.key" --name "$name" --type root --addr /ip4/127.0.0.1/tcp/4001 "$@"
}

@test "put from an in-process node is stored by peers; get from another node returns it" {
	sign_root put1 >"$T/r.json"
	run --separate-stderr an-dht put -k "$NET/site.key" -s "$T/pub" --bootstrap "$BOOT" <"$T/r.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r .key <<<"$output")" = "/an/$PH@put1" ]
	[ "$(jq -r .stored <<<"$output")" -ge 1 ]
	run --separate-stderr an-dht get -s "$NET/n5" "$PH@put1"
	[ "$status" -eq 0 ]
	[ "$(jq -r .signature <<<"$output")" = "$(jq -r .signature "$T/r.json")" ]
}

@test "put through a daemon reports the peers that stored the record" {
	sign_root put2 >"$T/r.json"
	run --separate-stderr an-dht put -s "$NET/n3" <"$T/r.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.peers | length' <<<"$output")" -eq "$(jq -r .stored <<<"$output")" ]
	[ "$(jq -r .stored <<<"$output")" -ge 1 ]
}

@test "a subdomain and its root put together resolve from another node" {
	sign_root sub1 >"$T/r.json"
	an-sign -k "$NET/site.key" --name api.sub1 --type A --root "$T/r.json" \
		--addr /ip4/127.0.0.1/tcp/4002 >"$T/api.json"
	cat "$T/r.json" "$T/api.json" | an-dht put -s "$NET/n1" >"$T/put.out"
	[ "$(jq -s 'map(select(.stored >= 1)) | length' "$T/put.out")" -eq 2 ]
	# a node that holds the root (every node here: k = 20 > 8 nodes)
	run --separate-stderr an-dht get -s "$NET/n6" "an://$PH@api.sub1"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.multiaddrs[0]' <<<"$output")" = /ip4/127.0.0.1/tcp/4002 ]
}

@test "an invalid record on stdin is refused with exit 3 and nothing is sent" {
	sign_root bad1 >"$T/r.json"
	sed 's|/tcp/4001|/tcp/4009|' "$T/r.json" >"$T/bad.json"
	sign_root bad2 >"$T/good.json"
	# the good record after the bad one is not sent either
	run --separate-stderr an-dht put -s "$NET/n2" < <(cat "$T/bad.json" "$T/good.json")
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[[ $stderr == an-dht:* ]]
	run --separate-stderr an-dht get -s "$NET/n4" "$PH@bad2"
	[ "$status" -eq 1 ]
}

@test "get of a name nobody published exits 1" {
	run --separate-stderr an-dht get -s "$NET/n6" "$PH@nosuchname"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "an expired record is never returned" {
	sign_root exp1 --valid 3s >"$T/r.json"
	expires=$(date -d "$(jq -r .expires "$T/r.json")" +%s)
	an-dht put -s "$NET/n1" <"$T/r.json" >/dev/null
	run --separate-stderr an-dht get -s "$NET/n2" "$PH@exp1"
	[ "$status" -eq 0 ]
	# poll until it is gone; whenever it still comes back, it is not expired
	local deadline=$((SECONDS + 15)) now
	while :; do
		now=$(date +%s) # before the get: what it returns was valid then or later
		run --separate-stderr an-dht get -s "$NET/n2" "$PH@exp1"
		[ "$status" -ne 1 ] || break
		[ "$status" -eq 0 ] || { echo "get exited $status: $stderr" >&2; return 1; }
		[ "$now" -le "$expires" ] || { echo "returned at $now, expired at $expires: $output" >&2; return 1; }
		[ "$SECONDS" -lt "$deadline" ] || { echo "still returned 15 s on" >&2; return 1; }
		sleep 0.2
	done
	[ -z "$output" ]
	run --separate-stderr an-dht get -s "$NET/n1" "$PH@exp1"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "providers of a bare name list the publisher" {
	sign_root claim1 >"$T/r.json"
	an-dht put -k "$NET/site.key" -s "$T/pub" --bootstrap "$BOOT" <"$T/r.json" >/dev/null
	run --separate-stderr an-dht providers -s "$NET/n7" claim1
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerHash <<<"$output")" = "$PH" ]
}

@test "providers NAME names the claim, not only its hash (issue 11)" {
	sign_root claim2 >"$T/r.json"
	an-dht put -k "$NET/site.key" -s "$T/pub" --bootstrap "$BOOT" <"$T/r.json" >/dev/null
	# through a daemon and on an in-process node
	run --separate-stderr an-dht providers -s "$NET/n6" claim2
	[ "$status" -eq 0 ]
	[ "$(jq -r .name <<<"$output")" = "an://$PH@claim2" ]
	run --separate-stderr an-dht providers -s "$T/other" --bootstrap "$BOOT" claim2
	[ "$status" -eq 0 ]
	[ "$(jq -r .name <<<"$output")" = "an://$PH@claim2" ]
}

@test "peers lists routing-table entries with their addresses" {
	run --separate-stderr an-dht peers -s "$NET/n0"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 2 ]
	[[ $(jq -r '.addrs[0]' <<<"${lines[0]}") == /ip4/127.0.0.1/tcp/* ]]
}

@test "a restarted node keeps what it stored" {
	sign_root keep1 >"$T/r.json"
	start_node keep -q --bootstrap "$BOOT"
	an-dht put -s "$NET/keep" <"$T/r.json" >/dev/null
	stop_node keep
	# alone now: no bootstrap, and its saved routing table (written at the
	# clean stop) moved away, so only its own store can answer
	mv "$NET/keep/routing.snap" "$T/"
	start_node keep -q
	run --separate-stderr node_peers keep
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr an-dht get -s "$NET/keep" -t 3s "$PH@keep1"
	[ "$status" -eq 0 ]
	[ "$(jq -r .signature <<<"$output")" = "$(jq -r .signature "$T/r.json")" ]
	# and the get asked nobody
	run --separate-stderr node_peers keep
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "republish (cron) re-signs due own records and peers get the new one" {
	sign_root rep1 >"$T/r.json"
	an-dht put -k "$NET/site.key" -s "$T/pub" --bootstrap "$BOOT" <"$T/r.json" >/dev/null
	sleep 1.1
	AN_KAD_REPUBLISH_INTERVAL=1s run --separate-stderr an-dht republish -k "$NET/site.key" -s "$T/pub" --bootstrap "$BOOT"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = resigned ]
	[ "$(jq -r .stored <<<"$output")" -ge 1 ]
	run --separate-stderr an-dht get -s "$NET/n3" "$PH@rep1"
	[ "$(jq -r .ttl.timesRepublished <<<"$output")" -eq 1 ]
}

@test "a daemon republishes its own records on a shortened interval" {
	sign_root rep2 >"$T/r.json"
	AN_KAD_REPUBLISH_INTERVAL=1s AN_KAD_MAINTAIN_INTERVAL=500ms \
		start_node owner -q -k "$NET/site.key" --bootstrap "$BOOT"
	an-dht put -s "$NET/owner" <"$T/r.json" >/dev/null
	deadline=$((SECONDS + 15))
	until [ "$(an-dht get -s "$NET/n6" "$PH@rep2" | jq -r .ttl.timesRepublished)" -ge 1 ] 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "no republish seen" >&2; return 1; }
		sleep 0.2
	done
	stop_node owner
}

@test "pin keeps a third party's record; unpin stops; unpin twice exits 1" {
	sign_root pin1 >"$T/r.json"
	an-dht put -s "$NET/n1" <"$T/r.json" >/dev/null
	run --separate-stderr an-dht pin -s "$NET/n5" "$PH@pin1"
	[ "$status" -eq 0 ]
	[ "$(jq -r .pinned <<<"$output")" = true ]
	run --separate-stderr an-dht unpin -s "$NET/n5" "$PH@pin1"
	[ "$status" -eq 0 ]
	[ "$(jq -r .pinned <<<"$output")" = false ]
	run --separate-stderr an-dht unpin -s "$NET/n5" "$PH@pin1"
	[ "$status" -eq 1 ]
}

@test "pinned records are republished unchanged by republish --force" {
	sign_root pin2 >"$T/r.json"
	an-dht put -s "$NET/n1" <"$T/r.json" >/dev/null
	an-dht pin -s "$NET/n4" "$PH@pin2" >/dev/null
	run --separate-stderr an-dht republish -f -s "$NET/n4"
	[ "$status" -eq 0 ]
	[ "$(jq -r 'select(.key == "/an/'"$PH"'@pin2") | .status' <<<"$output")" = republished ]
}

@test "a command without any peer or daemon asks nobody: exit 4, not 1 (issue 11)" {
	sign_root lone1 >"$T/r.json"
	run --separate-stderr an-dht put -s "$T/alone" -t 2s <"$T/r.json"
	[ "$status" -eq 4 ]
	[ "$(jq -r .stored <<<"$output")" -eq 0 ]
	[[ $stderr == *"no peer reachable"* ]]
}

@test "status prints the daemon's state as one JSON line (issue 11)" {
	sign_root stat1 >"$T/r.json"
	an-dht put -s "$NET/n2" <"$T/r.json" >/dev/null
	run --separate-stderr an-dht status -s "$NET/n2"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .peerId <<<"$output")" = "$(cat "$NET/n2.id")" ]
	[ "$(jq -r '.addrs | length' <<<"$output")" -ge 1 ]
	[ "$(jq -r .connections <<<"$output")" -ge 1 ]
	[ "$(jq -r .routingTable <<<"$output")" -ge 2 ]
	[ "$(jq -r .records <<<"$output")" -ge 1 ]
	jq -e '.republishDue | type == "number"' <<<"$output" >/dev/null
	jq -e '.reachability | type == "string"' <<<"$output" >/dev/null
	run --separate-stderr an-dht status -s "$T/none"
	[ "$status" -eq 4 ]
	[[ $stderr == *"no daemon"* ]]
}

@test "status: the daemon's reachability comes from AutoNAT (issue 12)" {
	# three daemons whose AutoNAT servers may dial loopback: each learns it
	# is reachable from two servers' dial-backs (go's minConfidence 2)
	local i st=
	for i in 1 2 3; do
		AN_AUTONAT_ALLOW=127.0.0.0/8 spawn_node "an$i" -q --bootstrap "$BOOT" || return 1
	done
	for i in 1 2 3; do node_ready "an$i" || return 1; done
	for _ in $(seq 120); do
		st=$(timeout 10 an-dht status -t 5s -s "$NET/an1" | jq -r .reachability)
		[ "$st" = public ] && break
		sleep 0.5
	done
	[ "$st" = public ] || { echo "reachability: $st"; return 1; }
	# AutoNAT off: nothing is claimed
	AN_AUTONAT=off start_node an4 -q --bootstrap "$BOOT"
	[ "$(an-dht status -s "$NET/an4" | jq -r .reachability)" = unknown ]
}

@test "get --format text prints key: value lines; JSON is the default on a terminal too (issue 11)" {
	sign_root text1 >"$T/r.json"
	an-dht put -s "$NET/n1" <"$T/r.json" >/dev/null
	run --separate-stderr an-dht get -s "$NET/n3" --format text "$PH@text1"
	[ "$status" -eq 0 ]
	grep -qx 'dns.name: text1' <<<"$output"
	grep -qx "lookup: an://$PH@text1" <<<"$output"
	grep -qx 'ttl.timeToLive: 86400' <<<"$output"
	[[ $output != *"{"* ]]
	# stdout never depends on isatty: a terminal gets the same JSON line as a pipe
	local piped tty
	piped=$(an-dht get -s "$NET/n3" "$PH@text1")
	tty=$(script -qec "an-dht get -s '$NET/n3' '$PH@text1'" /dev/null | tr -d '\r')
	[ "$tty" = "$piped" ]
	run --separate-stderr an-dht get -s "$NET/n3" --format yaml "$PH@text1"
	[ "$status" -eq 2 ]
}
