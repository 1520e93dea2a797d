/*
 * test_relay.c - Circuit Relay v2 hop and stop message codecs.
 *
 * Byte vectors: tests/interop/js/relay-vectors.mjs prints them as
 * @libp2p/circuit-relay-v2 4.2.13 encodes them (bare protobufs; our encoder
 * adds the LP prefix).  Peer "P" is the Ed25519 key with seed 32 x 0x02,
 * relay "R" the one with seed 32 x 0x01.
 */
#include <errno.h>

#include "check.h"
#include "encoding/multiaddr.h"
#include "relay/circuit.h"
#include "util/error.h"

#define RELAY_ID "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
#define PEER_ID "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"

static const char hop_reserve[] = "0800";
static const char hop_connect[] =
	"080112280a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
static const char hop_connect_addr[] =
	"080112320a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	"1208047f000001060fa1";
static const char hop_status_refused[] = "080228c801";
static const char hop_status_ok_rsv[] =
	"08021a390880e2cfaa061231047f000001060fa1a503260024080112208a88e3dd7409f195fd52db2d3cba5d"
	"72ca6709bf1d94121bf3748801b40f6f5c22060878108080082864";
static const char stop_connect[] =
	"080012280a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	"1a06087810808008";
static const char stop_status_ok[] = "08012064";
/* HopMessage STATUS OK with a reservation carrying js's voucher envelope. */
static const char hop_status_ok_voucher[] =
	"08021a80020880e2cfaa061231047f000001060fa1a503260024080112208a88e3dd7409f195fd52db2d3cba"
	"5d72ca6709bf1d94121bf3748801b40f6f5c1ac4010a24080112208a88e3dd7409f195fd52db2d3cba5d72ca"
	"6709bf1d94121bf3748801b40f6f5c120203021a560a260024080112208a88e3dd7409f195fd52db2d3cba5d"
	"72ca6709bf1d94121bf3748801b40f6f5c12260024080112208139770ea87d175f56a35466c34c7ecccb8d8a"
	"91b4ee37a25df60f5b8fc9b3941880e2cfaa062a4031285ce1e0c9c3b03e318e845c0a2c505908f76e0321c9"
	"2c4c84e7651285a62f4331fbcc4e57611df9c73f46dace9ca3a38c51365d148c2acd54ee8838f077022864";

static uint8_t vec[2048];

static size_t load(const char *hex)
{
	int n = check_unhex(hex, vec, sizeof(vec));
	return n < 0 ? 0 : (size_t)n;
}

/* Encode m and compare with the LP frame of the js vector hex. */
static void check_encodes_to(const struct an_relay_msg *m, const char *hex)
{
	struct an_buf b;
	size_t n = load(hex);
	an_buf_init(&b, 8192);
	CHECK_EQ_INT(an_relay_msg_encode(m, &b), 0);
	CHECK_EQ_INT(b.len, n + 1 + (n >= 128));
	if (b.len == n + 1 + (n >= 128))
		CHECK_EQ_MEM(b.data + b.len - n, vec, n);
	an_buf_free(&b);
}

static void set_peer(struct an_relay_msg *m, const char *text)
{
	m->peer.present = true;
	m->peer.has_id = an_peerid_parse(text, &m->peer.id) == 0;
}

static void test_encode_reserve(void)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_RESERVE);
	check_encodes_to(&m, hop_reserve);
}

static void test_encode_connect(void)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	set_peer(&m, PEER_ID);
	check_encodes_to(&m, hop_connect);
}

static void test_encode_status_refused(void)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_RESERVATION_REFUSED;
	check_encodes_to(&m, hop_status_refused);
}

static void test_encode_status_ok_reservation(void)
{
	struct an_relay_msg m;
	struct an_multiaddr ma;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/p2p/" RELAY_ID, &ma), 0);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	m.rsv.present = true;
	m.rsv.has_expire = true;
	m.rsv.expire = 1700000000;
	m.rsv.naddrs = 1;
	m.rsv.addrs[0].p = ma.bytes;
	m.rsv.addrs[0].len = ma.len;
	m.limit.present = true;
	m.limit.has_duration = true;
	m.limit.duration = 120;
	m.limit.has_data = true;
	m.limit.data = 131072;
	check_encodes_to(&m, hop_status_ok_rsv);
}

static void test_encode_stop_connect(void)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_CONNECT);
	set_peer(&m, PEER_ID);
	m.limit.present = true;
	m.limit.has_duration = true;
	m.limit.duration = 120;
	m.limit.has_data = true;
	m.limit.data = 131072;
	check_encodes_to(&m, stop_connect);
}

static void test_encode_stop_status_ok(void)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	check_encodes_to(&m, stop_status_ok);
}

