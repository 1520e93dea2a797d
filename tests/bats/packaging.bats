#!/usr/bin/env bats
# The Debian package: dpkg-buildpackage -us -uc -b builds it from a copy of
# the source tree (the checkout's tracked and unignored files; the checkout
# is never written to), lintian finds no error or warning, and on this
# machine it installs (units disabled), its programs sign and verify from
# /usr/bin, man reads its pages, systemd-analyze accepts its units, and
# dpkg --purge leaves none of its files behind.  One build for the file, in
# setup_file: about 40 CPU-seconds, 3m20s of wall time on the 2-core VM at
# load average 11; the tests after it take seconds.
#
# It installs into the running system: it refuses to run when a package
# named alternet is installed already, and purges its own in teardown_file.

bats_require_minimum_version 1.5.0

# dpkg_wait ARGS: dpkg ARGS, tried again for up to 120 s while another dpkg
# or apt (another test, a helper's apt-get) holds the dpkg lock.
dpkg_wait() {
	local deadline=$((SECONDS + 120)) out rc
	while :; do
		out=$(dpkg "$@" 2>&1) && { printf '%s\n' "$out"; return 0; }
		rc=$?
		if [[ $out == *"lock"* ]] && [ $SECONDS -lt $deadline ]; then
			sleep 1
			continue
		fi
		printf '%s\n' "$out"
		return $rc
	done
}

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	cd "$AN_TOP" || return 1
	for t in dpkg-buildpackage dh lintian fakeroot systemd-analyze man git; do
		command -v $t >/dev/null || { echo "$t is not installed (tools/install-deps test)"; return 1; }
	done
	if dpkg-query -W -f='${Status}' alternet 2>/dev/null | grep -q ' installed$'; then
		echo "a package alternet is installed already: this test would replace and purge it"
		return 1
	fi
	for f in /var/lib/alternet /var/lib/private/alternet; do
		[ ! -e "$f" ] && [ ! -L "$f" ] || { echo "$f exists already: this test would purge it"; return 1; }
	done
	export PKGTMP=$BATS_FILE_TMPDIR/pkg
	mkdir -p "$PKGTMP/alternet"
	git ls-files -z --cached --others --exclude-standard |
		tar --null -T - -cf - | tar -C "$PKGTMP/alternet" -xf - || return 1
	(cd "$PKGTMP/alternet" && dpkg-buildpackage -us -uc -b) >"$PKGTMP/build.log" 2>&1 ||
		{ tail -n 40 "$PKGTMP/build.log"; return 1; }
	version=$(cd "$PKGTMP/alternet" && dpkg-parsechangelog -S Version)
	export DEB=$PKGTMP/alternet_${version}_$(dpkg --print-architecture).deb
	export CHANGES=${DEB%.deb}.changes
	[ -f "$DEB" ] && [ -f "$CHANGES" ] || { ls "$PKGTMP"; return 1; }
}

teardown_file() {
	[ ! -f "$BATS_FILE_TMPDIR/made-private" ] || . "$BATS_FILE_TMPDIR/made-private"
	if dpkg-query -W -f='${Status}' alternet 2>/dev/null | grep -q ' installed$'; then
		dpkg_wait --purge alternet >/dev/null
	fi
	rm -rf /var/lib/alternet /var/lib/private/alternet
	[ -z "${MADE_PRIVATE:-}" ] || rmdir /var/lib/private
}

setup() {
	[ -f "${DEB:-}" ] || { echo "no package was built"; return 1; }
}

@test "debian/changelog's version is configure.ac's AC_INIT version" {
	cd "$AN_TOP"
	ac=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' configure.ac)
	deb=$(dpkg-parsechangelog -l debian/changelog -S Version)
	[ -n "$ac" ] && [ "$ac" = "$deb" ] || { echo "configure.ac '$ac', debian/changelog '$deb'"; return 1; }
}

@test "debian/control build-depends on every build package of tools/install-deps" {
	cd "$AN_TOP"
	want=$(sed -n '/^build_pkgs="/,/"/p' tools/install-deps | sed 's/^build_pkgs=//; s/"//g' | tr ' ' '\n' | grep .)
	have=$(awk '/^Build-Depends:/{f=1; sub(/^Build-Depends:/, "")} f&&/^[^ ]/&&!/^Build-Depends/{f=0} f' debian/control |
		tr ',' '\n' | sed 's/([^)]*)//; s/ //g' | grep .)
	[ "$(wc -l <<<"$want")" -ge 5 ] && [ "$(wc -l <<<"$have")" -ge 5 ] || { echo "read '$want' / '$have'"; return 1; }
	for p in $want; do
		[ "$p" = build-essential ] && continue
		grep -qxF "$p" <<<"$have" || { echo "tools/install-deps builds with $p; debian/control's Build-Depends lacks it"; return 1; }
	done
}

