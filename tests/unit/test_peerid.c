/*
 * Unit tests for libcommon/crypto/peerid: peer IDs of the peer-ids spec test
 * vector keys, the text forms (base58btc and CIDv1), and the Alternet peer
 * hash.
 *
 * Expected values were computed independently with python3's stdlib:
 *   pid = b"\x00" + bytes([len(pb)]) + pb  if len(pb) <= 42
 *         else b"\x12\x20" + hashlib.sha256(pb).digest()
 *   base58btc(pid); "b" + base64.b32encode(b"\x01\x72" + pid).lower().rstrip("=")
 *   peer hash: base64.b32encode(hashlib.sha256(pid).digest()[:10]).decode().lower()
 * The Ed25519 base58 and CID strings also appear in the wire digest (section 2).
 */
#include "check.h"
#include "fixtures.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "util/error.h"

#include <stdlib.h>

static const struct {
	const char *pb, *base58, *cid, *hash;
} vectors[] = {
	{ ed25519_pub_pb, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
	  "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6", "37kteevexuv63i7k" },
	{ rsa_pub_pb, "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG",
	  "bafzbeifwzcumbiyql7bhv7fe7mixg6i7aohegq75k234m63bnw6dbicmzu", "dl7sbyof7osxs3sj" },
	{ secp256k1_pub_pb, "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
	  "bafzaajiiaijcca3xo7uzjzcsyilaj6i54cj44qk7kqzpoao5rti2pjx6udtdbp6kte", "twidta6lyqvo4vys" },
	{ ecdsa_pub_pb, "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk",
	  "bafzbeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64", "ixlfrs4gc6q7crrq" },
};
#define NVECTORS (sizeof vectors / sizeof vectors[0])

static int vector_id(size_t i, struct an_pubkey *k, struct an_peerid *id)
{
	static uint8_t pb[AN_PUBKEY_PB_MAX];
	int n = check_unhex(vectors[i].pb, pb, sizeof pb);

	if (n < 0 || an_pubkey_decode(pb, (size_t)n, k) < 0)
		return -1;
	return an_peerid_from_pubkey(k, id);
}

static void test_peerid_spec_vectors(void)
{
	for (size_t i = 0; i < NVECTORS; i++) {
		struct an_pubkey k;
		struct an_peerid id;
		char text[AN_PEERID_TEXT_MAX];

		CHECK_EQ_INT(vector_id(i, &k, &id), 0);
		CHECK_EQ_INT(an_peerid_format(&id, text, sizeof text), 0);
		CHECK_EQ_STR(text, vectors[i].base58);
	}
}

static void test_peerid_identity_vs_sha256(void)
{
	struct an_pubkey k;
	struct an_peerid id;

	/* Ed25519 (36-byte key) and secp256k1 (37) are inlined; RSA and ECDSA hashed. */
	CHECK_EQ_INT(vector_id(0, &k, &id), 0);
	CHECK_EQ_INT(id.len, 38);
	CHECK_EQ_INT(id.bytes[0], 0x00);
	CHECK_EQ_INT(id.bytes[1], 36);
	CHECK_EQ_INT(vector_id(2, &k, &id), 0);
	CHECK_EQ_INT(id.len, 39);
	CHECK_EQ_INT(id.bytes[0], 0x00);
	CHECK_EQ_INT(vector_id(1, &k, &id), 0);
	CHECK_EQ_INT(id.len, 34);
	CHECK_EQ_INT(id.bytes[0], 0x12);
	CHECK_EQ_INT(id.bytes[1], 0x20);
	CHECK_EQ_INT(vector_id(3, &k, &id), 0);
	CHECK_EQ_INT(id.bytes[0], 0x12);
}

static void test_peerid_cid_format(void)
{
	for (size_t i = 0; i < NVECTORS; i++) {
		struct an_pubkey k;
		struct an_peerid id;
		char text[AN_PEERID_TEXT_MAX];

		CHECK_EQ_INT(vector_id(i, &k, &id), 0);
		CHECK_EQ_INT(an_peerid_format_cid(&id, text, sizeof text), 0);
		CHECK_EQ_STR(text, vectors[i].cid);
	}
}

static void test_peerid_parse_both_forms(void)
{
	for (size_t i = 0; i < NVECTORS; i++) {
		struct an_pubkey k;
		struct an_peerid id, a, b;

		CHECK_EQ_INT(vector_id(i, &k, &id), 0);
		memset(&a, 0, sizeof a);
		memset(&b, 0, sizeof b);
		CHECK_EQ_INT(an_peerid_parse(vectors[i].base58, &a), 0);
		CHECK_EQ_INT(an_peerid_parse(vectors[i].cid, &b), 0);
		CHECK(an_peerid_equal(&a, &id));
		CHECK(an_peerid_equal(&b, &id));
	}
}

static void test_peerid_parse_errors(void)
{
	struct an_peerid id;
	char long_text[AN_PEERID_TEXT_MAX + 8];

	CHECK_EQ_INT(an_peerid_parse("", &id), AN_EMALFORMED);
	/* Not base58 ('0' and 'l' are outside the alphabet). */
	CHECK_EQ_INT(an_peerid_parse("12D3KooW0tg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", &id),
		     AN_EMALFORMED);
	/* One character dropped: the multihash length no longer matches. */
	CHECK_EQ_INT(an_peerid_parse("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p", &id),
		     AN_EMALFORMED);
	/* A CID of another codec (dag-pb 0x70 instead of libp2p-key 0x72). */
	CHECK_EQ_INT(an_peerid_parse("bafybeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64", &id),
		     AN_EMALFORMED);
	/* Another multibase (base32upper 'B'). */
	CHECK_EQ_INT(an_peerid_parse("BAFZBEIDIGYWDCLQVL5HXFEFWP5ONBFFCFIFE7PZA57MMFB4TIQMTKDJW64", &id),
		     AN_EMALFORMED);
	memset(long_text, 'a', sizeof long_text - 1);
	long_text[0] = '1';
	long_text[sizeof long_text - 1] = 0;
	CHECK_EQ_INT(an_peerid_parse(long_text, &id), AN_ETOOBIG);
}

