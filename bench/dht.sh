#!/usr/bin/env bash
# dht.sh: the DHT benchmarks of issue 4, C and js side by side in one run on
# this machine's loopback, with the ratios the issue sets:
#   resolve_p50 / resolve_p99
#                a get of a signed record in a 100-node C network (an-dht
#                daemons) against js kad-dht get in a 100-node js network
#                (tests/interop/js/dht-net.mjs); ms, target C/js p50 <= 0.5
#   rss_per_node memory per node in those networks: C = sum of the 100
#                daemons' VmRSS / 100; js = sum of the VmRSS of the node
#                processes running the 100 js nodes / 100; target C/js <= 1/20
#   warm_resolve `an-resolve --addrs` through a daemon, for a name it
#                resolved once already, against `dig` asking a local Unbound
#                for a local-zone name; median ms of a process each, target
#                C/dig <= 1 (no slower)
# Like with like: both networks get the same 200 records (signed once with
# an-sign), published the same way (through nodes drawn at random), and the
# same client (bench/js/dht_get.mjs) times every get over the node's Unix
# control socket with the same clock and the same random draw of nodes.
# js nodes run JS_PER_PROC (10) to a process (dht-net.mjs takes at most 64;
# 20 or 50 nodes of one process dialing one node at once time out) plus a one-node seed process,
# each process bootstrapping from the one before; sharing a Node runtime makes a js
# node cheaper than a js node in a process of its own, so the js memory
# figure favours js.  The C daemons are 100 processes.
#
# Output: one JSON line per comparison on stdout, a table on stderr.  Exit 0
# when every target is met, 1 when one is missed, 4 when a step failed.
#
#   PATH with an-dht, an-sign, an-keygen, an-resolve; node (tests/interop/setup).
#   NODES (100), NAMES (200), GETS (200 timed gets a side), DIG_N (100),
#   SETTLE (10 s after publishing).  Unbound and dig: installed with apt-get
#   when missing and running as root, else the warm_resolve row is skipped.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
nodes=${NODES:-100} names=${NAMES:-200} gets=${GETS:-200} dig_n=${DIG_N:-100} settle=${SETTLE:-10}
js_per_proc=${JS_PER_PROC:-10}
deadline=$((SECONDS + 900)) # the whole run

die() { echo "dht.sh: $*" >&2; exit 4; }
say() { echo "dht.sh: $*" >&2; }

for p in an-dht an-sign an-keygen an-resolve jq; do command -v "$p" >/dev/null || die "$p not on PATH"; done
command -v node >/dev/null || die "node not found (tests/interop/setup)"
"$top/tests/interop/setup" >&2 || die "tests/interop/setup failed"
js=$top/tests/interop/js

