#!/usr/bin/env bash
# route.sh: the content benchmarks of issue 5, measured side by side in one
# run on this machine's loopback:
#   throughput   an-dial fetching a SIZE_MB (256) MiB file from an-serve,
#                resolving the name through a warm daemon, against curl
#                fetching the same file from nginx (sendfile on); both write
#                to /dev/null; best of RUNS (3) each.  Target an-dial/curl
#                >= 0.5.  Printed beside it: the ChaCha20-Poly1305 + loopback
#                TCP ceiling (bench/ceiling, when AN_BENCH_BIN has it), the
#                most any Noise transport can carry here, since curl+nginx
#                move plaintext with sendfile.  Beside them, load-robust
#                evidence of where the time goes: the CPU seconds (user+sys)
#                of an-serve and of an-dial for one fetch (the fewest of the
#                runs), and - when AN_BENCH_BIN has throughput and an-testpeer
#                is found - the C-C transport alone (bench/throughput.c into
#                an-testpeer's discard protocol, same size and runs) with its
#                two sides' CPU seconds, and the ceiling's (both threads).
#                A shared machine's load halves wall-clock figures; CPU
#                seconds a fetch barely move with it.
#   concurrent   CONC (200) fetches of a 64 KiB page at once, from one client
#                (one an-dial gateway with CONC parallel curl transfers
#                through it) and from CLIENTS (20) clients (20 gateways,
#                CONC/CLIENTS each); errors and latency p50/p99 of every
#                fetch (curl's time_total).  Target: no errors.
#
# Output: one JSON line per comparison on stdout, a table on stderr.  Exit 0
# when every target is met, 1 when one is missed, 4 when a step failed.
#
#   PATH with an-keygen, an-dht, an-serve, an-dial; nginx and curl installed
#   (tools/install-deps bench); AN_BENCH_BIN with ceiling and throughput
#   (optional), AN_TESTPEER (default: next to an-dht, ../tests/tools/an-testpeer).
set -u
size_mb=${SIZE_MB:-256} runs=${RUNS:-3} conc=${CONC:-200} clients=${CLIENTS:-20}
deadline=$((SECONDS + 600))

die() { echo "route.sh: $*" >&2; exit 4; }
say() { echo "route.sh: $*" >&2; }
for p in an-keygen an-dht an-serve an-dial curl nginx python3 jq; do
	command -v "$p" >/dev/null || die "$p not found (PATH, or tools/install-deps bench)"
done

tmp=$(mktemp -d /tmp/an-bench-route.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for FILE REGEX SECONDS
wait_for() {
	local end=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$end" ]; do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
now() { date +%s.%N; }
# pct P: the P-th percentile of the numbers on stdin (nearest rank)
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }
best() { sort -n | tail -1; }

# The site: one big file, one page.
mkdir -p "$tmp/www"
head -c $((size_mb << 20)) /dev/urandom >"$tmp/www/big.bin" || die "cannot write $size_mb MiB in $tmp"
head -c 65536 /dev/urandom >"$tmp/www/page.bin"
chmod -R a+rX "$tmp/www"

# nginx on a free port, everything inside $tmp.
nport=$(free_port)
mkdir -p "$tmp/ngx"
cat >"$tmp/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	client_body_temp_path $tmp/ngx/body;
	proxy_temp_path $tmp/ngx/proxy;
	fastcgi_temp_path $tmp/ngx/fastcgi;
	uwsgi_temp_path $tmp/ngx/uwsgi;
	scgi_temp_path $tmp/ngx/scgi;
	server { listen 127.0.0.1:$nport; root $tmp/www; }
}
EOF
nginx -p "$tmp/ngx" -c "$tmp/nginx.conf" 2>"$tmp/nginx.start" || die "nginx: $(cat "$tmp/nginx.start")"
curl -sf -o /dev/null "http://127.0.0.1:$nport/page.bin" || die "nginx does not answer on $nport"

# A private DHT of two daemons; the server publishes through the seed, the
# client resolves through the other (warm) daemon.
an-dht daemon -q -s "$tmp/seed" >"$tmp/seed.out" 2>"$tmp/seed.err" &
pids+=($!)
wait_for "$tmp/seed.out" '"event":"ready"' 10 || die "seed daemon did not start: $(cat "$tmp/seed.err")"
boot=$(jq -r '.addrs[0]' "$tmp/seed.out")
an-dht daemon -q -s "$tmp/client" --bootstrap "$boot" >"$tmp/client.out" 2>"$tmp/client.err" &
pids+=($!)
wait_for "$tmp/client.out" '"event":"ready"' 10 || die "client daemon did not start: $(cat "$tmp/client.err")"
an-keygen -k "$tmp/site.key" >/dev/null || die "an-keygen failed"
an-serve -q -k "$tmp/site.key" --name bench.site -s "$tmp/serve" --bootstrap "$boot" "$tmp/www" \
	>"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
