#!/usr/bin/env bats
# Two sites through an-dial --gateway in headless Chromium: site B (an
# attacker's) must neither read nor control site A.  B's attack page sets
# cookies (one with Domain=localhost, by script and by its server), registers
# a service worker for scope "/" (its server sends Service-Worker-Allowed: /)
# that answers "pwned" when any secret* page is opened, and fetches A's page; then the
# same browser profile opens A's page.  Both are opened by the gateway's path
# form (/an/PEERHASH@NAME/...), as links and bookmarks give them.  The
# browser is driven over the DevTools protocol (tests/browser/xsite.mjs, no
# npm package, never a downloaded browser).  Only 127.0.0.1; every process
# bounded and killed in teardown_file.

bats_require_minimum_version 1.5.0
load ../lib/common

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	command -v chromium >/dev/null || {
		echo "chromium is missing: install Debian's package (tools/install-deps test, or apt-get install chromium)" >&2
		return 1
	}
	command -v node >/dev/null || { echo "node is missing" >&2; return 1; }
	two_nodes || return 1
	# site A: a page with a secret
	mkdir -p "$NET/a"
	printf '<!DOCTYPE html>\n<title>A</title><p id="secret">secret of A</p>\n' >"$NET/a/secret.html"
	an-keygen -k "$NET/a.key" >"$NET/a.id"
	export PA=$(jq -r .peerHash "$NET/a.id")
	serve sitea -k "$NET/a.key" -n sitea -s "$NET/sa" "$NET/a" || return 1
	# site B: the attacker, behind a web server that sets fields
	mkdir -p "$NET/b"
	printf '<!DOCTYPE html>\n<title>B</title><p>site B</p>\n' >"$NET/b/attack.html"
	cat >"$NET/b/sw.js" <<'JS'
self.addEventListener('install', (e) => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
	if (e.request.mode === 'navigate' && new URL(e.request.url).pathname.includes('secret'))
		e.respondWith(new Response('<p id="pwned">pwned by B</p>', {headers: {'Content-Type': 'text/html'}}));
});
JS
	cat >"$NET/b/headers.json" <<'JSON'
{"/sw.js": {"Service-Worker-Allowed": "/", "Content-Type": "text/javascript"},
 "/attack.html": {"Set-Cookie": ["bserver=1; Domain=localhost; Path=/", "bserverlocal=1; Domain=127.0.0.1; Path=/"]}}
JSON
	export UP_PORT=$(free_port)
	bg upstream python3 "$AN_TOP/tests/browser/upstream.py" "$UP_PORT" "$NET/b" 300
	an-keygen -k "$NET/b.key" >"$NET/b.id"
	export PB=$(jq -r .peerHash "$NET/b.id")
	serve siteb -k "$NET/b.key" -n siteb -s "$NET/sb" --upstream "http://127.0.0.1:$UP_PORT" || return 1
	export GW_PORT=$(free_port)
	bg gw an-dial --state-dir "$NET/gw" --bootstrap "$BOOT" -t 10s --gateway "127.0.0.1:$GW_PORT"
	wait_for "$NET/gw.err" 'gateway listening' 10 || return 1
	local gw=http://127.0.0.1:$GW_PORT
	timeout 120 node "$AN_TOP/tests/browser/xsite.mjs" "$NET/profile" "$gw/an/$PB@siteb/attack.html" \
		"$gw/an/$PA@sitea/secret.html" "http://sitea.$PA.localhost:$GW_PORT/secret.html" \
		>"$NET/xsite.json" 2>"$NET/xsite.err" || { cat "$NET/xsite.err" "$NET/gw.err" >&2; return 1; }
}

teardown_file() {
	stop_all
}

# r JQ: the driver's report, filtered (the whole report on stderr, shown when a test fails).
r() {
	jq . "$NET/xsite.json" >&2
	jq -r "$1" "$NET/xsite.json"
}

@test "the browser opened each site, on an origin of its own" {
	[ "$(r .b.origin)" = "http://siteb.$PB.localhost:$GW_PORT" ]
	[ "$(r .a.origin)" = "http://sitea.$PA.localhost:$GW_PORT" ]
	[ "$(r .a.body)" != "" ]
}

@test "site B cannot read site A's page (a fetch fails, a no-cors fetch is opaque)" {
	for u in $(r '.b.read | keys[]'); do
		[[ "$(r ".b.read[\"$u\"]")" == blocked:* ]] || { echo "$u: $(r ".b.read[\"$u\"]")"; return 1; }
		[[ "$(r ".b.nocors[\"$u\"]")" == "opaque 0 0" ]] || { echo "$u: $(r ".b.nocors[\"$u\"]")"; return 1; }
	done
}

@test "site B's service worker does not control site A's page" {
	[ "$(r .b.sw)" = active ] # the worker was there to try
	[ "$(r .a.controlled)" = false ]
	[ "$(r .a.body)" = "secret of A" ]
}

@test "no cookie site B set reaches site A" {
	[[ "$(r .b.cookie)" == *fromb=1* ]] # B did set them
	[[ "$(r .a.cookie)" != *fromb* ]]
	[[ "$(r .a.cookie)" != *bserver* ]]
}
