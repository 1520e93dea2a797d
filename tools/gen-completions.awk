# gen-completions.awk: one program's help stream (see gen-completions) in,
# its zsh (shell=zsh) or fish (shell=fish) completion out.  POSIX awk (mawk).

function trim(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }

# add(scope, short, long, arg, desc): one option, once per scope.
function add(sc, short, long, arg, desc,    k, i) {
	k = long != "" ? long : short
	if ((sc, k) in seen)
		return
	seen[sc, k] = 1
	i = ++n[sc]
	oshort[sc, i] = short; olong[sc, i] = long; oarg[sc, i] = arg
	odesc[sc, i] = desc; orep[sc, i] = (desc ~ /repeatable/)
	lastsc = sc; lasti = i
}

# An option line: "  -k, --key KEYFILE   desc", "      --dht   desc",
# "  -q          desc", "  --connect-to MULTIADDR desc".
function option_line(sc, s,    short, long, arg, q) {
	short = ""; long = ""; arg = ""
	s = trim(s)
	if (s ~ /^-[A-Za-z0-9](,|$| )/) {
		short = substr(s, 1, 2)
		s = substr(s, 3)
		sub(/^, */, "", s)
	}
	if (match(s, /^--[a-z][a-z0-9-]*/)) {
		long = substr(s, 1, RLENGTH)
		s = substr(s, RLENGTH + 1)
	}
	if (short == "" && long == "")
		return
	# an argument is one space after the option; the description two
	if (s ~ /^ [^ ]/) {
		s = substr(s, 2)
		if (substr(s, 1, 1) == "'") {
			q = index(substr(s, 2), "'")
			if (q == 0) q = length(s)
			arg = substr(s, 2, q - 1)
			s = substr(s, q + 2)
		} else {
			match(s, /^[^ ]+/)
			arg = substr(s, 1, RLENGTH)
			s = substr(s, RLENGTH + 1)
		}
	}
	add(sc, short, long, arg, trim(s))
}

# Every --word of a text, as grep -oE -- '--[a-z][a-z0-9-]+' finds them.
function all_words(sc, s,    w) {
	while (match(s, /--[a-z][a-z0-9-]+/)) {
		w = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		add(sc, "", w, "", "")
	}
}

/^@@top$/ { scope = "top"; incmds = 0; next }
/^@@sub / { scope = $2; incmds = 0; next }
{ text[scope] = text[scope] "\n" $0 }
scope == "top" && /^Commands:/ { incmds = 1; next }
incmds && /^$/ { incmds = 0 }
incmds && /^  [a-z]/ {
	nsub++; subs[nsub] = $1
	d = $0; sub(/^  [a-z][a-z0-9-]* +/, "", d); subdesc[$1] = d
	next
}
/^ +-/ { lasti = 0; option_line(scope, $0); next }
# a description's next line, deeper than any option
lasti && /^          +[^ -]/ {
	odesc[lastsc, lasti] = odesc[lastsc, lasti] " " trim($0)
	orep[lastsc, lasti] = (odesc[lastsc, lasti] ~ /repeatable/)
	next
}
{ lasti = 0 }

