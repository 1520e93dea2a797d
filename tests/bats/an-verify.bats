#!/usr/bin/env bats
# an-verify: verdicts and exit statuses for valid, tampered, expired, early,
# mis-rooted and malformed records.

bats_require_minimum_version 1.5.0

T0=2026-11-23T20:00:00Z

setup() {
	dir=$(mktemp -d /tmp/an-verify-test.XXXXXX)
	key=$dir/site.key
	an-keygen -k "$key" >/dev/null
	an-sign -k "$key" -t $T0 --name mysite --type root --addr /ip4/198.51.100.7/tcp/4001 >"$dir/root.json"
	an-sign -k "$key" -t $T0 --name api.mysite --type A --root "$dir/root.json" \
		--addr /ip4/198.51.100.7/tcp/8080 >"$dir/api.json"
}

teardown() {
	exec 9>&- || true
	[ ! -f "$dir/verify.pid" ] || kill "$(cat "$dir/verify.pid")" 2>/dev/null || true
	rm -rf "$dir"
}

# tamper JQ-FILTER: the root record with the filter applied (compact).
tamper() { jq -c "$1" "$dir/root.json"; }

@test "a valid record: one verdict line, exit 0" {
	run --separate-stderr an-verify -t $T0 "$dir/root.json"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = "{\"lookup\":\"$(jq -r .lookup "$dir/root.json")\",\"source\":\"$dir/root.json\",\"index\":1,\"valid\":true}" ]
}

@test "records on stdin, root earlier in the stream, one verdict each" {
	run --separate-stderr an-verify -t $T0 < <(cat "$dir/root.json" "$dir/api.json")
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .valid <<<"${lines[1]}")" = true ]
}

@test "a subdomain verifies against --root" {
	run an-verify -t $T0 --root "$dir/root.json" "$dir/api.json"
	[ "$status" -eq 0 ]
}

@test "a subdomain without its root record is invalid (exit 1)" {
	run --separate-stderr an-verify -t $T0 "$dir/api.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = root ]
	[[ "$(jq -r .error <<<"$output")" == *"was not given"* ]]
}

@test "a subdomain with a re-signed (different) root is invalid, naming root[0].signature" {
	an-sign -k "$key" -t $T0 --resign <"$dir/root.json" >"$dir/root2.json"
	run an-verify -t $T0 --root "$dir/root2.json" "$dir/api.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = "root[0].signature" ]
	[ "$(jq -r .error <<<"$output")" = "does not match the root record" ]
}

@test "a subdomain with another publisher's root is invalid" {
	an-keygen -k "$dir/other.key" >/dev/null
	an-sign -k "$dir/other.key" -t $T0 --name mysite --type root >"$dir/other-root.json"
	jq -c --slurpfile r "$dir/other-root.json" '.root[0].target = $r[0].did | .root[0].signature = $r[0].signature' \
		"$dir/api.json" >"$dir/api2.json"
	run an-verify -t $T0 --root "$dir/other-root.json" "$dir/api2.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .valid <<<"$output")" = false ]
}

@test "each tampered field fails the signature (exit 1)" {
	for f in '.seq = 9' '.expires = "2026-11-29T20:00:00Z"' '.multiaddrs = ["/ip4/203.0.113.1/tcp/1"]' \
		'.ttl.timesRepublished = 7' '.ttl.timeToLive = 60' '.ttl.timestampRepublished = "2026-11-23T21:00:00Z"' \
		'.version = "1.0.1"' '.extra = true'; do
		run an-verify -t $T0 < <(tamper "$f")
		[ "$status" -eq 1 ] || { echo "$f: status $status"; return 1; }
		[ "$(jq -r .field <<<"$output")" = signature ] || { echo "$f: $output"; return 1; }
	done
}

@test "tampered names and keys fail with the field named (exit 1)" {
	run an-verify -t $T0 < <(tamper '.did = "dns:1111111111111111111111"')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = did ]
	run an-verify -t $T0 < <(tamper '.lookup = "an://aaaaaaaaaaaaaaaa@mysite"')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = lookup ]
	run an-verify -t $T0 < <(tamper '.dns.name = "other"')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = dns.name ]
	run an-verify -t $T0 < <(tamper '.dns.isRoot = false')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = dns.isRoot ]
	run an-verify -t $T0 < <(tamper '.signature = "ed25519=" + ("00" * 64)')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = signature ]
}

