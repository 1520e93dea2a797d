#!/usr/bin/env bats
# Long-running programs' log lines carry their UTC time once they are ready
# (issue 11); messages before that (usage, startup errors) do not.

bats_require_minimum_version 1.5.0
load ../lib/common

setup() {
	run_dir "$BATS_TEST_TMPDIR/run"
	unset AN_BOOTSTRAP AN_DEBUG
}

teardown() {
	stop_all
}

TS='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z '

@test "the daemon's log lines start with a UTC timestamp" {
	start_node a
	stop_node a
	[ -s "$RUNDIR/a.err" ]
	run grep -cvE "${TS}an-dht: " "$RUNDIR/a.err"
	[ "$output" = 0 ] || { cat "$RUNDIR/a.err" >&2; return 1; }
}

@test "an-serve's log lines start with a UTC timestamp" {
	mkdir -p "$BATS_TEST_TMPDIR/www"
	echo hi >"$BATS_TEST_TMPDIR/www/index.html"
	an-keygen -k "$BATS_TEST_TMPDIR/k" >/dev/null
	bg srv an-serve -k "$BATS_TEST_TMPDIR/k" --name logs -s "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/www"
	wait_for "$RUNDIR/srv.out" '"event":"ready"' 20
	stop_node srv
	[ -s "$RUNDIR/srv.err" ]
	run grep -cvE "${TS}an-serve: " "$RUNDIR/srv.err"
	[ "$output" = 0 ] || { cat "$RUNDIR/srv.err" >&2; return 1; }
}

@test "a startup error has no timestamp: it is a message, not a log line" {
	run --separate-stderr an-dht daemon -s "$BATS_TEST_TMPDIR/d" --listen /ip4/127.0.0.1/tcp/99999
	[ "$status" -ne 0 ]
	[[ $stderr == an-dht:* ]]
}
