# tests/lib/netns.bash: a small NAT lab of Linux network namespaces for the
# bats suites (load it with `load ../lib/netns`).
#
#                       198.18.0.1 (on pub's lo: relay, DHT)
#                              [ pub ]  198.18.1/24 and 198.18.2/24 only: no route to the LANs
#               198.18.1.1 /          \ 198.18.2.1
#               198.18.1.2 /            \ 198.18.2.2
#        [ hrt ] MASQUERADE              [ crt ] MASQUERADE
#               198.19.1.1 |              | 198.19.2.1
#               198.19.1.2 |              | 198.19.2.2
#          [ home ]  behind NAT      [ client ]  behind another NAT
#
# Nothing outside the namespaces is touched: no address, route or rule in
# the caller's namespace, traffic only between the lab's addresses.  Names
# carry a per-run id, so parallel runs cannot collide; lab_down removes
# every namespace (their veths go with them) and is safe to call twice.
#
# Usage: lab_check (prints why the lab cannot run, status 1), lab_up,
# lab_exec NS CMD..., lab_down.  The namespace names are in LAB_NS_<name>
# and LAB_ALL; lab_up exports them so tests of the same file see them.

LAB_PUB_IP=198.18.0.1
LAB_HOME_IP=198.19.1.2
LAB_CLIENT_IP=198.19.2.2

# lab_check: status 0 when the lab can be built (root, ip netns).
lab_check() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "the NAT lab needs root (network namespaces)"
		return 1
	fi
	if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
		echo "the NAT lab needs 'ip netns' (iproute2)"
		return 1
	fi
	return 0
}

# lab_setup_file: the start of a lab file's setup_file.  When the lab cannot
# be built here, exports LAB_SKIP (why) and builds nothing: the caller
# returns, and lab_skip skips every test.  Otherwise NET (a run dir in the
# file's tmpdir) and an empty AN_STATE_DIR, and the lab is up.  Status 1
# when lab_up failed.
lab_setup_file() {
	export LAB_SKIP=
	if ! LAB_SKIP=$(lab_check); then
		export LAB_SKIP
		return 0
	fi
	export NET=$BATS_FILE_TMPDIR/lab
	run_dir "$NET"
	export AN_STATE_DIR=$NET/nostate
	lab_up
}

# lab_teardown_file: every process of the file (stop_all), then the lab;
# fails (after taking the lab down) when stop_all found a process that
# ended badly.
lab_teardown_file() {
	local rc=0
	[ -n "${LAB_SKIP:-}" ] && return 0
	stop_all || rc=1
	lab_down
	return "$rc"
}

# lab_skip: in setup, skip the test when the lab could not be built.
lab_skip() {
	if [ -n "${LAB_SKIP:-}" ]; then
		skip "$LAB_SKIP"
	fi
}

# lab_exec NS CMD...: run CMD inside lab namespace NS (pub, hrt, home, crt, client).
lab_exec() {
	local var="LAB_NS_$1"
	shift
	ip netns exec "${!var}" "$@"
}

# _lab_link A IFA ADDRA B IFB ADDRB: a veth pair between namespaces A and B.
_lab_link() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" &&
		ip -n "$1" addr add "$3" dev "$2" && ip -n "$1" link set "$2" up &&
		ip -n "$4" addr add "$6" dev "$5" && ip -n "$4" link set "$5" up
}

lab_up() {
	local id n
	id=$(printf '%04x%x' "$((RANDOM))" "$(($$ % 16))")
	export LAB_ID=$id
	export LAB_NS_pub=an${id}pub LAB_NS_hrt=an${id}hrt LAB_NS_home=an${id}home \
		LAB_NS_crt=an${id}crt LAB_NS_client=an${id}cli
	export LAB_ALL="$LAB_NS_pub $LAB_NS_hrt $LAB_NS_home $LAB_NS_crt $LAB_NS_client"
	for n in $LAB_ALL; do
		ip netns add "$n" || return 1
		ip -n "$n" link set lo up || return 1
	done
	# veth names: at most 15 characters, unique per run through the id
	_lab_link "$LAB_NS_pub" "v${id}ph" 198.18.1.1/24 "$LAB_NS_hrt" "v${id}hp" 198.18.1.2/24 || return 1
	_lab_link "$LAB_NS_pub" "v${id}pc" 198.18.2.1/24 "$LAB_NS_crt" "v${id}cp" 198.18.2.2/24 || return 1
	_lab_link "$LAB_NS_hrt" "v${id}hh" 198.19.1.1/24 "$LAB_NS_home" "v${id}oh" "$LAB_HOME_IP/24" || return 1
	_lab_link "$LAB_NS_crt" "v${id}cc" 198.19.2.1/24 "$LAB_NS_client" "v${id}oc" "$LAB_CLIENT_IP/24" || return 1
	ip -n "$LAB_NS_pub" addr add "$LAB_PUB_IP/32" dev lo || return 1
	ip -n "$LAB_NS_hrt" route add default via 198.18.1.1 || return 1
	ip -n "$LAB_NS_crt" route add default via 198.18.2.1 || return 1
	ip -n "$LAB_NS_home" route add default via 198.19.1.1 || return 1
	ip -n "$LAB_NS_client" route add default via 198.19.2.1 || return 1
	for n in pub hrt crt; do
		lab_exec "$n" sysctl -qw net.ipv4.ip_forward=1 || return 1
	done
	# The two NAT routers: private sources leave as the router's public
	# address; nothing from the public side is forwarded to the LAN unless
	# it belongs to a connection opened from inside.
	local router out lan
	for router in "hrt hp hh" "crt cp cc"; do
		set -- $router
		out=v${id}$2 lan=v${id}$3
		lab_exec "$1" iptables -t nat -A POSTROUTING -o "$out" -j MASQUERADE || return 1
		lab_exec "$1" iptables -A FORWARD -i "$out" -o "$lan" -m conntrack \
			--ctstate ESTABLISHED,RELATED -j ACCEPT || return 1
		lab_exec "$1" iptables -A FORWARD -i "$out" -o "$lan" -j DROP || return 1
	done
}

# lab_down: delete the lab's namespaces (and with them their veths and
# rules).  Processes must be stopped first (a namespace lives on while a
# process runs in it).
lab_down() {
	local n
	for n in ${LAB_ALL:-}; do
		ip netns del "$n" 2>/dev/null || true
	done
}
