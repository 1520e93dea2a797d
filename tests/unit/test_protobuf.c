/* Unit tests for libcommon/encoding/protobuf: field reader, writers, LP framing. */
#include "check.h"

#include "encoding/protobuf.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdint.h>

/* Read the message in hex; returns an_pb_next's first result. */
static int first_field(const char *hex, uint8_t *buf, size_t cap, struct an_pb_field *f)
{
	struct an_pb_reader r;
	int n = check_unhex(hex, buf, cap);
	an_pb_reader_init(&r, buf, (size_t)n);
	return an_pb_next(&r, f);
}

/* The libp2p Ed25519 PublicKey of the peer-id spec: Type=1 (varint), Data=32 bytes. */
static void test_read_public_key(void)
{
	uint8_t m[64];
	int n = check_unhex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
			    m, sizeof m);
	struct an_pb_reader r;
	struct an_pb_field f;
	an_pb_reader_init(&r, m, (size_t)n);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK_EQ_INT(f.number, 1);
	CHECK_EQ_INT(f.wire, AN_PB_VARINT);
	CHECK(f.varint == 1);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK_EQ_INT(f.number, 2);
	CHECK_EQ_INT(f.wire, AN_PB_LEN);
	CHECK_EQ_INT(f.len, 32);
	CHECK(f.data == m + 4);
	CHECK_EQ_INT(an_pb_next(&r, &f), 0);
	CHECK_EQ_INT(an_pb_next(&r, &f), 0);
}

static void test_empty_message(void)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	an_pb_reader_init(&r, NULL, 0);
	CHECK_EQ_INT(an_pb_next(&r, &f), 0);
}

static void test_fixed_types_little_endian(void)
{
	uint8_t m[32];
	struct an_pb_field f;
	/* field 3 fixed32 = 0x04030201 */
	CHECK_EQ_INT(first_field("1d01020304", m, sizeof m, &f), 1);
	CHECK_EQ_INT(f.number, 3);
	CHECK_EQ_INT(f.wire, AN_PB_FIXED32);
	CHECK(f.varint == 0x04030201);
	/* field 4 fixed64 = 0x0807060504030201 */
	CHECK_EQ_INT(first_field("210102030405060708", m, sizeof m, &f), 1);
	CHECK_EQ_INT(f.number, 4);
	CHECK_EQ_INT(f.wire, AN_PB_FIXED64);
	CHECK(f.varint == UINT64_C(0x0807060504030201));
}

/*
 * rust-libp2p kad Record carries fields 666 (publisher, bytes) and 777 (ttl,
 * uint32): two-byte tags d2 29 and c8 30.  A reader that only wants field 1
 * must walk past them and unknown fixed32/fixed64 fields too.
 */
static void test_unknown_fields_skipped(void)
{
	uint8_t m[64];
	int n = check_unhex("d229036162"  /* 666: bytes "ab" + 1 more */
			    "63"          /* (third byte of 666's value) */
			    "c8308e02"    /* 777: varint 270 */
			    "0d04030201"  /* 1 fixed32 */
			    "110807060504030201" /* 2 fixed64 */
			    "1801",       /* 3: varint 1 */
			    m, sizeof m);
	struct an_pb_reader r;
	struct an_pb_field f;
	uint32_t seen[8];
	int count = 0, rc;
	an_pb_reader_init(&r, m, (size_t)n);
	while ((rc = an_pb_next(&r, &f)) == 1 && count < 8)
		seen[count++] = f.number;
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(count, 5);
	CHECK_EQ_INT(seen[0], 666);
	CHECK_EQ_INT(seen[1], 777);
	CHECK_EQ_INT(seen[2], 1);
	CHECK_EQ_INT(seen[3], 2);
	CHECK_EQ_INT(seen[4], 3);
}

static void test_multibyte_tag_values(void)
{
	uint8_t m[16];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("c8308e02", m, sizeof m, &f), 1);
	CHECK_EQ_INT(f.number, 777);
	CHECK(f.varint == 270);
	CHECK_EQ_INT(first_field("d22902abcd", m, sizeof m, &f), 1);
	CHECK_EQ_INT(f.number, 666);
	CHECK_EQ_INT(f.len, 2);
	CHECK_EQ_INT(f.data[0], 0xab);
}

static void test_field_number_zero_rejected(void)
{
	uint8_t m[8];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("0001", m, sizeof m, &f), AN_EMALFORMED);
}

static void test_groups_rejected(void)
{
	uint8_t m[8];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("0b", m, sizeof m, &f), AN_EMALFORMED); /* 1, start group */
	CHECK_EQ_INT(first_field("0c", m, sizeof m, &f), AN_EMALFORMED); /* 1, end group */
}

