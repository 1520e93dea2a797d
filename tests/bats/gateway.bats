#!/usr/bin/env bats
# an-dial --gateway: curl, then headless Chromium, through the gateway to
# sites an-serve publishes on a private loopback DHT.  The browser loads the
# multi-page test site (tests/data/site: pages with images, a stylesheet and
# a script that marks the page once every image decoded and the stylesheet
# applied); the test checks that marker in the DOM and that the gateway's
# access log shows every resource served 200.  Only 127.0.0.1; every wait
# bounded; every process killed in teardown_file.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	two_nodes || return 1
	mkdir -p "$NET/api"
	printf '<h1>api</h1>\n' >"$NET/api/index.html"
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
	# an upstream that accepts and never answers (for the gateway's 504), bounded
	export HANG_PORT=$(free_port)
	bg hang python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
end = time.time() + 300; held = []
while time.time() < end:
    s.settimeout(max(0.1, end - time.time()))
    try: held.append(s.accept())
    except OSError: pass' "$HANG_PORT"
	bg site an-serve -q -k "$NET/site.key" -n website -s "$NET/site" --bootstrap "$BOOT" \
		--sub "api=$NET/api" --sub "slow=http://127.0.0.1:$HANG_PORT" "$AN_TOP/tests/data/site"
	wait_for "$NET/site.out" '"published":true' 30 || return 1
	# a publisher whose record points at a port nobody listens on
	an-keygen -k "$NET/gone.key" >"$NET/gone.id"
	export PGONE=$(jq -r .peerHash "$NET/gone.id")
	an-sign -k "$NET/gone.key" --name gone --type root --addr "/ip4/127.0.0.1/tcp/$(free_port)" >"$NET/gone.json"
	an-dht put -k "$NET/gone.key" -s "$NET/pgone" --bootstrap "$BOOT" <"$NET/gone.json" >/dev/null
	export GW_PORT=$(free_port)
	# (no ASan quarantine: a sanitizer build's freed memory would count in the RSS check)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0 \
		bg gw an-dial --state-dir "$NET/gw" --bootstrap "$BOOT" -t 10s --gateway "127.0.0.1:$GW_PORT"
	export GW_PID=$(tail -1 "$NET/pids")
	wait_for "$NET/gw.err" 'gateway listening' 10 || return 1
	export GW=http://127.0.0.1:$GW_PORT
	# each site on its own origin (curl, like browsers, takes *.localhost as loopback)
	export SITE=http://website.$PH.localhost:$GW_PORT
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# get URL: curl through the gateway (a path is the gateway's own, $GW); $status
# is curl's, $code the HTTP status.
get() {
	local url=$1
	[[ $url == /* ]] && url=$GW$url
	run --separate-stderr curl -s -m 30 -o "$T/body" -D "$T/head" -w '%{http_code}' "$url"
	code=$output
}

@test "the gateway refuses a non-loopback address without --gateway-public" {
	run --separate-stderr timeout 10 an-dial --state-dir "$T/s" --gateway 0.0.0.0:0
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"not a loopback address"* ]]
	run --separate-stderr timeout 10 an-dial --state-dir "$T/s" --gateway nonsense:x
	[ "$status" -eq 2 ]
}

@test "the path form redirects to the site's own origin, path and query kept" {
	# (was: /an/PH@website redirected to /an/PH@website/ - sites shared 127.0.0.1's origin)
	get "/an/$PH@website"
	[ "$code" = 302 ]
	grep -qiF "Location: http://website.$PH.localhost:$GW_PORT/"$'\r' "$T/head"
	get "/an/$PH@api.website/docs/page2.html?q=1&r=a%2Fb"
	[ "$code" = 302 ]
	grep -qiF "Location: http://api.website.$PH.localhost:$GW_PORT/docs/page2.html?q=1&r=a%2Fb"$'\r' "$T/head"
}

@test "a page through the gateway is byte-identical" {
	get "$SITE/"
	[ "$code" = 200 ]
	cmp "$T/body" "$AN_TOP/tests/data/site/index.html"
	get "$SITE/img/red.png"
	[ "$code" = 200 ]
	cmp "$T/body" "$AN_TOP/tests/data/site/img/red.png"
	grep -qi '^Content-Type: image/png' "$T/head"
}

@test "a subdomain is routed to its own directory" {
	get "http://api.website.$PH.localhost:$GW_PORT/"
	[ "$code" = 200 ]
	[ "$(cat "$T/body")" = "<h1>api</h1>" ]
}

@test "keep-alive: several requests on one browser connection" {
	run curl -s -m 30 -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
		"$SITE/" "$SITE/style.css" "$SITE/app.js"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "200 1" ]
	[ "${lines[1]}" = "200 0" ]
	[ "${lines[2]}" = "200 0" ]
}

@test "statuses: 404 missing file, 404 unknown name, 400 malformed, 502 unreachable site" {
	get "$SITE/missing.html"
	[ "$code" = 404 ]
	get "http://nosuchsite.$PH.localhost:$GW_PORT/"
	[ "$code" = 404 ]
	grep -qi '^Content-Type: text/html' "$T/head"
	get "/an/not-a-name/"
	[ "$code" = 400 ]
	get "http://gone.$PGONE.localhost:$GW_PORT/"
	[ "$code" = 502 ]
	get "/elsewhere"
	[ "$code" = 404 ]
}

@test "path traversal through the gateway is refused" {
	for p in '../site.key' '%2e%2e/%2e%2e/etc/passwd' 'img/%2fetc%2fpasswd'; do
		# curl's own normalisation off: the raw path in the request line
		run curl -s -m 30 --path-as-is -o /dev/null -w '%{http_code}' "$SITE/$p"
		[ "$output" = 400 ] || { echo "$p: $output"; return 1; }
	done
	run curl -s -m 30 --path-as-is -o /dev/null -w '%{http_code}' "$SITE/../../etc/passwd"
	[ "$output" = 400 ]
}

@test "every request gets one access-log line" {
	get "$SITE/style.css?logcheck=1"
	[ "$code" = 200 ]
	wait_for "$NET/gw.err" "GET website.$PH.localhost/style.css\\?logcheck=1 200 " 5
}

@test "headless Chromium loads the multi-page site: every image, the stylesheet and the script" {
	command -v chromium >/dev/null || {
		echo "chromium is missing: install Debian's package (tools/install-deps test, or apt-get install chromium)" >&2
		return 1
	}
	before=$(wc -l <"$NET/gw.err")
	for page in "" docs/page2.html; do
		run --separate-stderr timeout 60 chromium --headless --no-sandbox --disable-gpu \
			--user-data-dir="$T/chromium" --virtual-time-budget=10000 \
			--dump-dom "$GW/an/$PH@website/$page"
		[ "$status" -eq 0 ] || { echo "chromium: $stderr"; return 1; }
		[[ "$output" == *'<p id="an-check">an-check: ok images='* ]] || { echo "$output"; return 1; }
	done
	[[ "$output" == *"<h1>Second page</h1>"* ]]
	log=$(tail -n +"$((before + 1))" "$NET/gw.err")
	# the path form redirected the browser to the site's own origin, which served it all
	grep -qE "GET /an/$PH@website/ 302 " <<<"$log" || { echo "no redirect in: $log"; return 1; }
	for r in "" style.css app.js img/red.png img/blue.png docs/page2.html docs/green.png; do
		grep -qE "GET website.$PH.localhost/$r 200 " <<<"$log" || { echo "no 200 for /$r in: $log"; return 1; }
	done
	# nothing of the site failed but the browser's own /favicon.ico (the site has none)
	! grep -vE "/favicon.ico 404 " <<<"$log" | grep -E "GET website.$PH.localhost/[^ ]* [45][0-9][0-9] "
}

@test "20 concurrent browser requests all arrive whole" {
	seq 20 | xargs -P 20 -I{} curl -s -m 60 -o "$T/c{}" -w '%{http_code}\n' \
		"$SITE/img/blue.png?n={}" >"$T/codes"
	[ "$(grep -c '^200$' "$T/codes")" -eq 20 ]
	for i in $(seq 20); do cmp "$T/c$i" "$AN_TOP/tests/data/site/img/blue.png"; done
}

@test "a slow browser gets a 48 MiB body whole, and the gateway does not buffer it" {
	# the route call pauses the stream while the browser's output is full,
	# so the server waits on yamux's window instead of filling our memory
	head -c 50331648 /dev/urandom >"$NET/api/slow.bin"
	run curl -s -m 60 --limit-rate 12M -o "$T/slow.bin" -w '%{http_code}' "http://api.website.$PH.localhost:$GW_PORT/slow.bin"
	[ "$output" = 200 ]
	cmp "$T/slow.bin" "$NET/api/slow.bin"
	rm -f "$NET/api/slow.bin"
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$GW_PID/status")
	echo "# gateway peak RSS ${hwm} kB" >&3
	[ "$hwm" -lt 32768 ] || { echo "gateway peak RSS ${hwm} kB" >&2; return 1; }
}

@test "a site on its own origin: Host FQDN.PEERHASH.localhost routes to it, subdomains too" {
	run curl -s -m 30 -H "Host: website.$PH.localhost:$GW_PORT" "$GW/"
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$AN_TOP/tests/data/site/index.html")" ]
	run curl -s -m 30 -H "Host: api.website.$PH.localhost:$GW_PORT" "$GW/"
	[ "$output" = "<h1>api</h1>" ]
	# absolute paths are the site's own on its origin
	run curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Host: website.$PH.localhost" "$GW/img/red.png"
	[ "$output" = 200 ]
	wait_for "$NET/gw.err" "GET website.$PH.localhost/img/red.png 200 " 5
}

@test "headless Chromium opens a site on its own origin (http://website.PEERHASH.localhost:PORT/)" {
	command -v chromium >/dev/null || {
		echo "chromium is missing: install Debian's package (tools/install-deps test, or apt-get install chromium)" >&2
		return 1
	}
	run --separate-stderr timeout 60 chromium --headless --no-sandbox --disable-gpu \
		--user-data-dir="$T/chromium" --virtual-time-budget=10000 \
		--dump-dom "http://website.$PH.localhost:$GW_PORT/docs/page2.html"
	[ "$status" -eq 0 ]
	[[ "$output" == *'<p id="an-check">an-check: ok images=1'* ]] || { echo "$output"; return 1; }
}

@test "a site that does not answer in time is 504 from the gateway" {
	port=$(free_port)
	an-dial --state-dir "$T/g" --bootstrap "$BOOT" -t 2s --gateway "127.0.0.1:$port" 2>"$T/gw.err" &
	pid=$!
	wait_for "$T/gw.err" 'gateway listening' 10
	run curl -s -m 30 -o "$T/body" -w '%{http_code}' "http://slow.website.$PH.localhost:$port/"
	kill "$pid"
	wait "$pid" || true
	[ "$output" = 504 ]
	grep -q "did not answer: timed out" "$T/body"
}
