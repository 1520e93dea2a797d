/*
 * Kad message codec tests.  The JS_* vectors were produced by js-libp2p's
 * own codec (@libp2p/kad-dht 16.4.5, dist/src/message/dht.js, from
 * tests/interop/node_modules after tests/interop/setup), e.g.
 *
 *   Message.encode({ type: 'FIND_NODE', key: peerId.toMultihash().bytes,
 *                    closer: [], providers: [] })
 *
 * with peers 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA (P1) and
 * QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N (P2), addresses
 * /ip4/127.0.0.1/tcp/4001 (A1) and /ip6/::1/tcp/4002 (A2).
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "dht/kad_msg.h"
#include "encoding/multiaddr.h"
#include "encoding/protobuf.h"
#include "util/error.h"

#define JS_FIND_NODE "080412260024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b"
#define JS_GET_VALUE "0801121c2f616e2f6162636465666768696a6b6c6d6e6f70406578616d706c65"
/* js omits type = PUT_VALUE (0); we always write it (08 00). */
#define JS_PUT_VALUE                                                                         \
	"12052f616e2f6b1a300a052f616e2f6b12077b2276223a317d2a1e323032362d31312d32335432313a30" \
	"333a31392e3132333435363738395a"
#define JS_FIND_NODE_RESP                                                                    \
	"0804424a0a260024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1" \
	"336b1208047f000001060fa112142900000000000000000000000000000001060fa2180142260a221220" \
	"9dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b91800"
#define JS_GET_PROVIDERS_RESP                                                                \
	"0803122212200707070707070707070707070707070707070707070707070707070707070707423c0a22" \
	"12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b91214290000000000" \
	"0000000000000000000001060fa218024a340a260024080112202ffa35a99d3a3cfbb17bb7c1dc5561b1" \
	"8a8dcca4df38dc613ea859c37eb1336b1208047f000001060fa11803"
#define JS_PING "0805"
/* js writes clusterLevel (10) before key (2); we write ascending. */
#define JS_CLUSTER "0804500a12016b"

#define P1 "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
#define P2 "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
#define TIME "2026-11-23T21:03:19.123456789Z"

static unsigned char vec[4096];
static size_t vec_len;

static void unhex(const char *hex)
{
	int n = check_unhex(hex, vec, sizeof(vec));
	vec_len = n < 0 ? 0 : (size_t)n;
}

static struct an_kad_bytes str_bytes(const char *s)
{
	struct an_kad_bytes b = { (const uint8_t *)s, strlen(s) };
	return b;
}

/* Encode m and compare with hex. */
static int encodes_to(const struct an_kad_msg *m, const char *hex)
{
	struct an_buf out;
	int same;
	an_buf_init(&out, 1 << 16);
	unhex(hex);
	same = an_kad_msg_encode(m, &out) == 0 && out.len == vec_len &&
	       memcmp(out.data, vec, vec_len) == 0;
	an_buf_free(&out);
	return same;
}

static void test_encode_find_node_matches_js(void)
{
	struct an_kad_msg m;
	struct an_peerid p1;
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	an_kad_msg_init(&m);
	m.type = AN_KAD_FIND_NODE;
	m.has_key = true;
	m.key.p = p1.bytes;
	m.key.len = p1.len;
	CHECK(encodes_to(&m, JS_FIND_NODE));
}

static void test_encode_get_value_matches_js(void)
{
	struct an_kad_msg m;
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_VALUE;
	m.has_key = true;
	m.key = str_bytes("/an/abcdefghijklmnop@example");
	CHECK(encodes_to(&m, JS_GET_VALUE));
}