static void test_invalid_wire_types_rejected(void)
{
	uint8_t m[8];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("0e00", m, sizeof m, &f), AN_EMALFORMED); /* 6 */
	CHECK_EQ_INT(first_field("0f00", m, sizeof m, &f), AN_EMALFORMED); /* 7 */
}

static void test_length_past_end(void)
{
	uint8_t m[8];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("0a05616263", m, sizeof m, &f), AN_ETRUNCATED);
}

static void test_truncated_fields(void)
{
	uint8_t m[16];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("08", m, sizeof m, &f), AN_ETRUNCATED);      /* no value */
	CHECK_EQ_INT(first_field("0880", m, sizeof m, &f), AN_ETRUNCATED);    /* value cut */
	CHECK_EQ_INT(first_field("d2", m, sizeof m, &f), AN_ETRUNCATED);      /* tag cut */
	CHECK_EQ_INT(first_field("0a", m, sizeof m, &f), AN_ETRUNCATED);      /* no length */
	CHECK_EQ_INT(first_field("0d010203", m, sizeof m, &f), AN_ETRUNCATED); /* fixed32 */
	CHECK_EQ_INT(first_field("0901020304050607", m, sizeof m, &f), AN_ETRUNCATED);
}

static void test_non_minimal_varints_rejected(void)
{
	uint8_t m[16];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("888000", m, sizeof m, &f), AN_EMALFORMED);  /* tag */
	CHECK_EQ_INT(first_field("088100", m, sizeof m, &f), AN_EMALFORMED);  /* value */
	CHECK_EQ_INT(first_field("0a8000", m, sizeof m, &f), AN_EMALFORMED);  /* length */
}

/* A negative int32 is sent as a ten-byte varint; more than 64 bits is not. */
static void test_ten_byte_values(void)
{
	uint8_t m[16];
	struct an_pb_field f;
	CHECK_EQ_INT(first_field("08ffffffffffffffffff01", m, sizeof m, &f), 1);
	CHECK(f.varint == UINT64_MAX);
	CHECK_EQ_INT(first_field("08ffffffffffffffffff02", m, sizeof m, &f), AN_EMALFORMED);
	CHECK_EQ_INT(first_field("08ffffffffffffffffff8001", m, sizeof m, &f), AN_EMALFORMED);
}

static void test_field_number_too_big(void)
{
	uint8_t m[16];
	struct an_pb_field f;
	/* tag = 2^29 << 3: field number 2^29 is past the protobuf maximum */
	CHECK_EQ_INT(first_field("808080801001", m, sizeof m, &f), AN_EMALFORMED);
}

static void test_error_is_sticky(void)
{
	uint8_t m[8];
	int n = check_unhex("08010b", m, sizeof m);
	struct an_pb_reader r;
	struct an_pb_field f;
	an_pb_reader_init(&r, m, (size_t)n);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK_EQ_INT(an_pb_next(&r, &f), AN_EMALFORMED);
	CHECK_EQ_INT(an_pb_next(&r, &f), AN_EMALFORMED);
}

static void test_write_then_read(void)
{
	struct an_buf b;
	struct an_pb_reader r;
	struct an_pb_field f;
	uint8_t want[64];
	an_buf_init(&b, 256);
	CHECK_EQ_INT(an_pb_put_varint(&b, 1, 0), 0); /* zero enums are written */
	CHECK_EQ_INT(an_pb_put_bytes(&b, 2, "\x01\x02", 2), 0);
	CHECK_EQ_INT(an_pb_put_string(&b, 3, "hi"), 0);
	CHECK_EQ_INT(an_pb_put_varint(&b, 777, 300), 0);
	CHECK_EQ_INT(an_pb_put_varint(&b, 4, UINT64_MAX), 0);
	int n = check_unhex("0800" "12020102" "1a026869" "c830ac02" "20ffffffffffffffffff01", want,
			    sizeof want);
	CHECK_EQ_INT(b.len, n);
	CHECK_EQ_MEM(b.data, want, (size_t)n);
	an_pb_reader_init(&r, b.data, b.len);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK(f.number == 1 && f.varint == 0);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK(f.number == 2 && f.len == 2);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK(f.number == 3 && f.len == 2 && memcmp(f.data, "hi", 2) == 0);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK(f.number == 777 && f.varint == 300);
	CHECK_EQ_INT(an_pb_next(&r, &f), 1);
	CHECK(f.number == 4 && f.varint == UINT64_MAX);
	CHECK_EQ_INT(an_pb_next(&r, &f), 0);
	an_buf_free(&b);
}

