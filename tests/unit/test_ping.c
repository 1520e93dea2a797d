/* test_ping.c - the ping codec: echo by whole 32-byte payloads, client matching and RTT. */
#include "transport/ping.h"
#include "util/buf.h"
#include "util/error.h"

#include <sodium.h>
#include <string.h>

#include "check.h"

static void test_responder_echoes_whole_payloads(void)
{
	struct an_ping_responder r;
	struct an_buf out;
	uint8_t in[80];
	for (int i = 0; i < 80; i++)
		in[i] = (uint8_t)i;
	an_ping_responder_init(&r);
	an_buf_init(&out, 1024);
	CHECK_EQ_INT(an_ping_responder_feed(&r, in, 20, &out), 0);
	CHECK_EQ_INT(out.len, 0); /* partial payload waits */
	CHECK_EQ_INT(an_ping_responder_feed(&r, in + 20, 60, &out), 0);
	CHECK_EQ_INT(out.len, 64); /* two payloads; 16 bytes still pending */
	CHECK_EQ_MEM(out.data, in, 64);
	CHECK_EQ_INT(r.echoed, 2);
	CHECK_EQ_INT(r.have, 16);
	an_buf_free(&out);
}

static void test_responder_reports_output_cap(void)
{
	struct an_ping_responder r;
	struct an_buf out;
	uint8_t in[64] = {0};
	an_ping_responder_init(&r);
	an_buf_init(&out, 40);
	CHECK_EQ_INT(an_ping_responder_feed(&r, in, 64, &out), AN_ETOOBIG);
	an_buf_free(&out);
}

static void test_client_roundtrip_and_rtt(void)
{
	struct an_ping_client c;
	struct an_buf out;
	size_t used;
	uint64_t rtt = 0;
	an_ping_client_init(&c);
	an_buf_init(&out, 64);
	CHECK_EQ_INT(an_ping_client_start(&c, 1000, &out), 0);
	CHECK_EQ_INT(out.len, AN_PING_SIZE);
	/* echo split in two pieces, with trailing bytes not consumed */
	CHECK_EQ_INT(an_ping_client_feed(&c, out.data, 10, 1003, &used, &rtt), AN_EAGAIN);
	CHECK_EQ_INT(used, 10);
	uint8_t rest[30];
	memcpy(rest, out.data + 10, 22);
	memset(rest + 22, 0xee, 8);
	CHECK_EQ_INT(an_ping_client_feed(&c, rest, 30, 1007, &used, &rtt), 0);
	CHECK_EQ_INT(used, 22);
	CHECK_EQ_INT(rtt, 7);
	an_buf_free(&out);
}

static void test_client_rejects_wrong_echo(void)
{
	struct an_ping_client c;
	struct an_buf out;
	size_t used;
	uint64_t rtt;
	an_ping_client_init(&c);
	an_buf_init(&out, 64);
	CHECK_EQ_INT(an_ping_client_start(&c, 0, &out), 0);
	out.data[5] ^= 1;
	CHECK_EQ_INT(an_ping_client_feed(&c, out.data, out.len, 1, &used, &rtt), AN_EPROTO);
	an_buf_free(&out);
}

static void test_client_one_outstanding(void)
{
	struct an_ping_client c;
	struct an_buf out;
	size_t used;
	uint64_t rtt;
	uint8_t junk[4] = {1, 2, 3, 4};
	an_ping_client_init(&c);
	an_buf_init(&out, 128);
	CHECK_EQ_INT(an_ping_client_feed(&c, junk, 4, 0, &used, &rtt), AN_EPROTO); /* unsolicited */
	CHECK_EQ_INT(an_ping_client_start(&c, 0, &out), 0);
	CHECK_EQ_INT(an_ping_client_start(&c, 0, &out), AN_EPROTO);
	an_buf_free(&out);
}

static void test_payloads_are_random(void)
{
	struct an_ping_client a, b;
	struct an_buf oa, ob;
	an_ping_client_init(&a);
	an_ping_client_init(&b);
	an_buf_init(&oa, 64);
	an_buf_init(&ob, 64);
	an_ping_client_start(&a, 0, &oa);
	an_ping_client_start(&b, 0, &ob);
	CHECK(memcmp(oa.data, ob.data, AN_PING_SIZE) != 0);
	an_buf_free(&oa);
	an_buf_free(&ob);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_responder_echoes_whole_payloads);
	RUN(test_responder_reports_output_cap);
	RUN(test_client_roundtrip_and_rtt);
	RUN(test_client_rejects_wrong_echo);
	RUN(test_client_one_outstanding);
	RUN(test_payloads_are_random);
	return check_done();
}
