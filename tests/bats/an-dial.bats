#!/usr/bin/env bats
# an-dial end to end on a private loopback network: DHT daemons, an-serve
# publishing a directory (and subdomains, and a reverse-proxied python3 -m
# http.server), names resolved and dialed by an-dial.  Options and errors,
# byte-identical files, a 100 MiB file with its sha256, subdomain routing,
# statuses, path traversal, the wrong-key refusal, pins, republishing.
# Only 127.0.0.1; every wait bounded; every process killed in teardown_file.

bats_require_minimum_version 1.5.0
load ../lib/common

# serve NAME KEY FQDN ARGS...: an-serve, waits for its ready line.
serve() {
	local name=$1 key=$2 fqdn=$3
	shift 3
	bg "$name" an-serve -q -k "$key" -n "$fqdn" -s "$NET/$name" --bootstrap "$BOOT" -t 10s "$@"
	wait_for "$NET/$name.out" '"published":true' 30
}

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	start_node n0 -q || return 1
	export BOOT=$NODE_ADDR
	for i in 1 2; do start_node "n$i" -q --bootstrap "$BOOT" || return 1; done
	# the site: root, a subdomain with its own directory, a proxied subdomain
	mkdir -p "$NET/www/img" "$NET/api" "$NET/up"
	printf '<h1>root</h1>\n' >"$NET/www/index.html"
	printf '<h1>api</h1>\n' >"$NET/api/index.html"
	head -c 1048576 /dev/urandom >"$NET/www/img/1m.bin"
	printf 'outside the site\n' >"$NET/secret.txt"
	printf 'from python\n' >"$NET/up/hello.txt"
	local port
	port=$(free_port)
	bg py python3 -m http.server --bind 127.0.0.1 --directory "$NET/up" "$port"
	local deadline=$((SECONDS + 10))
	until curl -sf "http://127.0.0.1:$port/hello.txt" >/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "python3 -m http.server did not start" >&2; return 1; }
		sleep 0.1
	done
	# an upstream that answers a POST with the sha256 of the body it received
	local eport
	eport=$(free_port)
	bg echo python3 -c 'import hashlib, http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        h = hashlib.sha256(); n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    break
                d = self.rfile.read(size); h.update(d); n += len(d); self.rfile.readline()
        else:
            d = self.rfile.read(int(self.headers.get("Content-Length", "0"))); h.update(d); n = len(d)
        out = ("%s %d %s\n" % (h.hexdigest(), n, self.headers.get("X-Test", "-"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$eport"
	deadline=$((SECONDS + 10))
	until curl -sf -d x "http://127.0.0.1:$eport/" >/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "the echo upstream did not start" >&2; return 1; }
		sleep 0.1
	done
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id") ID=$(jq -r .peerId "$NET/site.id")
	serve site "$NET/site.key" mysite --sub "api=$NET/api" --sub "up=http://127.0.0.1:$port" --sub "echo=http://127.0.0.1:$eport" \
		--republish 3s "$NET/www" || return 1
	export SITE_ADDR=$(jq -r '.addrs[0]' "$NET/site.out")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# dial ARGS...: an-dial on the network with a fresh state directory, bounded.
dial() {
	run --separate-stderr timeout 120 an-dial --state-dir "$T/s" --bootstrap "$BOOT" -t 20s "$@"
}

# ---- options and errors

@test "--help writes the usage to stdout and exits 0" {
	run --separate-stderr an-dial --help
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
	[[ "$output" == *"--gateway"* ]]
}

@test "no URL is a usage error" {
	run --separate-stderr an-dial
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-dial: missing URL"* ]]
}

@test "a malformed URL is bad data (exit 3)" {
	for u in 'an://abc@' 'an://UPPERCASE@x' 'an://abc@bad_name/' 'an://@mysite/'; do
		run --separate-stderr an-dial --state-dir "$T/s" "$u"
		[ "$status" -eq 3 ] || { echo "$u: $status $stderr"; return 1; }
		[[ "$stderr" == "an-dial: invalid URL '$u'"* ]]
	done
}

@test "--gateway-public needs --gateway, and --gateway takes no URL" {
	run --separate-stderr an-dial --gateway-public "an://$PH@mysite/"
	[ "$status" -eq 2 ]
	run --separate-stderr an-dial --gateway 0 "an://$PH@mysite/"
	[ "$status" -eq 2 ]
}

@test "an invalid -t and an invalid -X are usage errors" {
	run --separate-stderr an-dial -t never "an://$PH@mysite/"
	[ "$status" -eq 2 ]
	run --separate-stderr an-dial -X 'G T' "an://$PH@mysite/"
	[ "$status" -eq 2 ]
}

@test "-H refuses the fields an-dial sets itself" {
	run --separate-stderr an-dial -H 'Host: evil' --state-dir "$T/s" "an://$PH@mysite/"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'Host' is set by an-dial"* ]]
}

# ---- end to end

@test "a page arrives byte-identical on stdout" {
	dial "an://$PH@mysite/index.html"
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$NET/www/index.html")" ]
}

@test "-o writes a binary file byte-identical" {
	dial -o "$T/1m.bin" "an://$PH@mysite/img/1m.bin"
	[ "$status" -eq 0 ]
	cmp "$T/1m.bin" "$NET/www/img/1m.bin"
}

@test "a 100 MiB file arrives with the same sha256, and no progress bar in a pipe" {
	head -c 104857600 /dev/urandom >"$NET/www/big.bin"
	want=$(sha256sum <"$NET/www/big.bin" | cut -d' ' -f1)
	run --separate-stderr flock -w 900 /tmp/an-heavy.lock timeout 300 bash -c \
		"an-dial --state-dir '$T/s' --bootstrap '$BOOT' -t 30s 'an://$PH@mysite/big.bin' | sha256sum"
	rm -f "$NET/www/big.bin"
	[ "$status" -eq 0 ]
	[ "${output%% *}" = "$want" ]
	[ -z "$stderr" ]
}

@test "a subdomain is routed to its own directory" {
	dial "an://$PH@api.mysite/"
	[ "$status" -eq 0 ]
	[ "$output" = "<h1>api</h1>" ]
}

@test "the full peer ID is accepted in place of the peer hash" {
	dial "an://$ID@mysite/"
	[ "$status" -eq 0 ]
	[ "$output" = "<h1>root</h1>" ]
}

@test "a reverse-proxied upstream (python3 -m http.server) answers through the site" {
	dial "an://$PH@up.mysite/hello.txt"
	[ "$status" -eq 0 ]
	[ "$output" = "from python" ]
}

@test "404: the body is still written, a message on stderr, exit 1" {
	dial "an://$PH@mysite/missing.html"
	[ "$status" -eq 1 ]
	[ -n "$output" ]
	[[ "$stderr" == "an-dial: 'an://$PH@mysite/missing.html': HTTP 404"* ]]
}

@test "405 for a method a static site does not serve, with -i showing the status line" {
	dial -i -X DELETE "an://$PH@mysite/index.html"
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == "HTTP/1.1 405 "* ]]
}

