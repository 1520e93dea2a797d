#!/usr/bin/env bash
# transport.sh: the transport benchmarks of issue 3, C and js side by side in
# one run on this machine's loopback, with the ratios the issue sets:
#   conn_ping    connection setup + first ping, fresh connection each time:
#                C dialer -> C listener against js -> js; median ms, js/C >= 30
#   throughput   one stream one way: C -> C against js -> js, Gbit/s, C/js >= 3
#   ceiling      the same C figure against ChaCha20-Poly1305 + loopback TCP with
#                no protocol (bench/ceiling.c), C/ceiling >= 0.85
#   idle_rss     VmRSS of a node holding 100 idle inbound connections from a
#                separate client process: js node / C node >= 20
#                (idle_rss_daemon: the same for an-dht daemon, the full C node)
# Like with like: each dialer times many operations inside one process (no
# process start-up in a sample), each listener is its own process, and the
# idle-RSS client (bench/js/idle_rss.mjs, 100 js peers) is the same for both
# nodes.  The C listener is tests/tools/an-testpeer, which serves what the
# js listener (tests/interop/js/peer.mjs) serves.
#
# Output: one JSON line per comparison on stdout, a table on stderr.  Exit 0
# when every target is met, 1 when one is missed, 4 when a step failed.
#
#   PATH with an-dht; AN_BENCH_BIN with conn_ping, throughput, ceiling;
#   AN_TESTPEER (default: next to an-dht, ../tests/tools/an-testpeer).
#   CONN_N (200) / JS_CONN_N (50) samples, MIB (256) per throughput run,
#   RUNS (3) throughput runs, CONNS (100) idle connections, SETTLE (5) s.
#   PAIRS=N: only C throughput against the ceiling, N pairs back to back
#   (one line each, then the median ratio); no js, no node needed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${AN_BENCH_BIN:-$top/build/bench}
conn_n=${CONN_N:-200} js_conn_n=${JS_CONN_N:-50} mib=${MIB:-256} runs=${RUNS:-3}
conns=${CONNS:-100} settle=${SETTLE:-5}
step_timeout=240 # seconds, any one step

die() { echo "transport.sh: $*" >&2; exit 4; }

andht=$(command -v an-dht) || die "an-dht not on PATH"
testpeer=${AN_TESTPEER:-$(dirname "$andht")/../tests/tools/an-testpeer}
[ -x "$testpeer" ] || die "no an-testpeer at $testpeer (make test-tools, or set AN_TESTPEER)"
for b in conn_ping throughput ceiling; do
	[ -x "$bin/$b" ] || die "no $bin/$b (make benches)"
done
pairs=${PAIRS:-0}
case $pairs in '' | *[!0-9]*) die "PAIRS must be a count" ;; esac
if [ "$pairs" -eq 0 ]; then
	command -v node >/dev/null || die "node not found (tests/interop/setup)"
	"$top/tests/interop/setup" >&2 || die "tests/interop/setup failed"
fi

