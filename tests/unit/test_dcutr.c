/*
 * test_dcutr.c - the DCUtR HolePunch message codec (relay/dcutr.h).
 *
 * Byte vectors: tests/interop/js/relay-dcutr-vectors.mjs prints them as
 * @libp2p/dcutr 3.0.28 encodes them (bare protobufs; our encoder adds the
 * LP prefix).
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "encoding/multiaddr.h"
#include "encoding/protobuf.h"
#include "relay/dcutr.h"
#include "util/error.h"

/* CONNECT [/ip4/1.2.3.4/tcp/4001] */
static const char v_connect[] = "086412080401020304060fa1";
/* CONNECT [/ip4/198.51.100.7/tcp/4001, /ip6/2001:db8::1/tcp/4002] */
static const char v_connect_two[] =
	"0864120804c6336407060fa112142920010db8000000000000000000000001060fa2";
/* SYNC [] */
static const char v_sync[] = "08ac02";

static uint8_t vec[8192];

static size_t load(const char *hex)
{
	int n = check_unhex(hex, vec, sizeof(vec));
	return n < 0 ? 0 : (size_t)n;
}

/* The binary form of a multiaddr text, in a static slot (one per index). */
static const uint8_t *ma(const char *text, size_t *len, int slot)
{
	static struct an_multiaddr m[4];
	if (an_multiaddr_parse(text, &m[slot]) < 0) {
		*len = 0;
		return NULL;
	}
	*len = m[slot].len;
	return m[slot].bytes;
}

/* Encode m and compare with the LP frame of the js vector hex (short: 1-byte prefix). */
static void check_encodes_to(const struct an_dcutr_msg *m, const char *hex)
{
	struct an_buf b;
	size_t n = load(hex);
	an_buf_init(&b, 8192);
	CHECK_EQ_INT(an_dcutr_msg_encode(m, &b), 0);
	CHECK_EQ_INT(b.len, n + 1);
	if (b.len == n + 1) {
		CHECK_EQ_INT(b.data[0], n);
		CHECK_EQ_MEM(b.data + 1, vec, n);
	}
	an_buf_free(&b);
}

static void test_encode_connect(void)
{
	struct an_dcutr_msg m;
	size_t len;
	const uint8_t *a = ma("/ip4/1.2.3.4/tcp/4001", &len, 0);
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a, len), 0);
	check_encodes_to(&m, v_connect);
}

static void test_encode_connect_two_addrs(void)
{
	struct an_dcutr_msg m;
	size_t l1, l2;
	const uint8_t *a1 = ma("/ip4/198.51.100.7/tcp/4001", &l1, 0);
	const uint8_t *a2 = ma("/ip6/2001:db8::1/tcp/4002", &l2, 1);
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a1, l1), 0);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a2, l2), 0);
	check_encodes_to(&m, v_connect_two);
}

/* SYNC's type 300 is a two-byte varint; no addresses field at all. */
static void test_encode_sync(void)
{
	struct an_dcutr_msg m;
	an_dcutr_msg_init(&m, AN_DCUTR_SYNC);
	check_encodes_to(&m, v_sync);
}

static void test_decode_js_connect_two(void)
{
	struct an_dcutr_msg m;
	size_t n = load(v_connect_two), l2;
	const uint8_t *a2 = ma("/ip6/2001:db8::1/tcp/4002", &l2, 1);
	CHECK_EQ_INT(an_dcutr_msg_decode(vec, n, &m), 0);
	CHECK_EQ_INT(m.type, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(m.naddrs, 2);
	CHECK_EQ_INT(m.addrs[1].len, l2);
	if (m.addrs[1].len == l2)
		CHECK_EQ_MEM(m.addrs[1].p, a2, l2);
}

static void test_decode_js_sync(void)
{
	struct an_dcutr_msg m;
	size_t n = load(v_sync);
	CHECK_EQ_INT(an_dcutr_msg_decode(vec, n, &m), 0);
	CHECK_EQ_INT(m.type, AN_DCUTR_SYNC);
	CHECK_EQ_INT(m.naddrs, 0);
}

static void test_decode_missing_type(void)
{
	static const uint8_t msg[] = {0x12, 0x02, 0x04, 0x01};
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_EFIELD);
}

/* js's schema has UNUSED = 0; nobody sends it and rust's proto2 enum lacks it. */
static void test_decode_type_zero_refused(void)
{
	static const uint8_t msg[] = {0x08, 0x00};
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_unknown_type_refused(void)
{
	static const uint8_t msg[] = {0x08, 0x65}; /* 101 */
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_type_wrong_wire(void)
{
	static const uint8_t msg[] = {0x0a, 0x01, 0x64}; /* field 1 as bytes */
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_addr_wrong_wire(void)
{
	static const uint8_t msg[] = {0x08, 0x64, 0x10, 0x01}; /* field 2 as varint */
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_unknown_fields_skipped(void)
{
	/* field 3 varint, field 9 fixed32, then type CONNECT and field 15 bytes */
	static const uint8_t msg[] = {0x18, 0x07, 0x4d, 1, 2, 3, 4, 0x08, 0x64, 0x7a, 0x01, 0xff};
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), 0);
	CHECK_EQ_INT(m.type, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(m.naddrs, 0);
}

static void test_decode_truncated(void)
{
	static const uint8_t msg[] = {0x08, 0x64, 0x12, 0x08, 0x04, 0x01};
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), AN_ETRUNCATED);
}

/* Addresses are kept raw: one we cannot parse does not spoil the message. */
static void test_decode_keeps_unparsable_addr(void)
{
	static const uint8_t msg[] = {0x08, 0x64, 0x12, 0x02, 0xff, 0xff};
	struct an_dcutr_msg m;
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, sizeof(msg), &m), 0);
	CHECK_EQ_INT(m.naddrs, 1);
	CHECK(!an_dcutr_addr_tcp(&m.addrs[0]));
}

