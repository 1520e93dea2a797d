#!/usr/bin/env bats
# make install honours PREFIX and DESTDIR and installs programs, man pages
# and completions; make uninstall removes them again.

setup() {
	cd "$AN_TOP" || exit 1
	dest=$(mktemp -d)
}

teardown() {
	rm -rf "$dest"
}

@test "make install puts programs, man pages and completions under DESTDIR/PREFIX" {
	run make -s install PREFIX=/opt/an DESTDIR="$dest"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	for p in $(ls cmd/an-*.c | sed 's|cmd/||; s|\.c$||'); do
		[ -x "$dest/opt/an/bin/$p" ] || { echo "no $p"; return 1; }
		[ -f "$dest/opt/an/share/man/man1/$p.1" ] || { echo "no $p.1"; return 1; }
		[ -f "$dest/opt/an/share/bash-completion/completions/$p" ] || { echo "no completion $p"; return 1; }
	done
	# nothing outside DESTDIR
	[ -z "$(find "$dest" -mindepth 1 -maxdepth 1 ! -name opt)" ]
}

@test "make uninstall removes what make install put there" {
	make -s install PREFIX=/opt/an DESTDIR="$dest"
	run make -s uninstall PREFIX=/opt/an DESTDIR="$dest"
	[ "$status" -eq 0 ]
	[ -z "$(find "$dest" -type f)" ]
}
