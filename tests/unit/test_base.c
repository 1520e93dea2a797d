/* Unit tests for libcommon/encoding: base58btc, base32 (RFC 4648, lower), hex. */
#include "check.h"

#include "encoding/base32.h"
#include "encoding/base58.h"
#include "encoding/hex.h"
#include "util/error.h"

#include <stdint.h>

/* The Ed25519 peer ID of the libp2p peer-id spec vector. */
#define PEERID_HEX "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
#define PEERID_B58 "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"

struct b58vec {
	const char *hex, *text;
};

/* The spec peer ID plus examples of the IETF base58 draft (draft-msporny-base58). */
static const struct b58vec b58_vectors[] = {
	{ PEERID_HEX, PEERID_B58 },
	{ "48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U" }, /* "Hello World!" */
	{ "0000287fb4cd", "11233QC4" },
	{ "00", "1" },
	{ "61", "2g" },
	{ "ff", "5Q" },
};

static void test_base58_encode_vectors(void)
{
	for (size_t i = 0; i < sizeof b58_vectors / sizeof b58_vectors[0]; i++) {
		uint8_t in[64];
		char out[128];
		int n = check_unhex(b58_vectors[i].hex, in, sizeof in);
		CHECK_EQ_INT(an_base58_encode(in, (size_t)n, out, sizeof out), 0);
		CHECK_EQ_STR(out, b58_vectors[i].text);
	}
}

static void test_base58_decode_vectors(void)
{
	for (size_t i = 0; i < sizeof b58_vectors / sizeof b58_vectors[0]; i++) {
		uint8_t want[64], out[64];
		size_t outlen = 0;
		int n = check_unhex(b58_vectors[i].hex, want, sizeof want);
		CHECK_EQ_INT(an_base58_decode(b58_vectors[i].text, out, sizeof out, &outlen), 0);
		CHECK_EQ_INT(outlen, n);
		CHECK_EQ_MEM(out, want, (size_t)n);
	}
}

static void test_base58_empty(void)
{
	char out[4] = "x";
	uint8_t bytes[4];
	size_t n;
	CHECK_EQ_INT(an_base58_encode(NULL, 0, out, sizeof out), 0);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(an_base58_decode("", bytes, sizeof bytes, &n), AN_EMALFORMED);
}

