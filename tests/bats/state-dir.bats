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
	run --separate-stderr an-dht peers -t 1s -s "$D/new/s"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$D/new/s")" = 700 ]
	[ -z "$stderr" ]
}