@test "-d sends a body: the upstream's own status comes back" {
	# python's http.server has no POST: 501 from the upstream, through the site
	dial -d 'a=1' "an://$PH@up.mysite/hello.txt"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"HTTP 501"* ]]
}

@test "-d @FILE sends the file as the body, -H adds a field" {
	head -c 300000 /dev/urandom >"$T/body"
	dial -d "@$T/body" -H 'X-Test: yes' "an://$PH@echo.mysite/"
	[ "$status" -eq 0 ]
	[ "$output" = "$(sha256sum <"$T/body" | cut -d' ' -f1) 300000 yes" ]
}

@test "-d - streams standard input as a chunked body" {
	head -c 500000 /dev/urandom >"$T/body"
	run --separate-stderr bash -c "timeout 60 an-dial --state-dir '$T/s' --bootstrap '$BOOT' -t 20s -d - \
		'an://$PH@echo.mysite/' <'$T/body'"
	[ "$status" -eq 0 ]
	[ "$output" = "$(sha256sum <"$T/body" | cut -d' ' -f1) 500000 -" ]
}

@test "path traversal attempts are refused with 400 and leak nothing" {
	for p in '../secret.txt' 'img/../../secret.txt' '%2e%2e/secret.txt' 'img/%2e%2e/%2e%2e/secret.txt' \
		'%2fetc%2fpasswd' '..%5csecret.txt'; do
		dial "an://$PH@mysite/$p"
		[ "$status" -eq 1 ] || { echo "$p: $status"; return 1; }
		[[ "$stderr" == *"HTTP 400"* ]] || { echo "$p: $stderr"; return 1; }
		[[ "$output" != *"outside the site"* ]]
	done
}

