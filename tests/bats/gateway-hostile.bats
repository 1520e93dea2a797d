#!/usr/bin/env bats
# an-dial --gateway against what any web page, or another local user, can
# send it (issue 10): pins written by a page's requests, sites sharing one
# origin, DNS rebinding, slow and flooding clients, made-up names without
# end, and error pages that show another request's error; and pins.json's
# mode.  A page's requests are curl with the Sec-Fetch-* fields browsers
# send (pages cannot forge them); the browser half is gateway-browser.bats.
# An attacker on the machine floods from 127.0.0.2 (and .3); 127.0.0.1 must
# still be served.  Only 127.0.0.0/8; every wait bounded; every process
# killed in teardown_file (or by its own deadline).

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	two_nodes || return 1
	# the real bank (publisher PA) and an attacker's "bank" (PE), behind a web
	# server that sets fields reaching across sites and echoes what it got
	an-keygen -k "$NET/a.key" >"$NET/a.id"
	an-keygen -k "$NET/e.key" >"$NET/e.id"
	export PA=$(jq -r .peerHash "$NET/a.id") PE=$(jq -r .peerHash "$NET/e.id")
	mkdir -p "$NET/bank" "$NET/evil"
	printf '<h1>real bank</h1>\n' >"$NET/bank/index.html"
	printf '<h1>evil bank</h1>\n' >"$NET/evil/index.html"
	printf 'x\n' >"$NET/evil/fields"
	cat >"$NET/evil/headers.json" <<'JSON'
{"/fields": {"Set-Cookie": ["a=1; Domain=localhost; Path=/; HttpOnly", "b=2;domain=.localhost"],
             "Clear-Site-Data": "\"cookies\"", "Service-Worker-Allowed": "/"}}
JSON
	export UP_PORT=$(free_port)
	bg upstream python3 "$AN_TOP/tests/browser/upstream.py" "$UP_PORT" "$NET/evil" 600
	serve bank -k "$NET/a.key" -n bank -s "$NET/sa" "$NET/bank" || return 1
	serve evil -k "$NET/e.key" -n bank -s "$NET/se" --upstream "http://127.0.0.1:$UP_PORT" || return 1
	# PA's own root "bank.com" (for the suffix pin), and a publisher whose
	# sites all point at a port that accepts and never answers (slow lookups)
	an-sign -k "$NET/a.key" --name bank.com --type root --addr /ip4/127.0.0.1/tcp/9 >"$NET/bankcom.json"
	an-dht put -k "$NET/a.key" -s "$NET/pa" --bootstrap "$BOOT" <"$NET/bankcom.json" >/dev/null
	export HANG_PORT=$(free_port)
	bg hang python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
end = time.time() + 600; held = []
while time.time() < end:
    s.settimeout(max(0.1, end - time.time()))
    try: held.append(s.accept())
    except OSError: pass' "$HANG_PORT"
	an-keygen -k "$NET/s.key" >"$NET/s.id"
	export PS=$(jq -r .peerHash "$NET/s.id")
	for i in $(seq 100); do
		an-sign -k "$NET/s.key" --name "slow$i" --type root --addr "/ip4/127.0.0.1/tcp/$HANG_PORT"
	done >"$NET/slow.json"
	an-dht put -k "$NET/s.key" -s "$NET/ps" --bootstrap "$BOOT" <"$NET/slow.json" >/dev/null
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

teardown() {
	# a test's own background clients (curl, python floods), each bounded anyway
	local j
	for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
}

# gw [ARGS...]: a gateway of this test's own (state directory $T/gw, so pins
# start empty); G its address, GP its port, GS its state directory.
gw() {
	GP=$(free_port)
	GS=$T/gw
	G=http://127.0.0.1:$GP
	# (no ASan quarantine: a sanitizer build's freed memory would count in the RSS check)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0 \
		bg "gw-${BATS_TEST_NUMBER}" an-dial --state-dir "$GS" --bootstrap "$BOOT" -t 10s --gateway "127.0.0.1:$GP" "$@"
	wait_for "$RUNDIR/gw-${BATS_TEST_NUMBER}.err" 'gateway listening' 10
}

# req URL [CURL ARGS...]: curl, following redirects; $code the last status,
# the body in $T/body, the heads in $T/head.
req() {
	local url=$1
	shift
	run --separate-stderr curl -s -m 30 -L -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$url"
	code=$output
}