# Quoting: inside a single-quoted zsh word, in a zsh [explanation] or
# :message:, and inside a single-quoted fish word.
function zq(s) { gsub(/'/, "'\\''", s); gsub(/\[/, "(", s); gsub(/\]/, ")", s); return s }
function zmsg(s) { s = zq(s); gsub(/:/, "\\:", s); return s }
function fq(s) { gsub(/\\/, "\\\\", s); gsub(/'/, "\\'", s); return "'" s "'" }
function isfile(a) { return a ~ /FILE$/ || a == "RECORDS" }
function isdir(a) { return a == "DIR" }

function zspec(sc, i,    s, l, names, excl, desc, arg, act) {
	s = oshort[sc, i]; l = olong[sc, i]
	desc = odesc[sc, i] != "" ? "[" zq(odesc[sc, i]) "]" : ""
	arg = ""
	if (oarg[sc, i] != "") {
		act = isfile(oarg[sc, i]) ? "_files" : isdir(oarg[sc, i]) ? "_files -/" : " "
		arg = ":" zmsg(oarg[sc, i]) ":" act
	}
	excl = orep[sc, i] ? "*" : (s != "" && l != "") ? "(" s " " l ")" : ""
	if (s != "" && l != "")
		return "'" excl "'{" s "," l "}'" desc arg "'"
	return "'" excl (l != "" ? l : s) desc arg "'"
}

# zsh_specs(sc[, also]): the specs of scope sc, then those of scope also
# not already given.
function zsh_specs(sc, also, ind,    i, out, k) {
	out = ""
	for (i = 1; i <= n[sc]; i++)
		out = out " \\\n" ind zspec(sc, i)
	if (also != "")
		for (i = 1; i <= n[also]; i++) {
			k = olong[also, i] != "" ? olong[also, i] : oshort[also, i]
			if (!((sc, k) in seen))
				out = out " \\\n" ind zspec(also, i)
		}
	return out
}

function fish_line(sc, i, cond,    s, a, line) {
	line = "complete -c " prog
	if (cond != "")
		line = line " -n " fq(cond)
	if (oshort[sc, i] != "") line = line " -s " substr(oshort[sc, i], 2)
	if (olong[sc, i] != "") line = line " -l " substr(olong[sc, i], 3)
	a = oarg[sc, i]
	if (a != "")
		line = line (isfile(a) ? " -r -F" : isdir(a) ? " -x -a '(__fish_complete_directories)'" : " -x")
	if (odesc[sc, i] != "") line = line " -d " fq(odesc[sc, i])
	return line
}

END {
	all_words("top", text["top"])
	for (j = 1; j <= nsub; j++)
		all_words(subs[j], text[subs[j]])
	if (shell == "zsh") {
		fn = "_" prog; gsub(/-/, "_", fn)
		print "#compdef " prog
		print "# zsh completion for " prog "(1), generated from its --help by tools/gen-completions."
		print ""
		if (nsub == 0) {
			print "_arguments -s -S" zsh_specs("top", "", "\t") " \\\n\t'*:file:_files'"
			exit
		}
		print "local curcontext=$curcontext state line"
		print "local -a cmds"
		print "cmds=("
		for (j = 1; j <= nsub; j++)
			print "\t'" subs[j] ":" zmsg(subdesc[subs[j]]) "'"
		print ")"
		print "_arguments -C" zsh_specs("top", "", "\t") " \\\n\t'1:command:->cmd' \\\n\t'*::argument:->args'"
		print "case $state in"
		print "cmd) _describe -t commands '" prog " command' cmds ;;"
		print "args)"
		print "\tcase $words[1] in"
		for (j = 1; j <= nsub; j++) {
			print "\t" subs[j] ")"
			print "\t\t_arguments -s -S" zsh_specs(subs[j], "top", "\t\t\t") " \\\n\t\t\t'*:argument:_files' ;;"
		}
		print "\tesac ;;"
		print "esac"
		exit
	}
	print "# fish completion for " prog "(1), generated from its --help by tools/gen-completions."
	if (nsub > 0) {
		cond = "__fish_seen_subcommand_from"
		for (j = 1; j <= nsub; j++)
			cond = cond " " subs[j]
		print "complete -c " prog " -f -n " fq("not " cond)
		for (j = 1; j <= nsub; j++)
			print "complete -c " prog " -n " fq("not " cond) " -a " subs[j] " -d " fq(subdesc[subs[j]])
	}
	for (i = 1; i <= n["top"]; i++)
		print fish_line("top", i, "")
	for (j = 1; j <= nsub; j++)
		for (i = 1; i <= n[subs[j]]; i++)
			if (!(("top", olong[subs[j], i] != "" ? olong[subs[j], i] : oshort[subs[j], i]) in seen))
				print fish_line(subs[j], i, "__fish_seen_subcommand_from " subs[j])
}
