#!/usr/bin/env bats
# an-keygen: create and show Ed25519 identities; every exit status, and the
# checks on key files (mode, symlinks, size, content).

bats_require_minimum_version 1.5.0

setup() {
	dir=$(mktemp -d /tmp/an-keygen-test.XXXXXX)
	key=$dir/id.key
}

teardown() {
	rm -rf "$dir"
}

# unhex HEX: the bytes on stdout.  hexof [FILE]: lowercase hex of FILE or stdin.
unhex() { python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1"; }
hexof() { od -An -v -tx1 "$@" | tr -d ' \n'; }

# The peer-ids spec Ed25519 private key test vector, as a key file.
spec_key() { # path
	unhex 080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e >"$1"
	chmod 600 "$1"
}

@test "creating a key prints one JSON line with peerId, peerHash, publicKey, keyType, cid" {
	run --separate-stderr an-keygen -k "$key"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	jq -e '(.peerId | test("^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$"))
		and (.peerHash | test("^[a-z2-7]{16}$"))
		and (.publicKey | test("^CAESI"))
		and .keyType == "ed25519"
		and (.cid | startswith("bafzaa"))' <<<"$output"
}

@test "the key file is created with mode 0600 and holds a 68-byte PrivateKey protobuf" {
	run an-keygen -k "$key"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$key")" = 600 ]
	[ "$(stat -c %s "$key")" -eq 68 ]
	[ "$(head -c 4 "$key" | hexof)" = 08011240 ]
}

@test "-y shows the same identity the creation printed" {
	created=$(an-keygen -k "$key")
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 0 ]
	[ "$output" = "$created" ]
}

@test "-y on the peer-ids spec test vector prints the spec's peer ID" {
	spec_key "$key"
	run --separate-stderr an-keygen --show --key "$key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" = 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq ]
	[ "$(jq -r .cid <<<"$output")" = bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6 ]
	[ "$(jq -r .publicKey <<<"$output" | base64 -d | hexof)" = 080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e ]
}

@test "peerHash is the first 80 bits of SHA-256 over the binary peer ID, base32" {
	spec_key "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 0 ]
	# binary peer ID = 00 24 || PublicKey protobuf
	want=$(jq -r .publicKey <<<"$output" | base64 -d | { printf '\000\044'; cat; } | sha256sum |
		head -c 20 | { read -r h; unhex "$h"; } | base32 | tr -d '=' | tr A-Z a-z)
	[ "$(jq -r .peerHash <<<"$output")" = "$want" ]
}

@test "a second run refuses to overwrite the key: exit 4, key unchanged" {
	an-keygen -k "$key" >/dev/null
	before=$(hexof "$key")
	run --separate-stderr an-keygen -k "$key"
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	[[ "$stderr" == "an-keygen: unable to create $key: File exists"* ]]
	[ "$(hexof "$key")" = "$before" ]
}

@test "-f overwrites an existing key with a new one, still mode 0600" {
	first=$(an-keygen -k "$key" | jq -r .peerId)
	run --separate-stderr an-keygen -f -k "$key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" != "$first" ]
	[ "$(an-keygen -y -k "$key" | jq -r .peerId)" = "$(jq -r .peerId <<<"$output")" ]
	[ "$(stat -c %a "$key")" = 600 ]
}

@test "creating through a symlink is refused without -f" {
	ln -s "$dir/target" "$key"
	run --separate-stderr an-keygen -k "$key"
	[ "$status" -eq 4 ]
	[ ! -e "$dir/target" ]
}

@test "a missing key file: exit 4 and the one message format" {
	run --separate-stderr an-keygen -y -k "$dir/key.sec"
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	[ "$stderr" = "an-keygen: unable to open $dir/key.sec: No such file or directory" ]
}