static void test_write_cap_leaves_buffer_unchanged(void)
{
	struct an_buf b;
	an_buf_init(&b, 6);
	CHECK_EQ_INT(an_pb_put_varint(&b, 1, 1), 0);
	CHECK_EQ_INT(an_pb_put_bytes(&b, 2, "abcdef", 6), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 2);
	CHECK_EQ_INT(b.data[2], 0);
	CHECK_EQ_INT(an_pb_put_bytes(&b, 2, "ab", 2), 0);
	CHECK_EQ_INT(b.len, 6);
	an_buf_free(&b);
}

static void test_write_bad_field_number(void)
{
	struct an_buf b;
	an_buf_init(&b, 64);
	CHECK_EQ_INT(an_pb_put_varint(&b, 0, 1), -EINVAL);
	CHECK_EQ_INT(an_pb_put_varint(&b, UINT32_C(1) << 29, 1), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_lp_roundtrip(void)
{
	struct an_buf b;
	const uint8_t *msg;
	size_t mlen, used;
	uint8_t big[300];
	memset(big, 'x', sizeof big);
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_lp_put(&b, "hello", 5), 0);
	CHECK_EQ_INT(an_lp_put(&b, big, sizeof big), 0);
	CHECK_EQ_INT(b.len, 1 + 5 + 2 + 300);
	CHECK_EQ_INT(an_lp_get(b.data, b.len, 1024, &msg, &mlen, &used), 0);
	CHECK_EQ_INT(mlen, 5);
	CHECK_EQ_INT(used, 6);
	CHECK(memcmp(msg, "hello", 5) == 0);
	CHECK_EQ_INT(an_lp_get(b.data + 6, b.len - 6, 1024, &msg, &mlen, &used), 0);
	CHECK_EQ_INT(mlen, 300);
	CHECK_EQ_INT(b.data[6], 0xac);
	CHECK_EQ_INT(b.data[7], 0x02);
	an_buf_free(&b);
}

static void test_lp_incomplete(void)
{
	uint8_t in[] = { 0x05, 'a', 'b' };
	uint8_t cut[] = { 0x80 };
	const uint8_t *msg;
	size_t mlen, used;
	CHECK_EQ_INT(an_lp_get(in, sizeof in, 100, &msg, &mlen, &used), AN_EAGAIN);
	CHECK_EQ_INT(an_lp_get(in, 0, 100, &msg, &mlen, &used), AN_EAGAIN);
	CHECK_EQ_INT(an_lp_get(cut, sizeof cut, 100, &msg, &mlen, &used), AN_EAGAIN);
}

static void test_lp_over_max(void)
{
	uint8_t in[] = { 0xac, 0x02 }; /* announces 300 bytes */
	const uint8_t *msg;
	size_t mlen, used;
	CHECK_EQ_INT(an_lp_get(in, sizeof in, 299, &msg, &mlen, &used), AN_ETOOBIG);
}

static void test_lp_non_minimal(void)
{
	uint8_t in[] = { 0x85, 0x00, 'a' };
	const uint8_t *msg;
	size_t mlen, used;
	CHECK_EQ_INT(an_lp_get(in, sizeof in, 100, &msg, &mlen, &used), AN_EMALFORMED);
}

static void test_lp_empty_message(void)
{
	uint8_t in[] = { 0x00, 0x07 };
	const uint8_t *msg;
	size_t mlen = 9, used = 9;
	CHECK_EQ_INT(an_lp_get(in, sizeof in, 100, &msg, &mlen, &used), 0);
	CHECK_EQ_INT(mlen, 0);
	CHECK_EQ_INT(used, 1);
}

int main(void)
{
	RUN(test_read_public_key);
	RUN(test_empty_message);
	RUN(test_fixed_types_little_endian);
	RUN(test_unknown_fields_skipped);
	RUN(test_multibyte_tag_values);
	RUN(test_field_number_zero_rejected);
	RUN(test_groups_rejected);
	RUN(test_invalid_wire_types_rejected);
	RUN(test_length_past_end);
	RUN(test_truncated_fields);
	RUN(test_non_minimal_varints_rejected);
	RUN(test_ten_byte_values);
	RUN(test_field_number_too_big);
	RUN(test_error_is_sticky);
	RUN(test_write_then_read);
	RUN(test_write_cap_leaves_buffer_unchanged);
	RUN(test_write_bad_field_number);
	RUN(test_lp_roundtrip);
	RUN(test_lp_incomplete);
	RUN(test_lp_over_max);
	RUN(test_lp_non_minimal);
	RUN(test_lp_empty_message);
	return check_done();
}
