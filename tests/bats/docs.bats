#!/usr/bin/env bats
# Docs that cannot drift: every program has a lint-clean man page and a bash
# completion, and every option its --help shows is in both.

setup_file() {
	cd "$AN_TOP" || exit 1
	export PROGRAMS=$(ls cmd/an-*.c | sed 's|cmd/||; s|\.c$||')
}

setup() {
	cd "$AN_TOP" || exit 1
}

# Long options named in a program's --help output (and its subcommands' help).
help_options() {
	local prog=$1 sub
	{
		"$prog" --help
		for sub in $("$prog" --help | awk '/^Commands:/{f=1;next} f&&/^  [a-z]/{print $1}'); do
			"$prog" "$sub" --help 2>/dev/null
		done
	} | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u
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
	[ "$status" -eq 2 ] && [[ "$stderr" == "an-dht: option '--timeout' needs a value"* ]]
}

@test "every option in --help is in the man page" {
	for p in $PROGRAMS; do
		page=$(MANWIDTH=300 mandoc -Tascii "man/$p.1" | col -b)
		for o in $(help_options "$p"); do
			grep -qF -- "$o" <<<"$page" || { echo "$o of $p missing from man/$p.1"; return 1; }
		done
	done
}

@test "every option in --help is in the bash completion" {
	for p in $PROGRAMS; do
		for o in $(help_options "$p"); do
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
