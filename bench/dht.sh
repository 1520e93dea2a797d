#!/usr/bin/env bash
# dht.sh: the DHT benchmarks of issue 4, C and js side by side in one run on
# this machine's loopback, with the ratios the issue sets:
#   resolve_p50 / resolve_p99
#                a get of a signed record in a 100-node C network (an-dht
#                daemons) against js kad-dht get in a 100-node js network
#                (tests/interop/js/dht-net.mjs); ms, target C/js p50 <= 0.5
#   rss_per_node memory per node in those networks, each node a process of
#                its own on both sides (as deployed): sum of the VmRSS of the
#                100 node processes / 100; target C/js <= 1/20
#   warm_resolve `an-resolve --addrs` through a daemon, for a name it
#                resolved once already, against `dig` asking a local Unbound
#                for a local-zone name; median ms of a process each, target
#                C/dig <= 1 (no slower)
# Like with like: both networks get the same records (signed once with
# an-sign), published the same way (through nodes drawn at random, PUB_PAR
# at a time, the same per-put deadline), and the same client
# (bench/js/dht_get.mjs) times every put and get over the node's Unix control
# socket with the same clock and the same seeded draw of nodes.  The two
# networks run one after the other, so each has the machine to itself: the C
# network is measured and stopped before the js one starts.
#
# Output: one JSON line per comparison on stdout, a table and progress on
# stderr.  Exit 0 when every target is met, 1 when one is missed, 4 when a
# step failed.  The whole run has a deadline (DEADLINE, 1140 s) and every
# process it starts is killed on exit.  Run it under the heavy-run lock:
#   flock /tmp/an-heavy.lock bench/dht.sh
#
#   PATH with an-dht, an-sign, an-keygen, an-resolve; node (tests/interop/setup);
#   jq; unbound and dig (tools/install-deps bench) for the warm_resolve row.
#   NODES (100), NAMES (200), GETS (200 timed gets a side), DIG_N (100 runs a
#   side), SETTLE (10 s after publishing), PUB_PAR (10 puts at a time),
#   PUT_MS (20000, the deadline of one put), GET_MS (20000), JS_BATCH (10 js
#   node processes started at a time), SIDES ("c js"; "c" alone skips the js
#   network and the ratios that need it), MEM_SETTLE (35 s idle after the
#   gets before memory is read, on both sides: past the daemon's 30 s heap
#   trim and a few js GC cycles), JS_CONN_MONITOR (0; 1 keeps
#   js-libp2p's connection monitor on, see below).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
nodes=${NODES:-100} names=${NAMES:-200} gets=${GETS:-200} dig_n=${DIG_N:-100} settle=${SETTLE:-10}
mem_settle=${MEM_SETTLE:-35}
pub_par=${PUB_PAR:-10} put_ms=${PUT_MS:-20000} get_ms=${GET_MS:-20000} js_batch=${JS_BATCH:-10}
sides=${SIDES:-c js}
deadline=$((SECONDS + ${DEADLINE:-1140})) # the whole run

die() { echo "dht.sh: $*" >&2; exit 4; }
say() { echo "dht.sh: [$SECONDS s] $*" >&2; }
left() { echo $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)); } # seconds to the deadline

for p in an-dht an-sign an-keygen an-resolve jq; do command -v "$p" >/dev/null || die "$p not on PATH"; done
command -v node >/dev/null || die "node not found (tests/interop/setup)"
"$top/tests/interop/setup" >&2 || die "tests/interop/setup failed"
js=$top/tests/interop/js
client=$top/bench/js/dht_get.mjs