static void test_encode_put_value_writes_zero_type(void)
{
	struct an_kad_msg m;
	char hex[512];
	an_kad_msg_init(&m);
	m.type = AN_KAD_PUT_VALUE;
	m.has_key = true;
	m.key = str_bytes("/an/k");
	m.has_record = true;
	m.record.key = str_bytes("/an/k");
	m.record.value = str_bytes("{\"v\":1}");
	m.record.time_received = str_bytes(TIME);
	snprintf(hex, sizeof(hex), "0800%s", JS_PUT_VALUE);
	CHECK(encodes_to(&m, hex));
}

static void test_decode_js_put_value_without_type(void)
{
	struct an_kad_msg m;
	unhex(JS_PUT_VALUE);
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len, AN_KAD_MSG_MAX_DEFAULT, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_PUT_VALUE);
	CHECK(m.has_key && m.key.len == 5 && memcmp(m.key.p, "/an/k", 5) == 0);
	CHECK(m.has_record);
	CHECK(m.record.value.len == 7 && memcmp(m.record.value.p, "{\"v\":1}", 7) == 0);
	CHECK(m.record.time_received.len == strlen(TIME) &&
	      memcmp(m.record.time_received.p, TIME, strlen(TIME)) == 0);
	an_kad_msg_free(&m);
}

static void test_encode_find_node_response_matches_js(void)
{
	struct an_kad_msg m;
	struct an_peerid p1, p2;
	struct an_multiaddr a[2];
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	CHECK_EQ_INT(an_peerid_parse(P2, &p2), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &a[0]), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip6/::1/tcp/4002", &a[1]), 0);
	an_kad_msg_init(&m);
	m.type = AN_KAD_FIND_NODE;
	CHECK_EQ_INT(an_kad_msg_add_peer_ma(&m, false, &p1, a, 2, AN_KAD_CONNECTED), 0);
	CHECK_EQ_INT(an_kad_msg_add_peer_ma(&m, false, &p2, NULL, 0, AN_KAD_NOT_CONNECTED), 0);
	CHECK(encodes_to(&m, JS_FIND_NODE_RESP));
	an_kad_msg_free(&m);
}

static void test_encode_get_providers_response_matches_js(void)
{
	struct an_kad_msg m;
	struct an_peerid p1, p2;
	struct an_multiaddr a1, a2;
	uint8_t key[34] = { 0x12, 0x20 };
	memset(key + 2, 7, 32);
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	CHECK_EQ_INT(an_peerid_parse(P2, &p2), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &a1), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip6/::1/tcp/4002", &a2), 0);
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_PROVIDERS;
	m.has_key = true;
	m.key.p = key;
	m.key.len = sizeof(key);
	CHECK_EQ_INT(an_kad_msg_add_peer_ma(&m, false, &p2, &a2, 1, AN_KAD_CAN_CONNECT), 0);
	CHECK_EQ_INT(an_kad_msg_add_peer_ma(&m, true, &p1, &a1, 1, AN_KAD_CANNOT_CONNECT), 0);
	CHECK(encodes_to(&m, JS_GET_PROVIDERS_RESP));
	an_kad_msg_free(&m);
}

static void test_decode_js_response_round_trips(void)
{
	static const char *const vecs[] = { JS_FIND_NODE, JS_GET_VALUE, JS_FIND_NODE_RESP,
					    JS_GET_PROVIDERS_RESP, JS_PING };
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		struct an_kad_msg m;
		struct an_buf out;
		unsigned char in[4096];
		size_t in_len;
		unhex(vecs[i]);
		memcpy(in, vec, vec_len);
		in_len = vec_len;
		an_buf_init(&out, 1 << 16);
		CHECK_EQ_INT(an_kad_msg_decode(in, in_len, AN_KAD_MSG_MAX_DEFAULT, &m), 0);
		CHECK_EQ_INT(an_kad_msg_encode(&m, &out), 0);
		CHECK(out.len == in_len && memcmp(out.data, in, in_len) == 0);
		an_buf_free(&out);
		an_kad_msg_free(&m);
	}
}