@test "a record signed by a different key than it claims fails (exit 1)" {
	an-keygen -k "$dir/other.key" >/dev/null
	an-sign -k "$dir/other.key" -t $T0 --name mysite --type root >"$dir/other.json"
	run an-verify -t $T0 < <(jq -c --slurpfile o "$dir/other.json" '.signature = $o[0].signature' "$dir/root.json")
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = signature ]
	run an-verify -t $T0 < <(jq -c --slurpfile o "$dir/other.json" '.publisherPublicKey = $o[0].publisherPublicKey' "$dir/root.json")
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = lookup ]
}

@test "an expired record is invalid (exit 1)" {
	run an-verify -t 2026-11-25T20:00:00Z "$dir/root.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = expires ]
	run an-verify -t 2026-11-25T19:59:59Z "$dir/root.json"
	[ "$status" -eq 0 ]
}

@test "a record not yet valid is invalid (exit 1); 300 s of skew are allowed" {
	run an-verify -t 2026-11-23T19:54:59Z "$dir/root.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = ttl.timestampRepublished ]
	run an-verify -t 2026-11-23T19:55:00Z "$dir/root.json"
	[ "$status" -eq 0 ]
}

@test "a type field of the wrong JSON type is invalid, naming it" {
	run an-verify -t $T0 < <(tamper '.seq = "0"')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = seq ]
	[ "$(jq -r .error <<<"$output")" = "not an integer" ]
}

@test "a major version other than 1 is refused" {
	run an-verify -t $T0 < <(tamper '.version = "2.0.0"')
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = version ]
}

@test "non-UTF-8 input is malformed (exit 3)" {
	run --separate-stderr an-verify -t $T0 < <(printf '{"type":"ro\xffot"}\n')
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-verify: standard input: unable to decode byte 0xff"* ]]
}

@test "duplicate keys are malformed (exit 3)" {
	run --separate-stderr an-verify -t $T0 < <(sed 's/^{/{"seq":1,/' "$dir/root.json")
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"duplicate object key"* ]]
}

@test "huge numbers are malformed (exit 3), naming the field" {
	run --separate-stderr an-verify -t $T0 < <(tamper '.seq = 9007199254740993')
	[ "$status" -eq 3 ]
	[ "$(jq -r .field <<<"$output")" = seq ]
	[[ "$(jq -r .error <<<"$output")" == "huge number"* ]]
	run --separate-stderr an-verify -t $T0 < <(sed 's/"seq":0/"seq":123456789012345678901234567890/' "$dir/root.json")
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"too big integer"* ]]
}

@test "truncated input is malformed (exit 3) after the verdicts before it" {
	run --separate-stderr an-verify -t $T0 < <(cat "$dir/root.json"; head -c 200 "$dir/root.json")
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .valid <<<"${lines[0]}")" = true ]
	[[ "$stderr" == *"input ends inside a value"* ]]
}

@test "an oversized value (over 65536 bytes) is malformed (exit 3)" {
	run --separate-stderr an-verify -t $T0 < <(printf '{"pad":"'; head -c 70000 /dev/zero | tr '\0' x; printf '"}\n')
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"longer than 65536 bytes"* ]]
}

@test "a record over 8192 bytes is malformed (exit 3)" {
	run --separate-stderr an-verify -t $T0 < <(tamper ".pad = \"$(head -c 8200 /dev/zero | tr '\0' x)\"")
	[ "$status" -eq 3 ]
	[[ "$(jq -r .error <<<"$output")" == *"8192"* ]]
}

@test "a JSON value that is not an object is malformed (exit 3)" {
	run an-verify -t $T0 <<<'[1,2]'
	[ "$status" -eq 3 ]
}

@test "-q prints nothing, the status tells" {
	run --separate-stderr an-verify -q -t 2026-12-01T00:00:00Z "$dir/root.json"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "an unreadable file is exit 4, other files still verified" {
	run --separate-stderr an-verify -t $T0 "$dir/missing.json" "$dir/root.json"
	[ "$status" -eq 4 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == "an-verify: unable to open $dir/missing.json: No such file or directory" ]]
}

@test "a bad --time is a usage error (exit 2)" {
	run --separate-stderr an-verify -t tomorrow "$dir/root.json"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-verify: invalid --time 'tomorrow'"* ]]
}

