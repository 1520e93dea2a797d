# tests/lib/common.bash: helpers shared by the bats suites; a .bats file
# loads it with `load ../lib/common` (a path relative to the test file).
#
# Background processes keep their files in one directory, $RUNDIR (set with
# run_dir): NAME.out (stdout), NAME.err (stderr, appended, so a process
# restarted under the same name keeps the earlier lines), NAME.pid, and
# every pid is appended to $RUNDIR/pids for stop_all.  Every wait has a
# deadline; nothing here runs at load time.
#
# How a process ends is checked.  bg starts each process under a small
# watcher subshell that writes its exit status to $RUNDIR/.bg/PID.status,
# so the status is known whichever bats process (setup_file, a test,
# teardown_file) stops it.  stop_all, stop_node and wait_exit fail (status
# 1, with a message naming the process, how it ended and the end of its
# .err file) when a process
#   - died of a signal nobody sent it on purpose (SIGSEGV, SIGABRT, ...),
#   - exited non-zero, or
#   - did not exit within 5 s of SIGTERM.
# Our programs (an-*) must exit 0 on SIGTERM; other programs (python3
# helpers) may also die of the SIGTERM they were sent.  `stop_all KILL`
# accepts death by SIGKILL.  A test that kills a process on purpose or
# expects it to fail says so with bg_expect_fail NAME|PID (or stops it with
# `stop_node NAME KILL`).  A test that waits for a process itself (`wait
# PID`, wait_exit) has taken its status and checks it: stop_all leaves it.
#
# Because bg's processes are the watcher's children, not the caller's,
# this file defines `wait` as a function: for a pid bg started it returns
# the status the watcher wrote (up to 120 s); anything else goes to the
# builtin unchanged.
#
# Processes a test starts itself with `&` and appends to $RUNDIR/pids are
# stopped by stop_all too; their status is known only when they are
# children of the shell that runs stop_all.  Then one of our programs
# (an-*, by /proc/PID/comm) that still ran must exit 0 on SIGTERM, and any
# other must not die of a signal stop_all did not send.

# run_dir DIR: keep background processes' files in DIR from now on (created,
# its pid list emptied).  Exported, so a setup_file's choice holds in tests.
run_dir() {
	export RUNDIR=$1
	mkdir -p "$RUNDIR/.bg"
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

# _bg_prog CMD...: the program CMD really runs, past the wrappers ip netns
# exec NS, timeout [OPTIONS] DURATION, env [VAR=VALUE...], nice, setsid.
_bg_prog() {
	while [ $# -gt 0 ]; do
		case ${1##*/} in
		ip) [ "${2:-}" = netns ] && [ "${3:-}" = exec ] && [ $# -ge 4 ] || break; shift 4 ;;
		timeout)
			shift
			while [ $# -gt 0 ]; do
				case $1 in
				-s | -k | --signal | --kill-after) shift 2 ;;
				-*) shift ;;
				*) shift; break ;;
				esac
			done
			;;
		env)
			shift
			while [ $# -gt 0 ] && { [[ $1 == -* ]] || [[ $1 == *=* ]]; }; do shift; done
			;;
		nice | setsid) shift ;;
		*) break ;;
		esac
	done
	echo "${1##*/}"
}

# bg NAME CMD...: CMD in the background, output in $RUNDIR/NAME.{out,err};
# sets BG_PID (CMD's own pid: signals and /proc go to CMD itself).
bg() {
	local name=$1 fd stale
	shift
	[ -d "$RUNDIR/.bg" ] || mkdir -p "$RUNDIR/.bg" || return 1
	# Emptied here: the child's own redirection runs after the fork, so a
	# wait_for right after bg could read a previous run's NAME.out.
	: >"$RUNDIR/$name.out" || return 1
	# The watcher hands CMD's pid over on a pipe, then lives on (in the
	# background of the process substitution, which ends at once) until
	# CMD ends.  No bats traps or errexit in it: it must write the status.
	exec {fd}< <(
		(
			trap - ERR DEBUG
			set +eET
			"$@" >>"$RUNDIR/$name.out" 2>>"$RUNDIR/$name.err" &
			p=$!
			stale=("$RUNDIR/.bg/$p".*)
			[ -e "${stale[0]}" ] && rm -f "${stale[@]}"
			echo "$name" >"$RUNDIR/.bg/$p.name"
			_bg_prog "$@" >"$RUNDIR/.bg/$p.prog"
			echo "$p"
			exec >/dev/null
			builtin wait "$p" 2>/dev/null # no "Segmentation fault" job notice
			echo "$?" >"$RUNDIR/.bg/$p.status" 2>/dev/null
		) &
	)
	BG_PID=
	read -r -t 10 BG_PID <&"$fd"
	exec {fd}<&-
	[ -n "$BG_PID" ] || { echo "bg: $name did not start" >&2; return 1; }
	echo "$BG_PID" >"$RUNDIR/$name.pid"
	echo "$BG_PID" >>"$RUNDIR/pids"
}

