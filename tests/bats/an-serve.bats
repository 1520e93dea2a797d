#!/usr/bin/env bats
# an-serve: options and errors, the ready line, serving without anyone to
# publish to, publishing root and subdomain records observed with an-resolve
# on a private network of daemons on 127.0.0.1 (in-process node and through
# a daemon), republishing (seq grows), the access log, SIGTERM.  Bounded
# waits; every process started here is killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/common

N=4

setup_file() {
	export NET=$BATS_FILE_TMPDIR/net
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	unset AN_BOOTSTRAP
	start_network "$N" -q
	mkdir -p "$NET/site/docs" "$NET/api"
	echo '<h1>home</h1>' >"$NET/site/index.html"
	echo 'hello' >"$NET/site/hello.txt"
	echo 'api root' >"$NET/api/index.html"
}

teardown_file() {
	stop_all
}

setup() {
	T=$BATS_TEST_TMPDIR
	an-keygen -k "$T/site.key" >"$T/site.id"
	PH=$(jq -r .peerHash "$T/site.id")
	SERVE_PID=
}

teardown() {
	if [ -n "$SERVE_PID" ]; then
		kill "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
}

# Start an-serve in the background: stdout in $T/out, stderr in $T/err.
serve() {
	# emptied here, not by the child's redirection: that runs after the fork,
	# so wait_for could still find a previous run's ready line
	: >"$T/out"
	: >"$T/err"
	an-serve "$@" >>"$T/out" 2>>"$T/err" &
	SERVE_PID=$!
	wait_for "$T/out" '"event":"ready"' 20
}

# ---- options and errors ----

@test "a missing -k is a usage error" {
	run --separate-stderr an-serve --name site "$NET/site"
	[ "$status" -eq 2 ]
	[[ $stderr == "an-serve: missing -k KEYFILE"* ]]
}

@test "a missing --name is a usage error" {
	run --separate-stderr an-serve -k "$T/site.key" "$NET/site"
	[ "$status" -eq 2 ]
	[[ $stderr == *"missing --name"* ]]
}

@test "a missing DIR without --upstream is a usage error" {
	run --separate-stderr an-serve -k "$T/site.key" --name site
	[ "$status" -eq 2 ]
}

@test "DIR and --upstream together are a usage error" {
	run --separate-stderr an-serve -k "$T/site.key" --name site --upstream http://127.0.0.1:1 "$NET/site"
	[ "$status" -eq 2 ]
	[[ $stderr == *"exclusive"* ]]
}

@test "an invalid --republish duration is a usage error" {
	run --separate-stderr an-serve -k "$T/site.key" --name site --republish soon "$NET/site"
	[ "$status" -eq 2 ]
}

@test "a directory that does not exist exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" "$T/nothere"
	[ "$status" -eq 3 ]
	[[ $stderr == *"unable to open directory '$T/nothere'"* ]]
	[ -z "$output" ]
}

@test "a malformed upstream URL exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --upstream https://127.0.0.1:80
	[ "$status" -eq 3 ]
	[[ $stderr == *"invalid upstream URL"* ]]
}

@test "an upstream given by host name is refused (numeric addresses only)" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --upstream http://localhost:8080
	[ "$status" -eq 3 ]
}

@test "an invalid name exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name Bad_Name -s "$T/s" "$NET/site"
	[ "$status" -eq 3 ]
	[[ $stderr == *"invalid name 'Bad_Name'"* ]]
}

@test "a --sub without LABEL= exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --sub "$NET/api" "$NET/site"
	[ "$status" -eq 3 ]
	[[ $stderr == *"invalid --sub"* ]]
}

@test "a --sub label with a dot exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --sub "a.b=$NET/api" "$NET/site"
	[ "$status" -eq 3 ]
}

