#!/usr/bin/env bats
# zsh and fish completions, written from each program's --help by
# tools/gen-completions (make completions; make install installs them), stay
# in step with --help: every option a program's --help (or a subcommand's)
# names is offered by real zsh and fish completion, asked the way a user
# asks, after "PROG --" or "PROG SUB --".  The programs are the ones first
# on PATH, as in every bats file.

bats_require_minimum_version 1.5.0

setup_file() {
	export AN_TOP=${AN_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	cd "$AN_TOP" || return 1
	PROGRAMS=$(ls cmd/an-*.c | sed 's|cmd/||; s|\.c$||')
	[ "$(wc -w <<<"$PROGRAMS")" -ge 8 ] || { echo "AN_TOP=$AN_TOP: too few programs: '$PROGRAMS'"; return 1; }
	export PROGRAMS
	bindir=$(dirname "$(command -v an-keygen)") || { echo "an-keygen is not on PATH"; return 1; }
	for s in zsh fish; do command -v $s >/dev/null || { echo "$s is not installed (tools/install-deps test)"; return 1; }; done
	export COMPDIR=$BATS_FILE_TMPDIR/completions
	tools/gen-completions "$bindir" "$COMPDIR" || return 1

	# zcomplete.zsh FPATHDIR LINE DUMP: the words zsh's completion system offers
	# for LINE (as after a Tab), space-separated, one compadd a line.  An
	# interactive zsh in a zsh/zpty pseudo-terminal runs compinit; compadd
	# is wrapped to print what each call adds.  compinit's DUMP file makes
	# every run after the first fast (5 s to 0.7 s on the loaded 2-core VM).
	cat >"$BATS_FILE_TMPDIR/zcomplete.zsh" <<-'EOF'
		zmodload zsh/zpty || exit 4
		zpty z zsh -f -i
		zpty -w z "PS1='' PROMPT='' RPROMPT=''"
		zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -d $3"
		zpty -w z "compadd () { if [[ \${@[1,-1]} == *-[OAD]* ]]; then builtin compadd \"\$@\"; return; fi; typeset -a __hits; builtin compadd -A __hits \"\$@\"; (( \$#__hits )) && print -r -- '<HIT>' \${(j: :)__hits}; builtin compadd \"\$@\" }"
		zpty -w z "bindkey '^I' complete-word; echo '<READY>'"
		zpty -r z line '*<READY>*'
		zpty -r z line '*<READY>*'
		zpty -w -n z "$2"$'\t'
		zpty -w z $'\C-u'"echo '<DONE>'"
		integer n=0 done=0
		while zpty -r z line; do
			[[ $line == *'<DONE>'* && $line != *echo* ]] && { done=1; break }
			[[ $line == *'<HIT>'* ]] && print -r -- ${${line#*<HIT> }//$'\r'/}
			(( ++n > 1000 )) && break
		done
		zpty -d z
		(( done )) || { print -u2 "zcomplete: no end of completion for '$2'"; exit 3 }
	EOF
}

setup() {
	cd "$AN_TOP" || return 1
	[ -n "$PROGRAMS" ] && [ -d "$COMPDIR" ] || return 1
}

# help_opts PROG [SUB]: the long options its --help names, as docs.bats
# reads them.
help_opts() {
	local help
	help=$("$@" --help) || { echo "$* --help failed" >&2; return 1; }
	grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u
}

# subcommands PROG: the names in its help's Commands: block.
subcommands() {
	"$1" --help | awk '/^Commands:/{f=1;next} f&&/^$/{f=0} f&&/^  [a-z]/{print $1}'
}

zsh_offers() {
	timeout 30 zsh -f "$BATS_FILE_TMPDIR/zcomplete.zsh" "$COMPDIR/zsh" "$1" "$BATS_FILE_TMPDIR/zcompdump" | tr ' ' '\n' | sort -u
}

fish_offers() {
	timeout 30 fish --no-config -c "source $COMPDIR/fish/${1%% *}.fish; complete -C'$1'" | cut -f1 | sort -u
}

# check SHELL PROG [SUB]: every option of PROG [SUB] --help is offered
# after "PROG [SUB] --".
check() {
	local shell=$1 line offers o
	shift
	line="$* --"
	offers=$(${shell}_offers "$line") || { echo "$shell failed on '$line'"; return 1; }
	[ -n "$offers" ] || { echo "$shell offers nothing after '$line'"; return 1; }
	for o in $(help_opts "$@"); do
		grep -qxF -- "$o" <<<"$offers" ||
			{ echo "$shell: '$line' does not offer $o of $* --help; it offers:" $offers; return 1; }
	done
}

@test "a zsh and a fish completion for every program, valid scripts" {
	for p in $PROGRAMS; do
		zsh -n "$COMPDIR/zsh/_$p" || { echo "zsh -n _$p failed"; return 1; }
		head -n 1 "$COMPDIR/zsh/_$p" | grep -qx "#compdef $p" || { echo "_$p: no #compdef $p"; return 1; }
		fish --no-config -n "$COMPDIR/fish/$p.fish" || { echo "fish -n $p.fish failed"; return 1; }
	done
}

@test "zsh offers every option of each program's --help" {
	for p in $PROGRAMS; do
		check zsh "$p" || return 1
	done
}

@test "zsh offers each subcommand, and after it every option of its --help" {
	for p in $PROGRAMS; do
		subs=$(subcommands "$p")
		[ -n "$subs" ] || continue
		offers=$(zsh_offers "$p ")
		for s in $subs; do
			grep -qxF "$s" <<<"$offers" || { echo "zsh: '$p ' does not offer $s:" $offers; return 1; }
			check zsh "$p" "$s" || return 1
		done
	done
	[ -n "$(subcommands an-dht)" ] || { echo "an-dht --help lists no subcommand"; return 1; }
}

@test "fish offers every option of each program's --help" {
	for p in $PROGRAMS; do
		check fish "$p" || return 1
	done
}

@test "fish offers each subcommand, and after it every option of its --help" {
	for p in $PROGRAMS; do
		subs=$(subcommands "$p")
		[ -n "$subs" ] || continue
		offers=$(fish_offers "$p ")
		for s in $subs; do
			grep -qxF "$s" <<<"$offers" || { echo "fish: '$p ' does not offer $s:" $offers; return 1; }
			check fish "$p" "$s" || return 1
		done
	done
}

@test "zsh and fish complete a key file after -k" {
	mkdir -p "$BATS_TEST_TMPDIR/w" && cd "$BATS_TEST_TMPDIR/w"
	touch site.key
	run zsh_offers "an-sign -k "
	grep -qx site.key <<<"$output" || { echo "zsh: $output"; return 1; }
	run fish_offers "an-sign -k "
	grep -qx site.key <<<"$output" || { echo "fish: $output"; return 1; }
}