tmp=$(mktemp -d /tmp/an-bench-dht.XXXXXX)
: >"$tmp/pids"
# stop_all FILE: TERM, a grace period, then KILL for every pid in FILE
stop_all() {
	local pid
	while read -r pid; do kill -TERM "$pid" 2>/dev/null; done <"$1"
	for _ in $(seq 30); do
		pid=''
		while read -r pid; do kill -0 "$pid" 2>/dev/null && break; pid=''; done <"$1"
		[ -z "$pid" ] && break
		sleep 0.1
	done
	while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$1"
}
cleanup() {
	stop_all "$tmp/pids"
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 4' INT TERM HUP

# wait_for FILE ERE SECONDS
wait_for() {
	local f=$1 re=$2 end=$((SECONDS + $3))
	until grep -qE -- "$re" "$f" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] && [ "$SECONDS" -lt "$deadline" ] || { cat "$f" "$f.err" >&2 2>/dev/null; die "timed out waiting for /$re/ in $f"; }
		sleep 0.05
	done
}

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
p99() { sort -n | awk '{a[NR]=$1} END{i=int(NR*0.99+0.999); if(i<1)i=1; print a[i]}'; }
# us_of CMD...: wall time of one process in microseconds (no fork for the clock)
us_of() {
	local t0=${EPOCHREALTIME/./}
	"$@" >/dev/null 2>&1
	echo $((${EPOCHREALTIME/./} - t0))
}
# sample N FILE CMD...: N samples of us_of CMD into FILE
sample() {
	local n=$1 f=$2
	shift 2
	for _ in $(seq "$n"); do us_of "$@"; done >"$f"
}
ms_median() { median <"$1" | awk '{printf "%.3f", $1 / 1000}'; }
ms_p99() { p99 <"$1" | awk '{printf "%.3f", $1 / 1000}'; }

# mem_json NAME PIDFILE...: {"processes","vmRssKiBSum","pssKiBSum","anonKiBSum"}
# over the given processes; and, with NAME=c, where a daemon's RSS lives
# (sums over all daemons of smaps Rss by mapping kind)
mem_json() {
	local name=$1 rss=0 pss=0 anon=0 procs=0 pid
	shift
	for pid in $(cat "$@"); do
		[ -r "/proc/$pid/smaps_rollup" ] || continue
		rss=$((rss + $(rss_kb "$pid")))
		pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")))
		anon=$((anon + $(awk '/^RssAnon/{print $2}' "/proc/$pid/status")))
		procs=$((procs + 1))
		[ "$name" = c ] && awk '
			/^[0-9a-f]+-[0-9a-f]+ / {
				n = $6
				if (n == "") k = "anon"
				else if (n == "[heap]") k = "heap"
				else if (n ~ /\.mdb$/) k = "lmdb"
				else if (n ~ /an-dht$/) k = "binary"
				else if (n ~ /libsodium/) k = "libsodium"
				else if (n ~ /libc\.so/) k = "libc"
				else if (n ~ /\.so/) k = "otherLibs"
				else if (n == "[stack]") k = "stack"
				else k = "other"
			}
			/^Rss:/ { print k, $2 }' "/proc/$pid/smaps"
	done >"$tmp/mem.$name"
	awk -v r="$rss" -v p="$pss" -v a="$anon" -v n="$procs" '
		{ s[$1] += $2 }
		END {
			printf "{\"processes\":%d,\"vmRssKiBSum\":%d,\"pssKiBSum\":%d,\"anonKiBSum\":%d", n, r, p, a
			if (length(s)) {
				printf ",\"rssKiBByMapping\":{"; c = ""
				for (k in s) { printf "%s\"%s\":%d", c, k, s[k]; c = "," }
				printf "}"
			}
			print "}"
		}' "$tmp/mem.$name"
}

# ---- the records: one publisher, NAMES root records
say "signing $names records"
an-keygen -k "$tmp/site.key" >"$tmp/site.id" || die "an-keygen failed"
ph=$(jq -r .peerHash "$tmp/site.id")
mkdir -p "$tmp/rec"
for i in $(seq 0 $((names - 1))); do
	an-sign -k "$tmp/site.key" --name "bench$i" --type root --addr /ip4/127.0.0.1/tcp/4001 >"$tmp/rec/$i.json" ||
		die "an-sign failed"
	echo "/an/$ph@bench$i"
done >"$tmp/keys"

