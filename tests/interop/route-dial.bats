#!/usr/bin/env bats
# route-dial.bats: the C client (an-dial) against an unmodified js-libp2p
# node serving /an/route/1.0.0 from directories (js/route-serve.mjs, written
# from man/an-route.7, not from our server).  --connect-to skips the DHT, so
# this checks the content protocol alone: route line and did, heads, bodies,
# statuses, subdomain routing, and the peer-ID check of the dial.
#
# One js server for the file (started in setup_file, killed in
# teardown_file), only 127.0.0.1, every an-dial bounded by -t and timeout(1).

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	"$AN_TOP/tests/interop/setup" || return 1
	command -v an-dial >/dev/null || { echo "an-dial is not on PATH" >&2; return 1; }
	export D=$BATS_FILE_TMPDIR
	run_dir "$D"
	mkdir -p "$D/root/img" "$D/api" "$D/other"
	printf '<h1>root</h1>\n' >"$D/root/index.html"
	printf '<h1>api</h1>\n' >"$D/api/index.html"
	head -c 5242880 /dev/urandom >"$D/root/img/big.bin"
	printf 'outside\n' >"$D/secret.txt"
	bg js node "$AN_TOP/tests/interop/js/route-serve.mjs" --key "$D/js.key" \
		--listen /ip4/127.0.0.1/tcp/0 --serve-for 600 --site "mysite=$D/root" --site "api.mysite=$D/api"
	wait_for "$D/js.out" '"event":"listening"' 30 || return 1
	# a second js node: another key, for the wrong-peer cases
	bg other node "$AN_TOP/tests/interop/js/route-serve.mjs" --key "$D/other.key" \
		--listen /ip4/127.0.0.1/tcp/0 --serve-for 600 --site "mysite=$D/other"
	wait_for "$D/other.out" '"event":"listening"' 30 || return 1
}

teardown_file() {
	stop_all
}

setup() {
	local l='select(.event == "listening")'
	ADDR=$(jq -r "$l | .addrs[0]" "$D/js.out")
	ID=$(jq -r "$l | .peerId" "$D/js.out")
	PH=$(jq -r "$l | .peerHash" "$D/js.out")
	OTHER_ADDR=$(jq -r "$l | .addrs[0]" "$D/other.out")
	S=$BATS_TEST_TMPDIR/state
}

# fetch ARGS...: an-dial against the js server, bounded.
fetch() {
	run --separate-stderr timeout 60 an-dial --state-dir "$S" -t 20s --connect-to "$ADDR" "$@"
}

@test "C client, js server: a page is byte-identical" {
	fetch -o "$BATS_TEST_TMPDIR/index.html" "an://$PH@mysite/"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/index.html" "$D/root/index.html"
}

@test "C client, js server: a 5 MiB file arrives with the same sha256, no progress bar in a pipe" {
	run --separate-stderr bash -c "timeout 60 an-dial --state-dir '$S' -t 20s --connect-to '$ADDR' \
		'an://$PH@mysite/img/big.bin' | sha256sum"
	[ "$status" -eq 0 ]
	[ "${output%% *}" = "$(sha256sum <"$D/root/img/big.bin" | cut -d' ' -f1)" ]
	[ -z "$stderr" ]
}

@test "C client, js server: a subdomain is routed to its own directory" {
	fetch "an://$PH@api.mysite/"
	[ "$status" -eq 0 ]
	[ "$output" = "<h1>api</h1>" ]
}

@test "C client, js server: the full peer ID is accepted for the peer hash" {
	fetch "an://$ID@mysite/index.html"
	[ "$status" -eq 0 ]
	[ "$output" = "<h1>root</h1>" ]
}

@test "C client, js server: 404 writes the body, says so on stderr, exits 1" {
	fetch "an://$PH@mysite/missing.html"
	[ "$status" -eq 1 ]
	[ "$output" = "404 Not Found" ]
	[[ "$stderr" == *"HTTP 404"* ]]
}

@test "C client, js server: -i writes the status line and fields first" {
	fetch -i "an://$PH@mysite/"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]]
	[[ "$output" == *"Content-Length: 14"* ]]
}

@test "C client, js server: path traversal is refused with 400" {
	fetch "an://$PH@mysite/../secret.txt"
	[ "$status" -eq 1 ]
	[[ "$output" != *outside* ]]
	[[ "$stderr" == *"HTTP 400"* ]]
	fetch "an://$PH@mysite/img/%2e%2e/%2e%2e/secret.txt"
	[ "$status" -eq 1 ]
	[[ "$output" != *outside* ]]
}

@test "C client, js server: a name the server does not serve is 421" {
	fetch "an://$PH@unknown/"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"HTTP 421"* ]]
}

@test "C client, js server: --connect-to a peer other than the URL's is refused before dialing" {
	run --separate-stderr timeout 60 an-dial --state-dir "$S" -t 20s --connect-to "$OTHER_ADDR" "an://$PH@mysite/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"names a peer other than"* ]]
}

@test "C client, js server: an address without /p2p/ is still checked against the peer hash" {
	# the other node's address, the first node's peer hash: the handshake proves the mismatch
	run --separate-stderr timeout 60 an-dial --state-dir "$S" -t 20s --connect-to "${OTHER_ADDR%/p2p/*}" "an://$PH@mysite/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"does not hold the publisher's key"* ]]
}

@test "C client, js server: a URL with the full peer ID dials that ID only" {
	# the ID in the URL goes into the dial: another node at the address fails the handshake
	run --separate-stderr timeout 60 an-dial --state-dir "$S" -t 20s --connect-to "${OTHER_ADDR%/p2p/*}" "an://$ID@mysite/"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "C client, js server: several requests in a row each get their own stream" {
	# the server's log already has earlier tests' lines: only the new ones count
	local before
	before=$(wc -l <"$D/js.out")
	for f in index.html img/big.bin index.html; do
		fetch -o "$BATS_TEST_TMPDIR/out" "an://$PH@mysite/$f"
		[ "$status" -eq 0 ]
		cmp "$BATS_TEST_TMPDIR/out" "$D/root/$f"
	done
	# the server served each of the three, in order
	local want='["/index.html",200]
["/img/big.bin",200]
["/index.html",200]' deadline=$((SECONDS + 5))
	until served=$(tail -n +$((before + 1)) "$D/js.out" | jq -c 'select(.event == "served") | [.target, .status]') &&
		[ "$served" = "$want" ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "served: $served" >&2; return 1; }
		sleep 0.1
	done
}

@test "C client, js server: no response head within -t is a timeout (exit 4)" {
	start=$SECONDS
	run --separate-stderr timeout 60 an-dial --state-dir "$S" -t 2s --connect-to "$ADDR" "an://$PH@mysite/__hang"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"no response in time"* ]]
	[ $((SECONDS - start)) -lt 15 ]
}

@test "C client, js server: a stream reset mid-body is a transfer error (exit 4), never a short success" {
	fetch -o "$BATS_TEST_TMPDIR/cut" "an://$PH@mysite/__reset"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"transfer failed after"* ]]
}
