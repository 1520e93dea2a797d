#!/usr/bin/env bats
# an-serve against what an attacker tried (issue 10, the server half):
# dotfiles, a protocol-relative directory redirect, nosniff, ETags that
# carried inode numbers, and Expect: 100-continue to an upstream that
# honours it.  One an-serve on 127.0.0.1 with nobody to publish to, reached
# with an-dial --connect-to; a python3 upstream on 127.0.0.1.  Bounded
# waits; every process started here is killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

# serve NAME ARGS...: an-serve in the background until its ready line; its
# first address in $RUNDIR/NAME.addr.
serve() {
	local name=$1
	shift
	bg "$name" an-serve -q -k "$NET/site.key" -n site -s "$NET/$name" -t 5s "$@"
	wait_for "$RUNDIR/$name.out" '"event":"ready"' 20 || return 1
	jq -r '.addrs[0]' "$RUNDIR/$name.out" >"$RUNDIR/$name.addr"
}

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	unset AN_BOOTSTRAP
	mkdir -p "$NET/www/img" "$NET/www/a/b" "$NET/www/.git" "$NET/www/.well-known"
	printf '<h1>root</h1>\n' >"$NET/www/index.html"
	printf 'hello\n' >"$NET/www/hello.txt"
	printf 'SECRET=1\n' >"$NET/www/.env"
	printf '[core]\n' >"$NET/www/.git/config"
	printf '<h1>hidden index</h1>\n' >"$NET/www/.git/index.html"
	printf 'Contact: mailto:a@example.org\n' >"$NET/www/.well-known/security.txt"
	printf 'img\n' >"$NET/www/img/index.html"
	printf 'b\n' >"$NET/www/a/b/index.html"
	# an upstream that honours Expect: 100-continue (HTTP/1.1: python then
	# sends "100 Continue" before reading the body) and echoes the body
	local port
	port=$(free_port)
	bg up python3 -c 'import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        d = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        out = b"got " + d + b" expect=" + str(self.headers.get("Expect")).encode() + b"\n"
        self.send_response(200); self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close"); self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$port"
	local deadline=$((SECONDS + 10))
	until curl -sf -d x "http://127.0.0.1:$port/" >/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "the python upstream did not start" >&2; return 1; }
		sleep 0.1
	done
	an-keygen -k "$NET/site.key" >"$NET/site.id"
	export PH=$(jq -r .peerHash "$NET/site.id")
	serve site --sub "up=http://127.0.0.1:$port" "$NET/www" || return 1
	export SITE_ADDR=$(cat "$NET/site.addr")
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# get PATH [an-dial options...]: the site's answer to PATH, head included (-i).
get() {
	local path=$1
	shift
	run --separate-stderr timeout 30 an-dial -s -i -t 10s --state-dir "$T/s" --connect-to "$SITE_ADDR" \
		"$@" "an://$PH@site$path"
}

# field NAME: the value of NAME in the head in $output (CR dropped).
field() {
	printf '%s\n' "$output" | tr -d '\r' | sed -n "1,/^\$/s/^$1: //Ip" | head -n 1
}

# ---- dotfiles ----

@test "a dotfile is 404 as if it were absent" {
	get /.env
	[ "$status" -eq 1 ]
	[[ ${lines[0]} == "HTTP/1.1 404 "* ]]
	[[ $output != *SECRET* ]]
}

@test "a file in a dot directory is 404" {
	get /.git/config
	[[ ${lines[0]} == "HTTP/1.1 404 "* ]]
	[[ $output != *core* ]]
}

@test "a dot directory is 404, not a redirect that says it exists" {
	get /.git
	[[ ${lines[0]} == "HTTP/1.1 404 "* ]]
	[ -z "$(field Location)" ]
}

@test "a dot directory's index is not served" {
	get /.git/
	[[ ${lines[0]} == "HTTP/1.1 404 "* ]]
	[[ $output != *"hidden index"* ]]
}

@test "a percent-encoded dot does not reveal a dotfile" {
	get /%2eenv
	[[ ${lines[0]} == "HTTP/1.1 404 "* ]]
	[[ $output != *SECRET* ]]
}

@test "/.well-known/ is served" {
	get /.well-known/security.txt
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "HTTP/1.1 200 "* ]]
	[[ $output == *"Contact: mailto:a@example.org"* ]]
}

@test "--dotfiles serves dotfiles" {
	serve dot --dotfiles "$NET/www"
	run --separate-stderr timeout 30 an-dial -s -t 10s --state-dir "$T/s" --connect-to "$(cat "$NET/dot.addr")" \
		"an://$PH@site/.env"
	[ "$status" -eq 0 ]
	[ "$output" = "SECRET=1" ]
}

# ---- redirects ----

@test "a directory named with a leading // is redirected to a path, not to a host" {
	get //img
	[[ ${lines[0]} == "HTTP/1.1 301 "* ]]
	[ "$(field Location)" = /img/ ]
}

@test "a directory named with an empty segment is redirected to its normalised path" {
	get '/a//b?x=1'
	[[ ${lines[0]} == "HTTP/1.1 301 "* ]]
	[ "$(field Location)" = '/a/b/?x=1' ]
}

@test "a directory named with many leading slashes is redirected to a path" {
	get ///img
	[[ ${lines[0]} == "HTTP/1.1 301 "* ]]
	[ "$(field Location)" = /img/ ]
}

# ---- nosniff ----

@test "a file is served with X-Content-Type-Options: nosniff" {
	get /hello.txt
	[ "$status" -eq 0 ]
	[ "$(field X-Content-Type-Options)" = nosniff ]
}

@test "a 404 carries X-Content-Type-Options: nosniff" {
	get /missing
	[ "$status" -eq 1 ]
	[ "$(field X-Content-Type-Options)" = nosniff ]
}

@test "an upstream's answer gets X-Content-Type-Options: nosniff" {
	run --separate-stderr timeout 30 an-dial -s -i -t 10s --state-dir "$T/s" --connect-to "$SITE_ADDR" \
		-d x "an://$PH@up.site/"
	[ "$status" -eq 0 ]
	[ "$(field X-Content-Type-Options)" = nosniff ]
}

# ---- ETags ----

@test "the ETag carries no inode number" {
	get /hello.txt
	local etag ino
	etag=$(field ETag)
	ino=$(printf '%x' "$(stat -c %i "$NET/www/hello.txt")")
	[ -n "$etag" ]
	[[ $etag != *"$ino"* ]]
}

@test "the ETag is the same for a copy of the file with its times" {
	get /hello.txt
	local etag=$(field ETag)
	cp -p "$NET/www/hello.txt" "$NET/www/hello.txt.new"
	mv "$NET/www/hello.txt.new" "$NET/www/hello.txt" # a new inode, the same size and mtime
	get /hello.txt
	[ "$(field ETag)" = "$etag" ]
}

@test "If-None-Match with the ETag gives 304" {
	get /hello.txt
	local etag=$(field ETag)
	get /hello.txt -H "If-None-Match: $etag"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "HTTP/1.1 304 "* ]]
}

# ---- the upstream proxy ----

@test "Expect: 100-continue to an upstream that honours it is answered, not 502" {
	run --separate-stderr timeout 30 an-dial -s -t 10s --state-dir "$T/s" --connect-to "$SITE_ADDR" \
		-H 'Expect: 100-continue' -d hello "an://$PH@up.site/"
	[ "$status" -eq 0 ]
	[[ $output == "got hello expect="* ]]
}
