/*
 * test_autonat_msg.c - the AutoNAT v1 and v2 codecs (nat/autonat_msg.h):
 * the bytes of the wire digest (checked there against js's protons codec),
 * round trips, caps and malformed input.
 */
#include "nat/autonat_msg.h"
#include "encoding/protobuf.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "check.h"

static const uint8_t addr1234[] = {0x04, 1, 2, 3, 4, 0x06, 0x0f, 0xa1}; /* /ip4/1.2.3.4/tcp/4001 */

/* The protobuf inside the one LP frame of b. */
static const uint8_t *unframe(const struct an_buf *b, size_t *len)
{
	const uint8_t *msg;
	size_t used;
	if (an_lp_get(b->data, b->len, AN_AUTONAT_MSG_MAX, &msg, len, &used) < 0 || used != b->len)
		return NULL;
	return msg;
}

static void test_v2_dial_request_bytes(void)
{
	static const uint8_t want[] = {0x0a, 0x13, 0x0a, 0x08, 0x04, 1, 2, 3, 4, 0x06, 0x0f, 0xa1, 0x11,
				       0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	struct an_autonat2_msg m, d;
	struct an_buf b;
	size_t len;
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_REQUEST);
	m.naddrs = 1;
	m.addrs[0].p = addr1234;
	m.addrs[0].len = sizeof(addr1234);
	m.nonce = 0x0102030405060708ull;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), 0);
	const uint8_t *pb = unframe(&b, &len);
	CHECK(pb != NULL);
	CHECK_EQ_INT(len, sizeof(want));
	CHECK(pb && memcmp(pb, want, sizeof(want)) == 0);
	CHECK_EQ_INT(an_autonat2_decode(want, sizeof(want), &d), 0);
	CHECK_EQ_INT(d.kind, AN_AUTONAT2_DIAL_REQUEST);
	CHECK_EQ_INT(d.naddrs, 1);
	CHECK(d.nonce == 0x0102030405060708ull);
	CHECK_EQ_INT(d.addrs[0].len, sizeof(addr1234));
	CHECK(memcmp(d.addrs[0].p, addr1234, sizeof(addr1234)) == 0);
	an_buf_free(&b);
}

static void test_v2_small_messages_bytes(void)
{
	static const uint8_t ddr[] = {0x1a, 0x04, 0x10, 0xd0, 0x86, 0x03};
	static const uint8_t ok[] = {0x12, 0x06, 0x08, 0xc8, 0x01, 0x18, 0xc8, 0x01};
	static const uint8_t refused[] = {0x12, 0x02, 0x08, 0x65};
	struct an_autonat2_msg m;
	struct an_buf b;
	size_t len;
	const uint8_t *pb;

	an_buf_init(&b, 1024);
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_DATA_REQUEST);
	m.num_bytes = 50000;
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), 0);
	pb = unframe(&b, &len);
	CHECK(pb && len == sizeof(ddr) && memcmp(pb, ddr, len) == 0);
	CHECK_EQ_INT(an_autonat2_decode(ddr, sizeof(ddr), &m), 0);
	CHECK_EQ_INT(m.kind, AN_AUTONAT2_DIAL_DATA_REQUEST);
	CHECK_EQ_INT(m.num_bytes, 50000);
	CHECK_EQ_INT(m.addr_idx, 0);

	an_buf_reset(&b);
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_RESPONSE);
	m.status = AN_AUTONAT2_OK;
	m.dial_status = AN_AUTONAT2_DIAL_OK;
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), 0);
	pb = unframe(&b, &len);
	CHECK(pb && len == sizeof(ok) && memcmp(pb, ok, len) == 0);
	CHECK_EQ_INT(an_autonat2_decode(refused, sizeof(refused), &m), 0);
	CHECK_EQ_INT(m.kind, AN_AUTONAT2_DIAL_RESPONSE);
	CHECK_EQ_INT(m.status, AN_AUTONAT2_E_DIAL_REFUSED);
	CHECK_EQ_INT(m.dial_status, 0);
	an_buf_free(&b);
}