@test "the build leaves the checkout as it was" {
	cd "$AN_TOP"
	for f in debian/files debian/alternet debian/.debhelper debian/debhelper-build-stamp \
		debian/alternet.substvars; do
		[ ! -e "$f" ] || { echo "the build wrote $AN_TOP/$f"; return 1; }
	done
	run ls ../alternet_*.deb ../alternet_*.changes
	[ "$status" -ne 0 ] || { echo "beside the checkout: $output"; return 1; }
}

@test "lintian finds no error and no warning" {
	run lintian "$CHANGES"
	run grep -E '^[EW]: ' <<<"$output"
	[ "$status" -eq 1 ] || { echo "$output"; return 1; }
}

@test "the package installs programs, man pages, completions and units, no unit enabled" {
	run dpkg_wait -i "$DEB"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run dpkg -L alternet
	for f in /usr/bin/an-keygen /usr/bin/an-sign /usr/bin/an-verify /usr/bin/an-dht \
		/usr/share/man/man1/an-sign.1.gz /usr/share/bash-completion/completions/an-sign \
		/usr/share/zsh/vendor-completions/_an-sign /usr/share/fish/vendor_completions.d/an-sign.fish \
		/lib/systemd/system/an-dht.service /lib/systemd/system/an-serve@.service \
		/lib/systemd/system/an-relay.service /lib/systemd/system/an-republish.timer \
		/usr/share/doc/alternet/README.Debian; do
		grep -qxF "$f" <<<"$output" || { echo "the package lacks $f"; return 1; }
		[ -e "$f" ] || { echo "$f is not on disk"; return 1; }
	done
	run find /etc/systemd/system -name 'an-*'
	[ -z "$output" ] || { echo "enabled: $output"; return 1; }
}

@test "an-keygen, an-sign and an-verify from /usr/bin make and check a record" {
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr /usr/bin/an-keygen -k site.key
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	/usr/bin/an-sign -k site.key --name mysite --type root --addr /ip4/127.0.0.1/tcp/4001 >root.json
	run --separate-stderr /usr/bin/an-verify root.json
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[[ $output == *'"valid":true'* ]] || { echo "$output"; return 1; }
}

@test "man finds and renders the installed page" {
	run -0 man -w an-sign
	[ "$output" = /usr/share/man/man1/an-sign.1.gz ] || { echo "$output"; return 1; }
	MANWIDTH=80 run -0 man -P cat an-sign
	[[ $output == *SYNOPSIS* && $output == *an-sign* ]] || { echo "$output"; return 1; }
}

@test "systemd-analyze verify accepts the installed units without a word" {
	run -0 systemd-analyze verify /lib/systemd/system/an-dht.service /lib/systemd/system/an-serve@.service \
		/lib/systemd/system/an-relay.service /lib/systemd/system/an-republish.service \
		/lib/systemd/system/an-republish.timer
	[ -z "$output" ] || { echo "$output"; return 1; }
}

# The units' state (DynamicUser keeps it under /var/lib/private) is made as
# a service would, then purged with the package.
@test "dpkg --purge removes every file of the package and the units' state" {
	run -0 dpkg -L alternet
	files=$(while read -r f; do [ -d "$f" ] || echo "$f"; done <<<"$output")
	[ "$(wc -l <<<"$files")" -ge 30 ] || { echo "dpkg -L: $files"; return 1; }
	if [ ! -d /var/lib/private ]; then
		mkdir -m 0700 /var/lib/private
		echo "export MADE_PRIVATE=1" >"$BATS_FILE_TMPDIR/made-private"
	fi
	mkdir -m 0700 /var/lib/private/alternet
	ln -sfn private/alternet /var/lib/alternet
	touch /var/lib/private/alternet/identity.key
	run dpkg_wait --purge alternet
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run dpkg-query -W -f='${Status}' alternet
	[[ $output != *" installed" ]] || { echo "still: $output"; return 1; }
	while read -r f; do
		[ ! -e "$f" ] && [ ! -L "$f" ] || { echo "left after purge: $f"; return 1; }
	done <<<"$files"
	for f in /var/lib/alternet /var/lib/private/alternet /usr/share/doc/alternet; do
		[ ! -e "$f" ] && [ ! -L "$f" ] || { echo "left after purge: $f"; return 1; }
	done
}
