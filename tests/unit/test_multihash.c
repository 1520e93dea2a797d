/* Unit tests for libcommon/encoding/multihash. */
#include "check.h"

#include "encoding/multihash.h"
#include "util/error.h"

#include <sodium.h>
#include <stdint.h>

/* The multihash README example: sha2-256 of "Merkle–Damgård" (UTF-8). */
#define MD_TEXT "Merkle\xe2\x80\x93" "Damg\xc3\xa5" "rd"
#define MD_HEX "122041dd7b6443542e75701aa98a0c235951a28a0d851b11564d20022ab11d2589a8"
/* sha2-256 of the empty string, and its base58btc text. */
#define EMPTY_B58 "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
/* The Ed25519 peer ID of the peer-id spec: an identity multihash. */
#define PEERID_HEX "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
#define PEERID_B58 "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"

static void test_sha256_readme_vector(void)
{
	uint8_t want[64], got[AN_MULTIHASH_SHA2_256_LEN];
	int n = check_unhex(MD_HEX, want, sizeof want);
	CHECK_EQ_INT(n, AN_MULTIHASH_SHA2_256_LEN);
	CHECK_EQ_INT(an_multihash_sha256(MD_TEXT, strlen(MD_TEXT), got), 0);
	CHECK_EQ_MEM(got, want, sizeof got);
	CHECK_EQ_INT(an_multihash_check(got, sizeof got), 0);
}

static void test_sha256_empty_text(void)
{
	uint8_t mh[AN_MULTIHASH_SHA2_256_LEN];
	char text[AN_MULTIHASH_TEXT_MAX];
	an_multihash_sha256("", 0, mh);
	CHECK_EQ_INT(an_multihash_format(mh, sizeof mh, text, sizeof text), 0);
	CHECK_EQ_STR(text, EMPTY_B58);
}

static void test_decode_identity(void)
{
	uint8_t in[64];
	struct an_multihash mh;
	size_t used = 0;
	int n = check_unhex(PEERID_HEX, in, sizeof in);
	CHECK_EQ_INT(an_multihash_decode(in, (size_t)n, &mh, &used), 0);
	CHECK(mh.code == AN_MULTIHASH_IDENTITY);
	CHECK_EQ_INT(mh.len, 36);
	CHECK(mh.digest == in + 2);
	CHECK_EQ_INT(used, n);
	CHECK_EQ_INT(an_multihash_check(in, (size_t)n), 0);
}

static void test_decode_leaves_trailing_bytes(void)
{
	uint8_t in[] = { 0x00, 0x02, 0xaa, 0xbb, 0xcc };
	struct an_multihash mh;
	size_t used = 0;
	CHECK_EQ_INT(an_multihash_decode(in, sizeof in, &mh, &used), 0);
	CHECK_EQ_INT(used, 4);
	/* ...but a whole-buffer check refuses the extra byte. */
	CHECK_EQ_INT(an_multihash_check(in, sizeof in), AN_EMALFORMED);
}

static void test_decode_unknown_code_walks(void)
{
	uint8_t in[] = { 0xb2, 0x40, 0x02, 0x01, 0x02 }; /* blake2b-256 code, 2 bytes */
	struct an_multihash mh;
	size_t used = 0;
	CHECK_EQ_INT(an_multihash_decode(in, sizeof in, &mh, &used), 0);
	CHECK(mh.code == 0x2032);
	CHECK_EQ_INT(an_multihash_check(in, sizeof in), AN_EMALFORMED);
}

static void test_decode_truncated(void)
{
	uint8_t in[] = { 0x12, 0x20, 0x01, 0x02 };
	uint8_t cut[] = { 0x12 };
	struct an_multihash mh;
	size_t used;
	CHECK_EQ_INT(an_multihash_decode(in, sizeof in, &mh, &used), AN_ETRUNCATED);
	CHECK_EQ_INT(an_multihash_decode(cut, sizeof cut, &mh, &used), AN_ETRUNCATED);
	CHECK_EQ_INT(an_multihash_decode(cut, 0, &mh, &used), AN_ETRUNCATED);
	CHECK_EQ_INT(an_multihash_check(in, sizeof in), AN_EMALFORMED);
}