static void test_decode_js_peers(void)
{
	struct an_kad_msg m;
	struct an_peerid p1, p2;
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	CHECK_EQ_INT(an_peerid_parse(P2, &p2), 0);
	unhex(JS_GET_PROVIDERS_RESP);
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len, AN_KAD_MSG_MAX_DEFAULT, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_GET_PROVIDERS);
	CHECK_EQ_INT(m.ncloser, 1);
	CHECK_EQ_INT(m.nproviders, 1);
	CHECK(an_peerid_equal(&m.closer[0].id, &p2));
	CHECK_EQ_INT(m.closer[0].connection, AN_KAD_CAN_CONNECT);
	CHECK(an_peerid_equal(&m.providers[0].id, &p1));
	CHECK_EQ_INT(m.providers[0].naddrs, 1);
	CHECK_EQ_INT(m.providers[0].connection, AN_KAD_CANNOT_CONNECT);
	an_kad_msg_free(&m);
}

static void test_cluster_level_is_written_last(void)
{
	struct an_kad_msg m;
	struct an_kad_msg d;
	an_kad_msg_init(&m);
	m.type = AN_KAD_FIND_NODE;
	m.has_key = true;
	m.key = str_bytes("k");
	m.has_cluster_level = true;
	m.cluster_level = 10;
	CHECK(encodes_to(&m, "080412016b500a"));
	unhex(JS_CLUSTER);
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len, AN_KAD_MSG_MAX_DEFAULT, &d), 0);
	CHECK(d.has_cluster_level && d.cluster_level == 10);
	CHECK(d.has_key && d.key.len == 1 && d.key.p[0] == 'k');
	an_kad_msg_free(&d);
}

static void test_negative_cluster_level_round_trips(void)
{
	struct an_kad_msg m, d;
	struct an_buf out;
	an_kad_msg_init(&m);
	m.type = AN_KAD_PING;
	m.has_cluster_level = true;
	m.cluster_level = -3;
	an_buf_init(&out, 1024);
	CHECK_EQ_INT(an_kad_msg_encode(&m, &out), 0);
	CHECK_EQ_INT(out.len, 2 + 1 + 10); /* int32 -3 is a 10-byte varint */
	CHECK_EQ_INT(an_kad_msg_decode(out.data, out.len, 1024, &d), 0);
	CHECK_EQ_INT(d.cluster_level, -3);
	an_kad_msg_free(&d);
	an_buf_free(&out);
}