tmp=$(mktemp -d /tmp/an-bench-dht.XXXXXX)
: >"$tmp/pids"
cleanup() {
	local pid
	while read -r pid; do kill -TERM "$pid" 2>/dev/null; done <"$tmp/pids"
	sleep 0.5
	while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$tmp/pids"
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

# ---- the C network: NODES daemons, five seeds, the rest in batches
# (one node admits at most 64 handshakes at a time); long maintenance
# timers, as in a real deployment, so the measurement is not of a busy box
say "starting $nodes C daemons"
cnet=$tmp/c
mkdir -p "$cnet"
export AN_STATE_DIR=$tmp/nostate
spawn_c() {
	local name=$1
	shift
	an-dht daemon -q -s "$cnet/$name" "$@" >"$cnet/$name.out" 2>"$cnet/$name.out.err" &
	echo $! >"$cnet/$name.pid"
	echo $! >>"$tmp/pids"
}
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
		[ "$SECONDS" -lt "$end" ] || die "n$i did not bootstrap"
		sleep 0.2
	done
	echo "c $cnet/n$i/control.sock"
done >"$tmp/c.targets"

say "publishing $names records in the C network"
# 10 parallel an-dht put, each through its own node, NAMES/10 records each
puts=()
for j in $(seq 0 9); do
	(for ((i = j; i < names; i += 10)); do cat "$tmp/rec/$i.json"; done |
		timeout 300 an-dht put -t 20s -s "$cnet/n$((j * nodes / 10))" >"$tmp/cput.$j" 2>"$tmp/cput.$j.err") &
	puts+=($!)
done
wait "${puts[@]}" # not the daemons
cstored=$(cat "$tmp"/cput.? | jq -s 'map(select(.stored? >= 1)) | length')
[ "$cstored" -eq "$names" ] || say "warning: only $cstored of $names C puts were stored"

# ---- the js network: a one-node seed process, then 50 nodes a process
say "starting $nodes js nodes"
jnet=$tmp/js
mkdir -p "$jnet/keys"
spawn_js() { # NAME NODES [BOOTSTRAP]
	local name=$1 n=$2
	shift 2
	timeout 1000 node "$js/dht-net.mjs" --nodes "$n" --key-dir "$jnet/keys/$name" --socket "$jnet/$name.sock" \
		--serve-for 900 "$@" >"$jnet/$name.out" 2>"$jnet/$name.out.err" &
	echo $! >>"$tmp/pids"
	mkdir -p "$jnet/keys/$name"
}
spawn_js seed 1
wait_for "$jnet/seed.out" '"event":"ready"' 60
jboot=$(jq -r '.nodes[0].addr' "$jnet/seed.out")
jseed=$jboot
# one process after the other, each dialing the first node of the one
# before: all nodes of a process dial at once, and a js node that already
# holds 60 connections lets such dials time out
rest=$((nodes - 1)) p=0
echo "js $jnet/seed.sock 0" >"$tmp/js.targets"
while [ "$rest" -gt 0 ]; do
	n=$((rest < js_per_proc ? rest : js_per_proc))
	# a process whose dials timed out (it exits 4) is started again, at most
	# 3 times, dialing the seed and the node before
	for try in 1 2 3; do
		spawn_js "p$p" "$n" --bootstrap "$jboot" --bootstrap "$jseed"
		end=$((SECONDS + 60))
		until grep -q '"event":"ready"' "$jnet/p$p.out" 2>/dev/null; do
			kill -0 "$(tail -1 "$tmp/pids")" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || break
			sleep 0.1
		done
		grep -q '"event":"ready"' "$jnet/p$p.out" && break
		say "js process p$p (try $try): $(tail -1 "$jnet/p$p.out.err")"
		kill "$(tail -1 "$tmp/pids")" 2>/dev/null
	done
	wait_for "$jnet/p$p.out" '"event":"ready"' 1
	jq -r --arg s "$jnet/p$p.sock" '.nodes | to_entries[] | "js \($s) \(.key)"' "$jnet/p$p.out" >>"$tmp/js.targets"
	jboot=$(jq -r '.nodes[0].addr' "$jnet/p$p.out") # the next process dials this one's first node
	rest=$((rest - n)) p=$((p + 1))
done
# every js node admitted peers into its routing table (identify + ping)
end=$((SECONDS + 120))
for s in "$jnet"/seed.sock "$jnet"/p*.sock; do
	until timeout 130 node "$js/dht-net.mjs" --call "$s" '{"cmd":"status"}' | jq -e 'all(.nodes[]; .rt >= 2)' >/dev/null; do
		[ "$SECONDS" -lt "$end" ] || die "js nodes in $s did not fill their routing tables"
		sleep 1
	done
done

say "publishing $names records in the js network"
timeout 600 node "$top/bench/js/dht_get.mjs" --op put --targets "$tmp/js.targets" --keys "$tmp/keys" \
	--values "$tmp/rec" --parallel 10 --label js >"$tmp/jput" 2>&1 ||
	say "warning: some js puts failed: $(cat "$tmp/jput")"

say "settling ${settle}s"
sleep "$settle"

# ---- resolve latency, both networks, the same client and draw of nodes
say "timing $gets gets a side"
timeout 900 node "$top/bench/js/dht_get.mjs" --targets "$tmp/c.targets" --keys "$tmp/keys" --n "$gets" \
	--label c >"$tmp/cget" 2>&1 || say "warning: some C gets failed"
timeout 900 node "$top/bench/js/dht_get.mjs" --targets "$tmp/js.targets" --keys "$tmp/keys" --n "$gets" \
	--label js >"$tmp/jget" 2>&1 || say "warning: some js gets failed"
cget=$(tail -1 "$tmp/cget")
jget=$(tail -1 "$tmp/jget")
jq -e . >/dev/null <<<"$cget" || die "C gets: $cget"
jq -e . >/dev/null <<<"$jget" || die "js gets: $jget"

# ---- memory per node, after the gets (tables and stores full)
crss=0
for i in $(seq 0 $((nodes - 1))); do crss=$((crss + $(rss_kb "$(cat "$cnet/n$i.pid")"))); done
jrss=0 jprocs=0
for pid in $(pgrep -f "$jnet/" -d ' '); do
	# the node processes themselves, not their timeout(1) parents
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = node ] || continue
	jrss=$((jrss + $(rss_kb "$pid"))) jprocs=$((jprocs + 1))
done