wait_for "$tmp/serve.out" '"peerHash"' 20 || die "an-serve did not start: $(cat "$tmp/serve.err")"
serve_pid=${pids[-1]}
url="an://$(jq -r .peerHash "$tmp/serve.out")@bench.site"
dial() { an-dial -s --state-dir "$tmp/client" "$@"; }
# Warm: the first fetch resolves (and pins) the name through the daemon.
dial -o /dev/null "$url/page.bin" || die "an-dial $url/page.bin failed"

# --- throughput
bytes=$((size_mb << 20))
tck=$(getconf CLK_TCK)
# cpu_of PID: user+sys clock ticks of a running process
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# timed CMD...: run CMD, its user+sys CPU seconds into $tmp/cpu (bash's time)
timed() {
	local TIMEFORMAT='%3U %3S' rc
	{ time "$@" 2>"$tmp/timed.err"; } 2>"$tmp/time.out"
	rc=$?
	awk '{ print $1 + $2 }' "$tmp/time.out" >"$tmp/cpu"
	cat "$tmp/timed.err" >&2
	return $rc
}
curl_bps=() dial_bps=() serve_cpu=() dial_cpu=()
for _ in $(seq "$runs"); do
	[ "$SECONDS" -lt "$deadline" ] || die "out of time"
	t=$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$nport/big.bin") || die "curl failed"
	curl_bps+=("$(awk -v b="$bytes" -v t="$t" 'BEGIN { printf "%.0f", b * 8 / t }')")
	c0=$(cpu_of "$serve_pid")
	t0=$(now)
	timed an-dial -s --state-dir "$tmp/client" -o /dev/null "$url/big.bin" || die "an-dial $url/big.bin failed"
	t1=$(now)
	c1=$(cpu_of "$serve_pid")
	dial_bps+=("$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b * 8 / (z - a) }')")
	dial_cpu+=("$(cat "$tmp/cpu")")
	serve_cpu+=("$(awk -v a="$c0" -v z="$c1" -v t="$tck" 'BEGIN { printf "%.3f", (z - a) / t }')")
done
# Same bytes: the checksum of one an-dial fetch against the file.
[ "$(dial "$url/big.bin" | sha256sum)" = "$(sha256sum <"$tmp/www/big.bin")" ] ||
	die "an-dial delivered other bytes than the file"
cb=$(printf '%s\n' "${curl_bps[@]}" | best)
db=$(printf '%s\n' "${dial_bps[@]}" | best)
scpu=$(printf '%s\n' "${serve_cpu[@]}" | sort -n | head -1)
dcpu=$(printf '%s\n' "${dial_cpu[@]}" | sort -n | head -1)
ceil=0 ceil_cpu=0
if [ -x "${AN_BENCH_BIN:-}/ceiling" ]; then
	timed "$AN_BENCH_BIN/ceiling" --mib "$size_mb" --runs 1 >/dev/null || die "ceiling failed"
	ceil_cpu=$(cat "$tmp/cpu")
	ceil=$("$AN_BENCH_BIN/ceiling" --mib "$size_mb" --runs "$runs" | sed -E 's/.*"gbpsBest":([0-9.]+).*/\1/')
fi
# The C-C transport alone: the same bytes over one Noise+yamux stream, no
# route layer, no files (throughput sends a fixed block into a discard).
tp=0 tp_cpu=0
testpeer=${AN_TESTPEER:-$(dirname "$(command -v an-dht)")/../tests/tools/an-testpeer}
if [ -x "${AN_BENCH_BIN:-}/throughput" ] && [ -x "$testpeer" ]; then
	"$testpeer" --listen /ip4/127.0.0.1/tcp/0 --serve-for 600 --quiet >"$tmp/tp.out" 2>"$tmp/tp.err" &
	pids+=($!)
	tp_pid=$!
	wait_for "$tmp/tp.out" '"addrs"' 10 || die "an-testpeer did not start: $(cat "$tmp/tp.err")"
	tp_ma=$(jq -r '.addrs[0]' "$tmp/tp.out")
	tp_cpu=999
	for _ in $(seq "$runs"); do
		c0=$(cpu_of "$tp_pid")
		timed "$AN_BENCH_BIN/throughput" --target "$tp_ma" --mib "$size_mb" --runs 1 >"$tmp/tp.json" ||
			die "throughput failed"
		c1=$(cpu_of "$tp_pid")
		g=$(sed -E 's/.*"gbpsBest":([0-9.]+).*/\1/' "$tmp/tp.json")
		tp=$(awk -v a="$tp" -v g="$g" 'BEGIN { print (g > a ? g : a) }')
		tp_cpu=$(awk -v m="$tp_cpu" -v s="$(cat "$tmp/cpu")" -v a="$c0" -v z="$c1" -v t="$tck" \
			'BEGIN { c = s + (z - a) / t; printf "%.3f", (c < m ? c : m) }')
	done
