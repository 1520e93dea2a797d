# tests/lib/interop.bash: what the interop files share
# (`load ../lib/common` then `load ../lib/interop`): the start of a
# setup_file, sha, and the peer harness of c-js.bats and js-js.bats.
#
# A peer is js (tests/interop/js/peer.mjs, announcing agent "js-NAME") or c
# (tests/tools/an-testpeer, $AN_TESTPEER, announcing its own agent); both
# take the same flags and print the same JSON lines (tests/interop/README.md).
# The caller sets T (key files $T/NAME.key), run_dir (output files, pids)
# and PEER (the path of peer.mjs); DIAL_TIMEOUT (the dialer's --timeout in
# seconds, default 60) and DIAL_LIMIT (timeout(1) around it, default 120).

# interop_setup_file: the start of an interop file's setup_file: AN_TOP (the
# source tree, exported), the js packages in place (tests/interop/setup),
# and D=$BATS_FILE_TMPDIR (exported) as the run_dir; fails if setup does.
interop_setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	export D=$BATS_FILE_TMPDIR
	run_dir "$D"
}

# sha FILE: FILE's SHA-256 in hex.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# peer_cmd IMPL NAME: the command line of peer NAME (js or c) in PEER_CMD.
peer_cmd() {
	case $1 in
	js) PEER_CMD=(node "$PEER" --key "$T/$2.key" --agent "js-$2") ;;
	c) PEER_CMD=("$AN_TESTPEER" --key "$T/$2.key") ;;
	*) echo "peer_cmd: no peer implementation '$1'" >&2; return 1 ;;
	esac
}

# start_peer IMPL NAME ARGS...: a peer in the background (bg NAME).
start_peer() {
	local impl=$1 name=$2
	shift 2
	peer_cmd "$impl" "$name" || return 1
	bg "$name" "${PEER_CMD[@]}" "$@"
}

# start_listener IMPL NAME [ARGS...]: listen on 127.0.0.1:0 and wait (20 s);
# sets LISTEN_ADDR (with /p2p/) and LISTEN_ID.
start_listener() {
	local impl=$1 name=$2 l='select(.event == "listening")'
	shift 2
	start_peer "$impl" "$name" --listen /ip4/127.0.0.1/tcp/0 --serve-for 120 "$@"
	wait_for "$RUNDIR/$name.out" '"event":"listening"' 20
	LISTEN_ADDR=$(jq -r "$l | .addrs[0]" "$RUNDIR/$name.out")
	LISTEN_ID=$(jq -r "$l | .peerId" "$RUNDIR/$name.out")
}

# dial IMPL ARGS...: the dialer (peer "dialer") to $LISTEN_ADDR in the
# foreground under bats' run, bounded.
dial() {
	local impl=$1
	shift
	peer_cmd "$impl" dialer || return 1
	run --separate-stderr timeout "${DIAL_LIMIT:-120}" "${PEER_CMD[@]}" \
		--listen /ip4/127.0.0.1/tcp/0 --timeout "${DIAL_TIMEOUT:-60}" --dial "$LISTEN_ADDR" "$@"
	# bats shows what a test printed only when it fails: the dialer's exit
	# status, its last lines and the listener's stderr explain a failure.
	if [ "$status" -ne 0 ]; then
		echo "dialer ($impl) exited $status; its last output lines:"
		tail -n 5 <<<"$output"
		echo "its stderr:"
		tail -n 20 <<<"$stderr"
		echo "listener stderr:"
		tail -n 20 "$RUNDIR"/*.err 2>/dev/null || true
	fi
	return 0
}