# _bg_pid NAME|PID: the pid (NAME's latest process when not a number).
_bg_pid() {
	case $1 in
	'' | *[!0-9]*) cat "$RUNDIR/$1.pid" ;;
	*) echo "$1" ;;
	esac
}

# bg_expect_fail NAME|PID...: the process may end any way (killed on
# purpose, or expected to fail: the test checks that itself); stop_all and
# stop_node do not judge it.
bg_expect_fail() {
	local p pid
	for p; do
		pid=$(_bg_pid "$p") || return 1
		: >"$RUNDIR/.bg/$pid.expect"
	done
}

# _bg_managed PID: status 0 when bg started PID (its status will be written).
_bg_managed() {
	[ -n "${RUNDIR:-}" ] && [ -f "$RUNDIR/.bg/$1.name" ]
}

# _bg_status PID SECONDS: wait for the watcher's record of PID's exit; the
# status in BG_STATUS.  Status 1 when PID still runs after SECONDS.
_bg_status() {
	local f=$RUNDIR/.bg/$1.status deadline=$((SECONDS + $2))
	until [ -s "$f" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.02
	done
	read -r BG_STATUS <"$f"
}

# _bg_ended STATUS: "exited with status N" or "died of SIGNAME (status N)".
_bg_ended() {
	if [ "$1" -gt 128 ] && [ "$1" -le 192 ]; then
		echo "died of SIG$(kill -l "$(($1 - 128))" 2>/dev/null) (status $1)"
	else
		echo "exited with status $1"
	fi
}

# _bg_judge WHO PID STATUS SENT [WHEN]: status 0 when STATUS is an
# acceptable end for PID, which was sent signal SENT (or had ended before:
# WHEN says so); otherwise says why on stderr (WHO: the caller's name for
# the message) and status 1.
_bg_judge() {
	local who=$1 pid=$2 st=$3 sent=$4 when=${5:-after SIG$4} name prog signo=
	[ -e "$RUNDIR/.bg/$pid.expect" ] && return 0
	[ "$st" -eq 0 ] && return 0
	name=$(cat "$RUNDIR/.bg/$pid.name" 2>/dev/null) || name="pid $pid"
	prog=$(cat "$RUNDIR/.bg/$pid.prog" 2>/dev/null) || prog=
	[ -n "$sent" ] && signo=$(kill -l "$sent" 2>/dev/null)
	if [ -n "$signo" ] && [ "$st" -eq $((128 + signo)) ]; then
		# a SIGKILL we sent, or a SIGTERM to a program that is not ours
		[ "$sent" = KILL ] || [[ $prog != an-* ]] && return 0
	fi
	echo "$who: $name (pid $pid, $prog) $(_bg_ended "$st") $when; the end of $name.err:" >&2
	tail -n 15 "$RUNDIR/$name.err" 2>/dev/null | sed 's/^/  /' >&2
	return 1
}

# wait [PID...]: the builtin, except for pids bg started (see the top).
wait() {
	local a st=0
	[ $# -gt 0 ] || { builtin wait; return; }
	for a; do
		case $a in '' | *[!0-9]*) builtin wait "$@"; return ;; esac
	done
	for a; do
		if _bg_managed "$a"; then
			_bg_status "$a" 120 || { echo "wait: $a still runs after 120 s" >&2; return 1; }
			: >"$RUNDIR/.bg/$a.reaped"
			st=$BG_STATUS
		else
			builtin wait "$a"
			st=$?
		fi
	done
	return "$st"
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
	spawn_node "$@" || return 1
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

# stop_node NAME [SIGNAL]: SIGNAL (default TERM) to NAME's process, SIGKILL
# if it still runs 5 s on.  After SIGTERM it must exit 0 (status 1 and a
# message otherwise); another SIGNAL is a kill on purpose (bg_expect_fail),
# waited for.  Either way stop_all leaves the process alone afterwards.
stop_node() {
	local name=$1 sig=${2:-TERM} pid deadline=$((SECONDS + 5))
	pid=$(cat "$RUNDIR/$name.pid") || return 1
	[ "$sig" = TERM ] || bg_expect_fail "$pid"
	kill -"$sig" "$pid" 2>/dev/null || true
	while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		echo "stop_node: $name (pid $pid) still ran 5 s after SIG$sig; killed" >&2
		_bg_managed "$pid" && _bg_status "$pid" 5 && : >"$RUNDIR/.bg/$pid.reaped"
		[ -e "$RUNDIR/.bg/$pid.expect" ]
		return
	fi
	_bg_managed "$pid" || return 0
	_bg_status "$pid" 5 || { echo "stop_node: no exit status for $name (pid $pid)" >&2; return 1; }
	: >"$RUNDIR/.bg/$pid.reaped"
	_bg_judge stop_node "$pid" "$BG_STATUS" "$sig"
}

# wait_exit PID SECONDS: wait for PID to exit; its status in $status.  The
# caller judges the status (stop_all leaves PID alone).
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	if _bg_managed "$pid"; then
		_bg_status "$pid" "$2" || { echo "process $pid still running" >&2; return 1; }
		: >"$RUNDIR/.bg/$pid.reaped"
		status=$BG_STATUS
		return 0
	fi
	while alive "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "process $pid still running" >&2; return 1; }
		sleep 0.05
	done
	status=0
	builtin wait "$pid" || status=$?
}

# stop_all [SIGNAL]: SIGNAL (default TERM) to every process in $RUNDIR/pids,
# SIGKILL to any still running 5 s on, then reap them and judge how each
# ended (see the top of this file).  Status 1, after stopping every
# process, when one ended badly; the pid list is emptied.  Put it last in a
# teardown (bats ignores a failing command that is not the last one there).
stop_all() {
	local sig=${1:-TERM} pid deadline=$((SECONDS + 5)) rc=0 st late=" " gone=" " comm pids
	local -A ours=()
	[ -n "${RUNDIR:-}" ] && [ -f "$RUNDIR/pids" ] || return 0
	mapfile -t pids <"$RUNDIR/pids"
	for pid in "${pids[@]}"; do
		if ! alive "$pid"; then
			gone+="$pid "
		elif ! _bg_managed "$pid" && read -r comm <"/proc/$pid/comm" 2>/dev/null &&
			[[ $comm == an-* ]]; then
			ours[$pid]=$comm
		fi
		kill -"$sig" "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
		if alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			late+="$pid "
		fi
	done
	for pid in "${pids[@]}"; do
		[ -n "$pid" ] || continue
		if _bg_managed "$pid"; then
			[ -e "$RUNDIR/.bg/$pid.reaped" ] && continue
			if ! _bg_status "$pid" 5; then
				echo "stop_all: $(cat "$RUNDIR/.bg/$pid.name") (pid $pid) did not end, even on SIGKILL" >&2
				rc=1
				continue
			fi
			: >"$RUNDIR/.bg/$pid.reaped"
			if [[ $late == *" $pid "* ]] && [ ! -e "$RUNDIR/.bg/$pid.expect" ]; then
				echo "stop_all: $(cat "$RUNDIR/.bg/$pid.name") (pid $pid) still ran 5 s after SIG$sig; killed" >&2
				rc=1
				continue
			fi
			if [[ $gone == *" $pid "* ]]; then
				_bg_judge stop_all "$pid" "$BG_STATUS" "$sig" "before stop_all" || rc=1
			else
				_bg_judge stop_all "$pid" "$BG_STATUS" "$sig" || rc=1
			fi
		else
			# started by the test itself: judged only when it is our child;
			# one of our programs (an-*) running when stopped must exit 0
			# (or die of our SIGKILL), anything else must not die of a
			# signal we did not send
			builtin wait "$pid" 2>/dev/null
			st=$?
			[ "$st" -eq 127 ] || [ "$st" -eq 0 ] && continue
			[ "$st" -eq $((128 + $(kill -l "$sig"))) ] && [[ $sig == KILL || -z ${ours[$pid]:-} ]] &&
				continue
			if [[ $late == *" $pid "* ]]; then
				echo "stop_all: pid $pid (started by the test) still ran 5 s after SIG$sig; killed" >&2
				rc=1
			elif [ -n "${ours[$pid]:-}" ] || { [ "$st" -gt 128 ] && [ "$st" -le 192 ]; }; then
				echo "stop_all: pid $pid (started by the test${ours[$pid]:+, ${ours[$pid]}}) $(_bg_ended "$st")" >&2
				rc=1
			fi
		fi
	done
	: >"$RUNDIR/pids"
	return "$rc"
}

# two_nodes: for a setup_file - NET=$BATS_FILE_TMPDIR/net as the run_dir
# (AN_STATE_DIR inside it, never created), daemons n0 and n1 (n1
# bootstrapping from n0); exports NET and BOOT (n0's address).
two_nodes() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	start_node n0 -q || return 1
	export BOOT=$NODE_ADDR
	start_node n1 -q --bootstrap "$BOOT"
}

# serve NAME ARGS...: an-serve -q --bootstrap $BOOT ARGS in the background until its ready line
# says published; a publication refused on a loaded machine (stored on no
# node) is tried again, three times in all.
serve() {
	local name=$1 try
	shift
	for try in 1 2 3; do
		bg "$name" an-serve -q --bootstrap "$BOOT" "$@"
		wait_for "$NET/$name.out" '"published":' 60 || return 1
		grep -q '"published":true' "$NET/$name.out" && return 0
		stop_node "$name"
		: >"$NET/$name.out"
	done
	echo "an-serve $name never published" >&2
	return 1
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