# publish_and_get SIDE TARGETS: PUB_PAR parallel puts of every record, a
# settle time, GETS timed gets; leaves $tmp/SIDE.put and $tmp/SIDE.get
publish_and_get() {
	local side=$1 targets=$2
	say "publishing $names records in the $side network, $pub_par at a time"
	timeout "$(left)" node "$client" --op put --targets "$targets" --keys "$tmp/keys" --values "$tmp/rec" \
		--parallel "$pub_par" --timeout-ms "$put_ms" --label "$side" >"$tmp/$side.put" 2>"$tmp/$side.put.err"
	jq -e . "$tmp/$side.put" >/dev/null 2>&1 || die "$side puts: $(cat "$tmp/$side.put" "$tmp/$side.put.err")"
	say "$side puts: $(cat "$tmp/$side.put")"
	say "settling ${settle}s"
	sleep "$settle"
	say "timing $gets gets in the $side network"
	timeout "$(left)" node "$client" --targets "$targets" --keys "$tmp/keys" --n "$gets" --timeout-ms "$get_ms" \
		--label "$side" >"$tmp/$side.get" 2>"$tmp/$side.get.err"
	jq -e . "$tmp/$side.get" >/dev/null 2>&1 || die "$side gets: $(cat "$tmp/$side.get" "$tmp/$side.get.err")"
	say "$side gets: $(cat "$tmp/$side.get")"
}

# ---- the C network: NODES daemons, five seeds, the rest in batches
# (one node admits at most 64 handshakes at a time); long maintenance
# timers, as in a real deployment, so the measurement is not of a busy box
cnet=$tmp/c
mkdir -p "$cnet"
export AN_STATE_DIR=$tmp/nostate
: >"$tmp/c.pids"
spawn_c() {
	local name=$1
	shift
	an-dht daemon -q -s "$cnet/$name" "$@" >"$cnet/$name.out" 2>"$cnet/$name.out.err" &
	echo $! >"$cnet/$name.pid"
	echo $! >>"$tmp/pids"
	echo $! >>"$tmp/c.pids"
}
if [[ " $sides " == *" c "* ]]; then
	say "starting $nodes C daemons"
	spawn_c n0
	wait_for "$cnet/n0.out" '"event":"ready"' 20
	boot0=$(jq -r '.addrs[0]' "$cnet/n0.out")
	for i in 1 2 3 4; do spawn_c "n$i" --bootstrap "$boot0"; done
	for i in 1 2 3 4; do wait_for "$cnet/n$i.out" '"event":"ready"' 20; done
	seeds=()
	for i in 0 1 2 3 4; do seeds+=(--bootstrap "$(jq -r '.addrs[0]' "$cnet/n$i.out")"); done
	for ((b = 5; b < nodes; b += 24)); do
		for ((i = b; i < b + 24 && i < nodes; i++)); do spawn_c "n$i" "${seeds[@]}"; done
		for ((i = b; i < b + 24 && i < nodes; i++)); do wait_for "$cnet/n$i.out" '"event":"ready"' 20; done
	done
	for i in $(seq 0 $((nodes - 1))); do
		end=$((SECONDS + 60))
		until [ "$(timeout 10 an-dht peers -t 5s -s "$cnet/n$i" | wc -l)" -ge 2 ]; do
			[ "$SECONDS" -lt "$end" ] && [ "$SECONDS" -lt "$deadline" ] || die "n$i did not bootstrap"
			sleep 0.2
		done
		echo "c $cnet/n$i/control.sock"
	done >"$tmp/c.targets"
	say "C network up"
	publish_and_get c "$tmp/c.targets"
	say "idle ${mem_settle}s before reading memory"
	sleep "$mem_settle"
	mem_json c "$tmp/c.pids" >"$tmp/c.mem"
	say "C memory: $(cat "$tmp/c.mem")"
fi