@test "a key file that does not exist exits with an error naming it" {
	run --separate-stderr an-serve -k "$T/none.key" --name site -s "$T/s" "$NET/site"
	[ "$status" -eq 4 ] # a system error (DESIGN.md, Exit codes), not bad data
	[[ $stderr == *"unable to load key '$T/none.key': No such file or directory"* ]]
}

@test "an address that cannot be listened on exits 4" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --listen /ip4/192.0.2.1/tcp/0 "$NET/site"
	[ "$status" -eq 4 ]
	[[ $stderr == *"unable to listen on '/ip4/192.0.2.1/tcp/0'"* ]]
}

# ---- serving without publishing ----

@test "with no daemon and no bootstrap peer it serves and says nothing was published" {
	serve -k "$T/site.key" --name site -s "$T/s" "$NET/site"
	[ "$(jq -r .published "$T/out")" = false ]
	[ "$(jq -r .backend "$T/out")" = none ]
	[ "$(jq -r '.names[0].stored' "$T/out")" -eq 0 ]
	grep -q "nothing was published" "$T/err"
}

@test "an unreachable bootstrap peer: it serves and says the peer could not be reached" {
	serve -k "$T/site.key" --name site -s "$T/s" --bootstrap /ip4/127.0.0.1/tcp/1 -t 2s "$NET/site"
	[ "$(jq -r .published "$T/out")" = false ]
	grep -q "no bootstrap peer could be reached: nothing was published" "$T/err"
}

@test "a republish interval not shorter than the validity is warned about" {
	serve -k "$T/site.key" --name site -s "$T/s" --republish 3d "$NET/site"
	grep -q "warning: records valid for 172800s are republished only every 259200s" "$T/err"
}

