#!/usr/bin/env bats
# Docs that cannot drift: every program has a lint-clean man page and a bash
# completion, and every option its --help shows is in both.

bats_require_minimum_version 1.5.0

# The source tree: AN_TOP, or the one this file is in; either way it must
# hold the programs' sources, or every loop below would check nothing.
setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	cd "$AN_TOP" || return 1
	PROGRAMS=$(ls cmd/an-*.c | sed 's|cmd/||; s|\.c$||')
	export PROGRAMS
	[ "$(wc -w <<<"$PROGRAMS")" -ge 8 ] || { echo "AN_TOP=$AN_TOP: too few programs in cmd/: '$PROGRAMS'"; return 1; }
}

setup() {
	cd "$AN_TOP" || return 1
	[ -n "$PROGRAMS" ] || return 1
}

# Long options named in a program's --help output (and its subcommands'
# help); fails if a --help fails or names no option at all.
help_options() {
	local prog=$1 sub help subs opts
	help=$("$prog" --help) || { echo "$prog --help failed" >&2; return 1; }
	subs=$(awk '/^Commands:/{f=1;next} f&&/^  [a-z]/{print $1}' <<<"$help")
	for sub in $subs; do
		help+=$'\n'$("$prog" "$sub" --help 2>/dev/null) || { echo "$prog $sub --help failed" >&2; return 1; }
	done
	opts=$(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u)
	[ -n "$opts" ] || { echo "$prog --help names no option" >&2; return 1; }
	echo "$opts"
}

@test "every program has a man page and a completion" {
	[ -n "$PROGRAMS" ] || { echo "no programs found"; return 1; }
	for p in $PROGRAMS; do
		[ -f "man/$p.1" ] || { echo "missing man/$p.1"; return 1; }
		[ -f "completions/$p" ] || { echo "missing completions/$p"; return 1; }
	done
}

@test "every man page is lint-clean under mandoc -Tlint" {
	run mandoc -Tlint -W warning man/*.[1-8]
	[ "$output" = "" ] || { echo "$output"; return 1; }
}

@test "every man page has the sections users look for" {
	for p in $PROGRAMS; do
		for s in SYNOPSIS DESCRIPTION "EXIT STATUS" ENVIRONMENT FILES EXAMPLES; do
			grep -q "^\.Sh $s" "man/$p.1" || { echo "man/$p.1 lacks $s"; return 1; }
		done
	done
}

@test "--help exits 0 and writes usage to stdout" {
	for p in $PROGRAMS; do
		run --separate-stderr "$p" --help
		[ "$status" -eq 0 ] || { echo "$p --help exited $status"; return 1; }
		[[ "$output" == *"sage"* ]] || { echo "$p --help printed no usage"; return 1; }
	done
}

@test "an unknown option is a usage error: exit 2, message on stderr only" {
	for p in $PROGRAMS; do
		run --separate-stderr "$p" --no-such-option
		[ "$status" -eq 2 ] || { echo "$p exited $status"; return 1; }
		[ -z "$output" ] || { echo "$p wrote to stdout: $output"; return 1; }
		[[ "$stderr" == "$p:"* ]] || { echo "$p stderr: $stderr"; return 1; }
	done
}

@test "a bad option is named exactly: long with =value, short inside a cluster, missing value" {
	for p in an-keygen an-sign an-verify; do
		o=-k; [ "$p" = an-verify ] && o=-r
		run --separate-stderr "$p" --no-such-option=1
		[ "$status" -eq 2 ] && [[ "$stderr" == "$p: unknown option '--no-such-option'"* ]] ||
			{ echo "$p: $status $stderr"; return 1; }
		run --separate-stderr "$p" -Z$o key
		[ "$status" -eq 2 ] && [[ "$stderr" == "$p: unknown option '-Z'"* ]] ||
			{ echo "$p: $status $stderr"; return 1; }
		run --separate-stderr "$p" $o
		[ "$status" -eq 2 ] && [[ "$stderr" == "$p: option '$o' needs a value"* ]] ||
			{ echo "$p: $status $stderr"; return 1; }
	done
	run --separate-stderr an-dht get --timeout
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-dht: option '--timeout' needs a value"* ]]
}

@test "every option in --help is in the man page" {
	for p in $PROGRAMS; do
		page=$(MANWIDTH=300 mandoc -Tascii "man/$p.1" | col -b)
		opts=$(help_options "$p")
		for o in $opts; do
			grep -qF -- "$o" <<<"$page" || { echo "$o of $p missing from man/$p.1"; return 1; }
		done
	done
}

@test "every option in --help is in the bash completion" {
	for p in $PROGRAMS; do
		opts=$(help_options "$p")
		for o in $opts; do
			grep -qF -- "$o" "completions/$p" || { echo "$o of $p missing from completions/$p"; return 1; }
		done
	done
}

@test "every completion loads in bash and completes options" {
	for p in $PROGRAMS; do
		run bash -c "source /usr/share/bash-completion/bash_completion 2>/dev/null; source completions/$p
			COMP_WORDS=($p --); COMP_CWORD=1; COMP_LINE='$p --'; COMP_POINT=\${#COMP_LINE}
			f=\$(complete -p $p | sed -E 's/.* -F ([^ ]+) .*/\1/'); \$f $p -- $p; printf '%s\n' \"\${COMPREPLY[@]}\""
		[ "$status" -eq 0 ] || { echo "$p: $output"; return 1; }
		grep -q -- '^--' <<<"$output" || { echo "$p completion offered no options: $output"; return 1; }
	done
}

@test "no man page line ends in a bare backslash (roff would join it to the next; issue 11)" {
	run grep -nE '(^|[^\\])\\$' man/*.[1-8]
	[ "$status" -eq 1 ] || { echo "$output"; return 1; }
	# and the NAT example renders as the two lines a shell continues
	MANWIDTH=200 mandoc -Tascii man/an-serve.1 | col -b | grep -qE -- '--no-direct \\$'
}