# ---- warm resolve through a daemon of the C network against dig on a
# private Unbound that answers from one local zone and refuses the rest
warm_ok=''
if [[ " $sides " == *" c "* ]] && command -v unbound >/dev/null && command -v dig >/dev/null; then
	mkdir -p "$tmp/unbound"
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 20000))
		# no recursion at all: "." refuse makes every name outside the
		# local zone an immediate REFUSED from local data, so the
		# iterator (and its built-in root hints) never sends a packet
		cat >"$tmp/unbound/unbound.conf" <<-EOF
			server:
			  interface: 127.0.0.1
			  port: $port
			  do-ip6: no
			  do-daemonize: no
			  num-threads: 1
			  username: ""
			  chroot: ""
			  directory: "$tmp/unbound"
			  pidfile: ""
			  use-syslog: no
			  logfile: ""
			  verbosity: 0
			  access-control: 127.0.0.0/8 allow
			  module-config: "iterator"
			  local-zone: "." refuse
			  local-zone: "bench.test." static
			  local-data: "site.bench.test. 3600 IN A 127.0.0.1"
			remote-control:
			  control-enable: no
		EOF
		unbound-checkconf "$tmp/unbound/unbound.conf" >&2 || die "unbound-checkconf refused the config"
		unbound -d -c "$tmp/unbound/unbound.conf" >"$tmp/unbound.out" 2>&1 &
		ubpid=$!
		echo $ubpid >>"$tmp/pids"
		end=$((SECONDS + 10))
		until [ "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 site.bench.test A 2>/dev/null)" = 127.0.0.1 ]; do
			kill -0 $ubpid 2>/dev/null && [ "$SECONDS" -lt "$end" ] || break
			sleep 0.2
		done
		kill -0 $ubpid 2>/dev/null && break # else the port was taken: another one
	done
	kill -0 $ubpid 2>/dev/null || die "unbound did not start: $(cat "$tmp/unbound.out")"
	dig +time=2 +tries=1 -p "$port" @127.0.0.1 example.com A | grep -q 'status: REFUSED' ||
		die "unbound answers names outside its local zone (it must not recurse)"
	via=$cnet/n$((nodes / 2))
	name=$ph@bench0
	an-resolve -t 20s -s "$via" --addrs "$name" >/dev/null || die "warm-up resolve of $name failed"
	dig +short +time=2 +tries=1 -p "$port" @127.0.0.1 site.bench.test A >/dev/null
	say "timing $dig_n an-resolve and $dig_n dig processes, interleaved by tens"
	: >"$tmp/warm_c"
	: >"$tmp/warm_dig"
	for ((r = 0; r < dig_n; r += 10)); do
		sample 10 "$tmp/w" an-resolve -t 20s -s "$via" --addrs "$name"
		cat "$tmp/w" >>"$tmp/warm_c"
		sample 10 "$tmp/w" dig +short +time=2 +tries=1 -p "$port" @127.0.0.1 site.bench.test A
		cat "$tmp/w" >>"$tmp/warm_dig"
	done
	# where an-resolve's time goes: process start and exit alone (--help),
	# the daemon's answer over its control socket timed inside one client
	# process (no process start), and an-dht get, the same request as a process
	sample "$dig_n" "$tmp/w_help" an-resolve --help
	sample "$dig_n" "$tmp/w_dighelp" dig -v
	sample "$dig_n" "$tmp/w_dhtget" an-dht get -t 20s -s "$via" "/an/$name"
	echo "c $via/control.sock" >"$tmp/via.targets"
	echo "/an/$name" >"$tmp/via.keys"
	timeout "$(left)" node "$client" --targets "$tmp/via.targets" --keys "$tmp/via.keys" --n "$dig_n" \
		--timeout-ms 20000 --label via >"$tmp/w_sock" 2>&1 || say "warning: control-socket gets failed: $(cat "$tmp/w_sock")"
	warm_ok=1
elif [[ " $sides " == *" c "* ]]; then
	say "warm_resolve: unbound or dig missing (tools/install-deps bench): not measured"
fi

if [[ " $sides " == *" c "* ]]; then
	say "stopping the C network"
	stop_all "$tmp/c.pids"
fi

