/* test_identify.c - the identify codec: encode/decode, unknown fields, caps, push merge. */
#include "encoding/protobuf.h"
#include "transport/identify.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static const uint8_t pubkey[36] = {0x08, 0x01, 0x12, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				   13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
				   29, 30, 31, 32};
/* /ip4/127.0.0.1/tcp/4001 */
static const uint8_t addr[8] = {0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1};

static void build(struct an_identify *m)
{
	an_identify_init(m);
	an_identify_set_public_key(m, pubkey, sizeof(pubkey));
	an_identify_add_addr(m, addr, sizeof(addr));
	an_identify_add_protocol(m, "/ipfs/ping/1.0.0");
	an_identify_add_protocol(m, "/ipfs/id/1.0.0");
	an_identify_set_observed(m, addr, sizeof(addr));
	an_identify_set_versions(m, "ipfs/0.1.0", "an-test/1");
}

static void test_roundtrip(void)
{
	struct an_identify m, d;
	struct an_buf b;
	build(&m);
	an_buf_init(&b, AN_IDENTIFY_SEND_MAX);
	CHECK_EQ_INT(an_identify_encode(&m, &b), 0);
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(b.data, b.len, &d), 0);
	CHECK_EQ_INT(d.public_key.len, sizeof(pubkey));
	CHECK_EQ_MEM(d.public_key.data, pubkey, sizeof(pubkey));
	CHECK_EQ_INT(d.n_addrs, 1);
	CHECK_EQ_MEM(d.addrs[0].data, addr, sizeof(addr));
	CHECK_EQ_INT(d.n_protocols, 2);
	CHECK_EQ_STR(d.protocols[1], "/ipfs/id/1.0.0");
	CHECK_EQ_STR(d.protocol_version, "ipfs/0.1.0");
	CHECK_EQ_STR(d.agent_version, "an-test/1");
	CHECK(d.present & AN_IDENTIFY_HAS_OBSERVED);
	CHECK(!(d.present & AN_IDENTIFY_HAS_SIGNED_RECORD));
	an_identify_free(&m);
	an_identify_free(&d);
	an_buf_free(&b);
}

static void test_fields_in_tag_order(void)
{
	struct an_identify m;
	struct an_buf b;
	struct an_pb_reader r;
	struct an_pb_field f;
	uint32_t last = 0;
	build(&m);
	an_buf_init(&b, AN_IDENTIFY_SEND_MAX);
	an_identify_encode(&m, &b);
	an_pb_reader_init(&r, b.data, b.len);
	while (an_pb_next(&r, &f) == 1) {
		CHECK(f.number >= last);
		last = f.number;
	}
	CHECK_EQ_INT(last, 6);
	an_identify_free(&m);
	an_buf_free(&b);
}

static void test_skips_unknown_and_keeps_signed_record(void)
{
	struct an_identify d;
	struct an_buf b;
	an_buf_init(&b, 1024);
	an_pb_put_bytes(&b, 1, pubkey, sizeof(pubkey));
	an_pb_put_varint(&b, 7, 99);              /* unknown varint */
	an_pb_put_bytes(&b, 8, "\x0a\x01x", 3);   /* signedPeerRecord: opaque, junk ok */
	an_pb_put_string(&b, 666, "rust extra"); /* unknown high tag */
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(b.data, b.len, &d), 0);
	CHECK(d.present & AN_IDENTIFY_HAS_SIGNED_RECORD);
	CHECK_EQ_INT(d.signed_record.len, 3);
	CHECK_EQ_INT(d.n_protocols, 0);
	an_identify_free(&d);
	an_buf_free(&b);
}

static void test_rejects_oversized_message(void)
{
	struct an_identify d;
	uint8_t *big = calloc(1, AN_IDENTIFY_RECV_MAX + 1);
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(big, AN_IDENTIFY_RECV_MAX + 1, &d), AN_ETOOBIG);
	an_identify_free(&d);
	free(big);
}

static void test_rejects_truncated_and_malformed(void)
{
	struct an_identify d;
	const uint8_t truncated[] = {0x0a, 0x24, 0x08, 0x01};   /* publicKey says 36 bytes */
	const uint8_t nul_in_string[] = {0x1a, 0x03, '/', 0, 'x'}; /* protocol with NUL */
	const uint8_t group[] = {0x0b};                           /* wire type 3 */
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(truncated, sizeof(truncated), &d), AN_ETRUNCATED);
	an_identify_free(&d);
	CHECK_EQ_INT(an_identify_decode(nul_in_string, sizeof(nul_in_string), &d), AN_EMALFORMED);
	an_identify_free(&d);
	CHECK(an_identify_decode(group, sizeof(group), &d) < 0);
	an_identify_free(&d);
}

static void test_known_field_with_wrong_wire_type(void)
{
	struct an_identify d;
	const uint8_t varint_protocols[] = {0x18, 0x01}; /* field 3 as varint */
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(varint_protocols, sizeof(varint_protocols), &d), AN_EMALFORMED);
	an_identify_free(&d);
}

static void test_caps_drop_extra_entries(void)
{
	struct an_identify d;
	struct an_buf b;
	an_buf_init(&b, AN_IDENTIFY_RECV_MAX);
	for (int i = 0; i < AN_IDENTIFY_MAX_PROTOCOLS + 5; i++)
		an_pb_put_string(&b, 3, "/p");
	an_identify_init(&d);
	CHECK_EQ_INT(an_identify_decode(b.data, b.len, &d), 0);
	CHECK_EQ_INT(d.n_protocols, AN_IDENTIFY_MAX_PROTOCOLS);
	CHECK_EQ_INT(d.dropped, 5);
	an_identify_free(&d);
	an_buf_free(&b);
}

static void test_encode_respects_send_cap(void)
{
	struct an_identify m;
	struct an_buf b;
	char proto[AN_IDENTIFY_STRING_MAX];
	an_identify_init(&m);
	memset(proto, 'a', sizeof(proto) - 1);
	proto[0] = '/';
	proto[sizeof(proto) - 1] = 0;
	for (int i = 0; i < 20; i++)
		an_identify_add_protocol(&m, proto); /* 20 x 255 > 4096 */
	an_buf_init(&b, 1 << 16);
	CHECK_EQ_INT(an_identify_encode(&m, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 0);
	an_identify_free(&m);
	an_buf_free(&b);
}

static void test_push_merge_replaces_present_fields_only(void)
{
	struct an_identify dst, push;
	build(&dst);
	an_identify_init(&push);
	an_identify_add_protocol(&push, "/an/kad/1.0.0");
	an_identify_merge(&dst, &push);
	CHECK_EQ_INT(dst.n_protocols, 1);
	CHECK_EQ_STR(dst.protocols[0], "/an/kad/1.0.0");
	CHECK_EQ_INT(dst.n_addrs, 1);                       /* absent in push: unchanged */
	CHECK_EQ_STR(dst.agent_version, "an-test/1");
	CHECK_EQ_INT(push.n_protocols, 0);                  /* moved, not copied */
	an_identify_free(&push);
	an_identify_free(&dst);
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_fields_in_tag_order);
	RUN(test_skips_unknown_and_keeps_signed_record);
	RUN(test_rejects_oversized_message);
	RUN(test_rejects_truncated_and_malformed);
	RUN(test_known_field_with_wrong_wire_type);
	RUN(test_caps_drop_extra_entries);
	RUN(test_encode_respects_send_cap);
	RUN(test_push_merge_replaces_present_fields_only);
	return check_done();
}
