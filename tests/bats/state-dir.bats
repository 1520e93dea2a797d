#!/usr/bin/env bats
# The state directory (identity, record store, pins) is private like a key
# file: writable by others or owned by someone else is refused; readable by
# others is tightened to 0700 with a warning.  an-dht peers is the probe: it
# opens the state directory and answers without a network.

bats_require_minimum_version 1.5.0
load ../lib/common

setup() {
	export AN_BOOTSTRAP=
	D=$BATS_TEST_TMPDIR
}

@test "a state directory writable by others is refused, exit 4, and says how to fix it" {
	mkdir -m 777 "$D/s"
	chmod 777 "$D/s"
	run --separate-stderr an-dht peers -t 1s -s "$D/s"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"'$D/s'"*"writable by others (group or world)"*"chmod 700"* ]]
	[ ! -e "$D/s/store" ]
}

@test "a state directory writable by its group is refused too" {
	mkdir "$D/s"
	chmod 770 "$D/s"
	run --separate-stderr an-dht peers -t 1s -s "$D/s"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"writable by others (group or world)"* ]]
}

@test "a state directory owned by another user is refused" {
	mkdir "$D/s"
	chmod 700 "$D/s"
	chown nobody "$D/s"
	run --separate-stderr an-dht peers -t 1s -s "$D/s"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"not ours"* ]]
}

@test "a state directory readable by others is fixed to 0700, with a warning naming it" {
	mkdir "$D/s"
	chmod 755 "$D/s"
	run --separate-stderr an-dht peers -t 1s -s "$D/s"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$D/s")" = 700 ]
	[[ "$stderr" == *"state directory '$D/s' was readable by others: now mode 700"* ]]
}

@test "a state directory the program creates is 0700 and draws no warning" {
	# a command that writes there (a pin); read-only ones create nothing (below)
	an-keygen -k "$D/k" >"$D/id"
	run --separate-stderr an-resolve --pin -s "$D/new/s" "$(jq -r .peerHash "$D/id")@site"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$D/new/s")" = 700 ]
	[ -z "$stderr" ]
}

@test "read-only commands do not create the default state directory (issue 11)" {
	local h=$D/home
	mkdir -p "$h" "$D/tmp"
	an-keygen -k "$D/k" >"$D/id"
	an-sign -k "$D/k" --name site --type root --addr /ip4/127.0.0.1/tcp/1 >"$D/r.json"
	# the programs' default: $XDG_STATE_HOME/alternet, else ~/.local/state/alternet
	for cmd in "an-keygen -y -k $D/k" "an-verify $D/r.json" "an-dht peers -t 1s" \
		"an-dht get -t 1s $(jq -r .peerHash "$D/id")@site" "an-dht providers -t 1s site"; do
		run --separate-stderr env -u XDG_STATE_HOME -u AN_STATE_DIR HOME="$h" TMPDIR="$D/tmp" $cmd
		[ "$status" -ne 2 ] || { echo "$cmd: $stderr" >&2; return 1; }
		[ ! -e "$h/.local" ] || { echo "$cmd created $(find "$h")" >&2; return 1; }
	done
	# the temporary store of the in-process node is gone too
	[ -z "$(ls -A "$D/tmp")" ]
}

@test "README and every man page name the programs' default state directory" {
	run grep -nE '~/\.an([/ `]|$)|~/\.alternet|\.alternet/' "$AN_TOP/README.md" "$AN_TOP"/man/*.[1-8]
	[ "$status" -eq 1 ] || { echo "$output" >&2; return 1; }
	grep -q '~/.local/state/alternet' "$AN_TOP/README.md"
	local p
	for p in "$AN_TOP"/man/an-dht.1 "$AN_TOP"/man/an-dial.1 "$AN_TOP"/man/an-resolve.1 \
		"$AN_TOP"/man/an-serve.1 "$AN_TOP"/man/an-relay.1 "$AN_TOP"/man/an-keygen.1; do
		grep -q '~/.local/state/alternet' "$p" || { echo "$p" >&2; return 1; }
	done
}