# mixed_stream: $dir/mixed.json, 700 records in an order that matters, for
# checking the parallel path against -j 1 at T1 (two hours after T0):
# subdomains of a second publisher's root before and after that root, a
# root that has expired by T1 with its subdomains, every 7th record tampered
# (none of the roots).
T1=2026-11-23T22:00:00Z
mixed_stream() {
	an-keygen -k "$dir/b.key" >/dev/null
	an-sign -k "$dir/b.key" -t $T0 --name bsite --type root >"$dir/broot.json"
	an-sign -k "$key" -t $T0 --valid 1h --name oldsite --type root >"$dir/oldroot.json"
	subs() { # key root prefix count
		awk -v p="$3" -v n="$4" -v r="$(jq -r .dns.name "$2")" 'BEGIN { for (i = 0; i < n; i++)
			printf "{\"type\":\"A\",\"lookup\":\"an://%s%d.%s\",\"multiaddrs\":[\"/ip4/198.51.100.7/tcp/%d\"]}\n", p, i, r, 1000 + i }' |
			an-sign -k "$1" -t $T0 --root "$2"
	}
	{
		subs "$dir/b.key" "$dir/broot.json" early 50 # before their root: not valid
		cat "$dir/root.json"
		subs "$key" "$dir/root.json" api 300
		cat "$dir/broot.json"
		subs "$dir/b.key" "$dir/broot.json" late 200
		cat "$dir/oldroot.json"
		subs "$key" "$dir/oldroot.json" old 147
	} | awk 'NR % 7 == 3 { sub(/"seq":0/, "\"seq\":9") } { print }' >"$dir/mixed.json"
	[ "$(wc -l <"$dir/mixed.json")" -eq 700 ]
}

@test "-j N gives byte-identical verdicts and status to -j 1 on a mixed stream" {
	mixed_stream
	run --separate-stderr an-verify -j 1 -t $T1 "$dir/mixed.json"
	[ "$status" -eq 1 ]
	serial=$output
	# The stream has every kind of verdict the test is about.
	[ "$(grep -c '"valid":true' <<<"$serial")" -gt 300 ]
	grep -q '"field":"signature"' <<<"$serial"
	grep -q '"field":"expires"' <<<"$serial"
	grep -q 'was not given' <<<"$serial"
	[ "${#lines[@]}" -eq 700 ]
	for j in 2 3 8; do
		run --separate-stderr an-verify -j $j -t $T1 "$dir/mixed.json"
		[ "$status" -eq 1 ] || { echo "-j $j: status $status"; return 1; }
		[ "$output" = "$serial" ] || { echo "-j $j: verdicts differ"; return 1; }
		[ -z "$stderr" ]
	done
}

@test "the default -j is one thread per online CPU and gives the same verdicts as -j 1" {
	mixed_stream
	# from standard input, as the run below reads it (the verdicts name their source)
	run --separate-stderr an-verify -j 1 -t $T1 <"$dir/mixed.json"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 700 ]
	serial=$output
	# 6 online CPUs whatever this machine has (so the default is never -j 1):
	# a mount namespace of its own with its own /sys/devices/system/cpu/online
	echo 0-5 >"$dir/online"
	mkfifo "$dir/in"
	timeout 30 unshare -m sh -c 'echo $$ >"$1/verify.pid" &&
		mount --bind "$1/online" /sys/devices/system/cpu/online &&
		exec an-verify -t "$2" <"$1/in" >"$1/out" 2>"$1/err"' sh "$dir" "$T1" &
	exec 9<>"$dir/in" # read-write: the open never blocks, the close is EOF
	# its threads start before it reads: 6 in all (5 workers)
	local deadline=$((SECONDS + 10)) threads=0
	until [ "$threads" = 6 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { exec 9>&-; echo "an-verify runs $threads threads, not 6" >&2; return 1; }
		sleep 0.05
		threads=$(awk '/^Threads:/ {print $2}' "/proc/$(cat "$dir/verify.pid" 2>/dev/null)/status" 2>/dev/null || echo 0)
	done
	cat "$dir/mixed.json" >&9
	exec 9>&-
	status=0
	wait $! || status=$?
	[ "$status" -eq 1 ]
	[ "$(cat "$dir/out")" = "$serial" ]
	[ ! -s "$dir/err" ]
}

