#!/usr/bin/env bats
# validator.bats: the js an-record validator and selector
# (tests/interop/js/an-validator.mjs, written from man/an-record.5 alone)
# against the C verifier (an-verify): records made by an-sign, by the js
# signer (js/dht-sign.mjs) and tampered with jq get the same verdict, valid
# or not and the same failing field, from both.  Records the C signer refuses
# to write (bad shape, oversized) are signed by the js signer with --raw, so
# they fail for their own reason and not for a broken signature.
#
# Every verdict is taken as of one fixed time ($NOW), so none depends on the
# clock.  The selector tests also ask a lone C DHT daemon on loopback (no
# peers) which of two records its store keeps.

bats_require_minimum_version 1.5.0
load ../lib/common

NOW=2026-11-23T20:00:00Z

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	command -v an-sign >/dev/null || { echo "an-sign is not on PATH" >&2; return 1; }
	command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
	local d=$BATS_FILE_TMPDIR
	an-keygen -k "$d/a.key" >/dev/null && an-keygen -k "$d/b.key" >/dev/null || return 1
	an-sign -k "$d/a.key" -t "$NOW" --name mysite --type root \
		--addr /ip4/198.51.100.7/tcp/4001 >"$d/root.json" || return 1
	an-sign -k "$d/a.key" -t "$NOW" --name api.mysite --type A --root "$d/root.json" \
		--addr /ip4/198.51.100.7/tcp/8080 >"$d/api.json" || return 1
	an-sign -k "$d/b.key" -t "$NOW" --name othersite --type root >"$d/broot.json" || return 1
	# the selector tests' lone C node (loopback, no peers)
	run_dir "$d/net"
	export AN_STATE_DIR=$d/net/nostate LONE=$d/net/lone
	SIGNT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	export SIGNT
	start_node lone -q || return 1
}

teardown_file() {
	stop_all
}

setup() {
	JS="$AN_TOP/tests/interop/js"
	D=$BATS_FILE_TMPDIR
	T=$BATS_TEST_TMPDIR
}

# jsign KEY: sign each object on stdin exactly as given, with KEY (js --raw).
jsign() {
	node "$JS/dht-sign.mjs" -k "$D/$1.key" --raw
}

# verdicts FILE [an-verify/dht-verify options]: both verdicts of the one
# record in FILE into C_LINE/C_STATUS and JS_LINE/JS_STATUS.
verdicts() {
	local f=$1
	shift
	C_LINE=$(an-verify -t "$NOW" "$@" "$f" 2>"$T/c.err") && C_STATUS=0 || C_STATUS=$?
	JS_LINE=$(node "$JS/dht-verify.mjs" -t "$NOW" "$@" "$f" 2>"$T/js.err") && JS_STATUS=0 || JS_STATUS=$?
}

# expect VALID FIELD: both verdicts say VALID (true/false), invalid ones in FIELD.
expect() {
	local want_status=0
	[ "$1" = true ] || want_status=1
	local c_field js_field
	c_field=$(jq -r '.field // ""' <<<"$C_LINE")
	js_field=$(jq -r '.field // ""' <<<"$JS_LINE")
	if [ "$(jq .valid <<<"$C_LINE")" != "$1" ] || [ "$(jq .valid <<<"$JS_LINE")" != "$1" ] ||
		[ "$c_field" != "$2" ] || [ "$js_field" != "$2" ] || [ "$JS_STATUS" -ne "$want_status" ] ||
		{ [ "$1" = true ] && [ "$C_STATUS" -ne 0 ]; } || { [ "$1" = false ] && [ "$C_STATUS" -eq 0 ]; }; then
		echo "want valid=$1 field=$2" >&2
		echo "C  ($C_STATUS): $C_LINE" >&2
		echo "js ($JS_STATUS): $JS_LINE" >&2
		return 1
	fi
}

