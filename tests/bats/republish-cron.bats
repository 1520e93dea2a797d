#!/usr/bin/env bats
# Cron republishing through a running daemon (issue 11): `an-dht republish
# -k KEY` re-signs the owner's records with fresh validity even when a
# daemon runs (the tool signs, the daemon only puts), an expired own record
# is re-signed when the key is given, and one that cannot be re-signed is
# listed with exit 1.  The cron line is the one the man page documents, run
# with cron's environment (env -i, PATH=/usr/bin:/bin, HOME only).

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	unset AN_DEBUG AN_BOOTSTRAP XDG_STATE_HOME
	two_nodes
	# the owner's machine: HOME with the default state directory, its daemon
	export H=$BATS_FILE_TMPDIR/home
	export SD=$H/.local/state/alternet
	mkdir -p -m 700 "$H"
	an-keygen -k "$H/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
	AN_KAD_REPUBLISH_INTERVAL=1s start_node owner -q -s "$SD" --bootstrap "$BOOT"
	# start_node passes -s $RUNDIR/owner first; the later -s wins
	wait_for "$NET/owner.out" '"event":"ready"' 10
	[ -S "$SD/control.sock" ]
	export BIN=$(dirname "$(command -v an-dht)")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# the cron line of an-dht(1)'s EXAMPLES: its command, with the documented
# absolute paths mapped onto this test's build and home
cron_command() {
	local line
	line=$(grep -E '^[0-9*][0-9*,/-]* +[0-9*].*an-dht republish' "$AN_TOP/man/an-dht.1" | head -n 1)
	[ -n "$line" ] || { echo "no cron line in an-dht.1" >&2; return 1; }
	line=$(awk '{ for (i = 6; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "\n") }' <<<"$line")
	line=${line//\/usr\/local\/bin\//$BIN/}
	echo "${line//\/home\/alice/$H}"
}

# run_cron: the cron line as cron runs it (a minimal environment)
run_cron() {
	local cmd
	cmd=$(cron_command) || return 1
	run --separate-stderr env -i HOME="$H" LOGNAME=alice SHELL=/bin/sh PATH=/usr/bin:/bin \
		/bin/sh -c "$cmd"
}

@test "the documented cron line uses absolute paths and the state directory" {
	run cron_command
	[ "$status" -eq 0 ]
	grep -qE '^[0-9*][0-9*,/-]* +[0-9*].* /usr/local/bin/an-dht republish -k /home/alice/site.key -s /home/alice/.local/state/alternet' \
		"$AN_TOP/man/an-dht.1"
}

@test "README tells the same cron line as the man page" {
	local m
	m=$(grep -E '^[0-9*][0-9*,/-]* +[0-9*].*an-dht republish' "$AN_TOP/man/an-dht.1" | head -n 1)
	grep -qF -- "$m" "$AN_TOP/README.md"
}

@test "the cron line re-signs a due record through the running daemon" {
	an-sign -k "$H/site.key" --name cron1 --type root --ttl 1s --addr /ip4/127.0.0.1/tcp/4001 >"$T/r.json"
	an-dht put -s "$SD" <"$T/r.json" >/dev/null
	local deadline=$((SECONDS + 15))
	until run_cron && [ "$status" -eq 0 ] &&
		[ "$(jq -r 'select(.key == "/an/'"$PH"'@cron1") | .status' <<<"$output")" = resigned ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "not re-signed: $output $stderr" >&2; return 1; }
		sleep 0.2
	done
	[ "$(jq -r 'select(.key == "/an/'"$PH"'@cron1") | .stored' <<<"$output")" -ge 1 ]
	run --separate-stderr an-dht get -s "$NET/n0" "$PH@cron1"
	[ "$status" -eq 0 ]
	[ "$(jq -r .ttl.timesRepublished <<<"$output")" -ge 1 ]
	[ "$(jq -r .signature <<<"$output")" != "$(jq -r .signature "$T/r.json")" ]
	# signed with the owner's key, not the daemon's identity
	an-verify <<<"$output"
}

@test "an expired own record is re-signed when the key is given, with fresh validity" {
	an-sign -k "$H/site.key" --name cron2 --type root --valid 2s --addr /ip4/127.0.0.1/tcp/4001 >"$T/r.json"
	an-dht put -s "$SD" <"$T/r.json" >/dev/null
	local deadline=$((SECONDS + 15))
	until ! an-dht get -t 2s -s "$NET/n0" "$PH@cron2" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "never expired" >&2; return 1; }
		sleep 0.2
	done
	run --separate-stderr an-dht republish -k "$H/site.key" -s "$SD"
	[ "$status" -eq 0 ]
	[ "$(jq -r 'select(.key == "/an/'"$PH"'@cron2") | .status' <<<"$output")" = resigned ]
	[ "$(jq -r 'select(.key == "/an/'"$PH"'@cron2") | .wasExpired' <<<"$output")" = true ]
	run --separate-stderr an-dht get -s "$NET/n0" "$PH@cron2"
	[ "$status" -eq 0 ]
	[ "$(date -d "$(jq -r .expires <<<"$output")" +%s)" -gt $(($(date +%s) + 3600)) ]
}

@test "without the key, an expired own record is listed as expired with exit 1" {
	an-sign -k "$H/site.key" --name cron3 --type root --valid 2s --addr /ip4/127.0.0.1/tcp/4001 >"$T/r.json"
	an-dht put -s "$SD" <"$T/r.json" >/dev/null
	local deadline=$((SECONDS + 15))
	until run --separate-stderr an-dht republish -s "$SD" &&
		[ "$(jq -r 'select(.key == "/an/'"$PH"'@cron3") | .status' <<<"$output")" = expired ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "never listed expired: $output" >&2; return 1; }
		sleep 0.3
	done
	[ "$status" -eq 1 ]
}

@test "republish -k with no record of the key held exits 1 and says so" {
	an-keygen -k "$T/other.key" >/dev/null
	run --separate-stderr an-dht republish -k "$T/other.key" -s "$SD"
	[ "$status" -eq 1 ]
	[[ $stderr == *"no record of"* ]]
}