# ---- the js network: one node a process, as js-libp2p nodes are deployed;
# a seed, then JS_BATCH processes at a time, each dialing the seed and one
# node of an earlier batch (every node of a batch dialing one busy node at
# once makes js dials time out).  js-libp2p's connection monitor is off
# (JS_CONN_MONITOR=1 keeps it): it opens a /ipfs/ping/1.0.0 stream on every
# connection every 10 s, which in a full mesh of 100 nodes is ~1000 ping
# streams a second and saturates two cores by itself (20 idle js nodes: 37%
# of a core with it, 4% without), so js nodes would time out their own
# dials.  Both sides keep yamux keep-alive pings (30 s, no stream); the C
# host has no per-connection ping stream either.
jnet=$tmp/js
mkdir -p "$jnet/keys"
: >"$tmp/js.pids"
: >"$tmp/js.targets"
js_opts=(--dial-timeout 60)
[ "${JS_CONN_MONITOR:-0}" = 1 ] || js_opts+=(--no-conn-monitor)
spawn_js() { # INDEX [BOOTSTRAP]...
	local i=$1
	shift
	timeout "$(left)" node "$js/dht-net.mjs" --nodes 1 --first "$i" --key-dir "$jnet/keys" --socket "$jnet/j$i.sock" \
		--serve-for "$(left)" "${js_opts[@]}" "$@" >"$jnet/j$i.out" 2>"$jnet/j$i.out.err" &
	echo $! >"$jnet/j$i.tpid" # timeout(1); the node process is its child
	echo $! >>"$tmp/pids"
}
js_ready() { grep -q '"event":"ready"' "$jnet/j$1.out" 2>/dev/null; }
if [[ " $sides " == *" js "* ]]; then
	say "starting $nodes js nodes, one a process, $js_batch at a time"
	spawn_js 0
	wait_for "$jnet/j0.out" '"event":"ready"' 60
	jseed=$(jq -r '.nodes[0].addr' "$jnet/j0.out")
	for ((b = 1; b < nodes; b += js_batch)); do
		hi=$((b + js_batch < nodes ? b + js_batch : nodes))
		for try in 1 2 3; do
			for ((i = b; i < hi; i++)); do
				js_ready "$i" && continue
				other=$(jq -r '.nodes[0].addr' "$jnet/j$((RANDOM % b)).out")
				spawn_js "$i" --bootstrap "$jseed" --bootstrap "$other"
			done
			end=$((SECONDS + 60))
			for ((i = b; i < hi; i++)); do
				until js_ready "$i"; do
					kill -0 "$(cat "$jnet/j$i.tpid")" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || break
					sleep 0.1
				done
			done
			missing=0
			for ((i = b; i < hi; i++)); do
				js_ready "$i" && continue
				missing=$((missing + 1))
				say "js node $i (try $try): $(tail -1 "$jnet/j$i.out.err")"
				kill "$(cat "$jnet/j$i.tpid")" 2>/dev/null
			done
			[ "$missing" -eq 0 ] && break
		done
		[ "$missing" -eq 0 ] || die "js nodes $b..$((hi - 1)) did not start"
	done
	for ((i = 0; i < nodes; i++)); do
		echo "js $jnet/j$i.sock 0" >>"$tmp/js.targets"
		pgrep -P "$(cat "$jnet/j$i.tpid")" >>"$tmp/js.pids" # the node process under timeout(1)
	done
	# every js node admitted peers into its routing table (identify + ping)
	end=$((SECONDS + 120))
	for ((i = 0; i < nodes; i++)); do
		until timeout 130 node "$js/dht-net.mjs" --call "$jnet/j$i.sock" '{"cmd":"status"}' |
			jq -e 'all(.nodes[]; .rt >= 2)' >/dev/null; do
			[ "$SECONDS" -lt "$end" ] && [ "$SECONDS" -lt "$deadline" ] || die "js node $i did not fill its routing table"
			sleep 1
		done
	done
	say "js network up"
	publish_and_get js "$tmp/js.targets"
	say "idle ${mem_settle}s before reading memory"
	sleep "$mem_settle"
	mem_json js "$tmp/js.pids" >"$tmp/js.mem"
	say "js memory: $(cat "$tmp/js.mem")"
	say "stopping the js network"
	stop_all "$tmp/js.pids"
fi

# ---- the table
rc=0
row() { # measure unit c ref refName ratio ratioOf op target cDetail refDetail note
	local result
	if awk -v r="$6" -v t="$9" -v op="$8" 'BEGIN{exit !((op == "<=") ? r <= t : r >= t)}'; then result=PASS; else result=MISS; rc=1; fi
	jq -nc --arg m "$1" --arg u "$2" --argjson c "$3" --argjson ref "$4" --arg rn "$5" --argjson ratio "$6" \
		--arg of "$7" --arg op "$8" --argjson t "$9" --arg res "$result" --argjson cd "${10}" --argjson rd "${11}" \
		--arg note "${12}" \
		'{bench:"dht",measure:$m,unit:$u,c:$c,($rn):$ref,ratio:$ratio,ratioOf:$of,target:"\($op) \($t)",result:$res,cDetail:$cd,($rn + "Detail"):$rd,note:$note}'
	printf '%-16s %-6s %10s %10s %-5s %9s %-8s %-8s %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$8 $9" "$result" "$7" >&2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", (b > 0) ? a / b : 0}'; }
