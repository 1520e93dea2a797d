#!/usr/bin/env bash
# flood.sh: what a flood from one address costs everyone else (issue 10).
# An an-serve on 0.0.0.0 serves one page; an honest client on 127.0.0.1
# fetches it N times in a row (an-dial --connect-to, a process each, the
# same as a user would) - first alone, then while tests/tools/an-flood on
# 127.0.0.2 holds 1000 idle TCP sockets and 1000 idle route streams (4
# connections of 250).  Reports p50 / p99 of the honest fetches (ms, wall
# clock per process) and the victim's VmRSS (KiB) in both runs, and how much
# the flood held (sockets and streams the victim let it keep).
#
#   PATH with an-serve, an-dial, an-keygen; AN_FLOOD (default
#   build/tests/tools/an-flood).  N=100 fetches per run.
#   One JSON line per run on stdout; progress on stderr.  Loopback only;
#   every process is bounded (the victim by the exit trap) and killed on exit.
set -eu
n=${N:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
flood=${AN_FLOOD:-$top/build/tests/tools/an-flood}
tmp=$(mktemp -d /tmp/an-bench-flood.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/site"
echo '<h1>home</h1>' >"$tmp/site/index.html"
an-keygen -k "$tmp/site.key" >"$tmp/site.id"
ph=$(jq -r .peerHash "$tmp/site.id")
an-serve -k "$tmp/site.key" --name site -s "$tmp/s" --listen /ip4/0.0.0.0/tcp/0 \
	"$tmp/site" >"$tmp/serve.out" 2>"$tmp/serve.err" &
victim=$!
pids+=("$victim")
for _ in $(seq 200); do grep -q '"event":"ready"' "$tmp/serve.out" && break; sleep 0.1; done
addr=$(jq -r '.addrs[0]' "$tmp/serve.out")
port=$(cut -d/ -f5 <<<"$addr")

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$victim/status"; }

# fetches LABEL: N honest fetches, one JSON line
fetches() {
	local i t0 t1 fails=0
	: >"$tmp/ms"
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s%N)
		if ! timeout 20 an-dial -s -t 10s --connect-to "$addr" "an://$ph@site/" >/dev/null 2>"$tmp/dial.err"; then
			fails=$((fails + 1))
		fi
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >>"$tmp/ms"
	done
	sort -n "$tmp/ms" | awk -v label="$1" -v fails="$fails" -v rss="$(rss)" -v held="$2" '
		{ v[NR] = $1 }
		END {
			p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
			printf "{\"run\":\"%s\",\"fetches\":%d,\"failed\":%d,\"p50Ms\":%.2f,\"p99Ms\":%.2f,\"victimRssKb\":%d,\"flood\":%s}\n",
				label, NR, fails, p50 / 1000, p99 / 1000, rss, held
		}'
}

echo "flood.sh: $n fetches without a flood" >&2
fetches alone null

echo "flood.sh: 1000 idle sockets and 1000 idle streams from 127.0.0.2" >&2
timeout 300 "$flood" idle --to "127.0.0.1:$port" --from 127.0.0.2 -n 1000 --for 240 >"$tmp/idle.out" 2>"$tmp/idle.err" &
pids+=($!)
timeout 300 "$flood" streams --to "$addr" --from 127.0.0.2 -n 4 --streams 250 --proto /an/route/1.0.0 \
	--for 240 >"$tmp/streams.out" 2>"$tmp/streams.err" &
pids+=($!)
sleep 5 # both floods reach what the victim lets them hold
held=$(jq -cs --slurpfile s "$tmp/streams.out" \
	'{sockets: (.[-1].open), connections: ($s[-1].open), streams: ($s[-1].streams)}' "$tmp/idle.out")
fetches flooded "$held"