/* A GET_VALUE response as rust-libp2p sends it: Record with publisher (666) and ttl (777). */
static void test_decode_rust_record_extensions(void)
{
	struct an_buf rec, msg, out;
	struct an_kad_msg m;
	uint8_t pub[6] = { 0x00, 0x04, 1, 2, 3, 4 };
	an_buf_init(&rec, 1024);
	an_buf_init(&msg, 1024);
	an_buf_init(&out, 1024);
	CHECK_EQ_INT(an_pb_put_string(&rec, 1, "/an/k"), 0);
	CHECK_EQ_INT(an_pb_put_string(&rec, 2, "val"), 0);
	CHECK_EQ_INT(an_pb_put_string(&rec, 5, ""), 0); /* rust sends an empty timeReceived */
	CHECK_EQ_INT(an_pb_put_bytes(&rec, 666, pub, sizeof(pub)), 0);
	CHECK_EQ_INT(an_pb_put_varint(&rec, 777, 172800), 0);
	CHECK_EQ_INT(an_pb_put_varint(&msg, 1, AN_KAD_GET_VALUE), 0);
	CHECK_EQ_INT(an_pb_put_string(&msg, 2, "/an/k"), 0);
	CHECK_EQ_INT(an_pb_put_bytes(&msg, 3, rec.data, rec.len), 0);
	CHECK_EQ_INT(an_pb_put_varint(&msg, 10, 9), 0); /* rust: clusterLevelRaw 9 in responses */
	CHECK_EQ_INT(an_kad_msg_decode(msg.data, msg.len, 16384, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_GET_VALUE);
	CHECK(m.has_record);
	CHECK(m.record.value.len == 3 && memcmp(m.record.value.p, "val", 3) == 0);
	CHECK_EQ_INT(m.record.time_received.len, 0);
	CHECK_EQ_INT(m.cluster_level, 9);
	/* Re-encoding keeps the known fields only. */
	CHECK_EQ_INT(an_kad_msg_encode(&m, &out), 0);
	CHECK(out.len < msg.len);
	an_kad_msg_free(&m);
	an_buf_free(&rec);
	an_buf_free(&msg);
	an_buf_free(&out);
}

/* Build a Peer submessage from raw parts. */
static void put_peer(struct an_buf *msg, uint32_t field, const uint8_t *id, size_t id_len,
		     const uint8_t *const *addrs, const size_t *alens, size_t n, int conn)
{
	struct an_buf p;
	an_buf_init(&p, 4096);
	an_pb_put_bytes(&p, 1, id, id_len);
	for (size_t i = 0; i < n; i++)
		an_pb_put_bytes(&p, 2, addrs[i], alens[i]);
	if (conn >= 0)
		an_pb_put_varint(&p, 3, (uint64_t)conn);
	an_pb_put_bytes(msg, field, p.data, p.len);
	an_buf_free(&p);
}

static void test_peer_keeps_parseable_addrs(void)
{
	struct an_peerid p1;
	struct an_multiaddr a1, a2;
	struct an_buf msg;
	struct an_kad_msg m;
	static const uint8_t junk[] = { 0xfe, 0xff, 0x03, 0x01, 0x02 }; /* unknown protocol code */
	const uint8_t *addrs[3];
	size_t alens[3];
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &a1), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip6/::1/tcp/4002", &a2), 0);
	addrs[0] = a1.bytes, alens[0] = a1.len;
	addrs[1] = junk, alens[1] = sizeof(junk);
	addrs[2] = a2.bytes, alens[2] = a2.len;
	an_buf_init(&msg, 4096);
	an_pb_put_varint(&msg, 1, AN_KAD_FIND_NODE);
	put_peer(&msg, 8, p1.bytes, p1.len, addrs, alens, 3, 1);
	CHECK_EQ_INT(an_kad_msg_decode(msg.data, msg.len, 4096, &m), 0);
	CHECK_EQ_INT(m.ncloser, 1);
	CHECK_EQ_INT(m.closer[0].naddrs, 2);
	CHECK(m.closer[0].addrs[0].len == a1.len &&
	      memcmp(m.closer[0].addrs[0].p, a1.bytes, a1.len) == 0);
	CHECK(m.closer[0].addrs[1].len == a2.len &&
	      memcmp(m.closer[0].addrs[1].p, a2.bytes, a2.len) == 0);
	an_kad_msg_free(&m);
	an_buf_free(&msg);
}

static void test_peer_with_bad_id_is_dropped(void)
{
	struct an_peerid p1;
	struct an_buf msg;
	struct an_kad_msg m;
	static const uint8_t bad_id[] = { 0x99, 0x02, 0x01, 0x02 };
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	an_buf_init(&msg, 4096);
	an_pb_put_varint(&msg, 1, AN_KAD_FIND_NODE);
	put_peer(&msg, 8, bad_id, sizeof(bad_id), NULL, NULL, 0, 0);
	put_peer(&msg, 8, p1.bytes, p1.len, NULL, NULL, 0, 0);
	CHECK_EQ_INT(an_kad_msg_decode(msg.data, msg.len, 4096, &m), 0);
	CHECK_EQ_INT(m.ncloser, 1);
	CHECK(an_peerid_equal(&m.closer[0].id, &p1));
	an_kad_msg_free(&m);
	an_buf_free(&msg);
}

