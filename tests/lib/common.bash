# tests/lib/common.bash: helpers shared by the bats suites; a .bats file
# loads it with `load ../lib/common` (a path relative to the test file).
#
# Background processes keep their files in one directory, $RUNDIR (set with
# run_dir): NAME.out (stdout), NAME.err (stderr, appended, so a process
# restarted under the same name keeps the earlier lines), NAME.pid, and
# every pid is appended to $RUNDIR/pids for stop_all.  Every wait has a
# deadline; nothing here runs at load time.

# run_dir DIR: keep background processes' files in DIR from now on (created,
# its pid list emptied).  Exported, so a setup_file's choice holds in tests.
run_dir() {
	export RUNDIR=$1
	mkdir -p "$RUNDIR"
	: >"$RUNDIR/pids"
}

# wait_for FILE ERE SECONDS: poll until a line of FILE matches ERE, or fail
# after SECONDS showing FILE and its companion .err file.
wait_for() {
	local file=$1 re=$2 deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out waiting for /$re/ in $file:" >&2
	cat "$file" "${file%.out}.err" >&2 2>/dev/null
	return 1
}

# bg NAME CMD...: CMD in the background, output in $RUNDIR/NAME.{out,err};
# sets BG_PID.
bg() {
	local name=$1
	shift
	"$@" >"$RUNDIR/$name.out" 2>>"$RUNDIR/$name.err" &
	BG_PID=$!
	echo "$BG_PID" >"$RUNDIR/$name.pid"
	echo "$BG_PID" >>"$RUNDIR/pids"
}

# spawn_node NAME [ARGS...]: `an-dht daemon -s $RUNDIR/NAME ARGS` in the
# background (bg), not waited for; sets BG_PID.
spawn_node() {
	local name=$1
	shift
	bg "$name" an-dht daemon -s "$RUNDIR/$name" "$@"
}

# node_ready NAME [SECONDS]: wait (default 10 s) for NAME's ready line; its
# first address (with /p2p/) in $RUNDIR/NAME.addr and NODE_ADDR, its peer ID
# in $RUNDIR/NAME.id and NODE_PEER.
node_ready() {
	local out=$RUNDIR/$1.out
	wait_for "$out" '"event":"ready"' "${2:-10}" || return 1
	NODE_ADDR=$(jq -r '.addrs[0]' "$out")
	NODE_PEER=$(jq -r .peerId "$out")
	echo "$NODE_ADDR" >"$RUNDIR/$1.addr"
	echo "$NODE_PEER" >"$RUNDIR/$1.id"
}

# start_node NAME [ARGS...]: spawn_node, then node_ready; NODE_PID its pid.
start_node() {
	spawn_node "$@"
	NODE_PID=$BG_PID
	node_ready "$1"
}

# node_peers NAME: NAME's routing table (an-dht peers), bounded.
node_peers() {
	timeout 10 an-dht peers -t 5s -s "$RUNDIR/$1"
}

# wait_network N MIN SECONDS: wait until each of n0..n(N-1) has MIN peers or
# more in its routing table, all within SECONDS.
wait_network() {
	local n=$1 min=$2 deadline=$((SECONDS + $3)) i
	for ((i = 0; i < n; i++)); do
		until [ "$(node_peers "n$i" | wc -l)" -ge "$min" ]; do
			[ "$SECONDS" -lt "$deadline" ] || { echo "n$i did not bootstrap" >&2; return 1; }
			sleep 0.1
		done
	done
}

# start_network N [ARGS...]: daemons n0..n(N-1) on 127.0.0.1 (ARGS given to
# each), n1 and on bootstrapping from n0; exports BOOT (n0's address); waits
# until every daemon's table holds two peers or more (30 s in all).
start_network() {
	local n=$1 i
	shift
	start_node n0 "$@" || return 1
	export BOOT=$NODE_ADDR
	for ((i = 1; i < n; i++)); do start_node "n$i" "$@" --bootstrap "$BOOT" || return 1; done
	wait_network "$n" 2 30
}

# alive PID: PID runs (an exited child not yet reaped, a zombie, does not).
alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# stop_node NAME: SIGTERM to NAME's process, SIGKILL if it still runs 5 s on.
stop_node() {
	local pid
	pid=$(cat "$RUNDIR/$1.pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do alive "$pid" || return 0; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null || true
}

# wait_exit PID SECONDS: wait for PID to exit; its status in $status.
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	while alive "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "process $pid still running" >&2; return 1; }
		sleep 0.05
	done
	status=0
	wait "$pid" || status=$?
}

# stop_all [SIGNAL]: SIGNAL (default TERM) to every process in $RUNDIR/pids,
# SIGKILL to any still running 5 s on, then reap them.
stop_all() {
	local sig=${1:-TERM} pid deadline=$((SECONDS + 5))
	[ -n "${RUNDIR:-}" ] && [ -f "$RUNDIR/pids" ] || return 0
	while read -r pid; do kill -"$sig" "$pid" 2>/dev/null || true; done <"$RUNDIR/pids"
	while read -r pid; do
		while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done <"$RUNDIR/pids"
}

# free_port: a TCP port on 127.0.0.1 free at the time of the call.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ev EVENT FILTER: jq FILTER applied to the first line of $output whose
# event is EVENT.
ev() {
	jq -rs --arg e "$1" "[.[] | select(.event == \$e)][0] | $2" <<<"$output"
}
