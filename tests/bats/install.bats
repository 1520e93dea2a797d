#!/usr/bin/env bats
# make install honours PREFIX and DESTDIR and installs programs, man pages,
# bash, zsh and fish completions and the systemd units; make uninstall
# removes them again; the installed units pass systemd-analyze.  make builds
# into $BUILDDIR (default build), as the Makefile reads it.

bats_require_minimum_version 1.5.0

setup() {
	cd "$AN_TOP" || exit 1
	dest=$(mktemp -d)
	PROGRAMS=$(ls cmd/an-*.c | sed 's|cmd/||; s|\.c$||')
	UNITS=$(cd systemd && ls *.service *.timer)
	[ "$(wc -w <<<"$PROGRAMS")" -ge 8 ] && [ "$(wc -w <<<"$UNITS")" -ge 5 ] ||
		{ echo "AN_TOP=$AN_TOP: programs '$PROGRAMS', units '$UNITS'"; return 1; }
}

teardown() {
	rm -rf "$dest"
}

@test "make install puts programs, man pages, completions and units under DESTDIR/PREFIX" {
	run make -s install PREFIX=/opt/an DESTDIR="$dest"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	for p in $PROGRAMS; do
		[ -x "$dest/opt/an/bin/$p" ] || { echo "no $p"; return 1; }
		[ -f "$dest/opt/an/share/man/man1/$p.1" ] || { echo "no $p.1"; return 1; }
		[ -f "$dest/opt/an/share/bash-completion/completions/$p" ] || { echo "no completion $p"; return 1; }
		[ -f "$dest/opt/an/share/zsh/vendor-completions/_$p" ] || { echo "no zsh completion $p"; return 1; }
		[ -f "$dest/opt/an/share/fish/vendor_completions.d/$p.fish" ] || { echo "no fish completion $p"; return 1; }
	done
	for u in $UNITS; do
		[ -f "$dest/opt/an/lib/systemd/system/$u" ] || { echo "no unit $u"; return 1; }
	done
	# the units run the installed programs
	grep -q '^ExecStart=/opt/an/bin/an-dht daemon ' "$dest/opt/an/lib/systemd/system/an-dht.service"
	run grep -l /usr/bin/ "$dest"/opt/an/lib/systemd/system/*
	[ -z "$output" ] || { echo "units still naming /usr/bin/: $output"; return 1; }
	# nothing outside DESTDIR
	[ -z "$(find "$dest" -mindepth 1 -maxdepth 1 ! -name opt)" ]
}

@test "make uninstall removes what make install put there" {
	make -s install PREFIX=/opt/an DESTDIR="$dest"
	run make -s uninstall PREFIX=/opt/an DESTDIR="$dest"
	[ "$status" -eq 0 ]
	run find "$dest" -type f
	[ -z "$output" ] || { echo "left: $output"; return 1; }
}

# Installed with PREFIX inside the temporary root, the units' ExecStart paths
# and Documentation=man: pages exist, so systemd-analyze (no running systemd
# needed) checks them all; it exits 0 even on an unknown key, so any output
# is a failure.
@test "the installed systemd units pass systemd-analyze verify without a word" {
	make -s install PREFIX="$dest/usr"
	units=()
	for u in $UNITS; do units+=("$dest/usr/lib/systemd/system/$u"); done
	MANPATH=$dest/usr/share/man run -0 systemd-analyze verify "${units[@]}"
	[ -z "$output" ] || { echo "$output"; return 1; }
}

@test "every service is hardened: systemd-analyze security exposure at most 2.0 (OK)" {
	make -s install PREFIX="$dest/usr"
	for u in $UNITS; do
		[[ $u == *.service ]] || continue
		run systemd-analyze security --offline=yes --threshold=20 "$dest/usr/lib/systemd/system/$u"
		[ "$status" -eq 0 ] || { echo "$u: $(tail -n 1 <<<"$output")"; return 1; }
		grep -q 'Overall exposure level' <<<"$output" || { echo "$u: $output"; return 1; }
	done
}

# What systemd would run, run here: each unit's ExecStart with %d (the
# credentials directory) holding a fresh key, %i a site name, the AN_*_OPTS
# an /etc/alternet file would set (loopback listen addresses, a site
# directory), and a private state directory for /var/lib/alternet.  A
# server must print its ready line; the oneshot republish must not be a
# usage error.  Catches a command line the program refuses, which verify
# cannot see.
@test "each service's command line starts its program" {
	make -s install PREFIX="$dest/usr"
	w=$dest/run
	mkdir -m 0700 "$w" "$w/state" "$w/cred" && mkdir "$w/www" && echo hi >"$w/www/index.html"
	"$dest/usr/bin/an-keygen" -k "$w/cred/key" >/dev/null
	export AN_STATE_DIR=$w/state AN_DHT_OPTS="--listen /ip4/127.0.0.1/tcp/0"
	export AN_RELAY_OPTS="--listen /ip4/127.0.0.1/tcp/0" AN_SERVE_OPTS="--listen /ip4/127.0.0.1/tcp/0 $w/www"
	export AN_REPUBLISH_OPTS="-t 2s"
	for u in $UNITS; do
		[[ $u == *.service ]] || continue
		f=$dest/usr/lib/systemd/system/$u
		line=$(sed -n 's/^ExecStart=//p' "$f")
		[ -n "$line" ] || { echo "$u: no ExecStart"; return 1; }
		line=${line//%d/$w/cred}
		line=${line//%i/example.test}
		line=${line//\/var\/lib\/alternet/$w/state}
		eval "set -- $line"
		: >"$w/out"
		if grep -qx 'Type=oneshot' "$f"; then
			run timeout 60 "$@"
			[ "$status" -ne 2 ] && [ "$status" -lt 124 ] || { echo "$u: $* exited $status: $output"; return 1; }
			continue
		fi
		timeout 60 "$@" >"$w/out" 2>"$w/err" &
		pid=$!
		deadline=$((SECONDS + 30))
		until grep -q '"event":"ready"' "$w/out"; do
			if ! kill -0 $pid 2>/dev/null || [ $SECONDS -ge $deadline ]; then
				kill $pid 2>/dev/null || true
				wait $pid || true
				echo "$u: $* printed no ready line:"; cat "$w/out" "$w/err"
				return 1
			fi
			sleep 0.2
		done
		kill $pid
		wait $pid || true
	done
}