static void test_decode_digest_over_cap(void)
{
	uint8_t in[200] = { 0x00, 0x81, 0x01 }; /* identity, 129 bytes */
	struct an_multihash mh;
	size_t used;
	CHECK_EQ_INT(an_multihash_decode(in, sizeof in, &mh, &used), AN_ETOOBIG);
}

static void test_decode_non_minimal_varint(void)
{
	uint8_t in[] = { 0x92, 0x00, 0x01, 0xaa };
	struct an_multihash mh;
	size_t used;
	CHECK_EQ_INT(an_multihash_decode(in, sizeof in, &mh, &used), AN_EMALFORMED);
}

static void test_check_sha256_wrong_length(void)
{
	uint8_t in[33] = { 0x12, 0x1f };
	CHECK_EQ_INT(an_multihash_check(in, sizeof in), AN_EMALFORMED);
}

static void test_encode_roundtrip(void)
{
	uint8_t digest[40], out[AN_MULTIHASH_MAX];
	struct an_multihash mh;
	size_t n = 0, used = 0;
	for (size_t i = 0; i < sizeof digest; i++)
		digest[i] = (uint8_t)i;
	CHECK_EQ_INT(an_multihash_encode(0x1b, digest, sizeof digest, out, sizeof out, &n), 0);
	CHECK_EQ_INT(n, 42);
	CHECK_EQ_INT(out[0], 0x1b);
	CHECK_EQ_INT(out[1], 40);
	CHECK_EQ_INT(an_multihash_decode(out, n, &mh, &used), 0);
	CHECK(mh.code == 0x1b && mh.len == 40);
	CHECK_EQ_MEM(mh.digest, digest, 40);
}

static void test_encode_limits(void)
{
	uint8_t digest[AN_MULTIHASH_MAX_DIGEST + 1] = { 0 }, out[AN_MULTIHASH_MAX + 8];
	size_t n;
	CHECK_EQ_INT(an_multihash_encode(0, digest, sizeof digest, out, sizeof out, &n), AN_ETOOBIG);
	CHECK_EQ_INT(an_multihash_encode(0x12, digest, 32, out, 33, &n), AN_ETOOBIG);
	CHECK_EQ_INT(an_multihash_encode(0x12, digest, 32, out, 34, &n), 0);
	CHECK_EQ_INT(an_multihash_encode(UINT64_MAX, digest, 1, out, sizeof out, &n), AN_EMALFORMED);
}

static void test_text_roundtrip_peerid(void)
{
	uint8_t want[64], out[64];
	char text[AN_MULTIHASH_TEXT_MAX];
	size_t n = 0;
	int len = check_unhex(PEERID_HEX, want, sizeof want);
	CHECK_EQ_INT(an_multihash_parse(PEERID_B58, out, sizeof out, &n), 0);
	CHECK_EQ_INT(n, len);
	CHECK_EQ_MEM(out, want, (size_t)len);
	CHECK_EQ_INT(an_multihash_format(out, n, text, sizeof text), 0);
	CHECK_EQ_STR(text, PEERID_B58);
}

static void test_parse_errors(void)
{
	uint8_t out[64];
	size_t n;
	CHECK_EQ_INT(an_multihash_parse("", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_multihash_parse("0OIl", out, sizeof out, &n), AN_EMALFORMED);
	/* valid base58, not a multihash we support (sha2-256 cut short) */
	CHECK_EQ_INT(an_multihash_parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1", out,
					sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_multihash_parse(EMPTY_B58, out, 33, &n), AN_ETOOBIG);
}

static void test_format_refuses_unchecked(void)
{
	uint8_t in[] = { 0x13, 0x01, 0x00 };
	char text[32];
	CHECK_EQ_INT(an_multihash_format(in, sizeof in, text, sizeof text), AN_EMALFORMED);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_sha256_readme_vector);
	RUN(test_sha256_empty_text);
	RUN(test_decode_identity);
	RUN(test_decode_leaves_trailing_bytes);
	RUN(test_decode_unknown_code_walks);
	RUN(test_decode_truncated);
	RUN(test_decode_digest_over_cap);
	RUN(test_decode_non_minimal_varint);
	RUN(test_check_sha256_wrong_length);
	RUN(test_encode_roundtrip);
	RUN(test_encode_limits);
	RUN(test_text_roundtrip_peerid);
	RUN(test_parse_errors);
	RUN(test_format_refuses_unchecked);
	return check_done();
}