static void test_encode_refuses_bad_type(void)
{
	struct an_relay_msg m;
	struct an_buf b;
	an_buf_init(&b, 8192);
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_HOP_STATUS); /* 2 is not a stop type */
	CHECK_EQ_INT(an_relay_msg_encode(&m, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_encode_refuses_stop_reservation(void)
{
	struct an_relay_msg m;
	struct an_buf b;
	an_buf_init(&b, 8192);
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_STATUS);
	m.rsv.present = true;
	CHECK_EQ_INT(an_relay_msg_encode(&m, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_encode_over_cap(void)
{
	static uint8_t big[AN_RELAY_MSG_MAX];
	struct an_relay_msg m;
	struct an_buf b;
	an_buf_init(&b, 3 * AN_RELAY_MSG_MAX);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.rsv.present = true;
	m.rsv.voucher.p = big;
	m.rsv.voucher.len = sizeof(big);
	CHECK_EQ_INT(an_relay_msg_encode(&m, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_encode_out_buffer_full(void)
{
	struct an_relay_msg m;
	struct an_buf b;
	an_buf_init(&b, 4);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	set_peer(&m, PEER_ID);
	CHECK_EQ_INT(an_relay_msg_encode(&m, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void test_decode_js_connect_with_addr(void)
{
	struct an_relay_msg m;
	struct an_peerid want;
	struct an_multiaddr ma;
	char text[128];
	size_t n = load(hop_connect_addr);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, vec, n, &m), 0);
	CHECK_EQ_INT(m.type, AN_HOP_CONNECT);
	CHECK(m.peer.present && m.peer.has_id);
	CHECK_EQ_INT(an_peerid_parse(PEER_ID, &want), 0);
	CHECK(an_peerid_equal(&m.peer.id, &want));
	CHECK_EQ_INT(m.peer.naddrs, 1);
	CHECK_EQ_INT(an_multiaddr_from_bytes(m.peer.addrs[0].p, m.peer.addrs[0].len, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof(text)), 0);
	CHECK_EQ_STR(text, "/ip4/127.0.0.1/tcp/4001");
	CHECK(!m.has_status && !m.limit.present && !m.rsv.present);
}

static void test_decode_js_reservation(void)
{
	struct an_relay_msg m;
	size_t n = load(hop_status_ok_rsv);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, vec, n, &m), 0);
	CHECK_EQ_INT(m.type, AN_HOP_STATUS);
	CHECK(m.has_status);
	CHECK_EQ_INT(m.status, AN_RELAY_OK);
	CHECK(m.rsv.present && m.rsv.has_expire);
	CHECK_EQ_INT(m.rsv.expire, 1700000000);
	CHECK_EQ_INT(m.rsv.naddrs, 1);
	CHECK_EQ_INT(m.rsv.voucher.len, 0);
	CHECK(m.limit.present && m.limit.has_duration && m.limit.has_data);
	CHECK_EQ_INT(m.limit.duration, 120);
	CHECK_EQ_INT(m.limit.data, 131072);
}

static void test_decode_js_voucher_bytes(void)
{
	struct an_relay_msg m;
	size_t n = load(hop_status_ok_voucher);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, vec, n, &m), 0);
	CHECK_EQ_INT(m.rsv.voucher.len, 0xc4);
	CHECK_EQ_INT(m.rsv.voucher.p[0], 0x0a); /* Envelope.public_key */
	CHECK(!m.limit.present);
}

static void test_decode_js_stop_connect(void)
{
	struct an_relay_msg m;
	size_t n = load(stop_connect);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_STOP, vec, n, &m), 0);
	CHECK_EQ_INT(m.type, AN_STOP_CONNECT);
	CHECK(m.peer.has_id);
	CHECK_EQ_INT(m.limit.duration, 120);
	CHECK_EQ_INT(m.limit.data, 131072);
}

static void test_decode_stop_status_field_number(void)
{
	/* field 4 is status in StopMessage; in HopMessage it is limit (a wire-type error) */
	struct an_relay_msg m;
	size_t n = load(stop_status_ok);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_STOP, vec, n, &m), 0);
	CHECK(m.has_status);
	CHECK_EQ_INT(m.status, AN_RELAY_OK);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, vec, n, &m), AN_EMALFORMED);
}

static void test_decode_missing_type(void)
{
	static const uint8_t msg[] = {0x28, 0x64}; /* status OK, no type */
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, sizeof(msg), &m), AN_EFIELD);
}

static void test_decode_empty_is_missing_type(void)
{
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, NULL, 0, &m), AN_EFIELD);
}

static void test_decode_type_out_of_range(void)
{
	static const uint8_t hop3[] = {0x08, 0x03};
	static const uint8_t stop2[] = {0x08, 0x02};
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, hop3, sizeof(hop3), &m), AN_EMALFORMED);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_STOP, stop2, sizeof(stop2), &m), AN_EMALFORMED);
}

static void test_decode_unknown_fields_skipped(void)
{
	/* type RESERVE, field 9 varint, field 10 bytes, field 11 fixed32, field 12 fixed64 */
	static const uint8_t msg[] = {0x08, 0x00, 0x48, 0x05, 0x52, 0x02, 0xaa, 0xbb,
				      0x5d, 1,    2,    3,    4,    0x61, 1,    2,
				      3,    4,    5,    6,    7,    8};
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, sizeof(msg), &m), 0);
	CHECK_EQ_INT(m.type, AN_HOP_RESERVE);
}