fi
status=0
awk -v c="$cb" -v d="$db" -v g="$ceil" -v mb="$size_mb" -v runs="$runs" -v sc="$scpu" -v dc="$dcpu" \
	-v gc="$ceil_cpu" -v tp="$tp" -v tc="$tp_cpu" 'BEGIN {
	r = d / c
	printf "{\"bench\":\"route_throughput\",\"size_mib\":%d,\"runs\":%d,\"curl_nginx_bps\":%.0f,\"an_dial_bps\":%.0f,\"ratio\":%.3f,\"target\":0.5", mb, runs, c, d, r
	printf ",\"serve_cpu_s\":%.3f,\"dial_cpu_s\":%.3f", sc, dc
	if (g > 0) printf ",\"ceiling_bps\":%.0f,\"ceiling_ratio\":%.3f,\"ceiling_cpu_s\":%.3f", g * 1e9, d / (g * 1e9), gc
	if (tp > 0) printf ",\"transport_bps\":%.0f,\"transport_cpu_s\":%.3f", tp * 1e9, tc
	printf "}\n"
	printf "throughput  curl+nginx %6.2f Gbit/s  an-dial+an-serve %6.2f Gbit/s  ratio %.2f (target >= 0.5)\n", c / 1e9, d / 1e9, r > "/dev/stderr"
	printf "            cpu a fetch: an-serve %.2f s + an-dial %.2f s = %.2f s\n", sc, dc, sc + dc > "/dev/stderr"
	if (tp > 0) printf "            C-C transport alone %6.2f Gbit/s, cpu %.2f s (both sides)\n", tp, tc > "/dev/stderr"
	if (g > 0) printf "            ChaCha20-Poly1305+TCP ceiling %6.2f Gbit/s, cpu %.2f s (both threads): an-dial at %.2f of it\n", g, gc, d / (g * 1e9) > "/dev/stderr"
	exit (r >= 0.5 ? 0 : 1) }' || status=1

# --- concurrency through gateways
# run_clients N: N gateways, conc/N parallel curl fetches through each, all at once.
run_clients() {
	local n=$1 per=$((conc / $1)) i gp
	local -a gpids=() cpids=()
	: >"$tmp/times.$n"
	for i in $(seq "$n"); do
		gp=$(free_port)
		an-dial --gateway "127.0.0.1:$gp" --state-dir "$tmp/client" >/dev/null 2>"$tmp/gw.$n.$i.err" &
		gpids+=($!)
		echo "$gp" >"$tmp/gw.$n.$i.port"
	done
	for i in $(seq "$n"); do
		gp=$(cat "$tmp/gw.$n.$i.port")
		local end=$((SECONDS + 10))
		until curl -s -o /dev/null "http://127.0.0.1:$gp/"; do
			[ "$SECONDS" -lt "$end" ] || die "gateway $i did not start: $(cat "$tmp/gw.$n.$i.err")"
			sleep 0.05
		done
		# warm each gateway's resolution and connection
		curl -sf -o /dev/null "http://127.0.0.1:$gp/an/${url#an://}/page.bin" || die "gateway $i cannot fetch"
	done
	for i in $(seq "$n"); do
		gp=$(cat "$tmp/gw.$n.$i.port")
		{
			for _ in $(seq "$per"); do echo "url = \"http://127.0.0.1:$gp/an/${url#an://}/page.bin\""; echo "output = /dev/null"; done
		} >"$tmp/curl.$n.$i"
		curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$per" \
			-K "$tmp/curl.$n.$i" -w '%{http_code} %{time_total}\n' >>"$tmp/times.$n" 2>>"$tmp/curl.err" &
		cpids+=($!)
	done
	for i in "${cpids[@]}"; do wait "$i"; done
	for i in "${gpids[@]}"; do kill "$i" 2>/dev/null; wait "$i" 2>/dev/null; done
	local ok errors p50 p99
	ok=$(awk '$1 == 200' "$tmp/times.$n" | wc -l)
	errors=$((conc - ok))
	p50=$(awk '$1 == 200 { print $2 * 1000 }' "$tmp/times.$n" | pct 50)
	p99=$(awk '$1 == 200 { print $2 * 1000 }' "$tmp/times.$n" | pct 99)
	printf '{"bench":"route_concurrent","clients":%d,"fetches":%d,"errors":%d,"p50_ms":%s,"p99_ms":%s,"target_errors":0}\n' \
		"$n" "$conc" "$errors" "${p50:-null}" "${p99:-null}"
	printf 'concurrent  %2d client(s) %d fetches: %d errors, p50 %s ms, p99 %s ms\n' "$n" "$conc" "$errors" "${p50:--}" "${p99:--}" >&2
	[ "$errors" -eq 0 ]
}
run_clients 1 || status=1
run_clients "$clients" || status=1
exit $status
