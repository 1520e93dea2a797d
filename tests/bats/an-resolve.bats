#!/usr/bin/env bats
# an-resolve against a private network of daemons on 127.0.0.1: names,
# subdomains with their chain, --addrs, bare-name claimants, and peer-hash
# pins (refused on conflict, accepted with --repin).  Bounded waits; every
# daemon killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

N=6

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	start_network "$N" -q
	an-keygen -k "$NET/a.key" >"$NET/a.id"
	an-keygen -k "$NET/b.key" >"$NET/b.id"
	export PA=$(jq -r .peerHash "$NET/a.id") PB=$(jq -r .peerHash "$NET/b.id")
	# publisher a: site + api.site; publisher b claims "site" too
	an-sign -k "$NET/a.key" --name site --type root --addr /ip4/127.0.0.1/tcp/4001 >"$NET/a-root.json"
	an-sign -k "$NET/a.key" --name api.site --type A --root "$NET/a-root.json" \
		--addr /ip4/127.0.0.1/tcp/4002 >"$NET/a-api.json"
	an-sign -k "$NET/b.key" --name site --type root --addr /ip4/127.0.0.1/tcp/5001 >"$NET/b-root.json"
	cat "$NET/a-root.json" "$NET/a-api.json" | an-dht put -k "$NET/a.key" -s "$NET/pa" --bootstrap "$BOOT" >/dev/null
	an-dht put -k "$NET/b.key" -s "$NET/pb" --bootstrap "$BOOT" <"$NET/b-root.json" >/dev/null
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

@test "an://peerhash@name prints the verified root record with an empty chain" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "an://$PA@site"
	[ "$status" -eq 0 ]
	[ "$(jq -r .name <<<"$output")" = "an://$PA@site" ]
	[ "$(jq -r .record.signature <<<"$output")" = "$(jq -r .signature "$NET/a-root.json")" ]
	[ "$(jq -r '.chain | length' <<<"$output")" -eq 0 ]
}

@test "a subdomain resolves with its root in the chain" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@api.site"
	[ "$status" -eq 0 ]
	[ "$(jq -r .record.dns.name <<<"$output")" = api ]
	[ "$(jq -r '.chain[0].signature' <<<"$output")" = "$(jq -r .signature "$NET/a-root.json")" ]
}

@test "--addrs prints only the multiaddrs" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" --addrs "$PA@api.site"
	[ "$status" -eq 0 ]
	[ "$output" = /ip4/127.0.0.1/tcp/4002 ]
}

@test "resolving through a running daemon gives the same record" {
	run --separate-stderr an-resolve -s "$NET/n3" "$PA@api.site"
	[ "$status" -eq 0 ]
	[ "$(jq -r .record.signature <<<"$output")" = "$(jq -r .signature "$NET/a-api.json")" ]
}

@test "a bare name lists every claimant" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" site
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .peerHash | sort | tr '\n' ' ')" = "$(printf '%s\n%s\n' "$PA" "$PB" | sort | tr '\n' ' ')" ]
}

@test "first use pins the peer hash in pins.json" {
	an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@site" >/dev/null
	[ "$(jq -r .site "$T/s/pins.json")" = "$PA" ]
}

@test "another peer hash for a pinned name is refused with exit 1" {
	an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@site" >/dev/null
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PB@site"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ $stderr == *"pinned to peer hash $PA"*"--repin"* ]]
}

@test "a pinned subdomain's root protects its subdomains too" {
	an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@site" >/dev/null
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PB@api.site"
	[ "$status" -eq 1 ]
}

@test "--repin accepts the other peer hash and pins it" {
	an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@site" >/dev/null
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" --repin "$PB@site"
	[ "$status" -eq 0 ]
	[ "$(jq -r .record.multiaddrs[0] <<<"$output")" = /ip4/127.0.0.1/tcp/5001 ]
	[ "$(jq -r .site "$T/s/pins.json")" = "$PB" ]
}

@test "a pinned bare name resolves to the pinned publisher's record" {
	an-resolve -s "$T/s" --bootstrap "$BOOT" "$PB@site" >/dev/null
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" site
	[ "$status" -eq 0 ]
	[ "$(jq -r .name <<<"$output")" = "an://$PB@site" ]
}

@test "a name nobody published exits 1" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@nothere"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "a malformed name exits 3" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "an://$PA@Bad_Name"
	[ "$status" -eq 3 ]
}

@test "a missing NAME is a usage error" {
	run --separate-stderr an-resolve
	[ "$status" -eq 2 ]
}