# a page's <img> (the fields Chromium sends for it)
IMG=(-H 'Sec-Fetch-Dest: image' -H 'Sec-Fetch-Mode: no-cors' -H 'Sec-Fetch-Site: cross-site')
# an address the user typed
TYPED=(-H 'Sec-Fetch-Dest: document' -H 'Sec-Fetch-Mode: navigate' -H 'Sec-Fetch-Site: none' -H 'Sec-Fetch-User: ?1')

pinned() {
	jq -r --arg n "$1" '.[$n] // empty' "$GS/pins.json" 2>/dev/null
}

# ---- 1. pins change only by a person's intent ----

@test "a page's image of /an/EVIL@bank/ pins nothing" {
	gw
	req "$G/an/$PE@bank/" "${IMG[@]}"
	[ -z "$(pinned bank)" ] || { echo "bank pinned to $(pinned bank)"; return 1; }
}

@test "a page's request on an unpinned site's origin is shown, not pinned" {
	gw
	req "http://bank.$PE.localhost:$GP/" "${IMG[@]}"
	[ "$code" = 200 ]
	[ "$(cat "$T/body")" = "<h1>evil bank</h1>" ]
	[ -z "$(pinned bank)" ]
}

@test "a request without Sec-Fetch fields (curl) does not pin" {
	gw
	req "http://bank.$PE.localhost:$GP/"
	[ "$code" = 200 ]
	[ -z "$(pinned bank)" ]
}

@test "after a page asked for EVIL@bank, the real bank still opens" {
	gw
	req "$G/an/$PE@bank/" "${IMG[@]}"
	req "$G/an/$PA@bank/" "${TYPED[@]}"
	[ "$code" = 200 ] || { cat "$T/body"; return 1; }
	[ "$(cat "$T/body")" = "<h1>real bank</h1>" ]
}

@test "after a page asked for EVIL@bank, a bare an://bank is not the attacker's" {
	gw
	req "$G/an/$PE@bank/" "${IMG[@]}"
	run --separate-stderr timeout 60 an-dial --state-dir "$GS" --bootstrap "$BOOT" -t 10s an://bank/
	[ "$output" != "<h1>evil bank</h1>" ]
	[ "$status" -eq 1 ]
}

@test "a navigation the user made pins the root name; then another peer hash is 403" {
	gw
	req "http://bank.$PA.localhost:$GP/" "${TYPED[@]}"
	[ "$code" = 200 ]
	[ "$(pinned bank)" = "$PA" ]
	req "http://bank.$PE.localhost:$GP/" "${TYPED[@]}"
	[ "$code" = 403 ]
	grep -q "pinned to peer hash $PA" "$T/body"
}

@test "a pin on a suffix does not decide a name with a root record of its own" {
	mkdir -m 700 "$T/s"
	printf '{"com":"%s"}\n' "$PE" >"$T/s/pins.json"
	chmod 600 "$T/s/pins.json"
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@bank.com"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$(jq -r .record.dns.name <<<"$output")" = bank.com ]
}

@test "pins.json is written 0600" {
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@bank"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/s/pins.json")" = 600 ]
}

@test "a pins.json others may write is refused, with a message naming it" {
	mkdir -m 700 "$T/s"
	printf '{}\n' >"$T/s/pins.json"
	chmod 666 "$T/s/pins.json"
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@bank"
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"$T/s/pins.json"*"writable by others"* ]]
	[ "$(cat "$T/s/pins.json")" = "{}" ]
}

@test "no pin is written into a state directory others may write" {
	mkdir -m 777 "$T/s"
	chmod 777 "$T/s" # whatever the umask
	run --separate-stderr an-resolve -s "$T/s" --bootstrap "$BOOT" "$PA@bank"
	[[ "$stderr" == *"$T/s"*"writable by others"* ]]
	# refused, or the directory was made private first
	[ ! -e "$T/s/pins.json" ] || [ "$(stat -c %a "$T/s")" = 700 ]
}

# ---- 2. one origin for every site ----

@test "the path form never serves a site on the shared origin: it redirects to the site's own" {
	gw
	run --separate-stderr curl -s -m 30 -o "$T/body" -D "$T/head" -w '%{http_code}' \
		-H 'Cookie: session=shared' "$G/an/$PE@bank/echo?x=1"
	[ "$output" = 302 ]
	grep -qiF "Location: http://bank.$PE.localhost:$GP/echo?x=1"$'\r' "$T/head"
	! grep -q session "$T/body"
}