@test "a name nobody published is not found (exit 1)" {
	dial "an://$PH@nosuchname/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"not found"* ]]
}

@test "a record pointing at another node's address is refused: that node lacks the key" {
	# publisher "liar" signs a record whose address is the site's node
	an-keygen -k "$T/liar.key" >"$T/liar.id"
	lph=$(jq -r .peerHash "$T/liar.id")
	an-sign -k "$T/liar.key" --name lie --type root --addr "${SITE_ADDR%/p2p/*}" >"$T/lie.json"
	an-dht put -k "$T/liar.key" -s "$T/liar" --bootstrap "$BOOT" <"$T/lie.json" >/dev/null
	dial "an://$lph@lie/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"does not hold the publisher's key"* ]]
}

@test "the first answer pins the peer hash; another peer hash for the name needs --repin" {
	dial "an://$PH@mysite/"
	[ "$status" -eq 0 ]
	[ "$(jq -r .mysite "$T/s/pins.json")" = "$PH" ]
	an-keygen -k "$T/other.key" >"$T/other.id"
	oph=$(jq -r .peerHash "$T/other.id")
	dial "an://$oph@mysite/"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"pinned to peer hash $PH"* ]]
	# a bare name goes to the pinned publisher
	dial "an://mysite/"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$output" = "<h1>root</h1>" ]
}

@test "republishing is observed: the record's seq grows and the site still answers" {
	seq1=$(an-resolve -s "$T/r" --bootstrap "$BOOT" "an://$PH@mysite" | jq -r .record.seq)
	[ -n "$seq1" ]
	[ "$seq1" != null ]
	deadline=$((SECONDS + 30))
	while :; do
		seq2=$(an-resolve -s "$T/r" --bootstrap "$BOOT" "an://$PH@mysite" | jq -r .record.seq)
		[ "$seq2" != "$seq1" ] && break
		[ "$SECONDS" -lt "$deadline" ] || { echo "seq stayed $seq1" >&2; return 1; }
		sleep 1
	done
	[ "$seq2" -gt "$seq1" ]
	dial "an://$PH@mysite/"
	[ "$status" -eq 0 ]
}

@test "--connect-to skips resolution but still checks the peer" {
	run --separate-stderr timeout 60 an-dial --state-dir "$T/s" -t 10s --connect-to "$SITE_ADDR" "an://$PH@mysite/"
	[ "$status" -eq 0 ]
	[ "$output" = "<h1>root</h1>" ]
	an-keygen -k "$T/x.key" >"$T/x.id"
	run --separate-stderr timeout 60 an-dial --state-dir "$T/s" -t 10s --connect-to "${SITE_ADDR%/p2p/*}" \
		"an://$(jq -r .peerHash "$T/x.id")@mysite/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "an unreachable address is a network error (exit 4)" {
	run --separate-stderr timeout 60 an-dial --state-dir "$T/s" -t 5s \
		--connect-to "/ip4/127.0.0.1/tcp/$(free_port)/p2p/$ID" "an://$PH@mysite/"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"unable to connect"* ]]
}