static void test_v2_dial_back_bytes(void)
{
	static const uint8_t want[] = {0x09, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	struct an_buf b;
	uint64_t nonce;
	uint32_t status = 9;
	an_buf_init(&b, 64);
	CHECK_EQ_INT(an_autonat2_dial_back_encode(0x0102030405060708ull, &b), 0);
	CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
	CHECK_EQ_INT(an_autonat2_dial_back_decode(want + 1, sizeof(want) - 1, &nonce), 0);
	CHECK(nonce == 0x0102030405060708ull);
	/* DialBackResponse{OK} is the empty message: the frame 00 */
	an_buf_reset(&b);
	CHECK_EQ_INT(an_autonat2_dial_back_response_encode(0, &b), 0);
	CHECK_EQ_INT(b.len, 1);
	CHECK_EQ_INT(b.data[0], 0);
	CHECK_EQ_INT(an_autonat2_dial_back_response_decode(b.data + 1, 0, &status), 0);
	CHECK_EQ_INT(status, 0);
	/* a nonce with the wrong wire type */
	static const uint8_t bad[] = {0x08, 0x01};
	CHECK_EQ_INT(an_autonat2_dial_back_decode(bad, sizeof(bad), &nonce), AN_EMALFORMED);
	an_buf_free(&b);
}

static void test_v2_data_response_size(void)
{
	static uint8_t data[4096];
	struct an_autonat2_msg m, d;
	struct an_buf b;
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_DATA_RESPONSE);
	m.data.p = data;
	m.data.len = sizeof(data);
	an_buf_init(&b, 8192);
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), 0);
	/* frame prefix 86 20, then 22 83 20 0a 80 20 <4096>: 4104 bytes */
	CHECK_EQ_INT(b.len, 4104);
	CHECK(b.data[0] == 0x86 && b.data[1] == 0x20 && b.data[2] == 0x22 && b.data[5] == 0x0a);
	CHECK_EQ_INT(an_autonat2_decode(b.data + 2, b.len - 2, &d), 0);
	CHECK_EQ_INT(d.kind, AN_AUTONAT2_DIAL_DATA_RESPONSE);
	CHECK_EQ_INT(d.data.len, 4096);
	an_buf_free(&b);
}

static void test_v2_caps_and_errors(void)
{
	struct an_autonat2_msg m;
	struct an_buf b;
	static uint8_t big[AN_AUTONAT_MSG_MAX + 1];
	/* more addresses than kept: counted, not an error */
	an_buf_init(&b, 4096);
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_REQUEST);
	m.naddrs = AN_AUTONAT_MAX_ADDRS;
	for (size_t i = 0; i < m.naddrs; i++) {
		m.addrs[i].p = addr1234;
		m.addrs[i].len = sizeof(addr1234);
	}
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), 0);
	/* append two more addrs inside the DialRequest by hand: rebuild the message */
	struct an_buf inner, outer;
	an_buf_init(&inner, 4096);
	an_buf_init(&outer, 4096);
	for (int i = 0; i < AN_AUTONAT_MAX_ADDRS + 2; i++)
		an_pb_put_bytes(&inner, 1, addr1234, sizeof(addr1234));
	an_pb_put_bytes(&outer, 1, inner.data, inner.len);
	CHECK_EQ_INT(an_autonat2_decode(outer.data, outer.len, &m), 0);
	CHECK_EQ_INT(m.naddrs, AN_AUTONAT_MAX_ADDRS);
	CHECK_EQ_INT(m.dropped, 2);
	/* over the cap */
	CHECK_EQ_INT(an_autonat2_decode(big, sizeof(big), &m), AN_ETOOBIG);
	/* a oneof case with the wrong wire type; a truncated field */
	static const uint8_t wrong[] = {0x08, 0x01};
	static const uint8_t trunc[] = {0x0a, 0x05, 0x0a};
	CHECK_EQ_INT(an_autonat2_decode(wrong, sizeof(wrong), &m), AN_EMALFORMED);
	CHECK(an_autonat2_decode(trunc, sizeof(trunc), &m) < 0);
	/* unknown fields skipped: kind NONE */
	static const uint8_t unknown[] = {0x78, 0x01};
	CHECK_EQ_INT(an_autonat2_decode(unknown, sizeof(unknown), &m), 0);
	CHECK_EQ_INT(m.kind, AN_AUTONAT2_NONE);
	/* field 18 of a DialRequest is unknown, not DialResponse's addrIdx
	   (the fuzzer's find: case keys once aliased across messages) */
	static const uint8_t alias[] = {0x0a, 0x03, 0x90, 0x01, 0x05};
	CHECK_EQ_INT(an_autonat2_decode(alias, sizeof(alias), &m), 0);
	CHECK_EQ_INT(m.kind, AN_AUTONAT2_DIAL_REQUEST);
	CHECK_EQ_INT(m.addr_idx, 0);
	an_autonat2_init(&m, AN_AUTONAT2_NONE);
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), -EINVAL);
	/* encoding over the frame cap leaves out unchanged */
	size_t before = b.len;
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_DATA_RESPONSE);
	m.data.p = big;
	m.data.len = AN_AUTONAT_MSG_MAX;
	CHECK_EQ_INT(an_autonat2_encode(&m, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, before);
	an_buf_free(&b);
	an_buf_free(&inner);
	an_buf_free(&outer);
}

