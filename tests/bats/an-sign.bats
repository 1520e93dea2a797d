#!/usr/bin/env bats
# an-sign: build, complete and re-sign records; every exit status.

bats_require_minimum_version 1.5.0

T0=2026-11-23T20:00:00Z

setup() {
	dir=$(mktemp -d /tmp/an-sign-test.XXXXXX)
	key=$dir/site.key
	an-keygen -k "$key" >"$dir/id.json"
	peerhash=$(jq -r .peerHash "$dir/id.json")
	peerid=$(jq -r .peerId "$dir/id.json")
}

teardown() {
	rm -rf "$dir"
}

root() { # [extra options]
	an-sign -k "$key" -t $T0 --name mysite --type root --addr /ip4/198.51.100.7/tcp/4001 "$@" >"$dir/root.json"
}

@test "--name builds one signed root record as one canonical JSON line" {
	run --separate-stderr an-sign -k "$key" -t $T0 --name mysite --type root --addr /ip4/198.51.100.7/tcp/4001
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .lookup <<<"$output")" = "an://$peerhash@mysite" ]
	[ "$(jq -r .publisherPublicKey <<<"$output")" = "$peerid" ]
	[ "$(jq -c .dns <<<"$output")" = '{"isRoot":true,"name":"mysite","protocol":"an"}' ]
	[ "$(jq -r .expires <<<"$output")" = 2026-11-25T20:00:00Z ]
	[ "$(jq -r .ttl.timestampRepublished <<<"$output")" = $T0 ]
	[[ "$(jq -r .signature <<<"$output")" =~ ^ed25519=[0-9a-f]{128}$ ]]
	# Canonical: members sorted, no whitespace (jq -S -c gives the same bytes here).
	[ "$output" = "$(jq -S -c . <<<"$output")" ]
}

@test "the signed record verifies" {
	root
	run an-verify -t $T0 "$dir/root.json"
	[ "$status" -eq 0 ]
}

@test "a subdomain record refers to its root record" {
	root
	run --separate-stderr an-sign -k "$key" -t $T0 --name api.mysite --type A --root "$dir/root.json" \
		--addr /ip4/198.51.100.7/tcp/8080
	[ "$status" -eq 0 ]
	[ "$(jq -r .dns.name <<<"$output")" = api ]
	[ "$(jq -r '.root[0].signature' <<<"$output")" = "$(jq -r .signature "$dir/root.json")" ]
	[ "$(jq -r '.root[0].target' <<<"$output")" = "$(jq -r .did "$dir/root.json")" ]
	[ "$(jq -r '.root[0].context' <<<"$output")" = mysite ]
}

@test "CNAME and TXT records carry target and text" {
	root
	run an-sign -k "$key" -t $T0 --name www.mysite --type CNAME --root "$dir/root.json" --target "an://$peerhash@mysite"
	[ "$status" -eq 0 ]
	[ "$(jq -r .target <<<"$output")" = "an://$peerhash@mysite" ]
	run an-sign -k "$key" -t $T0 --name about.mysite --type TXT --root "$dir/root.json" --text "hello world"
	[ "$status" -eq 0 ]
	[ "$(jq -r .text <<<"$output")" = "hello world" ]
}

@test "partial records on stdin are completed, one line each, unknown fields kept" {
	root
	printf '%s\n%s\n' '{"type":"TXT","lookup":"an://a.mysite","text":"x","note":"kept"}' \
		'{"type":"A","lookup":"an://b.mysite","multiaddrs":["/ip4/198.51.100.8/tcp/1"]}' >"$dir/in.json"
	run --separate-stderr an-sign -k "$key" -t $T0 --root "$dir/root.json" <"$dir/in.json"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .note <<<"${lines[0]}")" = kept ]
	[ "$(jq -r .lookup <<<"${lines[1]}")" = "an://$peerhash@b.mysite" ]
}

@test "--resign refreshes validity and counts republishing, keeping seq" {
	root --seq 4
	run an-sign -k "$key" -t 2026-11-24T20:00:00Z --resign <"$dir/root.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r .ttl.timesRepublished <<<"$output")" = 1 ]
	[ "$(jq -r .ttl.timestampRepublished <<<"$output")" = 2026-11-24T20:00:00Z ]
	[ "$(jq -r .expires <<<"$output")" = 2026-11-26T20:00:00Z ]
	[ "$(jq -r .seq <<<"$output")" = 4 ]
	[ "$(jq -r .did <<<"$output")" = "$(jq -r .did "$dir/root.json")" ]
}

