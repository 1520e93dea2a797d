#!/usr/bin/env bats
# The smaller points of issue 11: a usage error is one line and a hint, not
# the whole help; an-keygen refuses '-' as a key file; times with a numeric
# offset (+00:00) are accepted; an-dial given an http:// URL says it wants
# an:// ones.

bats_require_minimum_version 1.5.0

PROGRAMS="an-keygen an-sign an-verify an-dht an-resolve an-serve an-relay an-dial"

setup() {
	T=$BATS_TEST_TMPDIR
	cd "$T"
}

@test "a usage error is one line and a hint, for every program" {
	local p
	for p in $PROGRAMS; do
		run --separate-stderr "$p" --no-such-option
		[ "$status" -eq 2 ] || { echo "$p exited $status" >&2; return 1; }
		[ "${#stderr_lines[@]}" -eq 2 ] || { echo "$p: $stderr" >&2; return 1; }
		[[ ${stderr_lines[0]} == "$p: unknown option '--no-such-option'" ]] || { echo "$p: $stderr" >&2; return 1; }
		[ "${stderr_lines[1]}" = "Try '$p --help' for more information." ] || { echo "$p: $stderr" >&2; return 1; }
	done
}

@test "an-dht's hint names the command that was misused" {
	run --separate-stderr an-dht get
	[ "$status" -eq 2 ]
	[ "${stderr_lines[1]}" = "Try 'an-dht get --help' for more information." ]
}

@test "an-keygen -k - is refused and writes no file" {
	run --separate-stderr an-keygen -k -
	[ "$status" -eq 2 ]
	[[ $stderr == *"'-'"*"refused"* ]]
	[ -z "$output" ]
	[ ! -e "$T/-" ]
}

@test "times with a numeric offset are accepted and mean the same instant" {
	an-keygen -k "$T/k" >/dev/null
	an-sign -k "$T/k" --name a --type root -t 2026-11-23T20:00:00Z >"$T/z.json"
	for t in 2026-11-23T20:00:00+00:00 2026-11-23T21:30:00+01:30 2026-11-23T15:00:00-05:00; do
		run --separate-stderr an-sign -k "$T/k" --name a --type root -t "$t"
		[ "$status" -eq 0 ] || { echo "$t: $stderr" >&2; return 1; }
		[ "$(jq -r .ttl.timestampRepublished <<<"$output")" = 2026-11-23T20:00:00Z ]
		run --separate-stderr an-verify -t "$t" "$T/z.json"
		[ "$status" -eq 0 ] || { echo "$t: $stderr" >&2; return 1; }
	done
	run --separate-stderr an-verify -t 2026-11-23T20:00:00+25:00 "$T/z.json"
	[ "$status" -eq 2 ]
}

@test "an-dial given an http:// URL says it fetches an:// URLs" {
	run --separate-stderr an-dial http://example.com/
	[ "$status" -eq 3 ]
	[[ $stderr == *"an://"* ]]
	[[ $stderr == *"curl"* ]]
}

@test "--version in all eight programs prints the version of configure.ac's AC_INIT" {
	local v p
	v=$(sed -nE 's/^AC_INIT\(\[[^]]*\], *\[([^]]+)\].*/\1/p' "$AN_TOP/configure.ac")
	[ -n "$v" ]
	grep -q "#define AN_VERSION \"$v\"" "$AN_TOP/cmd/common/version.h"
	for p in $PROGRAMS; do
		run --separate-stderr "$p" --version
		[ "$status" -eq 0 ] || { echo "$p --version exited $status: $stderr" >&2; return 1; }
		[ "$output" = "$p $v" ] || { echo "$p --version: $output" >&2; return 1; }
	done
}