static void test_base58_bad_characters(void)
{
	uint8_t out[64];
	size_t n;
	CHECK_EQ_INT(an_base58_decode("12D3Koo0", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base58_decode("abcOdef", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base58_decode("abcIdef", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base58_decode("abcldef", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base58_decode("abc def", out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base58_decode("abc\xc3\xa9", out, sizeof out, &n), AN_EMALFORMED);
}

static void test_base58_output_too_small(void)
{
	uint8_t in[64], out[64];
	char text[128];
	size_t n;
	int len = check_unhex(PEERID_HEX, in, sizeof in);
	/* 52 characters + NUL */
	CHECK_EQ_INT(an_base58_encode(in, (size_t)len, text, 52), AN_ETOOBIG);
	CHECK_EQ_INT(an_base58_encode(in, (size_t)len, text, 53), 0);
	CHECK_EQ_INT(an_base58_decode(PEERID_B58, out, 37, &n), AN_ETOOBIG);
	CHECK_EQ_INT(an_base58_decode("111", out, 2, &n), AN_ETOOBIG);
}

static void test_base58_overlong_input(void)
{
	static uint8_t in[AN_BASE58_MAX_INPUT + 1];
	static char text[AN_BASE58_MAX_INPUT + 2];
	static char out[2 * AN_BASE58_MAX_INPUT];
	static uint8_t bytes[AN_BASE58_MAX_INPUT];
	size_t n;
	memset(in, 0xff, sizeof in);
	CHECK_EQ_INT(an_base58_encode(in, sizeof in, out, sizeof out), AN_ETOOBIG);
	memset(text, 'z', sizeof text - 1);
	CHECK_EQ_INT(an_base58_decode(text, bytes, sizeof bytes, &n), AN_ETOOBIG);
}

/* 700 bytes encode to about 956 characters, under the decoder's input cap. */
static void test_base58_roundtrip_long(void)
{
	static uint8_t in[700], back[AN_BASE58_MAX_INPUT];
	static char text[2 * AN_BASE58_MAX_INPUT];
	size_t n = 0;
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 131 + 7);
	in[0] = 0;
	in[1] = 0;
	CHECK_EQ_INT(an_base58_encode(in, sizeof in, text, sizeof text), 0);
	CHECK(text[0] == '1' && text[1] == '1' && text[2] != '1');
	CHECK_EQ_INT(an_base58_decode(text, back, sizeof back, &n), 0);
	CHECK_EQ_INT(n, sizeof in);
	CHECK_EQ_MEM(back, in, sizeof in);
}

struct b32vec {
	const char *plain, *text;
};

/* RFC 4648 section 10, lower case and without padding. */
static const struct b32vec b32_vectors[] = {
	{ "", "" },           { "f", "my" },          { "fo", "mzxq" },
	{ "foo", "mzxw6" },   { "foob", "mzxw6yq" },  { "fooba", "mzxw6ytb" },
	{ "foobar", "mzxw6ytboi" },
};

static void test_base32_rfc4648_encode(void)
{
	for (size_t i = 0; i < sizeof b32_vectors / sizeof b32_vectors[0]; i++) {
		char out[32];
		size_t len = strlen(b32_vectors[i].plain);
		CHECK_EQ_INT(an_base32_encoded_len(len), strlen(b32_vectors[i].text));
		CHECK_EQ_INT(an_base32_encode((const uint8_t *)b32_vectors[i].plain, len, out,
					      sizeof out), 0);
		CHECK_EQ_STR(out, b32_vectors[i].text);
	}
}

static void test_base32_rfc4648_decode(void)
{
	for (size_t i = 0; i < sizeof b32_vectors / sizeof b32_vectors[0]; i++) {
		uint8_t out[32];
		size_t n = 99;
		const char *t = b32_vectors[i].text;
		CHECK_EQ_INT(an_base32_decode(t, strlen(t), out, sizeof out, &n), 0);
		CHECK_EQ_INT(n, strlen(b32_vectors[i].plain));
		CHECK_EQ_MEM(out, b32_vectors[i].plain, n);
	}
}

static void test_base32_upper_case_accepted(void)
{
	uint8_t out[16];
	size_t n = 0;
	CHECK_EQ_INT(an_base32_decode("MZXW6YTBOI", 10, out, sizeof out, &n), 0);
	CHECK_EQ_INT(n, 6);
	CHECK_EQ_MEM(out, "foobar", 6);
}

/* The CIDv1 form of the spec peer ID: 'b' + base32(01 72 multihash). */
static void test_base32_peerid_cid(void)
{
	uint8_t in[64];
	char out[128];
	in[0] = 0x01;
	in[1] = 0x72;
	int n = check_unhex(PEERID_HEX, in + 2, sizeof in - 2);
	CHECK_EQ_INT(an_base32_encode(in, (size_t)n + 2, out, sizeof out), 0);
	CHECK_EQ_STR(out, "afzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6");
}

static void test_base32_padding_rejected(void)
{
	uint8_t out[16];
	size_t n;
	CHECK_EQ_INT(an_base32_decode("my======", 8, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base32_decode("mzxq====", 8, out, sizeof out, &n), AN_EMALFORMED);
}

static void test_base32_bad_characters(void)
{
	uint8_t out[16];
	size_t n;
	CHECK_EQ_INT(an_base32_decode("mzx1", 4, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base32_decode("mzx8", 4, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base32_decode("mz q", 4, out, sizeof out, &n), AN_EMALFORMED);
}

static void test_base32_impossible_length(void)
{
	uint8_t out[16];
	size_t n;
	CHECK_EQ_INT(an_base32_decode("m", 1, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base32_decode("mzx", 3, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_base32_decode("mzxw6y", 6, out, sizeof out, &n), AN_EMALFORMED);
}

static void test_base32_nonzero_trailing_bits(void)
{
	uint8_t out[16];
	size_t n;
	/* "mz" is 'f' plus two set trailing bits ('y' would leave them zero) */
	CHECK_EQ_INT(an_base32_decode("mz", 2, out, sizeof out, &n), AN_EMALFORMED);
}

static void test_base32_output_too_small(void)
{
	uint8_t out[16];
	char text[16];
	size_t n;
	CHECK_EQ_INT(an_base32_decode("mzxw6ytboi", 10, out, 5, &n), AN_ETOOBIG);
	CHECK_EQ_INT(an_base32_encode((const uint8_t *)"foobar", 6, text, 10), AN_ETOOBIG);
	CHECK_EQ_INT(an_base32_encode((const uint8_t *)"foobar", 6, text, 11), 0);
}

static void test_hex_roundtrip(void)
{
	uint8_t in[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
	uint8_t back[8];
	char text[11];
	size_t n = 0;
	an_hex_encode(in, sizeof in, text);
	CHECK_EQ_STR(text, "0001abff7f");
	CHECK_EQ_INT(an_hex_decode(text, 10, back, sizeof back, &n), 0);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_MEM(back, in, 5);
}

static void test_hex_upper_case_accepted(void)
{
	uint8_t out[4];
	size_t n = 0;
	CHECK_EQ_INT(an_hex_decode("ABcd", 4, out, sizeof out, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(out[0], 0xab);
	CHECK_EQ_INT(out[1], 0xcd);
}

static void test_hex_errors(void)
{
	uint8_t out[4];
	size_t n;
	CHECK_EQ_INT(an_hex_decode("abc", 3, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_hex_decode("zz", 2, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_hex_decode("0g", 2, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_hex_decode("0 ", 2, out, sizeof out, &n), AN_EMALFORMED);
	CHECK_EQ_INT(an_hex_decode("0011223344", 10, out, sizeof out, &n), AN_ETOOBIG);
}

static void test_hex_empty(void)
{
	char text[1] = "x";
	uint8_t out[1];
	size_t n = 9;
	an_hex_encode(NULL, 0, text);
	CHECK_EQ_STR(text, "");
	CHECK_EQ_INT(an_hex_decode("", 0, out, sizeof out, &n), 0);
	CHECK_EQ_INT(n, 0);
}

int main(void)
{
	RUN(test_base58_encode_vectors);
	RUN(test_base58_decode_vectors);
	RUN(test_base58_empty);
	RUN(test_base58_bad_characters);
	RUN(test_base58_output_too_small);
	RUN(test_base58_overlong_input);
	RUN(test_base58_roundtrip_long);
	RUN(test_base32_rfc4648_encode);
	RUN(test_base32_rfc4648_decode);
	RUN(test_base32_upper_case_accepted);
	RUN(test_base32_peerid_cid);
	RUN(test_base32_padding_rejected);
	RUN(test_base32_bad_characters);
	RUN(test_base32_impossible_length);
	RUN(test_base32_nonzero_trailing_bits);
	RUN(test_base32_output_too_small);
	RUN(test_hex_roundtrip);
	RUN(test_hex_upper_case_accepted);
	RUN(test_hex_errors);
	RUN(test_hex_empty);
	return check_done();
}