static void test_decode_drops_addrs_past_cap(void)
{
	uint8_t msg[2 + (AN_DCUTR_MAX_ADDRS + 3) * 4];
	size_t n = 0;
	struct an_dcutr_msg m;
	msg[n++] = 0x08;
	msg[n++] = 0x64;
	for (int i = 0; i < AN_DCUTR_MAX_ADDRS + 3; i++) {
		msg[n++] = 0x12;
		msg[n++] = 0x02;
		msg[n++] = 0x04;
		msg[n++] = (uint8_t)i;
	}
	CHECK_EQ_INT(an_dcutr_msg_decode(msg, n, &m), 0);
	CHECK_EQ_INT(m.naddrs, AN_DCUTR_MAX_ADDRS);
	CHECK_EQ_INT(m.addrs[AN_DCUTR_MAX_ADDRS - 1].p[1], AN_DCUTR_MAX_ADDRS - 1);
}

static void test_decode_over_cap(void)
{
	struct an_dcutr_msg m;
	memset(vec, 0, AN_DCUTR_MSG_MAX + 1);
	CHECK_EQ_INT(an_dcutr_msg_decode(vec, AN_DCUTR_MSG_MAX + 1, &m), AN_ETOOBIG);
}

static void test_encode_refuses_bad_type(void)
{
	struct an_dcutr_msg m;
	struct an_buf b;
	an_buf_init(&b, 64);
	an_dcutr_msg_init(&m, (enum an_dcutr_type)0);
	CHECK_EQ_INT(an_dcutr_msg_encode(&m, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_encode_over_cap(void)
{
	static uint8_t big[AN_DCUTR_MSG_MAX];
	struct an_dcutr_msg m;
	struct an_buf b;
	an_buf_init(&b, 3 * AN_DCUTR_MSG_MAX);
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, big, sizeof(big)), 0);
	CHECK_EQ_INT(an_dcutr_msg_encode(&m, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_add_addr_limits(void)
{
	static const uint8_t a[] = {0x04, 1, 2, 3, 4};
	struct an_dcutr_msg m;
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a, 0), -EINVAL);
	for (int i = 0; i < AN_DCUTR_MAX_ADDRS; i++)
		CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a, sizeof(a)), 0);
	CHECK_EQ_INT(an_dcutr_msg_add_addr(&m, a, sizeof(a)), AN_ELIMIT);
	CHECK_EQ_INT(m.naddrs, AN_DCUTR_MAX_ADDRS);
}

static void test_read_frame(void)
{
	struct an_dcutr_msg m;
	size_t n = load(v_connect), used = 0;
	uint8_t frame[64];
	frame[0] = (uint8_t)n;
	memcpy(frame + 1, vec, n);
	frame[n + 1] = 0x03; /* the next frame's prefix: not consumed */
	CHECK_EQ_INT(an_dcutr_msg_read(frame, n + 2, &m, &used), 0);
	CHECK_EQ_INT(used, n + 1);
	CHECK_EQ_INT(m.naddrs, 1);
	CHECK_EQ_INT(an_dcutr_msg_read(frame, n, &m, &used), AN_EAGAIN);
}

static void test_read_announced_over_cap(void)
{
	static const uint8_t frame[] = {0x81, 0x20}; /* 4097 */
	struct an_dcutr_msg m;
	size_t used;
	CHECK_EQ_INT(an_dcutr_msg_read(frame, sizeof(frame), &m, &used), AN_ETOOBIG);
}

static bool tcp_ok(const char *text)
{
	size_t len;
	const uint8_t *p = ma(text, &len, 2);
	struct an_dcutr_addr a = {p, len};
	return p && an_dcutr_addr_tcp(&a);
}

static void test_addr_tcp(void)
{
	CHECK(tcp_ok("/ip4/1.2.3.4/tcp/4001"));
	CHECK(tcp_ok("/ip6/2001:db8::1/tcp/4002"));
	CHECK(tcp_ok("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"));
}

static void test_addr_not_tcp(void)
{
	CHECK(!tcp_ok("/ip4/1.2.3.4/udp/4001/quic-v1"));
	CHECK(!tcp_ok("/dns4/example.com/tcp/4001"));
	CHECK(!tcp_ok("/ip4/1.2.3.4/tcp/0"));
	CHECK(!tcp_ok("/ip4/1.2.3.4"));
	CHECK(!tcp_ok("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
		      "/p2p-circuit"));
	CHECK(!tcp_ok("/ip4/1.2.3.4/tcp/4001/ws"));
}

int main(void)
{
	RUN(test_encode_connect);
	RUN(test_encode_connect_two_addrs);
	RUN(test_encode_sync);
	RUN(test_decode_js_connect_two);
	RUN(test_decode_js_sync);
	RUN(test_decode_missing_type);
	RUN(test_decode_type_zero_refused);
	RUN(test_decode_unknown_type_refused);
	RUN(test_decode_type_wrong_wire);
	RUN(test_decode_addr_wrong_wire);
	RUN(test_decode_unknown_fields_skipped);
	RUN(test_decode_truncated);
	RUN(test_decode_keeps_unparsable_addr);
	RUN(test_decode_drops_addrs_past_cap);
	RUN(test_decode_over_cap);
	RUN(test_encode_refuses_bad_type);
	RUN(test_encode_over_cap);
	RUN(test_add_addr_limits);
	RUN(test_read_frame);
	RUN(test_read_announced_over_cap);
	RUN(test_addr_tcp);
	RUN(test_addr_not_tcp);
	return check_done();
}