@test "an output that cannot be written is a system error (exit 4)" {
	dial -o "$T/no/such/dir/file" "an://$PH@mysite/"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"unable to open"* ]]
}

@test "a progress bar on a terminal for a long transfer (a slow reader), on stderr only" {
	mkfifo "$T/fifo"
	# the reader takes 64 KiB every 0.15 s: 1 MiB takes over 2 s
	python3 -c 'import sys, time
f = open(sys.argv[1], "rb"); out = open(sys.argv[2], "wb")
while True:
    b = f.read(65536)
    if not b: break
    out.write(b); time.sleep(0.15)' "$T/fifo" "$T/copy" &
	reader=$!
	run timeout 60 script -qec "an-dial --state-dir '$T/s' --bootstrap '$BOOT' -t 20s -o '$T/fifo' 'an://$PH@mysite/img/1m.bin'" /dev/null
	wait "$reader"
	[ "$status" -eq 0 ]
	cmp "$T/copy" "$NET/www/img/1m.bin"
	[[ "$output" == *"1.0 MiB"* ]] || { echo "no progress bar in: $output"; return 1; }
	[[ "$output" == *"%"* ]]
}

@test "no progress bar with -s, even on a terminal" {
	mkfifo "$T/fifo"
	python3 -c 'import sys, time
f = open(sys.argv[1], "rb")
while f.read(65536): time.sleep(0.15)' "$T/fifo" &
	reader=$!
	run timeout 60 script -qec "an-dial -s --state-dir '$T/s' --bootstrap '$BOOT' -t 20s -o '$T/fifo' 'an://$PH@mysite/img/1m.bin'" /dev/null
	wait "$reader"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "a circuit address is dialed through the relay, -v says so" {
	an-keygen -k "$T/relay.key" >/dev/null
	bg relay an-relay -q -k "$T/relay.key" --circuit-data 4m
	wait_for "$NET/relay.out" '"event":"ready"' 10
	relay=$(jq -r '.addrs[0]' "$NET/relay.out")
	an-keygen -k "$T/nat.key" >"$T/nat.id"
	bg relayed an-serve -q -k "$T/nat.key" -n natsite -s "$T/srv" --relay "$relay" --no-direct "$NET/www"
	wait_for "$NET/relayed.out" '"event":"ready"' 20
	circuit=$(jq -r '.addrs[0]' "$NET/relayed.out")
	[[ $circuit == "$relay/p2p-circuit/p2p/$(jq -r .peerId "$T/nat.id")" ]]
	run --separate-stderr timeout 60 an-dial -v --state-dir "$T/s" -t 10s --connect-to "$circuit" \
		-o "$T/1m.bin" "an://$(jq -r .peerHash "$T/nat.id")@natsite/img/1m.bin"
	stop_node relayed
	stop_node relay
	[ "$status" -eq 0 ]
	[[ $stderr == *"connected through a relay: $circuit"* ]]
	cmp "$T/1m.bin" "$NET/www/img/1m.bin"
}

@test "the gateway prints a JSON ready line naming its address (issue 11)" {
	bg gwready an-dial --gateway 127.0.0.1:0 --state-dir "$BATS_TEST_TMPDIR/s" --bootstrap "$BOOT"
	wait_for "$NET/gwready.out" '"event":"ready"' 10
	local url
	url=$(jq -r 'select(.event == "ready") | .url' "$NET/gwready.out")
	[[ $url =~ ^http://127\.0\.0\.1:[0-9]+/$ ]]
	[ "http://$(jq -r 'select(.event == "ready") | .listen' "$NET/gwready.out")/" = "$url" ]
	# it answers there
	run curl -s -o /dev/null -w '%{http_code}' "$url"
	[ "$status" -eq 0 ]
	[ "$output" != 000 ]
	stop_node gwready
}