@test "subdomains verify against a root earlier in the stream at every -j" {
	mixed_stream
	for j in 1 4; do
		run --separate-stderr an-verify -j $j -t $T0 < <(sed -n '51,351p' "$dir/mixed.json" | grep -v '"seq":9')
		[ "$status" -eq 0 ] || { echo "-j $j: status $status"; return 1; }
	done
}

@test "a malformed value mid-stream: the verdicts before it, then exit 3, at every -j" {
	mixed_stream
	{ head -n 400 "$dir/mixed.json"; echo '{"type": tru}'; tail -n 300 "$dir/mixed.json"; } >"$dir/bad.json"
	run --separate-stderr an-verify -j 1 -t $T1 "$dir/bad.json"
	[ "$status" -eq 3 ]
	[ "${#lines[@]}" -eq 401 ]
	[ "$(jq -r .lookup <<<"${lines[400]}")" = null ]
	serial=$output serial_err=$stderr
	for j in 2 8; do
		run --separate-stderr an-verify -j $j -t $T1 "$dir/bad.json"
		[ "$status" -eq 3 ] || { echo "-j $j: status $status"; return 1; }
		[ "$output" = "$serial" ] || { echo "-j $j: verdicts differ"; return 1; }
		[ "$stderr" = "$serial_err" ] || { echo "-j $j: $stderr"; return 1; }
	done
}

@test "-j takes 1 to 64 threads; anything else is a usage error (exit 2)" {
	for j in 0 65 x 2x ''; do
		run --separate-stderr an-verify -j "$j" "$dir/root.json"
		[ "$status" -eq 2 ] || { echo "-j '$j': status $status"; return 1; }
		[[ "$stderr" == "an-verify: invalid --jobs '$j'"* ]]
	done
}

# ---- a CI gate (issue 11) ----

@test "empty input is an error (exit 3): a gate that saw nothing does not pass" {
	run --separate-stderr an-verify </dev/null
	[ "$status" -eq 3 ]
	[[ $stderr == *"no records in standard input"* ]]
	: >"$dir/empty.json"
	run --separate-stderr an-verify "$dir/empty.json"
	[ "$status" -eq 3 ]
	[[ $stderr == *"no records"* ]]
}

@test "each verdict names its source file and the record's index there" {
	cat "$dir/root.json" "$dir/api.json" >"$dir/both.json"
	run --separate-stderr an-verify -t $T0 "$dir/root.json" "$dir/both.json"
	[ "$status" -eq 0 ]
	[ "$(jq -sc 'map([.source, .index])' <<<"$output")" = "[[\"$dir/root.json\",1],[\"$dir/both.json\",1],[\"$dir/both.json\",2]]" ]
	run --separate-stderr an-verify -t $T0 <"$dir/root.json"
	[ "$(jq -r '.source + " " + (.index|tostring)' <<<"$output")" = "- 1" ]
}

@test "a subdomain checked against another publisher's root of its name says so" {
	an-keygen -k "$dir/other.key" >/dev/null
	an-sign -k "$dir/other.key" -t $T0 --name mysite --type root >"$dir/other-root.json"
	run --separate-stderr an-verify -t $T0 --root "$dir/other-root.json" "$dir/api.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .field <<<"$output")" = root ]
	[[ "$(jq -r .error <<<"$output")" == *"another publisher's ($(jq -r .publisherPublicKey "$dir/other-root.json"))"* ]]
}

@test "a JSON object that is not a record lists what is missing" {
	run --separate-stderr an-verify <<<'{"foo":1}'
	[ "$status" -eq 1 ]
	[ "$(jq -r .error <<<"$output")" = "not a record: missing version, did, lookup, publisherPublicKey, type, dns, ttl, expires, seq, signature" ]
}

@test "--format text: one line per record, SOURCE:INDEX: LOOKUP: valid or invalid with the reason" {
	printf '%s\n{"foo":1}\n' "$(cat "$dir/root.json")" >"$dir/in.json"
	run --separate-stderr an-verify -t $T0 --format text "$dir/in.json"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "$dir/in.json:1: $(jq -r .lookup "$dir/root.json"): valid" ]
	[[ ${lines[1]} == "$dir/in.json:2: -: invalid: version: not a record: missing version,"* ]]
	run --separate-stderr an-verify --format yaml "$dir/in.json"
	[ "$status" -eq 2 ]
}