# tamper_each KEY EDIT...: for each jq EDIT of root.json, re-signed with KEY
# (or "none": signature kept), C and js agree on the verdict and the field;
# the expected field follows each edit after a '=>'.
tamper_each() {
	local key=$1 spec edit field n=0
	shift
	for spec in "$@"; do
		edit=${spec%% => *}
		field=${spec##* => }
		if [ "$key" = none ]; then
			jq -c "$edit" "$D/root.json" >"$T/t.json"
		else
			jq -c "$edit" "$D/root.json" | jsign "$key" >"$T/t.json"
		fi
		verdicts "$T/t.json"
		expect false "$field" || { echo "edit: $edit" >&2; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq $# ]
}

@test "validator: a root record from an-sign is valid in C and js" {
	verdicts "$D/root.json"
	expect true ""
}

@test "validator: a subdomain record from an-sign is valid in C and js, given its root" {
	verdicts "$D/api.json" -r "$D/root.json"
	expect true ""
}

@test "validator: records the js signer builds (root, then a TXT subdomain) are valid in C and js" {
	node "$JS/dht-sign.mjs" -k "$D/b.key" -t "$NOW" --name js.site --addr /ip4/127.0.0.1/tcp/4001 >"$T/r.json"
	node "$JS/dht-sign.mjs" -k "$D/b.key" -t "$NOW" --name about.js.site --type TXT --text hi \
		--root "$T/r.json" >"$T/s.json"
	verdicts "$T/r.json"
	expect true ""
	verdicts "$T/s.json" -r "$T/r.json"
	expect true ""
}

@test "validator: canonical form: js re-signing an-sign's record gives the same bytes (unicode, escapes, numbers)" {
	jq -c '.zz={"\ue000":1,"😀":2,"é":[],"a\u0001\u2028":"x\u007f\u0010\"/\\<>","n":[1e15,0.1,1.5e-7,-0.0,1e-7,4.5,100,-3,123.456e2,5e-324,2e-7]}' \
		"$D/root.json" | an-sign -k "$D/a.key" -t "$NOW" >"$T/c.json"
	jq -c 'del(.signature)' "$T/c.json" | jsign a >"$T/js.json"
	cmp "$T/c.json" "$T/js.json"
	verdicts "$T/c.json"
	expect true ""
}

@test "validator: each signed field changed after signing: the same refusal from C and js" {
	tamper_each none \
		'.seq = 1 => signature' \
		'.expires = "2026-11-25T21:00:00Z" => signature' \
		'.ttl.timestampRepublished = "2026-11-23T20:00:01Z" => signature' \
		'.ttl.timeToLive = 3600 => signature' \
		'.ttl.timesRepublished = 1 => signature' \
		'.multiaddrs = ["/ip4/203.0.113.9/tcp/4001"] => signature' \
		'.version = "1.0.1" => signature' \
		'.extra = "x" => signature' \
		'.signature |= sub("ed25519=.."; "ed25519=00") => signature' \
		'.lookup |= sub("@mysite"; "@othersite") => did' \
		'.did = "dns:11111111111111111111111" => did' \
		'.dns.name = "other" => dns.name' \
		'.type = "TXT" => dns.isRoot' \
		'del(.ttl) => ttl' \
		'.signature = "ed25519=zz" => signature'
}

@test "validator: a wrong key for the peer hash is refused by C and js" {
	# the publisher key and lookup of A, signed by B
	jq -c . "$D/root.json" | jsign b >"$T/t.json"
	verdicts "$T/t.json"
	expect false signature
	# A's record claiming B's key (signed by A)
	jq -c --arg pk "$(jq -r .publisherPublicKey "$D/broot.json")" '.publisherPublicKey = $pk' \
		"$D/root.json" | jsign a >"$T/t.json"
	verdicts "$T/t.json"
	expect false lookup
}

@test "validator: a non-Ed25519 (Qm...) publisher is refused by C and js" {
	jq -c '.publisherPublicKey = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"' "$D/root.json" | jsign a >"$T/t.json"
	verdicts "$T/t.json"
	expect false publisherPublicKey
}

@test "validator: badly shaped records, validly signed, get the same refusal from C and js" {
	tamper_each a \
		'.version = "2.0.0" => version' \
		'.version = "1.0" => version' \
		'.type = "MX" => type' \
		'.dns.protocol = "dns" => dns.protocol' \
		'.dns.isRoot = "yes" => dns.isRoot' \
		'.multiaddrs = ["/ip4/198.51.100.7/tcp/04001"] => multiaddrs[0]' \
		'.multiaddrs = [range(17)|"/ip4/198.51.100.7/tcp/4001"] => multiaddrs' \
		'.multiaddrs = [1] => multiaddrs[0]' \
		'.text = "hi" => text' \
		'.target = "an://aaaaaaaaaaaaaaaa@x" => target' \
		'.root = [] => root' \
		'.ttl.timeToLive = 0 => ttl.timeToLive' \
		'.ttl.timeToLive = 2592001 => ttl.timeToLive' \
		'.ttl.timesRepublished = -1 => ttl.timesRepublished' \
		'.ttl.timestampRepublished = "2026-11-23 20:00:00Z" => ttl.timestampRepublished' \
		'.ttl.timestampRepublished = "2026-02-29T20:00:00Z" => ttl.timestampRepublished' \
		'.expires = "2026-11-23T20:00:00Z" => expires' \
		'.expires = "2026-12-23T20:00:01Z" => expires' \
		'.seq = -1 => seq' \
		'.seq = 1.5 => seq' \
		'.seq = "1" => seq' \
		'del(.seq) => seq' \
		'.lookup = "an://mysite" => lookup' \
		'.lookup = "an://34pxpixba3t5yaju@MySite" => lookup'
}

@test "validator: an expired record is refused by C and js" {
	an-sign -k "$D/a.key" -t 2026-11-20T20:00:00Z --valid 48h --name mysite --type root >"$T/t.json"
	verdicts "$T/t.json"
	expect false expires
}

@test "validator: a record signed more than 300 s ahead is not valid yet in C and js" {
	an-sign -k "$D/a.key" -t 2026-11-23T20:05:01Z --name mysite --type root >"$T/t.json"
	verdicts "$T/t.json"
	expect false ttl.timestampRepublished
}

@test "validator: a record signed up to 300 s ahead (clock skew) is valid in C and js" {
	an-sign -k "$D/a.key" -t 2026-11-23T20:05:00Z --name mysite --type root >"$T/t.json"
	verdicts "$T/t.json"
	expect true ""
}

@test "validator: a record of exactly 8192 canonical bytes is valid in C and js" {
	local len pad
	len=$(jq -c '.pad = ""' "$D/root.json" | jsign a | tr -d '\n' | wc -c)
	pad=$(head -c $((8192 - len)) /dev/zero | tr '\0' x)
	jq -c --arg p "$pad" '.pad = $p' "$D/root.json" | jsign a >"$T/t.json"
	[ "$(tr -d '\n' <"$T/t.json" | wc -c)" -eq 8192 ]
	verdicts "$T/t.json"
	expect true ""
}

@test "validator: a record of 8193 canonical bytes is refused by C and js" {
	local len pad
	len=$(jq -c '.pad = ""' "$D/root.json" | jsign a | tr -d '\n' | wc -c)
	pad=$(head -c $((8193 - len)) /dev/zero | tr '\0' x)
	jq -c --arg p "$pad" '.pad = $p' "$D/root.json" | jsign a >"$T/t.json"
	[ "$(tr -d '\n' <"$T/t.json" | wc -c)" -eq 8193 ]
	verdicts "$T/t.json"
	expect false ""
}

@test "validator: malformed JSON (duplicate member, lone surrogate, \\u0000, bad UTF-8, unclosed) is refused by C and js" {
	local r n=0
	r=$(cat "$D/root.json")
	for bad in "${r%\}},\"seq\":0}" "${r%\}},\"x\":\"\\ud800\"}" "${r%\}},\"x\":\"a\\u0000\"}" \
		"${r%\}},\"x\":[[[]]" "${r%\}},\"x\":18446744073709551616}"; do
		printf '%s\n' "$bad" >"$T/t.json"
		verdicts "$T/t.json"
		expect false "" || { echo "input: ${bad: -30}" >&2; return 1; }
		n=$((n + 1))
	done
	printf '%s\xff"}\n' "${r%\}},\"x\":\"" >"$T/t.json"
	verdicts "$T/t.json"
	expect false ""
	[ "$n" -eq 5 ]
}

@test "validator: a number beyond 2^53-1 anywhere is refused by C and js, naming its path" {
	local r
	r=$(cat "$D/root.json")
	printf '%s\n' "${r%\}},\"x\":{\"y\":[1,9007199254740992]}}" >"$T/t.json"
	verdicts "$T/t.json"
	expect false 'x.y[1]'
	printf '%s\n' "${r%\}},\"x\":-9.1e15}" >"$T/t.json"
	verdicts "$T/t.json"
	expect false x
}

@test "validator: a subdomain whose root reference is stale (root re-signed) is refused by C and js given the new root" {
	an-sign -k "$D/a.key" -t "$NOW" --resign <"$D/root.json" >"$T/root2.json"
	verdicts "$D/api.json" -r "$T/root2.json"
	expect false 'root[0].signature'
}

@test "validator: a subdomain whose root target is not the did of its context is refused by js even without the root" {
	jq -c '.root[0].target = "dns:76Bb4TSVxqUq9ip3MMKiZC"' "$D/api.json" | jsign a >"$T/t.json"
	run --separate-stderr node "$JS/dht-verify.mjs" -t "$NOW" "$T/t.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = 'root[0].target' ]
	# C finds roots by did: with the real root given, it has none for this target
	run --separate-stderr an-verify -t "$NOW" -r "$D/root.json" "$T/t.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = root ]
}

@test "validator: documented difference: without its root, js accepts a well-formed subdomain, C refuses it" {
	verdicts "$D/api.json"
	[ "$(jq .valid <<<"$JS_LINE")" = true ]
	[ "$(jq .valid <<<"$C_LINE")" = false ]
	[ "$(jq -r .field <<<"$C_LINE")" = root ]
}

# ---- the selector: js's (dht-verify --select) and the C store's ----
#
# The C side is a lone an-dht daemon (no peers, loopback): a put through it
# stores the record in its own store, which keeps the better of what it
# holds and what comes (an_validate_compare), and get returns what it kept.
# Its records are signed at the real time ($SIGNT), since the daemon
# checks validity at its own clock.

# sel NAME SEQ VALID [PORT]: a root record for NAME, signed at $SIGNT
sel() {
	an-sign -k "$D/a.key" -t "$SIGNT" --seq "$2" --valid "$3" --name "$1" --type root \
		--addr "/ip4/198.51.100.7/tcp/${4:-4001}"
}

# both_pick FIRST SECOND WANT: js's selector and the C store both pick
# record WANT (0 FIRST, 1 SECOND) of the two (same name; one name per call,
# the daemon keeps what it was given)
both_pick() {
	local first=$1 second=$2 want=$3 wantfile
	run --separate-stderr node "$JS/dht-verify.mjs" --select "$first" "$second"
	[ "$status" -eq 0 ] || { echo "js --select: $status $stderr" >&2; return 1; }
	[ "$output" = "{\"best\":$want}" ] || { echo "js picked $output, not $want" >&2; return 1; }
	# a lone node stores locally and reaches no peer: exit 4 since issue 11
	run --separate-stderr an-dht put -s "$LONE" <"$first"
	[ "$status" -eq 4 ] && [[ $stderr == *"no peer reachable"* ]] ||
		{ echo "first put: $status $stderr" >&2; return 1; }
	# the second: kept and sent nowhere (4), or refused as older than the first (1)
	run --separate-stderr an-dht put -s "$LONE" <"$second"
	{ [ "$status" -eq 4 ] && [[ $stderr == *"no peer reachable"* ]]; } ||
		{ [ "$status" -eq 1 ] && [[ $stderr == *"older than the record already held"* ]]; } ||
		{ echo "second put: $status $stderr" >&2; return 1; }
	run --separate-stderr an-dht get -s "$LONE" -t 3s "$(jq -r .lookup "$first" | sed 's|^an://||')"
	[ "$status" -eq 0 ] || { echo "get: $status $stderr" >&2; return 1; }
	wantfile=$first
	[ "$want" = 0 ] || wantfile=$second
	[ "$(jq -r .signature <<<"$output")" = "$(jq -r .signature "$wantfile")" ] ||
		{ echo "the C store kept $output, not $(cat "$wantfile")" >&2; return 1; }
}

@test "selector: the higher seq wins, in either order, in js and in the C store" {
	sel seqa 4 7d >"$T/a4.json"
	sel seqa 5 48h >"$T/a5.json"
	both_pick "$T/a4.json" "$T/a5.json" 1
	sel seqb 5 48h >"$T/b5.json"
	sel seqb 4 7d >"$T/b4.json"
	both_pick "$T/b5.json" "$T/b4.json" 0
}

@test "selector: at equal seq the later expires wins, in js and in the C store" {
	sel expa 3 48h >"$T/short.json"
	sel expa 3 72h >"$T/long.json"
	both_pick "$T/short.json" "$T/long.json" 1
	sel expb 3 72h >"$T/long.json"
	sel expb 3 48h >"$T/short.json"
	both_pick "$T/long.json" "$T/short.json" 0
}

@test "selector: on a full tie (same seq and expires, other content) the first is kept, in js and in the C store" {
	sel tie 3 48h 4001 >"$T/first.json"
	sel tie 3 48h 4002 >"$T/second.json"
	[ "$(jq -r .signature "$T/first.json")" != "$(jq -r .signature "$T/second.json")" ]
	both_pick "$T/first.json" "$T/second.json" 0
}