static void test_peerid_from_bytes(void)
{
	struct an_peerid id;
	uint8_t sha[34] = { 0x12, 0x20 };
	uint8_t ident[38];

	CHECK_EQ_INT(an_peerid_from_bytes(sha, sizeof sha, &id), 0);
	CHECK_EQ_INT(id.len, 34);
	CHECK_EQ_INT(an_peerid_from_bytes(sha, 33, &id), AN_EMALFORMED);
	sha[0] = 0x13; /* sha2-512 code: not a peer ID */
	CHECK_EQ_INT(an_peerid_from_bytes(sha, sizeof sha, &id), AN_EMALFORMED);
	ident[0] = 0x00;
	ident[1] = 36;
	CHECK_EQ_INT(check_unhex(ed25519_pub_pb, ident + 2, 36), 36);
	CHECK_EQ_INT(an_peerid_from_bytes(ident, sizeof ident, &id), 0);
	CHECK_EQ_INT(an_peerid_from_bytes(ident, sizeof ident - 1, &id), AN_EMALFORMED);
	CHECK_EQ_INT(an_peerid_from_bytes(ident, 1, &id), AN_EMALFORMED);
	CHECK_EQ_INT(an_peerid_from_bytes(ident, 0, &id), AN_EMALFORMED);
	ident[1] = 0; /* empty identity multihash */
	CHECK_EQ_INT(an_peerid_from_bytes(ident, 2, &id), AN_EMALFORMED);
}

static void test_peerid_pubkey(void)
{
	struct an_pubkey k, got;
	struct an_peerid id;

	CHECK_EQ_INT(vector_id(0, &k, &id), 0);
	CHECK_EQ_INT(an_peerid_pubkey(&id, &got), 0);
	CHECK(an_pubkey_equal(&k, &got));
	CHECK_EQ_INT(vector_id(2, &k, &id), 0);
	CHECK_EQ_INT(an_peerid_pubkey(&id, &got), 0);
	CHECK(an_pubkey_equal(&k, &got));
	/* sha2-256 peer IDs (RSA) do not carry their key. */
	CHECK_EQ_INT(vector_id(1, &k, &id), 0);
	CHECK_EQ_INT(an_peerid_pubkey(&id, &got), AN_ENOTFOUND);
}

static void test_peerhash_known_keys(void)
{
	for (size_t i = 0; i < NVECTORS; i++) {
		struct an_pubkey k;
		struct an_peerid id;
		char hash[AN_PEERHASH_LEN + 1];

		CHECK_EQ_INT(vector_id(i, &k, &id), 0);
		CHECK_EQ_INT(an_peerhash(&id, hash), 0);
		CHECK_EQ_INT(strlen(hash), AN_PEERHASH_LEN);
		CHECK_EQ_STR(hash, vectors[i].hash);
		CHECK(an_peerhash_valid(hash));
	}
}

static void test_peerhash_valid(void)
{
	CHECK(an_peerhash_valid("37kteevexuv63i7k"));
	CHECK(!an_peerhash_valid("37kteevexuv63i7"));   /* 15 characters */
	CHECK(!an_peerhash_valid("37kteevexuv63i7ka")); /* 17 characters */
	CHECK(!an_peerhash_valid("37kteevexuv63i1k"));  /* '1' is not base32 */
	CHECK(!an_peerhash_valid("37KTEEVEXUV63I7K"));  /* upper case */
	CHECK(!an_peerhash_valid(""));
}

static void test_peerid_equal(void)
{
	struct an_pubkey k;
	struct an_peerid a, b;

	CHECK_EQ_INT(vector_id(0, &k, &a), 0);
	CHECK_EQ_INT(vector_id(0, &k, &b), 0);
	CHECK(an_peerid_equal(&a, &b));
	b.bytes[b.len - 1] ^= 1;
	CHECK(!an_peerid_equal(&a, &b));
	CHECK_EQ_INT(vector_id(2, &k, &b), 0);
	CHECK(!an_peerid_equal(&a, &b));
}

static void test_peerid_format_small_buffer(void)
{
	struct an_pubkey k;
	struct an_peerid id;
	char text[20];

	CHECK_EQ_INT(vector_id(0, &k, &id), 0);
	CHECK_EQ_INT(an_peerid_format(&id, text, sizeof text), AN_ETOOBIG);
	CHECK_EQ_INT(an_peerid_format_cid(&id, text, sizeof text), AN_ETOOBIG);
}

int main(void)
{
	RUN(test_peerid_spec_vectors);
	RUN(test_peerid_identity_vs_sha256);
	RUN(test_peerid_cid_format);
	RUN(test_peerid_parse_both_forms);
	RUN(test_peerid_parse_errors);
	RUN(test_peerid_from_bytes);
	RUN(test_peerid_pubkey);
	RUN(test_peerhash_known_keys);
	RUN(test_peerhash_valid);
	RUN(test_peerid_equal);
	RUN(test_peerid_format_small_buffer);
	return check_done();
}