static void test_connection_out_of_range_reads_not_connected(void)
{
	struct an_peerid p1;
	struct an_buf msg;
	struct an_kad_msg m;
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	an_buf_init(&msg, 4096);
	an_pb_put_varint(&msg, 1, AN_KAD_FIND_NODE);
	put_peer(&msg, 8, p1.bytes, p1.len, NULL, NULL, 0, 7);
	CHECK_EQ_INT(an_kad_msg_decode(msg.data, msg.len, 4096, &m), 0);
	CHECK_EQ_INT(m.ncloser, 1);
	CHECK_EQ_INT(m.closer[0].connection, AN_KAD_NOT_CONNECTED);
	an_kad_msg_free(&m);
	an_buf_free(&msg);
}

static void test_peers_over_cap_are_ignored(void)
{
	struct an_peerid p1;
	struct an_buf msg;
	struct an_kad_msg m;
	CHECK_EQ_INT(an_peerid_parse(P1, &p1), 0);
	an_buf_init(&msg, 1 << 20);
	an_pb_put_varint(&msg, 1, AN_KAD_FIND_NODE);
	for (int i = 0; i < AN_KAD_MSG_PEERS_MAX + 50; i++)
		put_peer(&msg, 8, p1.bytes, p1.len, NULL, NULL, 0, 0);
	CHECK_EQ_INT(an_kad_msg_decode(msg.data, msg.len, 1 << 20, &m), 0);
	CHECK_EQ_INT(m.ncloser, AN_KAD_MSG_PEERS_MAX);
	an_kad_msg_free(&m);
	an_buf_free(&msg);
}

static void test_unknown_type_is_malformed(void)
{
	static const uint8_t msg[] = { 0x08, 0x06 };
	struct an_kad_msg m;
	CHECK_EQ_INT(an_kad_msg_decode(msg, sizeof(msg), 64, &m), AN_EMALFORMED);
	CHECK(m.closer == NULL && m.ncloser == 0);
}

static void test_wrong_wire_type_is_malformed(void)
{
	static const uint8_t key_varint[] = { 0x08, 0x04, 0x10, 0x01 };     /* key as varint */
	static const uint8_t type_bytes[] = { 0x0a, 0x01, 0x04 };           /* type as bytes */
	static const uint8_t rec_varint[] = { 0x08, 0x01, 0x1a, 0x02, 0x08, 0x01 }; /* record.key varint */
	struct an_kad_msg m;
	CHECK_EQ_INT(an_kad_msg_decode(key_varint, sizeof(key_varint), 64, &m), AN_EMALFORMED);
	CHECK_EQ_INT(an_kad_msg_decode(type_bytes, sizeof(type_bytes), 64, &m), AN_EMALFORMED);
	CHECK_EQ_INT(an_kad_msg_decode(rec_varint, sizeof(rec_varint), 64, &m), AN_EMALFORMED);
}

static void test_truncated_is_an_error(void)
{
	struct an_kad_msg m;
	unhex(JS_FIND_NODE_RESP);
	for (size_t cut = 1; cut < vec_len; cut++) {
		int rc = an_kad_msg_decode(vec, cut, AN_KAD_MSG_MAX_DEFAULT, &m);
		/* Every prefix either fails cleanly or is a shorter valid message. */
		CHECK(rc == 0 || rc == AN_ETRUNCATED || rc == AN_EMALFORMED);
		an_kad_msg_free(&m);
	}
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len - 1, AN_KAD_MSG_MAX_DEFAULT, &m),
		     AN_ETRUNCATED);
}

static void test_over_cap_is_toobig(void)
{
	struct an_kad_msg m;
	unhex(JS_FIND_NODE_RESP);
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len, vec_len - 1, &m), AN_ETOOBIG);
	CHECK_EQ_INT(an_kad_msg_decode(vec, vec_len, vec_len, &m), 0);
	an_kad_msg_free(&m);
}

