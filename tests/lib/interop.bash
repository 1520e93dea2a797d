# tests/lib/interop.bash: what the interop files share
# (`load ../lib/common` then `load ../lib/interop`): the start of a
# setup_file, sha, and the peer harness of c-js.bats and js-js.bats.
#
# A peer is js (tests/interop/js/peer.mjs) or c (tests/tools/an-testpeer,
# $AN_TESTPEER), announcing agent "js-NAME" or "c-NAME"; both take the same
# flags and print the same JSON lines (tests/interop/README.md).  The
# check_* functions at the end are the cases c-js.bats and js-js.bats both
# run, so C and js are held to the same checks.
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
	c) PEER_CMD=("$AN_TESTPEER" --key "$T/$2.key" --agent "c-$2") ;;
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

# ---- the cases: check_CASE DIALER LISTENER, each "js" or "c".  The caller's
# setup sets T, PEER and run_dir "$T"; teardown stops the peers.

check_handshake() {
	start_listener "$2" a
	dial "$1" --ping 1
	[ "$status" -eq 0 ]
	[ "$(ev connected .remotePeer)" = "$LISTEN_ID" ]
	dialer_id=$(ev connected .peerId)
	wait_for "$T/a.out" '"event":"connection","direction":"inbound"' 10
	# every connection the listener reports is from the dialer
	[ "$(jq -r 'select(.event == "connection") | .peerId' "$T/a.out" | sort -u)" = "$dialer_id" ]
}

check_wrong_peer_id() {
	start_listener "$2" a
	start_listener "$2" b
	LISTEN_ADDR=${LISTEN_ADDR%/p2p/*}/p2p/$(jq -r 'select(.event == "listening") | .peerId' "$T/a.out")
	dial "$1" --ping 1 --timeout 10
	[ "$status" -eq 4 ]
	[ "$(ev error .action)" = dial ]
}

check_identify_dialer_view() {
	local p
	start_listener "$2" a
	dial "$1" --identify
	[ "$status" -eq 0 ]
	[ "$(ev identify .peerId)" = "$LISTEN_ID" ]
	[ "$(ev identify .agentVersion)" = "$2-a" ]
	for p in /ipfs/id/1.0.0 /ipfs/ping/1.0.0 /an/test/echo/1.0.0; do
		[ "$(ev identify ".protocols | index(\"$p\") != null")" = true ] || { echo "no $p" >&2; return 1; }
	done
	[ "$(ev identify '.listenAddrs[0]')" = "${LISTEN_ADDR%/p2p/*}" ]
	[[ "$(ev identify .observedAddr)" == /ip4/127.0.0.1/tcp/* ]]
}

check_identify_listener_view() {
	local id
	start_listener "$2" a
	dial "$1" --identify
	[ "$status" -eq 0 ]
	wait_for "$T/a.out" '"event":"peer-identify"' 10
	id=$(jq -c 'select(.event == "peer-identify")' "$T/a.out" | head -1)
	[ "$(jq -r .peerId <<<"$id")" = "$(ev connected .peerId)" ]
	[ "$(jq -r .agentVersion <<<"$id")" = "$1-dialer" ]
	[ "$(jq -r '.protocols | index("/ipfs/ping/1.0.0") != null' <<<"$id")" = true ]
	[[ "$(jq -r '.listenAddrs[0]' <<<"$id")" == /ip4/127.0.0.1/tcp/* ]]
}

check_pings() {
	start_listener "$2" a
	dial "$1" --ping 100
	[ "$status" -eq 0 ]
	[ "$(grep -c '"event":"ping",' <<<"$output")" -eq 100 ]
	[ "$(ev ping-summary .ok)" -eq 100 ]
}

check_echo_64mib() {
	start_listener "$2" a
	dial "$1" --echo 67108864
	[ "$status" -eq 0 ]
	[ "$(ev echo .recvBytes)" -eq 67108864 ]
	[ "$(ev echo .sentSha256)" = "$(ev echo .recvSha256)" ]
	[ "$(ev echo .ok)" = true ]
}

check_streams_200() {
	start_listener "$2" a --quiet
	dial "$1" --streams 200
	[ "$status" -eq 0 ]
	[ "$(ev streams .ok)" -eq 200 ]
	[ "$(ev streams .failed)" -eq 0 ]
	[ "$(grep -c '"event":"connected"' <<<"$output")" -eq 1 ]
}

check_half_close() {
	start_listener "$2" a
	dial "$1" --half-close
	[ "$status" -eq 0 ]
	[ "$(ev half-close .writeStatusAfterClose)" = closed ]
	[ "$(ev half-close .recvAfterClose)" -eq 65536 ]
	[ "$(ev half-close .sentSha256)" = "$(ev half-close .recvSha256)" ]
	[ "$(ev half-close .ok)" = true ]
}

check_reset_by_dialer() {
	start_listener "$2" a
	dial "$1" --reset
	[ "$status" -eq 0 ]
	[ "$(ev reset .connectionStatus)" = open ]
	[ "$(ev reset .echoAfter)" = true ]
	[ "$(ev reset .pingAfter)" = true ]
	wait_for "$T/a.out" '"protocol":"/an/test/echo/1.0.0".*"result":"reset"' 10
}

check_reset_by_listener() {
	start_listener "$2" a
	dial "$1" --remote-reset
	[ "$status" -eq 0 ]
	[ "$(ev remote-reset .sawReset)" = true ]
	[ "$(ev remote-reset .connectionStatus)" = open ]
	[ "$(ev remote-reset .echoAfter)" = true ]
	[ "$(ev remote-reset .pingAfter)" = true ]
}

# check_simultaneous_dial A B: peers a (A) and b (B) dial each other at once.
check_simultaneous_dial() {
	local p
	# each waits for the other's address in a file, then dials
	start_peer "$1" a --listen /ip4/127.0.0.1/tcp/0 --dial "@$T/b.addr" --ping 3 --identify --serve-for 10
	start_peer "$2" b --listen /ip4/127.0.0.1/tcp/0 --dial "@$T/a.addr" --ping 3 --identify --serve-for 10
	wait_for "$T/a.out" '"event":"listening"' 20
	wait_for "$T/b.out" '"event":"listening"' 20
	jq -r 'select(.event == "listening") | .addrs[0]' "$T/a.out" >"$T/a.tmp"
	jq -r 'select(.event == "listening") | .addrs[0]' "$T/b.out" >"$T/b.tmp"
	mv "$T/a.tmp" "$T/a.addr"
	mv "$T/b.tmp" "$T/b.addr"
	wait_for "$T/a.out" '"event":"(done|error)"' 60
	wait_for "$T/b.out" '"event":"(done|error)"' 60
	for p in a b; do
		[ "$(jq -r 'select(.event == "done") | .ok' "$T/$p.out")" = true ] || { echo "$p not done ok" >&2; return 1; }
		[ "$(jq -r 'select(.event == "ping-summary") | .ok' "$T/$p.out")" -eq 3 ]
	done
	[ "$(jq -r 'select(.event == "identify") | .peerId' "$T/a.out")" = \
		"$(jq -r 'select(.event == "listening") | .peerId' "$T/b.out")" ]
	[ "$(jq -r 'select(.event == "identify") | .peerId' "$T/b.out")" = \
		"$(jq -r 'select(.event == "listening") | .peerId' "$T/a.out")" ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' "$T/a.out")" = "$2-b" ]
	[ "$(jq -r 'select(.event == "identify") | .agentVersion' "$T/b.out")" = "$1-a" ]
}
