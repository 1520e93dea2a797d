#!/usr/bin/env bats
# route.bats: an unmodified js-libp2p node (js/route-get.mjs, written from
# man/an-route.7) dials an-serve, opens /an/route/1.0.0, sends a route line
# and a request, and checks status and bytes (sha256): files small and
# large, index.html, 404, traversal refused, Range, conditionals, HEAD, 405,
# subdomain routing, a wrong did or host (421), the reverse proxy to
# python3 -m http.server (and 502 for a dead upstream), and misbehaving
# streams (oversized head 431, stalled head 408) that lose only themselves.
#
# One an-serve and one upstream for the file (started in setup_file, killed
# in teardown_file), only 127.0.0.1, every client bounded by --timeout.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/interop

setup_file() {
	interop_setup_file || return 1
	command -v an-serve >/dev/null || { echo "an-serve is not on PATH" >&2; return 1; }
	mkdir -p "$D/root/docs" "$D/api" "$D/up"
	printf '<h1>root</h1>\n' >"$D/root/index.html"
	printf 'small file\n' >"$D/root/small.txt"
	printf '<h1>docs</h1>\n' >"$D/root/docs/index.html"
	printf '<h1>api</h1>\n' >"$D/api/index.html"
	head -c 10485760 /dev/urandom >"$D/root/big.bin"
	printf 'outside\n' >"$D/secret.txt"
	ln -s ../secret.txt "$D/root/escape.txt"
	printf 'from upstream\n' >"$D/up/u.txt"
	head -c 10485760 /dev/urandom >"$D/up/big.bin"
	bg py python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$D/up"
	wait_for "$D/py.out" 'port [0-9]' 15 || return 1
	export UPORT=$(sed -nE 's/.* port ([0-9]+) .*/\1/p' "$D/py.out" | head -1)
	# an upstream that describes the request it got (JSON), and sleeps on /slow
	cat >"$D/echo.py" <<'PY'
import hashlib, http.server, json, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self): self.reply(b'')
    def do_POST(self): self.reply(self.rfile.read(int(self.headers.get('Content-Length', 0))))
    def reply(self, body):
        if self.path == '/slow':
            time.sleep(20)
        out = json.dumps({'method': self.command, 'path': self.path, 'version': self.request_version,
                          'headers': {k.lower(): v for k, v in self.headers.items()},
                          'bodySha256': hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print('port', s.server_address[1], flush=True)
s.serve_forever()
PY
	bg echo python3 -u "$D/echo.py"
	wait_for "$D/echo.out" '^port [0-9]' 15 || return 1
	export EPORT=$(sed -nE 's/^port ([0-9]+)/\1/p' "$D/echo.out")
	an-keygen -k "$D/site.key" >"$D/site.id"
	bg serve an-serve -k "$D/site.key" --name mysite -s "$D/state" --sub "api=$D/api" \
		--sub "app=http://127.0.0.1:$UPORT" --sub "dead=http://127.0.0.1:1" \
		--sub "echo=http://127.0.0.1:$EPORT" --upstream-timeout 2s --access-log "$D/access.log" "$D/root"
	wait_for "$D/serve.out" '"event":"ready"' 20 || return 1
	export ADDR=$(jq -r '.addrs[0]' "$D/serve.out")
}

teardown_file() {
	stop_all
}

# get HOST [route-get options]: one request, its JSON line in $output
get() {
	local host=$1
	shift
	run --separate-stderr timeout 60 node "$AN_TOP/tests/interop/js/route-get.mjs" --timeout 30 \
		--addr "$ADDR" --host "$host" "$@"
	[ "$status" -eq 0 ] || { echo "route-get: $status $stderr" >&2; return 1; }
}

field() { jq -r "$1" <<<"${lines[${2:-0}]}"; }

@test "a small file: 200 and its bytes" {
	get mysite --target /small.txt
	[ "$(field .status)" -eq 200 ]
	[ "$(field .sha256)" = "$(sha "$D/root/small.txt")" ]
	[ "$(field '.headers["content-type"]')" = "text/plain; charset=utf-8" ]
}

@test "a 10 MiB file arrives whole (sha256)" {
	get mysite --target /big.bin
	[ "$(field .status)" -eq 200 ]
	[ "$(field .bytes)" -eq 10485760 ]
	[ "$(field .sha256)" = "$(sha "$D/root/big.bin")" ]
}

@test "/ is index.html" {
	get mysite --target /
	[ "$(field .status)" -eq 200 ]
	[ "$(field .sha256)" = "$(sha "$D/root/index.html")" ]
}

@test "a directory without its slash is redirected to it" {
	get mysite --target '/docs?x=1'
	[ "$(field .status)" -eq 301 ]
	[ "$(field .headers.location)" = '/docs/?x=1' ]
}

@test "a missing file is 404" {
	get mysite --target /nothere.txt
	[ "$(field .status)" -eq 404 ]
}

@test "traversal attempts are refused and never return the file outside" {
	local t
	for t in /../secret.txt /%2e%2e/secret.txt /..%2fsecret.txt '/docs/..%5c..%5csecret.txt' /escape.txt; do
		get mysite --target "$t"
		[[ $(field .status) =~ ^(400|404)$ ]] || { echo "$t: $(field .status)"; return 1; }
		[ "$(field .sha256)" != "$(sha "$D/secret.txt")" ]
	done
}

@test "a Range request is 206 with exactly those bytes" {
	get mysite --target /big.bin --header 'Range: bytes=1000-1999'
	[ "$(field .status)" -eq 206 ]
	[ "$(field '.headers["content-range"]')" = "bytes 1000-1999/10485760" ]
	[ "$(field .sha256)" = "$(tail -c +1001 "$D/root/big.bin" | head -c 1000 | sha256sum | cut -d' ' -f1)" ]
}

@test "an unsatisfiable Range is 416" {
	get mysite --target /small.txt --header 'Range: bytes=100-'
	[ "$(field .status)" -eq 416 ]
	[ "$(field '.headers["content-range"]')" = "bytes */11" ]
}

@test "If-None-Match with the file's ETag is 304 without a body" {
	get mysite --target /small.txt
	local etag=$(field .headers.etag)
	get mysite --target /small.txt --header "If-None-Match: $etag"
	[ "$(field .status)" -eq 304 ]
	[ "$(field .bytes)" -eq 0 ]
}

@test "HEAD gives the length and no body" {
	get mysite --method HEAD --target /small.txt
	[ "$(field .status)" -eq 200 ]
	[ "$(field '.headers["content-length"]')" -eq 11 ]
	[ "$(field .bytes)" -eq 0 ]
}

@test "POST to a static site is 405 with Allow" {
	get mysite --method POST --target /small.txt
	[ "$(field .status)" -eq 405 ]
	[ "$(field .headers.allow)" = "GET, HEAD" ]
}

@test "a subdomain is routed to its own directory" {
	get api.mysite --target /
	[ "$(field .status)" -eq 200 ]
	[ "$(field .sha256)" = "$(sha "$D/api/index.html")" ]
}

@test "a wrong did is 421" {
	get mysite --did dns:Y9BBkshepgRUAmC91ZtHpc --target /small.txt
	[ "$(field .status)" -eq 421 ]
}

@test "a host this node does not serve is 421" {
	get other.mysite --target /
	[ "$(field .status)" -eq 421 ]
}

@test "the upstream proxy returns the local web server's bytes" {
	get app.mysite --target /u.txt
	[ "$(field .status)" -eq 200 ]
	[ "$(field .sha256)" = "$(sha "$D/up/u.txt")" ]
	[ "$(field .headers.server)" != null ]
}

@test "a 10 MiB upstream response is streamed back whole (sha256)" {
	get app.mysite --target /big.bin
	[ "$(field .status)" -eq 200 ]
	[ "$(field .bytes)" -eq 10485760 ]
	[ "$(field .sha256)" = "$(sha "$D/up/big.bin")" ]
}

@test "an upstream 404 is passed on" {
	get app.mysite --target /missing
	[ "$(field .status)" -eq 404 ]
}

@test "an unreachable upstream is 502" {
	get dead.mysite --target /
	[ "$(field .status)" -eq 502 ]
}

@test "the upstream gets the request without route line, Host rewritten, hop-by-hop fields dropped" {
	get echo.mysite --body --target '/x?y=1' --header 'Connection: X-Drop' --header 'X-Drop: 1' \
		--header 'Keep-Alive: timeout=5' --header 'X-Keep: 2'
	[ "$(field .status)" -eq 200 ]
	local req=$(field .body)
	[ "$(jq -r .path <<<"$req")" = '/x?y=1' ]
	[ "$(jq -r .version <<<"$req")" = HTTP/1.1 ]
	[ "$(jq -r .headers.host <<<"$req")" = echo.mysite ]
	[ "$(jq -r '.headers["x-keep"]' <<<"$req")" = 2 ]
	[ "$(jq -r '.headers["x-drop"]' <<<"$req")" = null ]
	[ "$(jq -r '.headers["keep-alive"]' <<<"$req")" = null ]
}

@test "the upstream gets X-Forwarded-For with the client's peer ID, never the client's own value" {
	get echo.mysite --body --target / --header 'X-Forwarded-For: 203.0.113.9'
	local req=$(field .body)
	[ "$(jq -r '.headers["x-forwarded-for"]' <<<"$req")" = "$(field .peerId)" ]
	[ "$(jq -r '.headers["x-forwarded-host"]' <<<"$req")" = echo.mysite ]
	[ "$(jq -r '.headers["x-forwarded-proto"]' <<<"$req")" = an ]
}

@test "a request body is forwarded to the upstream" {
	get echo.mysite --body --method POST --target /post --data 'a body for the upstream'
	[ "$(field .status)" -eq 200 ]
	[ "$(jq -r .bodySha256 <<<"$(field .body)")" = "$(printf 'a body for the upstream' | sha256sum | cut -d' ' -f1)" ]
}

@test "an upstream that sends no response head in time is 504" {
	get echo.mysite --target /slow
	[ "$(field .status)" -eq 504 ]
}

@test "an oversized head is 431 and the connection still serves the next stream" {
	get mysite --big-header 20000 --then-get /small.txt
	[ "$(field .status 0)" -eq 431 ]
	[ "$(field .status 1)" -eq 200 ]
	[ "$(field .sha256 1)" = "$(sha "$D/root/small.txt")" ]
}

@test "a stalled head times out with 408 and the connection still serves the next stream" {
	get mysite --stall --then-get /small.txt
	[ "$(field .status 0)" -eq 408 ]
	[ "$(field .status 1)" -eq 200 ]
}

@test "every request is in the access log" {
	# earlier tests logged the same request: look only at lines written after
	# this one's start, for this client's own (ephemeral) peer ID
	local before
	before=$(wc -l <"$D/access.log")
	get mysite --target /small.txt
	local peer deadline=$((SECONDS + 5))
	peer=$(field .peerId)
	[[ $peer == 12D3KooW* ]]
	until tail -n +$((before + 1)) "$D/access.log" | grep -qF " $peer mysite \"GET /small.txt\" 200 11 "; do
		[ "$SECONDS" -lt "$deadline" ] || { tail -n +$((before + 1)) "$D/access.log"; return 1; }
		sleep 0.1
	done
}