@test "an unreadable key file: exit 4, permission denied" {
	spec_key "$key"
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		# root reads any file: run as nobody, who cannot read a 0600 root file
		run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$(command -v an-keygen)" -y -k "$key"
	else
		chmod 000 "$key"
		run --separate-stderr an-keygen -y -k "$key"
	fi
	[ "$status" -eq 4 ]
	[ "$stderr" = "an-keygen: unable to open $key: Permission denied" ]
}

@test "a world-readable key file is refused: exit 3, naming the problem" {
	spec_key "$key"
	chmod 604 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[[ "$stderr" == "an-keygen: refusing key file $key: it is accessible by group or others"* ]]
}

@test "a group-readable key file is refused: exit 3" {
	spec_key "$key"
	chmod 640 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"accessible by group or others"* ]]
}

@test "a symlink to a key file is refused: exit 3" {
	spec_key "$dir/real.key"
	ln -s "$dir/real.key" "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: refusing key file $key: it is a symbolic link" ]
}

@test "a directory as key file is refused: exit 3" {
	mkdir -m 700 "$dir/d"
	run --separate-stderr an-keygen -y -k "$dir/d"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: refusing key file $dir/d: not a regular file" ]
}

@test "a truncated key file: exit 3, malformed" {
	spec_key "$dir/full"
	head -c 40 "$dir/full" >"$key"
	chmod 600 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$stderr" = "an-keygen: invalid key file $key: input is truncated" ]
}

@test "an empty key file: exit 3" {
	install -m 600 /dev/null "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: invalid key file $key: malformed data" ]
}

@test "an oversized key file (4097 bytes): exit 3, size limit" {
	head -c 4097 /dev/zero >"$key"
	chmod 600 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: invalid key file $key: input exceeds its size limit" ]
}

@test "a file that is not a key: exit 3" {
	printf 'not a key at all\n' >"$key"
	chmod 600 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[[ "$stderr" == "an-keygen: invalid key file $key: "* ]]
}

@test "a key whose public half does not match its seed: exit 3" {
	spec_key "$key"
	printf '\000' | dd of="$key" bs=1 seek=67 conv=notrunc status=none
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: invalid key file $key: malformed data" ]
}

@test "a secp256k1 private key is refused: exit 3, unsupported key type" {
	unhex 0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB >"$key"
	chmod 600 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 3 ]
	[ "$stderr" = "an-keygen: invalid key file $key: unsupported key type" ]
}

@test "the legacy 96-byte Ed25519 key form is accepted" {
	spec_key "$dir/std"
	{ printf '\010\001\022\140'; tail -c 64 "$dir/std"; tail -c 32 "$dir/std"; } >"$key"
	chmod 600 "$key"
	run --separate-stderr an-keygen -y -k "$key"
	[ "$status" -eq 0 ]
	[ "$(jq -r .peerId <<<"$output")" = 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq ]
}

@test "no -k is a usage error: exit 2" {
	run --separate-stderr an-keygen
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == "an-keygen: a key file is required"* ]]
}

@test "-f with -y is a usage error: exit 2" {
	spec_key "$key"
	run --separate-stderr an-keygen -f -y -k "$key"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
}

@test "an extra operand is a usage error: exit 2" {
	run --separate-stderr an-keygen -k "$key" extra
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-keygen: unexpected argument 'extra'"* ]]
	[ ! -e "$key" ]
}

@test "-k without its argument is a usage error: exit 2" {
	run --separate-stderr an-keygen -k
	[ "$status" -eq 2 ]
	[[ "$stderr" == "an-keygen: option '-k' needs a value"* ]]
}

@test "--help prints usage on stdout and exits 0" {
	run --separate-stderr an-keygen --help
	[ "$status" -eq 0 ]
	[[ "$output" == "Usage: an-keygen"* ]]
	[ -z "$stderr" ]
}

@test "a full stdout is a system error: exit 4" {
	[ -w /dev/full ] || { echo "/dev/full is missing"; return 1; }
	run --separate-stderr bash -c 'an-keygen -k "$1" >/dev/full' _ "$key"
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"error writing standard output"* ]]
}