@test "the ready line names the peer, its addresses with /p2p/ and each site's an:// URL" {
	serve -k "$T/site.key" --name site --sub "api=$NET/api" -s "$T/s" "$NET/site"
	[ "$(jq -r .peerId "$T/out")" = "$(jq -r .peerId "$T/site.id")" ]
	[ "$(jq -r .peerHash "$T/out")" = "$PH" ]
	[[ $(jq -r '.addrs[0]' "$T/out") == /ip4/127.0.0.1/tcp/*/p2p/$(jq -r .peerId "$T/site.id") ]]
	[ "$(jq -r '.names[0].url' "$T/out")" = "an://$PH@site" ]
	[ "$(jq -r '.names[1].url' "$T/out")" = "an://$PH@api.site" ]
}

@test "--announce addresses are the ones published" {
	serve -k "$T/site.key" --name site -s "$T/s" --announce /ip4/198.51.100.7/tcp/4001 "$NET/site"
	[ "$(jq -r '.addrs | length' "$T/out")" -eq 1 ]
	[[ $(jq -r '.addrs[0]' "$T/out") == /ip4/198.51.100.7/tcp/4001/p2p/* ]]
}

@test "SIGTERM stops it with exit status 0" {
	serve -k "$T/site.key" --name site -s "$T/s" "$NET/site"
	kill -TERM "$SERVE_PID"
	local st=0
	wait "$SERVE_PID" || st=$?
	SERVE_PID=
	[ "$st" -eq 0 ]
	grep -q "signal 15: shutting down" "$T/err"
}

@test "SIGINT stops it with exit status 0" {
	serve -k "$T/site.key" --name site -s "$T/s" -q "$NET/site"
	kill -INT "$SERVE_PID"
	local st=0
	wait "$SERVE_PID" || st=$?
	SERVE_PID=
	[ "$st" -eq 0 ]
}

@test "-q keeps standard error empty while serving" {
	serve -k "$T/site.key" --name site -s "$T/s" -q "$NET/site"
	an-dial -s -o "$T/got" --connect-to "$(jq -r '.addrs[0]' "$T/out")" "an://$PH@site/hello.txt"
	cmp "$T/got" "$NET/site/hello.txt"
	[ ! -s "$T/err" ]
}

@test "a request is served and written to the access log file" {
	serve -k "$T/site.key" --name site -s "$T/s" --access-log "$T/access.log" "$NET/site"
	an-dial -s -o "$T/got" --connect-to "$(jq -r '.addrs[0]' "$T/out")" "an://$PH@site/hello.txt"
	cmp "$T/got" "$NET/site/hello.txt"
	wait_for "$T/access.log" 'site "GET /hello.txt" 200 6 ' 5
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z 12D3KooW[1-9A-HJ-NP-Za-km-z]+ site "GET /hello.txt" 200 6 [0-9]+ms ok$' "$T/access.log"
}

@test "the access log goes to standard error by default" {
	serve -k "$T/site.key" --name site -s "$T/s" "$NET/site"
	run an-dial -s --connect-to "$(jq -r '.addrs[0]' "$T/out")" "an://$PH@site/missing"
	[ "$status" -eq 1 ]
	wait_for "$T/err" 'site "GET /missing" 404 ' 5
}

# ---- publishing ----

@test "the root record is published with the server's addresses and resolves" {
	serve -k "$T/site.key" --name site -s "$T/s" --bootstrap "$BOOT" "$NET/site"
	[ "$(jq -r .published "$T/out")" = true ]
	[ "$(jq -r .backend "$T/out")" = node ]
	[ "$(jq -r '.names[0].stored' "$T/out")" -ge 1 ]
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" --addrs "an://$PH@site"
	[ "$status" -eq 0 ]
	[ "$output" = "$(jq -r '.addrs[0]' "$T/out")" ]
}

@test "a subdomain record is published against the root and resolves with its chain" {
	serve -k "$T/site.key" --name site --sub "api=$NET/api" -s "$T/s" --bootstrap "$BOOT" "$NET/site"
	[ "$(jq -r '.names[1].stored' "$T/out")" -ge 1 ]
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" "an://$PH@api.site"
	[ "$status" -eq 0 ]
	[ "$(jq -r .record.dns.name <<<"$output")" = api ]
	[ "$(jq -r '.chain[0].dns.name' <<<"$output")" = site ]
	[ "$(jq -r '.record.multiaddrs[0]' <<<"$output")" = "$(jq -r '.addrs[0]' "$T/out")" ]
}

@test "a published site is fetched end to end by name" {
	serve -k "$T/site.key" --name site --sub "api=$NET/api" -s "$T/s" --bootstrap "$BOOT" "$NET/site"
	an-dial -s -o "$T/got" -s --state-dir "$T/d" --bootstrap "$BOOT" "an://$PH@api.site/"
	cmp "$T/got" "$NET/api/index.html"
}

@test "publishing through the daemon of the state directory" {
	serve -k "$T/site.key" --name site --sub "api=$NET/api" -s "$NET/n2" "$NET/site"
	[ "$(jq -r .backend "$T/out")" = daemon ]
	[ "$(jq -r .published "$T/out")" = true ]
	[ "$(jq -r '.names[1].stored' "$T/out")" -ge 1 ]
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" --addrs "an://$PH@site"
	[ "$status" -eq 0 ]
	[ "$output" = "$(jq -r '.addrs[0]' "$T/out")" ]
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" --addrs "an://$PH@api.site"
	[ "$status" -eq 0 ]
	[ "$output" = "$(jq -r '.addrs[0]' "$T/out")" ]
}

@test "records are republished on schedule with a higher seq" {
	serve -k "$T/site.key" --name site -s "$T/s" --bootstrap "$BOOT" --republish 2s "$NET/site"
	first=$(jq -r '.names[0].seq' "$T/out")
	wait_for "$T/err" "republished 'site' \\(seq [0-9]+\\): stored by [1-9]" 15
	local deadline=$((SECONDS + 10)) seq=0
	while [ "$SECONDS" -lt "$deadline" ]; do
		seq=$(an-resolve -s "$T/r" --bootstrap "$BOOT" "an://$PH@site" | jq -r .record.seq)
		[ "$seq" -gt "$first" ] && break
		sleep 0.5
	done
	[ "$seq" -gt "$first" ]
}

@test "a restarted server's records win over its earlier ones" {
	serve -k "$T/site.key" --name site -s "$T/s" --bootstrap "$BOOT" "$NET/site"
	first=$(jq -r '.names[0].seq' "$T/out")
	kill -TERM "$SERVE_PID"
	rc=0
	wait "$SERVE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	serve -k "$T/site.key" --name site -s "$T/s" --bootstrap "$BOOT" "$NET/site"
	second=$(jq -r '.names[0].seq' "$T/out")
	[ "$second" -gt "$first" ]
	[ "$(jq -r '.names[0].stored' "$T/out")" -ge 1 ]
	run --separate-stderr an-resolve -s "$T/r" --bootstrap "$BOOT" "an://$PH@site"
	[ "$(jq -r .record.seq <<<"$output")" = "$second" ]
}

# ---- relays (on 127.0.0.1; the NAT case is tests/bats/relay-nat.bats) ----

# relay: an an-relay on 127.0.0.1 for this test; RELAY_ADDR its address.
relay() {
	an-keygen -k "$T/relay.key" >/dev/null
	an-relay -q -k "$T/relay.key" >"$T/relay.out" 2>"$T/relay.err" &
	RELAY_PID=$!
	wait_for "$T/relay.out" '"event":"ready"' 10
	RELAY_ADDR=$(jq -r '.addrs[0]' "$T/relay.out")
}

stop_relay() {
	kill "$RELAY_PID" 2>/dev/null || true
	wait "$RELAY_PID" 2>/dev/null || true
}

@test "--no-direct without --relay is a usage error" {
	run --separate-stderr an-serve -k "$T/site.key" --name site --no-direct "$NET/site"
	[ "$status" -eq 2 ]
	[[ $stderr == *"--no-direct needs at least one --relay"* ]]
}

@test "a relay address without its /p2p/ peer ID exits 3" {
	run --separate-stderr an-serve -k "$T/site.key" --name site -s "$T/s" --relay /ip4/127.0.0.1/tcp/1 "$NET/site"
	[ "$status" -eq 3 ]
	[[ $stderr == *"invalid relay address '/ip4/127.0.0.1/tcp/1'"* ]]
}

@test "--relay: the ready line lists the circuit address after the direct one" {
	relay
	serve -k "$T/site.key" --name site -s "$T/s" --relay "$RELAY_ADDR" "$NET/site"
	stop_relay
	id=$(jq -r .peerId "$T/site.id")
	run jq -r '.addrs[1]' "$T/out"
	[ "$output" = "$RELAY_ADDR/p2p-circuit/p2p/$id" ]
	run jq -r '.addrs[0]' "$T/out"
	[[ $output == /ip4/127.0.0.1/tcp/*/p2p/$id ]]
	grep -q "reserved a slot on relay '$RELAY_ADDR'" "$T/err"
}

@test "--relay --no-direct: only the circuit address is listed" {
	relay
	serve -k "$T/site.key" --name site -s "$T/s" --relay "$RELAY_ADDR" --no-direct "$NET/site"
	stop_relay
	run jq -r '.addrs | length' "$T/out"
	[ "$output" = 1 ]
	run jq -r '.addrs[0]' "$T/out"
	[[ $output == "$RELAY_ADDR/p2p-circuit/p2p/"* ]]
}

@test "a relay that does not answer is retried, and the site is served anyway" {
	an-keygen -k "$T/relay.key" >"$T/relay.id"
	dead=/ip4/127.0.0.1/tcp/$(free_port)/p2p/$(jq -r .peerId "$T/relay.id")
	serve -k "$T/site.key" --name site -s "$T/s" --relay "$dead" -t 2s "$NET/site"
	wait_for "$T/err" "unable to reserve on relay '$dead': .*retrying in 1s" 10
	wait_for "$T/err" "retrying in 2s" 10
	run jq -r '.addrs | length' "$T/out"
	[ "$output" = 1 ]
}