static void test_encode_respects_buffer_cap(void)
{
	struct an_kad_msg m;
	struct an_buf out;
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_VALUE;
	m.has_key = true;
	m.key = str_bytes("/an/abcdefghijklmnop@example");
	an_buf_init(&out, 8);
	CHECK_EQ_INT(an_kad_msg_encode(&m, &out), AN_ETOOBIG);
	an_buf_free(&out);
	m.type = (enum an_kad_type)9;
	an_buf_init(&out, 64);
	CHECK_EQ_INT(an_kad_msg_encode(&m, &out), -EINVAL);
	an_buf_free(&out);
}

static void test_time_format(void)
{
	char s[AN_KAD_TIME_LEN + 1];
	CHECK_EQ_INT(an_kad_time_format(0, 0, s), 0);
	CHECK_EQ_STR(s, "1970-01-01T00:00:00.000000000Z");
	CHECK_EQ_INT(an_kad_time_format(1795467799, 123456789, s), 0);
	CHECK_EQ_STR(s, "2026-11-23T21:03:19.123456789Z");
	CHECK_EQ_INT(an_kad_time_format(951782400, 5, s), 0); /* leap day */
	CHECK_EQ_STR(s, "2000-02-29T00:00:00.000000005Z");
	CHECK_EQ_INT(an_kad_time_format(0, 1000000000u, s), -EINVAL);
}

static void test_time_parse(void)
{
	int64_t sec;
	uint32_t nsec;
	const char *t = TIME;
	CHECK_EQ_INT(an_kad_time_parse((const uint8_t *)t, strlen(t), &sec, &nsec), 0);
	CHECK_EQ_INT(sec, 1795467799);
	CHECK_EQ_INT(nsec, 123456789);
	t = "2026-11-23T22:03:19+01:00";
	CHECK_EQ_INT(an_kad_time_parse((const uint8_t *)t, strlen(t), &sec, &nsec), 0);
	CHECK_EQ_INT(sec, 1795467799);
	CHECK_EQ_INT(nsec, 0);
	t = "2026-11-23T21:03:19.5Z"; /* js Date.toISOString-style short fraction */
	CHECK_EQ_INT(an_kad_time_parse((const uint8_t *)t, strlen(t), &sec, &nsec), 0);
	CHECK_EQ_INT(nsec, 500000000);
	static const char *const bad[] = { "", "2026-11-23", "2026-13-01T00:00:00Z",
					   "2026-02-30T00:00:00Z", "2026-11-23T21:03:19",
					   "2026-11-23T21:03:19.Z", "2026-11-23T21:03:19Zjunk" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(an_kad_time_parse((const uint8_t *)bad[i], strlen(bad[i]), &sec, &nsec),
			     AN_EMALFORMED);
}

int main(void)
{
	RUN(test_encode_find_node_matches_js);
	RUN(test_encode_get_value_matches_js);
	RUN(test_encode_put_value_writes_zero_type);
	RUN(test_decode_js_put_value_without_type);
	RUN(test_encode_find_node_response_matches_js);
	RUN(test_encode_get_providers_response_matches_js);
	RUN(test_decode_js_response_round_trips);
	RUN(test_decode_js_peers);
	RUN(test_cluster_level_is_written_last);
	RUN(test_negative_cluster_level_round_trips);
	RUN(test_decode_rust_record_extensions);
	RUN(test_peer_keeps_parseable_addrs);
	RUN(test_peer_with_bad_id_is_dropped);
	RUN(test_connection_out_of_range_reads_not_connected);
	RUN(test_peers_over_cap_are_ignored);
	RUN(test_unknown_type_is_malformed);
	RUN(test_wrong_wire_type_is_malformed);
	RUN(test_truncated_is_an_error);
	RUN(test_over_cap_is_toobig);
	RUN(test_encode_respects_buffer_cap);
	RUN(test_time_format);
	RUN(test_time_parse);
	return check_done();
}
