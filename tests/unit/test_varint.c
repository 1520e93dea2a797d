/* Unit tests for libcommon/encoding/varint: multiformats unsigned-varint. */
#include "check.h"

#include "encoding/varint.h"
#include "util/error.h"

#include <stdint.h>

struct vec {
	uint64_t v;
	const char *hex;
};

/* The examples of the multiformats unsigned-varint spec README. */
static const struct vec spec_vectors[] = {
	{ 1, "01" },          { 127, "7f" },        { 128, "8001" },
	{ 255, "ff01" },      { 300, "ac02" },      { 16384, "808001" },
};

static void test_spec_vectors_encode(void)
{
	for (size_t i = 0; i < sizeof spec_vectors / sizeof spec_vectors[0]; i++) {
		uint8_t want[16], got[AN_VARINT_MAX_BYTES];
		int n = check_unhex(spec_vectors[i].hex, want, sizeof want);
		size_t m = an_varint_encode(spec_vectors[i].v, got);
		CHECK_EQ_INT(m, n);
		CHECK_EQ_INT(an_varint_len(spec_vectors[i].v), n);
		CHECK_EQ_MEM(got, want, (size_t)n);
	}
}

static void test_spec_vectors_decode(void)
{
	for (size_t i = 0; i < sizeof spec_vectors / sizeof spec_vectors[0]; i++) {
		uint8_t in[16];
		int n = check_unhex(spec_vectors[i].hex, in, sizeof in);
		uint64_t v = 0;
		size_t used = 0;
		CHECK_EQ_INT(an_varint_decode(in, (size_t)n, &v, &used), 0);
		CHECK_EQ_INT(used, n);
		CHECK(v == spec_vectors[i].v);
	}
}

static void test_zero(void)
{
	uint8_t out[AN_VARINT_MAX_BYTES], in[] = { 0x00 };
	uint64_t v = 99;
	size_t used = 0;
	CHECK_EQ_INT(an_varint_encode(0, out), 1);
	CHECK_EQ_INT(out[0], 0);
	CHECK_EQ_INT(an_varint_decode(in, 1, &v, &used), 0);
	CHECK(v == 0);
	CHECK_EQ_INT(used, 1);
}

static void test_max_value_roundtrip(void)
{
	uint8_t out[AN_VARINT_MAX_BYTES];
	uint64_t v = 0;
	size_t used = 0;
	size_t n = an_varint_encode(AN_VARINT_MAX_VALUE, out);
	CHECK_EQ_INT(n, 9);
	CHECK_EQ_INT(an_varint_decode(out, n, &v, &used), 0);
	CHECK(v == AN_VARINT_MAX_VALUE);
	CHECK_EQ_INT(used, 9);
}

static void test_too_big_to_encode(void)
{
	uint8_t out[AN_VARINT_MAX_BYTES];
	CHECK_EQ_INT(an_varint_encode(AN_VARINT_MAX_VALUE + 1, out), 0);
	CHECK_EQ_INT(an_varint_len(AN_VARINT_MAX_VALUE + 1), 10);
	CHECK_EQ_INT(an_varint_len(UINT64_MAX), 10);
}

static void test_roundtrip_powers(void)
{
	for (int bit = 0; bit < 63; bit++) {
		uint64_t vals[3] = { UINT64_C(1) << bit, (UINT64_C(1) << bit) - 1,
				     (UINT64_C(1) << bit) + 1 };
		for (int k = 0; k < 3; k++) {
			uint8_t out[AN_VARINT_MAX_BYTES];
			uint64_t v = 0;
			size_t used = 0;
			size_t n = an_varint_encode(vals[k], out);
			CHECK(n >= 1 && n <= 9);
			CHECK_EQ_INT(n, an_varint_len(vals[k]));
			CHECK_EQ_INT(an_varint_decode(out, n, &v, &used), 0);
			CHECK(v == vals[k]);
			CHECK_EQ_INT(used, n);
		}
	}
}

static void test_trailing_bytes_not_consumed(void)
{
	uint8_t in[] = { 0xac, 0x02, 0xff, 0xff };
	uint64_t v = 0;
	size_t used = 0;
	CHECK_EQ_INT(an_varint_decode(in, sizeof in, &v, &used), 0);
	CHECK(v == 300);
	CHECK_EQ_INT(used, 2);
}

static void test_non_minimal_rejected(void)
{
	uint8_t a[] = { 0x81, 0x00 };       /* 1 in two bytes */
	uint8_t b[] = { 0x80, 0x80, 0x00 }; /* 0 in three bytes */
	uint64_t v;
	size_t used;
	CHECK_EQ_INT(an_varint_decode(a, sizeof a, &v, &used), AN_EMALFORMED);
	CHECK_EQ_INT(an_varint_decode(b, sizeof b, &v, &used), AN_EMALFORMED);
}

static void test_ten_bytes_rejected(void)
{
	uint8_t in[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	uint64_t v;
	size_t used;
	CHECK_EQ_INT(an_varint_decode(in, sizeof in, &v, &used), AN_EMALFORMED);
	/* Even when the input stops after nine continuation bytes. */
	CHECK_EQ_INT(an_varint_decode(in, 9, &v, &used), AN_EMALFORMED);
}

static void test_incomplete_is_eagain(void)
{
	uint8_t in[] = { 0x80, 0x80 };
	uint64_t v;
	size_t used;
	CHECK_EQ_INT(an_varint_decode(in, 0, &v, &used), AN_EAGAIN);
	CHECK_EQ_INT(an_varint_decode(in, 1, &v, &used), AN_EAGAIN);
	CHECK_EQ_INT(an_varint_decode(in, 2, &v, &used), AN_EAGAIN);
}

int main(void)
{
	RUN(test_spec_vectors_encode);
	RUN(test_spec_vectors_decode);
	RUN(test_zero);
	RUN(test_max_value_roundtrip);
	RUN(test_too_big_to_encode);
	RUN(test_roundtrip_powers);
	RUN(test_trailing_bytes_not_consumed);
	RUN(test_non_minimal_rejected);
	RUN(test_ten_bytes_rejected);
	RUN(test_incomplete_is_eagain);
	return check_done();
}