# ---- warm resolve through the daemon against dig on a local Unbound
warm_c='' warm_dig='' warm_note=''
if ! command -v unbound >/dev/null || ! command -v dig >/dev/null; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		say "installing unbound and dnsutils"
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q unbound dnsutils >&2 ||
			say "warning: apt-get install failed"
	fi
fi
if command -v unbound >/dev/null && command -v dig >/dev/null; then
	port=$((20000 + RANDOM % 20000))
	mkdir -p "$tmp/unbound"
	cat >"$tmp/unbound/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $port
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$tmp/unbound"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	local-zone: "bench.test." static
	local-data: "site.bench.test. 3600 IN A 127.0.0.1"
remote-control:
	control-enable: no
EOF
	unbound -d -c "$tmp/unbound/unbound.conf" >"$tmp/unbound.out" 2>&1 &
	echo $! >>"$tmp/pids"
	end=$((SECONDS + 20))
	until [ "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 site.bench.test A 2>/dev/null)" = 127.0.0.1 ]; do
		[ "$SECONDS" -lt "$end" ] || die "unbound did not answer: $(cat "$tmp/unbound.out")"
		sleep 0.2
	done
	# warm: each name once before the clock; every sample is one process
	via=$cnet/n$((nodes / 2))
	an-resolve -t 20s -s "$via" --addrs "$ph@bench0" >/dev/null || say "warning: warm-up resolve failed"
	for _ in $(seq "$dig_n"); do
		t0=$(date +%s%N)
		an-resolve -t 20s -s "$via" --addrs "$ph@bench0" >/dev/null
		echo $((($(date +%s%N) - t0) / 1000))
	done >"$tmp/warm_c"
	for _ in $(seq "$dig_n"); do
		t0=$(date +%s%N)
		dig +short +time=2 +tries=1 -p "$port" @127.0.0.1 site.bench.test A >/dev/null
		echo $((($(date +%s%N) - t0) / 1000))
	done >"$tmp/warm_dig"
	warm_c=$(median <"$tmp/warm_c" | awk '{printf "%.3f", $1 / 1000}')
	warm_dig=$(median <"$tmp/warm_dig" | awk '{printf "%.3f", $1 / 1000}')
else
	warm_note='unbound or dig not available (not root, or apt-get failed): not measured'
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

cp50=$(jq .p50Ms <<<"$cget") jp50=$(jq .p50Ms <<<"$jget")
cp99=$(jq .p99Ms <<<"$cget") jp99=$(jq .p99Ms <<<"$jget")
cmem=$(awk -v s="$crss" -v n="$nodes" 'BEGIN{printf "%.3f", s / n / 1024}')
jmem=$(awk -v s="$jrss" -v n="$nodes" 'BEGIN{printf "%.3f", s / n / 1024}')
printf '%-16s %-6s %10s %10s %-5s %9s %-8s %-8s %s\n' measure unit C ref name ratio target result ratioOf >&2
row resolve_p50 ms "$cp50" "$jp50" js "$(ratio "$cp50" "$jp50")" c/js "<=" 0.5 "$cget" "$jget" \
	"one get over the node's control socket, a random node of $nodes each time, $gets gets a side"
row resolve_p99 ms "$cp99" "$jp99" js "$(ratio "$cp99" "$jp99")" c/js "<=" 1 "$cget" "$jget" \
	"no target in the issue; shown against 1"
row rss_per_node MiB "$cmem" "$jmem" js "$(ratio "$cmem" "$jmem")" c/js "<=" 0.05 \
	"{\"nodes\":$nodes,\"processes\":$nodes,\"vmRssKiBSum\":$crss}" \
	"{\"nodes\":$nodes,\"processes\":$jprocs,\"vmRssKiBSum\":$jrss}" \
	"C: sum of the daemons' VmRSS / $nodes; js: sum of the VmRSS of the $jprocs node processes holding the $nodes js nodes / $nodes"
if [ -n "$warm_c" ]; then
	row warm_resolve ms "$warm_c" "$warm_dig" dig "$(ratio "$warm_c" "$warm_dig")" c/dig "<=" 1 \
		"{\"n\":$dig_n,\"medianMs\":$warm_c,\"cmd\":\"an-resolve --addrs via a daemon\"}" \
		"{\"n\":$dig_n,\"medianMs\":$warm_dig,\"cmd\":\"dig @127.0.0.1 (unbound local-zone)\"}" \
		"median wall time of one process each (fork+exec included on both sides), name resolved once before"
else
	say "warm_resolve: $warm_note"
	rc=1
fi
exit $rc