@test "Cookie and Authorization reach the site on its own origin" {
	gw
	req "http://bank.$PE.localhost:$GP/echo" -H 'Cookie: session=mine' -H 'Authorization: Basic eDp5'
	[ "$code" = 200 ]
	[ "$(jq -r .cookie "$T/body")" = session=mine ]
	[ "$(jq -r .authorization "$T/body")" = "Basic eDp5" ]
}

@test "Set-Cookie loses its Domain, Clear-Site-Data is dropped" {
	gw
	req "http://bank.$PE.localhost:$GP/fields"
	[ "$code" = 200 ]
	grep -i '^Set-Cookie:' "$T/head" >&2
	[ "$(grep -ci '^Set-Cookie:' "$T/head")" -eq 2 ]
	run ! grep -i '^Set-Cookie:.*domain' "$T/head"
	grep -qi '^Set-Cookie: a=1; Path=/; HttpOnly'$'\r' "$T/head"
	run ! grep -qi '^Clear-Site-Data' "$T/head"
}

# ---- 6. DNS rebinding ----

@test "a Host that is not the gateway's own is answered 421" {
	gw
	for h in "rebind.example:$GP" "bank.$PA.rebind.example:$GP" "192.168.1.1:$GP" "localhost.example"; do
		run curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Host: $h" "$G/an/$PA@bank/"
		[ "$output" = 421 ] || { echo "$h: $output"; return 1; }
	done
	run curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Host: bank.$PA.rebind.example" "$G/"
	[ "$output" = 421 ]
}

@test "the gateway's own names are answered: 127.0.0.1, [::1], localhost, *.localhost" {
	gw
	for h in "127.0.0.1:$GP" "[::1]:$GP" "localhost:$GP" "LocalHost" "x.localhost:$GP"; do
		run curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Host: $h" "$G/"
		[ "$output" = 200 ] || { echo "$h: $output"; return 1; }
	done
}

@test "--gateway-host NAME is answered, with sites under it" {
	gw --gateway-host gw.test
	run curl -s -m 30 -o /dev/null -D "$T/head" -w '%{http_code}' -H "Host: gw.test:$GP" "$G/an/$PA@bank/"
	[ "$output" = 302 ]
	grep -qiF "Location: http://bank.$PA.gw.test:$GP/"$'\r' "$T/head"
	run curl -s -m 30 -H "Host: bank.$PA.gw.test:$GP" "$G/"
	[ "$output" = "<h1>real bank</h1>" ]
}

# ---- 10. each error page its own ----

@test "an error page shows its own request's error, not the last one's" {
	gw
	req "http://nosuch.$PA.localhost:$GP/"
	[ "$code" = 404 ]
	grep -q "nosuch" "$T/body"
	req "http://bank.com.$PA.localhost:$GP/" # another error in between (nobody at its address)
	[ "$code" = 502 ]
	req "http://nosuch.$PA.localhost:$GP/" # the failure cached for 5 s
	[ "$code" = 404 ]
	grep -q "nosuch" "$T/body" || { cat "$T/body"; return 1; }
}

# ---- 4. slow clients ----

# slow_head SRC GW_PORT SECONDS: a head sent a byte every 0.5 s from SRC;
# prints how long the gateway kept it, or "open" after SECONDS.
slow_head() {
	timeout $(($3 + 10)) python3 -c 'import socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 0)); s.connect(("127.0.0.1", int(sys.argv[2])))
s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
t0 = time.time(); s.settimeout(0.5)
while time.time() - t0 < float(sys.argv[3]):
    try:
        s.sendall(b"X")
        if s.recv(4096) == b"": break
    except socket.timeout: pass
    except OSError: break
else:
    print("open"); sys.exit()
print(round(time.time() - t0))' "$@"
}

@test "a request head sent a byte at a time is ended at its deadline, not renewed" {
	gw
	run slow_head 127.0.0.2 "$GP" 25
	echo "kept $output s" >&2
	[ "$output" != open ]
	[ "$output" -le 13 ]
}

@test "300 idle connections from 127.0.0.2 do not lock 127.0.0.1 out" {
	gw
	timeout 60 python3 -c 'import socket, sys, time
held = []
for i in range(300):
    s = socket.socket(); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", int(sys.argv[1]))); held.append(s)
print("held", flush=True)
time.sleep(30)' "$GP" >"$T/flood.out" &
	wait_for "$T/flood.out" held 20
	sleep 0.2 # let the gateway take them all
	run curl -s -m 10 -o /dev/null -w '%{http_code}' "$G/"
	[ "$output" = 200 ]
}

