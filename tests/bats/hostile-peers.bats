#!/usr/bin/env bats
# Hostile peers that only hold resources (issue 10; issue 17's accept loop):
# idle sockets, connections and streams from one address must not lock
# other addresses out of an-dht daemon, an-serve and an-relay, and a
# process out of file descriptors must not spin.  The attacker is
# tests/tools/an-flood from 127.0.0.2 (and neighbours); the victim listens
# on 0.0.0.0 so both it and the honest client on 127.0.0.1 reach it; on
# loopback every address counts alone (host.h).  Every process is bounded
# (an-flood --for, timeout) and killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

setup() {
	T=$BATS_TEST_TMPDIR
	run_dir "$T/run"
	export AN_STATE_DIR=$T/nostate # honest clients: in-process nodes, no daemon
	bin=$(dirname "$(command -v an-dht)")
	FLOOD=${AN_FLOOD:-$bin/../tests/tools/an-flood}
	[ -x "$FLOOD" ] || { echo "no an-flood at $FLOOD" >&2; return 1; }
}

teardown() {
	stop_all KILL
}

# cpu_ticks PID: user + system time of PID so far, in clock ticks.
cpu_ticks() {
	local st
	st=$(cat "/proc/$1/stat") || return 1
	st=${st##*) }
	# fields after the command: state is 3, utime 14, stime 15
	awk '{print $12 + $13}' <<<"$st"
}

# port_of ADDR: the TCP port of a multiaddr.
port_of() {
	cut -d/ -f5 <<<"$1"
}

# dht_victim [ARGS]: an an-dht daemon on 0.0.0.0 (V_PID, V_ADDR, V_PORT).
dht_victim() {
	start_node victim --listen /ip4/0.0.0.0/tcp/0 "$@" || return 1
	V_PID=$NODE_PID V_ADDR=$NODE_ADDR V_PORT=$(port_of "$NODE_ADDR")
}

# wait_holding NAME OPEN SECONDS: an-flood NAME reports at least OPEN sockets
# or connections open.
wait_holding() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(jq -rs '[.[] | .open] | max // 0' "$RUNDIR/$1.out" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "an-flood $1 never held $2:" >&2
	cat "$RUNDIR/$1.out" "$RUNDIR/$1.err" >&2
	return 1
}

@test "a daemon out of file descriptors does not spin, and accepts again later" {
	# ulimit -n 48 in the daemon's own shell, which execs it (V_PID is the daemon)
	bg victim bash -c 'ulimit -n 48 && exec an-dht daemon -s "$1" --listen /ip4/0.0.0.0/tcp/0 -q' \
		_ "$RUNDIR/victim"
	V_PID=$BG_PID
	node_ready victim
	V_ADDR=$NODE_ADDR
	# 80 held connections from four addresses (20 each: no per-address limit
	# stops them before the descriptors run out)
	bg flood "$FLOOD" idle --to "127.0.0.1:$(port_of "$V_ADDR")" \
		--from 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 -n 80 --once --for 20
	wait_holding flood 30 10
	sleep 0.5 # the backlog reaches the daemon
	[ "$(ls "/proc/$V_PID/fd" | wc -l)" -ge 44 ] # it did run out
	local t0 t1
	t0=$(cpu_ticks "$V_PID")
	sleep 2
	t1=$(cpu_ticks "$V_PID")
	echo "cpu ticks over 2 s: $((t1 - t0))" >&2
	[ $((t1 - t0)) -le 30 ] # a spinning daemon burns ~200 (100 Hz), or all it gets
	kill -TERM "$(cat "$RUNDIR/flood.pid")"
	# the connections are gone: an honest client is served again
	run --separate-stderr timeout 20 an-dht ping -c 1 -t 10 "$V_ADDR"
	[ "$status" -eq 0 ]
	alive "$V_PID"
}

@test "a state directory too long for the system is refused, not cut to another one" {
	# XDG_STATE_HOME of 4090 bytes: with "/alternet" it passes PATH_MAX; cut
	# to 4095 bytes it would name the existing-able ".../alte"
	local xdg=$T/x part
	part=$(printf 'd%.0s' $(seq 200))
	while [ "${#xdg}" -lt 3880 ]; do xdg=$xdg/$part; done
	xdg=$xdg/$(printf 'e%.0s' $(seq $((4089 - ${#xdg}))))
	[ "${#xdg}" -eq 4090 ]
	unset AN_STATE_DIR
	run --separate-stderr env XDG_STATE_HOME="$xdg" timeout 20 an-dht daemon --listen /ip4/127.0.0.1/tcp/0
	[ "$status" -eq 4 ]
	[[ $stderr == *"unable to create state directory"*"File name too long"* ]]
	[ ! -e "$T/x" ] # nothing created under another name
}

# wait_settled NAME MIN SECONDS: an-flood NAME's "open" stopped growing (the
# same in its last three reports) at MIN or more; its count in SETTLED.
wait_settled() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		SETTLED=$(jq -rs '[.[] | select(.event == "stats") | .open] | .[-3:] |
			if length == 3 and (unique | length) == 1 then .[0] else -1 end' "$RUNDIR/$1.out" 2>/dev/null)
		[ "${SETTLED:--1}" -ge "$2" ] && return 0
		sleep 0.2
	done
	echo "an-flood $1 did not settle at $2 or more:" >&2
	tail -n 5 "$RUNDIR/$1.out" "$RUNDIR/$1.err" >&2
	return 1
}

# wait_streams NAME MIN SECONDS: an-flood NAME holds MIN agreed streams or more.
wait_streams() {
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(jq -rs '[.[] | .streams] | max // 0' "$RUNDIR/$1.out" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.2
	done
	echo "an-flood $1 never held $2 streams:" >&2
	tail -n 5 "$RUNDIR/$1.out" "$RUNDIR/$1.err" >&2
	return 1
}

@test "200 idle sockets from 127.0.0.2 leave an an-dht daemon's handshakes to 127.0.0.1" {
	dht_victim -q
	bg flood "$FLOOD" idle --to "127.0.0.1:$V_PORT" --from 127.0.0.2 -n 200 --for 40
	wait_settled flood 30 15 # what the victim let it hold, opened again each second
	run --separate-stderr timeout 20 an-dht ping -c 1 -t 5 "$V_ADDR"
	[ "$status" -eq 0 ] || { echo "honest ping failed: $stderr" >&2; false; }
	[ "$(jq -rs '[.[] | .open] | .[-1]' "$RUNDIR/flood.out")" -ge 30 ] # still flooding
	alive "$V_PID"
}

@test "260 connections from 127.0.0.2 leave an an-dht daemon's connections to 127.0.0.1" {
	dht_victim -q
	bg flood "$FLOOD" streams --to "$V_ADDR" --from 127.0.0.2 -n 260 --streams 0 \
		--proto /ipfs/ping/1.0.0 --for 60
	wait_settled flood 100 40
	run --separate-stderr timeout 20 an-dht ping -c 1 -t 5 "$V_ADDR"
	[ "$status" -eq 0 ] || { echo "honest ping failed: $stderr" >&2; false; }
	alive "$V_PID"
}

@test "1500 idle route streams from 127.0.0.2 leave an-serve's requests to 127.0.0.1" {
	mkdir -p "$T/site"
	echo '<h1>home</h1>' >"$T/site/index.html"
	an-keygen -k "$T/site.key" >"$T/site.id"
	PH=$(jq -r .peerHash "$T/site.id")
	bg victim an-serve -k "$T/site.key" --name site -s "$T/s" --listen /ip4/0.0.0.0/tcp/0 "$T/site"
	V_PID=$BG_PID
	wait_for "$RUNDIR/victim.out" '"event":"ready"' 20
	V_ADDR=$(jq -r '.addrs[0]' "$RUNDIR/victim.out")
	bg flood "$FLOOD" streams --to "$V_ADDR" --from 127.0.0.2 -n 6 --streams 250 \
		--proto /an/route/1.0.0 --for 60
	# an-serve's route server gives one address 128 requests at once (and the
	# host 512 streams): the flood holds what it is let, the rest are reset
	wait_streams flood 100 30
	sleep 1 # the rest of the 1500 are tried
	run --separate-stderr timeout 15 an-dial -s -t 5s --connect-to "$V_ADDR" "an://$PH@site/"
	[ "$status" -eq 0 ] || { echo "honest fetch failed ($status): $stderr" >&2; false; }
	[[ $output == *home* ]]
	alive "$V_PID"
}

@test "200 idle sockets from 127.0.0.2 leave an-relay's handshakes to 127.0.0.1" {
	an-keygen -k "$T/relay.key" >/dev/null
	bg victim an-relay -k "$T/relay.key" --listen /ip4/0.0.0.0/tcp/0
	V_PID=$BG_PID
	wait_for "$RUNDIR/victim.out" '"event":"ready"' 10
	V_ADDR=$(jq -r '.addrs[0]' "$RUNDIR/victim.out")
	bg flood "$FLOOD" idle --to "127.0.0.1:$(port_of "$V_ADDR")" --from 127.0.0.2 -n 200 --for 40
	wait_settled flood 30 15
	run --separate-stderr timeout 20 an-dht ping -c 1 -t 5 "$V_ADDR"
	[ "$status" -eq 0 ] || { echo "honest ping failed: $stderr" >&2; false; }
	alive "$V_PID"
}