tmp=$(mktemp -d /tmp/an-bench-transport.XXXXXX)
# The processes still running: a listener (node_pid) and a timeout(1) step
# (step_pid, leader of its own process group).  Finished ones are forgotten
# at once, so a recycled PID is never signalled.
node_pid='' step_pid=''
cleanup() {
	[ -n "$step_pid" ] && kill -TERM -- "-$step_pid" 2>/dev/null
	[ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 4' INT TERM HUP

# step VAR NAME CMD...: run CMD bounded by step_timeout (its own process
# group, so a node script's child listener goes with it); its last stdout
# line (the JSON result) into VAR.
step() {
	local var=$1 name=$2 rc
	shift 2
	echo "transport.sh: $name: ${*#$top/}" >&2
	timeout -k 5 "$step_timeout" "$@" >"$tmp/$name" 2>"$tmp/$name.err" &
	step_pid=$!
	wait "$step_pid"
	rc=$?
	step_pid=''
	if [ $rc -ne 0 ]; then
		cat "$tmp/$name.err" >&2
		die "$name failed (exit $rc)"
	fi
	printf -v "$var" '%s' "$(tail -n 1 "$tmp/$name")"
}

# start_node NAME CMD...: start a listener in the background; waits (10 s at
# most) for its first JSON line (listening/ready) and sets node_pid, node_ma.
start_node() {
	local name=$1 i
	shift
	"$@" >"$tmp/$name" 2>"$tmp/$name.err" &
	node_pid=$!
	for i in $(seq 100); do
		grep -q '"addrs"' "$tmp/$name" 2>/dev/null && break
		kill -0 "$node_pid" 2>/dev/null || break
		sleep 0.1
	done
	node_ma=$(sed -nE '1s/.*"addrs":\["([^"]+)".*/\1/p' "$tmp/$name")
	if [ -z "$node_ma" ]; then
		cat "$tmp/$name.err" >&2
		die "$name did not start"
	fi
	case $node_ma in */p2p/*) ;; *) node_ma=$node_ma/p2p/$(sed -nE '1s/.*"peerId":"([^"]+)".*/\1/p' "$tmp/$name") ;; esac
}

stop_node() {
	kill -TERM "$node_pid" 2>/dev/null
	wait "$node_pid" 2>/dev/null
	node_pid=''
}

field() { sed -nE "s/.*\"$1\":(-?[0-9.eE+-]+).*/\\1/p" <<<"$2"; }

misses=0
# report MEASURE UNIT C REF REFNAME RATIO_OF TARGET C_JSON REF_JSON NOTE
# RATIO_OF is "ref/c" (C smaller is better) or "c/ref" (C larger is better).
report() {
	local measure=$1 unit=$2 c=$3 ref=$4 refname=$5 of=$6 target=$7 cj=$8 rj=$9 note=${10}
	local line
	line=$(awk -v m="$measure" -v u="$unit" -v c="$c" -v r="$ref" -v rn="$refname" -v of="$of" \
		-v t="$target" -v cj="$cj" -v rj="$rj" -v note="$note" 'BEGIN {
		ratio = (of == "ref/c") ? r / c : c / r
		res = ratio >= t ? "PASS" : "MISS"
		printf "{\"bench\":\"transport\",\"measure\":\"%s\",\"unit\":\"%s\",\"c\":%s,\"%s\":%s,", m, u, c, rn, r
		printf "\"ratio\":%.3f,\"ratioOf\":\"%s\",\"target\":%s,\"result\":\"%s\",", ratio,
			(of == "ref/c") ? rn "/c" : "c/" rn, t, res
		printf "\"cDetail\":%s,\"%sDetail\":%s,\"note\":\"%s\"}\n", cj, rn, rj, note
		printf "%-18s %-5s %10s %10s %-8s %8.2fx  >= %-5s %s\n", m, u, c, r, rn, ratio, t, res > "/dev/stderr"
		}' 2>>"$tmp/table")
	echo "$line"
	grep -q '"result":"MISS"' <<<"$line" && misses=$((misses + 1))
	return 0
}

# ---- PAIRS mode: C throughput and the ceiling, back to back, N times -------
# The wall-clock ratio of one pair moves with whatever else loads the
# machine; several pairs and their median show how far.
if [ "$pairs" -gt 0 ]; then
	printf '%-18s %-5s %10s %10s %-8s %9s  %-8s %s\n' measure unit C ref refName ratio target result >"$tmp/table"
	start_node c-listener "$testpeer" --listen /ip4/127.0.0.1/tcp/0 --serve-for 3600 --quiet
	ratios=''
	for i in $(seq "$pairs"); do
		step c_tp "c-throughput-$i" "$bin/throughput" --target "$node_ma" --mib "$mib" --runs "$runs"
		step ceil "ceiling-$i" "$bin/ceiling" --mib "$mib" --runs "$runs"
		report throughput_ceiling Gbps "$(field gbps "$c_tp")" "$(field gbps "$ceil")" ceiling c/ref 0.85 \
			"$c_tp" "$ceil" "pair $i of $pairs"
		ratios="$ratios $(awk -v c="$(field gbps "$c_tp")" -v r="$(field gbps "$ceil")" 'BEGIN { printf "%.3f", c / r }')"
	done
	stop_node
	cat "$tmp/table" >&2
	median=$(tr ' ' '\n' <<<"$ratios" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END {
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	echo "transport.sh: C/ceiling over $pairs pairs:$ratios; median $median" >&2
	awk -v m="$median" 'BEGIN { exit !(m >= 0.85) }'
	exit $?
fi

# ---- a. connection setup + first ping --------------------------------------
start_node c-listener "$testpeer" --listen /ip4/127.0.0.1/tcp/0 --serve-for 600 --quiet
step c_conn c-conn-ping "$bin/conn_ping" --target "$node_ma" --n "$conn_n" --warmup 10
# ---- b. single-stream throughput (same C listener, a new connection) ------
step c_tp c-throughput "$bin/throughput" --target "$node_ma" --mib "$mib" --runs "$runs"
stop_node
# right after the C figure it is held against: the machine's load drifts
step ceil ceiling "$bin/ceiling" --mib "$mib" --runs "$runs"
step js_conn js-conn-ping node "$top/bench/js/conn_ping.mjs" --n "$js_conn_n" --warmup 10
step js_tp js-throughput node "$top/bench/js/throughput.mjs" --mib "$mib" --runs "$runs"

# ---- c. idle RSS with 100 connections ---------------------------------------
start_node c-idle "$testpeer" --listen /ip4/127.0.0.1/tcp/0 --serve-for 600 --quiet
step c_rss c-idle-rss node "$top/bench/js/idle_rss.mjs" --target "$node_ma" --pid "$node_pid" \
	--conns "$conns" --settle "$settle"
stop_node
mkdir -p "$tmp/state"
start_node daemon-idle "$andht" daemon -s "$tmp/state" --listen /ip4/127.0.0.1/tcp/0 -q
step d_rss daemon-idle-rss node "$top/bench/js/idle_rss.mjs" --target "$node_ma" --pid "$node_pid" \
	--conns "$conns" --settle "$settle"
stop_node
step js_rss js-idle-rss node "$top/bench/js/idle_rss.mjs" --conns "$conns" --settle "$settle"

# ---- results -----------------------------------------------------------------
printf '%-18s %-5s %10s %10s %-8s %9s  %-8s %s\n' measure unit C ref refName ratio target result >"$tmp/table"
report conn_ping ms "$(field medianMs "$c_conn")" "$(field medianMs "$js_conn")" js ref/c 30 \
	"$c_conn" "$js_conn" "median of fresh dial+upgrade+first ping, in-process dialer loop both sides, identify in the background both sides"
report throughput Gbps "$(field gbps "$c_tp")" "$(field gbps "$js_tp")" js c/ref 3 \
	"$c_tp" "$js_tp" "median of $runs runs of $mib MiB on one stream, first write to the receiver's byte count"
report throughput_ceiling Gbps "$(field gbps "$c_tp")" "$(field gbps "$ceil")" ceiling c/ref 0.85 \
	"$c_tp" "$ceil" "ceiling: ChaCha20-Poly1305 65519-byte frames, encrypt -> loopback TCP -> decrypt, sender and receiver processes, the conn read sizes"
report idle_rss MB "$(field rssMB "$c_rss")" "$(field rssMB "$js_rss")" js ref/c 20 \
	"$c_rss" "$js_rss" "VmRSS of an-testpeer vs peer.mjs holding $conns idle connections from bench/js/idle_rss.mjs"
report idle_rss_daemon MB "$(field rssMB "$d_rss")" "$(field rssMB "$js_rss")" js ref/c 20 \
	"$d_rss" "$js_rss" "the same for an-dht daemon (DHT server, routing table, store) vs peer.mjs (no DHT)"
cat "$tmp/table" >&2
[ "$misses" -eq 0 ] || exit 1
exit 0