static void test_decode_bad_peer_id(void)
{
	static const uint8_t msg[] = {0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x99, 0x00};
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_wrong_wire_type(void)
{
	static const uint8_t msg[] = {0x08, 0x01, 0x10, 0x01}; /* peer as a varint */
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_duration_over_32_bits(void)
{
	static const uint8_t msg[] = {0x08, 0x02, 0x22, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10};
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, sizeof(msg), &m), AN_EMALFORMED);
}

static void test_decode_truncated(void)
{
	struct an_relay_msg m;
	size_t n = load(hop_connect);
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, vec, n - 1, &m), AN_ETRUNCATED);
}

static void test_decode_addrs_capped(void)
{
	/* Peer with 20 one-byte-long addrs: the first AN_RELAY_MAX_ADDRS are kept */
	uint8_t msg[128];
	size_t n = 0;
	struct an_relay_msg m;
	msg[n++] = 0x08, msg[n++] = 0x01, msg[n++] = 0x12, msg[n++] = 20 * 3;
	for (int i = 0; i < 20; i++)
		msg[n++] = 0x12, msg[n++] = 0x01, msg[n++] = (uint8_t)i;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, msg, n, &m), 0);
	CHECK_EQ_INT(m.peer.naddrs, AN_RELAY_MAX_ADDRS);
	CHECK_EQ_INT(m.peer.addrs[AN_RELAY_MAX_ADDRS - 1].p[0], AN_RELAY_MAX_ADDRS - 1);
	CHECK(!m.peer.has_id);
}

static void test_decode_over_cap(void)
{
	static uint8_t big[AN_RELAY_MSG_MAX + 1];
	struct an_relay_msg m;
	CHECK_EQ_INT(an_relay_msg_decode(AN_RELAY_HOP, big, sizeof(big), &m), AN_ETOOBIG);
}

static void test_read_frame(void)
{
	struct an_relay_msg m;
	struct an_buf b;
	size_t used = 0;
	an_buf_init(&b, 8192);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	set_peer(&m, PEER_ID);
	CHECK_EQ_INT(an_relay_msg_encode(&m, &b), 0);
	an_buf_append(&b, "xyz", 3); /* bytes after the frame belong to the next layer */
	CHECK_EQ_INT(an_relay_msg_read(AN_RELAY_HOP, b.data, b.len, &m, &used), 0);
	CHECK_EQ_INT(used, b.len - 3);
	CHECK_EQ_INT(m.type, AN_HOP_CONNECT);
	an_buf_free(&b);
}

static void test_read_incomplete(void)
{
	struct an_relay_msg m;
	size_t used = 0;
	size_t n = load(hop_connect);
	uint8_t frame[64];
	frame[0] = (uint8_t)n;
	memcpy(frame + 1, vec, n);
	CHECK_EQ_INT(an_relay_msg_read(AN_RELAY_HOP, frame, n, &m, &used), AN_EAGAIN);
	CHECK_EQ_INT(an_relay_msg_read(AN_RELAY_HOP, frame, 0, &m, &used), AN_EAGAIN);
}

static void test_read_announced_over_cap(void)
{
	static const uint8_t frame[] = {0x81, 0x20}; /* 4097 */
	struct an_relay_msg m;
	size_t used = 0;
	CHECK_EQ_INT(an_relay_msg_read(AN_RELAY_HOP, frame, sizeof(frame), &m, &used), AN_ETOOBIG);
}

static void test_status_names(void)
{
	CHECK_EQ_STR(an_relay_status_name(AN_RELAY_NO_RESERVATION), "NO_RESERVATION");
	CHECK_EQ_STR(an_relay_status_name(AN_RELAY_OK), "OK");
	CHECK_EQ_STR(an_relay_status_name(999), "UNKNOWN");
}

int main(void)
{
	RUN(test_encode_reserve);
	RUN(test_encode_connect);
	RUN(test_encode_status_refused);
	RUN(test_encode_status_ok_reservation);
	RUN(test_encode_stop_connect);
	RUN(test_encode_stop_status_ok);
	RUN(test_encode_refuses_bad_type);
	RUN(test_encode_refuses_stop_reservation);
	RUN(test_encode_over_cap);
	RUN(test_encode_out_buffer_full);
	RUN(test_decode_js_connect_with_addr);
	RUN(test_decode_js_reservation);
	RUN(test_decode_js_voucher_bytes);
	RUN(test_decode_js_stop_connect);
	RUN(test_decode_stop_status_field_number);
	RUN(test_decode_missing_type);
	RUN(test_decode_empty_is_missing_type);
	RUN(test_decode_type_out_of_range);
	RUN(test_decode_unknown_fields_skipped);
	RUN(test_decode_bad_peer_id);
	RUN(test_decode_wrong_wire_type);
	RUN(test_decode_duration_over_32_bits);
	RUN(test_decode_truncated);
	RUN(test_decode_addrs_capped);
	RUN(test_decode_over_cap);
	RUN(test_read_frame);
	RUN(test_read_incomplete);
	RUN(test_read_announced_over_cap);
	RUN(test_status_names);
	return check_done();
}