@test "--resign --bump-seq adds one to seq" {
	root --seq 4
	run an-sign -k "$key" -t $T0 --resign --bump-seq <"$dir/root.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r .seq <<<"$output")" = 5 ]
}

@test "--valid and --ttl set expires and timeToLive" {
	run an-sign -k "$key" -t $T0 --name mysite --type root --valid 7d --ttl 12h
	[ "$status" -eq 0 ]
	[ "$(jq -r .expires <<<"$output")" = 2026-11-30T20:00:00Z ]
	[ "$(jq -r .ttl.timeToLive <<<"$output")" = 43200 ]
}

@test "--resign of an unsigned record is bad input (exit 3) naming the field" {
	run --separate-stderr an-sign -k "$key" -t $T0 --resign <<<'{"type":"root","lookup":"an://mysite"}'
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-sign: record 1: signature: missing"* ]]
}

@test "re-signing another publisher's record is refused (exit 1)" {
	root
	an-keygen -k "$dir/other.key" >/dev/null
	run --separate-stderr an-sign -k "$dir/other.key" -t $T0 --resign <"$dir/root.json"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"publisherPublicKey"* ]]
	[ -z "$output" ]
}

@test "a subdomain without --root is refused (exit 1)" {
	run --separate-stderr an-sign -k "$key" -t $T0 --name api.mysite --type A --addr /ip4/198.51.100.7/tcp/1
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"root: a subdomain record needs its root record"* ]]
}

@test "an expired root record is refused (exit 1)" {
	root
	run --separate-stderr an-sign -k "$key" -t 2026-11-28T20:00:00Z --name api.mysite --type A \
		--root "$dir/root.json" --addr /ip4/198.51.100.7/tcp/1
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"expired"* ]]
}

@test "bad field values are bad input (exit 3) and the message names the field" {
	run --separate-stderr an-sign -k "$key" -t $T0 --name mysite --type root --addr not-an-address
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-sign: multiaddrs: "* ]]
	run --separate-stderr an-sign -k "$key" -t $T0 --name my_site --type root
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-sign: dns.name: "* ]]
	run --separate-stderr an-sign -k "$key" -t $T0 --name mysite --type MX
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-sign: type: "* ]]
}

@test "huge numbers are refused with the field named (exit 3)" {
	run --separate-stderr an-sign -k "$key" -t $T0 <<<'{"type":"root","lookup":"an://mysite","seq":9007199254740992}'
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"seq: huge number"* ]]
}

@test "malformed JSON on stdin is exit 3 after signing the records before it" {
	printf '%s\n%s\n' '{"type":"root","lookup":"an://a"}' '{"type":"root",' >"$dir/in.json"
	run --separate-stderr an-sign -k "$key" -t $T0 <"$dir/in.json"
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"record 2"* ]]
}

@test "a record over 8192 bytes is refused (exit 3)" {
	pad=$(head -c 8200 /dev/zero | tr '\0' x)
	run --separate-stderr an-sign -k "$key" -t $T0 <<<"{\"type\":\"root\",\"lookup\":\"an://mysite\",\"pad\":\"$pad\"}"
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"8192"* ]]
}

@test "a missing key file is a system error (exit 4)" {
	run --separate-stderr an-sign -k "$dir/nope.key" --name mysite --type root
	[ "$status" -eq 4 ]
	[[ "$stderr" == "an-sign: unable to load key $dir/nope.key: No such file or directory" ]]
}

@test "a key file readable by others is refused (exit 3)" {
	chmod 644 "$key"
	run --separate-stderr an-sign -k "$key" --name mysite --type root
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"accessible by group or others"* ]]
}

@test "usage errors exit 2: no key, --name without --type, bad --seq, bad --valid" {
	run an-sign --name mysite --type root
	[ "$status" -eq 2 ]
	run an-sign -k "$key" --name mysite
	[ "$status" -eq 2 ]
	run an-sign -k "$key" --name mysite --type root --seq -1
	[ "$status" -eq 2 ]
	run an-sign -k "$key" --name mysite --type root --valid soon
	[ "$status" -eq 2 ]
	run an-sign -k "$key" --name mysite --type root --time yesterday
	[ "$status" -eq 2 ]
}