printf '%-16s %-6s %10s %10s %-5s %9s %-8s %-8s %s\n' measure unit C ref name ratio target result ratioOf >&2

if [[ " $sides " == *" c "* && " $sides " == *" js "* ]]; then
	cget=$(jq -c --argjson put "$(cat "$tmp/c.put")" '. + {publish: $put}' "$tmp/c.get")
	jget=$(jq -c --argjson put "$(cat "$tmp/js.put")" '. + {publish: $put}' "$tmp/js.get")
	cp50=$(jq .p50Ms "$tmp/c.get") jp50=$(jq .p50Ms "$tmp/js.get")
	cp99=$(jq .p99Ms "$tmp/c.get") jp99=$(jq .p99Ms "$tmp/js.get")
	row resolve_p50 ms "$cp50" "$jp50" js "$(ratio "$cp50" "$jp50")" c/js "<=" 0.5 "$cget" "$jget" \
		"one get over the node's control socket, a random node of $nodes each time, $gets gets a side; a failed get is counted in failed, not in the latencies"
	row resolve_p99 ms "$cp99" "$jp99" js "$(ratio "$cp99" "$jp99")" c/js "<=" 1 "$cget" "$jget" \
		"no target in the issue; shown against 1"
	cmem=$(jq '.vmRssKiBSum / .processes / 1024 * 1000 | round / 1000' "$tmp/c.mem")
	jmem=$(jq '.vmRssKiBSum / .processes / 1024 * 1000 | round / 1000' "$tmp/js.mem")
	row rss_per_node MiB "$cmem" "$jmem" js "$(ratio "$cmem" "$jmem")" c/js "<=" 0.05 \
		"$(cat "$tmp/c.mem")" "$(cat "$tmp/js.mem")" \
		"sum of the VmRSS of the $nodes node processes / $nodes, ${mem_settle}s after publishing and the gets; one node a process on both sides"
elif [[ " $sides " == *" c "* ]]; then
	say "SIDES=$sides: no js network, no resolve or memory ratios"
fi
if [ -n "$warm_ok" ]; then
	warm_c=$(ms_median "$tmp/warm_c") warm_dig=$(ms_median "$tmp/warm_dig")
	cdetail=$(jq -nc --argjson n "$dig_n" --argjson med "$warm_c" --argjson p99 "$(ms_p99 "$tmp/warm_c")" \
		--argjson help "$(ms_median "$tmp/w_help")" --argjson get "$(ms_median "$tmp/w_dhtget")" \
		--argjson sock "$(jq -c . "$tmp/w_sock" 2>/dev/null || echo null)" \
		'{n:$n,medianMs:$med,p99Ms:$p99,cmd:"an-resolve --addrs NAME via a daemon",
		  startExitMedianMs:$help,startExitCmd:"an-resolve --help",
		  anDhtGetMedianMs:$get,anDhtGetCmd:"an-dht get KEY via the same daemon",
		  controlSocketGet:$sock}')
	ddetail=$(jq -nc --argjson n "$dig_n" --argjson med "$warm_dig" --argjson p99 "$(ms_p99 "$tmp/warm_dig")" \
		--argjson help "$(ms_median "$tmp/w_dighelp")" \
		'{n:$n,medianMs:$med,p99Ms:$p99,cmd:"dig @127.0.0.1 -p PORT (unbound, local-zone, refuses the rest)",
		  startExitMedianMs:$help,startExitCmd:"dig -v"}')
	row warm_resolve ms "$warm_c" "$warm_dig" dig "$(ratio "$warm_c" "$warm_dig")" c/dig "<=" 1 "$cdetail" "$ddetail" \
		"median wall time of one process each (fork+exec included on both sides), name resolved once before, runs interleaved by tens"
elif [[ " $sides " == *" c "* ]]; then
	rc=1
fi
exit $rc