static void test_v1_roundtrip(void)
{
	static const uint8_t pid[] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 1, 2, 3};
	struct an_autonat1_msg m, d;
	struct an_buf b;
	size_t len;
	an_buf_init(&b, 1024);
	an_autonat1_init(&m, AN_AUTONAT1_DIAL);
	m.has_dial = m.has_peer = true;
	m.peer_id.p = pid;
	m.peer_id.len = sizeof(pid);
	m.naddrs = 1;
	m.addrs[0].p = addr1234;
	m.addrs[0].len = sizeof(addr1234);
	CHECK_EQ_INT(an_autonat1_encode(&m, &b), 0);
	const uint8_t *pb = unframe(&b, &len);
	CHECK(pb != NULL);
	/* type DIAL = 0 is encoded (proto2 optional, set) */
	CHECK(pb && pb[0] == 0x08 && pb[1] == 0x00 && pb[2] == 0x12);
	CHECK_EQ_INT(an_autonat1_decode(pb, len, &d), 0);
	CHECK_EQ_INT(d.type, AN_AUTONAT1_DIAL);
	CHECK(d.has_dial && d.has_peer && !d.has_response);
	CHECK_EQ_INT(d.peer_id.len, sizeof(pid));
	CHECK_EQ_INT(d.naddrs, 1);

	an_buf_reset(&b);
	an_autonat1_init(&m, AN_AUTONAT1_DIAL_RESPONSE);
	m.has_response = true;
	m.status = AN_AUTONAT1_E_DIAL_ERROR;
	m.status_text.p = (const uint8_t *)"dial failed";
	m.status_text.len = 11;
	m.addr.p = addr1234;
	m.addr.len = sizeof(addr1234);
	CHECK_EQ_INT(an_autonat1_encode(&m, &b), 0);
	pb = unframe(&b, &len);
	CHECK_EQ_INT(an_autonat1_decode(pb, len, &d), 0);
	CHECK_EQ_INT(d.type, AN_AUTONAT1_DIAL_RESPONSE);
	CHECK(d.has_response && !d.has_dial);
	CHECK_EQ_INT(d.status, AN_AUTONAT1_E_DIAL_ERROR);
	CHECK_EQ_INT(d.status_text.len, 11);
	CHECK_EQ_INT(d.addr.len, sizeof(addr1234));
	an_buf_free(&b);
}

static void test_v1_malformed(void)
{
	struct an_autonat1_msg m;
	/* dial as a varint; status as bytes; peer addrs as a varint */
	static const uint8_t a[] = {0x08, 0x00, 0x10, 0x01};
	static const uint8_t b[] = {0x1a, 0x02, 0x0a, 0x00};
	static const uint8_t c[] = {0x12, 0x04, 0x0a, 0x02, 0x10, 0x01};
	static const uint8_t trunc[] = {0x12, 0x09, 0x0a};
	CHECK_EQ_INT(an_autonat1_decode(a, sizeof(a), &m), AN_EMALFORMED);
	CHECK_EQ_INT(an_autonat1_decode(b, sizeof(b), &m), AN_EMALFORMED);
	CHECK_EQ_INT(an_autonat1_decode(c, sizeof(c), &m), AN_EMALFORMED);
	CHECK(an_autonat1_decode(trunc, sizeof(trunc), &m) < 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_v2_dial_request_bytes);
	RUN(test_v2_small_messages_bytes);
	RUN(test_v2_dial_back_bytes);
	RUN(test_v2_data_response_size);
	RUN(test_v2_caps_and_errors);
	RUN(test_v1_roundtrip);
	RUN(test_v1_malformed);
	return check_done();
}