# ---- 5. bounded caches ----

# burst PORT N SOURCE...: N requests for slow1..slowN at once (one socket
# each, from the SOURCE addresses in turn); one line "status seconds" each.
burst() {
	timeout 60 python3 -c 'import selectors, socket, sys, time
port, n, srcs, ph = int(sys.argv[1]), int(sys.argv[2]), sys.argv[4:], sys.argv[3]
sel = selectors.DefaultSelector(); t0 = time.time()
for i in range(n):
    s = socket.socket(); s.bind((srcs[i % len(srcs)], 0)); s.connect(("127.0.0.1", port))
    s.sendall(("GET / HTTP/1.1\r\nHost: slow%d.%s.localhost\r\nConnection: close\r\n\r\n" % (i + 1, ph)).encode())
    sel.register(s, selectors.EVENT_READ, b"")
left = n
while left and time.time() - t0 < 50:
    for key, _ in sel.select(1):
        d = key.fileobj.recv(4096)
        if d and b"\r\n" not in key.data + d:
            sel.modify(key.fileobj, selectors.EVENT_READ, key.data + d); continue
        line = (key.data + d).split(b"\r\n")[0].split()
        print(line[1].decode() if len(line) > 1 else "eof", round(time.time() - t0, 2), flush=True)
        sel.unregister(key.fileobj); key.fileobj.close(); left -= 1' "$1" "$2" "$PS" "${@:3}"
}

@test "lookups past the cap are answered 503 at once, and 127.0.0.1 is still served" {
	gw
	burst "$GP" 99 127.0.0.2 127.0.0.3 127.0.0.4 >"$T/codes" &
	pid=$!
	# 64 wait for the dial deadline (10 s), the other 35 are 503 at once
	deadline=$((SECONDS + 8))
	until [ "$(grep -c "^503 " "$T/codes")" -ge 30 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { sort "$T/codes" | uniq -c >&2; return 1; }
		sleep 0.1
	done
	awk '$1 == 503 && $2 > 3 { print "a slow 503:", $0; bad = 1 } END { exit bad }' "$T/codes"
	run curl -s -m 10 -o /dev/null -w '%{http_code}' "$G/"
	[ "$output" = 200 ]
	wait "$pid"
	[ "$(grep -c "^503 " "$T/codes")" -eq 35 ] || { sort "$T/codes" | uniq -c >&2; return 1; }
}

@test "the first requests of a fresh gateway wait for its node together: none is a false 404" {
	# the in-process node bootstraps while other requests arrive; each used to
	# open a node of its own (leaked) and many answered 404 at once
	gw -t 3s
	pids=()
	for i in $(seq 20); do
		curl -s -m 30 -o /dev/null -w '%{http_code}\n' "http://slow$i.$PS.localhost:$GP/" >>"$T/codes" &
		pids+=($!)
	done
	wait "${pids[@]}"
	sort "$T/codes" | uniq -c >&2
	[ "$(wc -l <"$T/codes")" -eq 20 ]
	! grep -q 404 "$T/codes"
}

# rss PID: resident kB
rss() {
	awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}

# made_up SRC FIRST N: N requests for made-up names on one keep-alive connection
made_up() {
	timeout 120 python3 -c 'import socket, sys
src, port, ph, first, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = None
for i in range(first, first + n):
    if s is None:
        s = socket.socket(); s.bind((src, 0)); s.connect(("127.0.0.1", port)); f = s.makefile("rb")
    s.sendall(("GET / HTTP/1.1\r\nHost: made%d.%s.localhost\r\n\r\n" % (i, ph)).encode())
    f.readline(); clen = 0; close = False
    while True:
        h = f.readline()
        if h in (b"\r\n", b""): break
        k, _, v = h.decode().partition(":")
        clen = int(v) if k.lower() == "content-length" else clen
        close = close or (k.lower() == "connection" and "close" in v.lower())
    f.read(clen)
    if close: s.close(); s = None' "$1" "$GP" "$PA" "$2" "$3"
}

@test "made-up names do not grow the gateway: 3000 more cost under 4 MiB" {
	gw
	pid=$(cat "$RUNDIR/gw-${BATS_TEST_NUMBER}.pid")
	made_up 127.0.0.2 0 600 # the cache is full
	before=$(rss "$pid")
	made_up 127.0.0.2 600 3000
	after=$(rss "$pid")
	echo "# gateway RSS ${before} -> ${after} kB" >&3
	[ $((after - before)) -lt 4096 ]
}
