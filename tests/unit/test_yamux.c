/*
 * test_yamux.c - the yamux session machine: hand-built frames from the spec
 * for the wire format, and two sessions wired back to back in memory.
 */
#include "transport/yamux.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define WIRE_CAP (8u << 20)

/* ---- helpers ---- */

struct pair {
	struct an_yamux *a, *b; /* a client, b server */
	struct an_buf ab, ba;   /* bytes on the wire, not yet consumed */
	uint64_t now;
};

static int pair_init(struct pair *p, const struct an_yamux_config *ca, const struct an_yamux_config *cb)
{
	memset(p, 0, sizeof *p);
	an_buf_init(&p->ab, WIRE_CAP);
	an_buf_init(&p->ba, WIRE_CAP);
	p->now = 1000;
	if (an_yamux_new(&p->a, AN_YAMUX_CLIENT, ca) < 0)
		return -1;
	return an_yamux_new(&p->b, AN_YAMUX_SERVER, cb) < 0 ? -1 : 0;
}

static void pair_free(struct pair *p)
{
	an_yamux_free(p->a);
	an_yamux_free(p->b);
	an_buf_free(&p->ab);
	an_buf_free(&p->ba);
}

/* Move one direction once; 1 if anything moved, <0 on error. */
static int move(struct an_yamux *from, struct an_buf *wire, struct an_yamux *to, uint64_t now)
{
	size_t before = wire->len, used = 0;
	int rc = an_yamux_send(from, wire);
	if (rc < 0)
		return rc;
	if (wire->len == 0)
		return 0;
	rc = an_yamux_feed(to, wire->data, wire->len, &used, now);
	an_buf_consume(wire, used);
	if (rc < 0)
		return rc;
	return used > 0 || wire->len != before;
}

/* Exchange bytes until both sides are quiet (bounded). */
static int pump(struct pair *p)
{
	for (int i = 0; i < 10000; i++) {
		int r1 = move(p->a, &p->ab, p->b, p->now);
		if (r1 < 0)
			return r1;
		int r2 = move(p->b, &p->ba, p->a, p->now);
		if (r2 < 0)
			return r2;
		if (!r1 && !r2)
			return 0;
	}
	return -1;
}

struct evlog {
	struct an_yamux_event ev[4096];
	size_t n;
};

static void drain(struct an_yamux *y, struct evlog *log)
{
	struct an_yamux_event ev;
	log->n = 0;
	while (an_yamux_next_event(y, &ev) == 1 && log->n < 4096)
		log->ev[log->n++] = ev;
}

static int has(const struct evlog *log, enum an_yamux_event_type t, uint32_t id)
{
	for (size_t i = 0; i < log->n; i++)
		if (log->ev[i].type == t && log->ev[i].stream_id == id)
			return 1;
	return 0;
}

/* A pair with one stream a opened and b has seen (its events drained). */
static void pair_with_stream(struct pair *p, uint32_t *id)
{
	struct evlog log;
	CHECK(pair_init(p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p->a, id) == 0);
	CHECK(pump(p) == 0);
	drain(p->b, &log);
}

static const struct an_yamux_event *find(const struct evlog *log, enum an_yamux_event_type t)
{
	for (size_t i = 0; i < log->n; i++)
		if (log->ev[i].type == t)
			return &log->ev[i];
	return NULL;
}

/* Feed hex-described bytes to y; returns feed's code. */
static int feed_hex(struct an_yamux *y, const char *hex)
{
	unsigned char in[256];
	size_t used;
	int n = check_unhex(hex, in, sizeof in);
	if (n < 0)
		return -999;
	return an_yamux_feed(y, in, (size_t)n, &used, 0);
}

/* Session output as hex into a static buffer. */
static const char *send_hex(struct an_yamux *y)
{
	static char hex[1024];
	struct an_buf out;
	an_buf_init(&out, 500);
	an_yamux_send(y, &out);
	for (size_t i = 0; i < out.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", out.data[i]);
	hex[2 * out.len] = 0;
	an_buf_free(&out);
	return hex;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void fill(uint8_t *p, size_t n, uint32_t *state)
{
	for (size_t i = 0; i < n; i++) {
		*state ^= *state << 13;
		*state ^= *state >> 17;
		*state ^= *state << 5;
		p[i] = (uint8_t)*state;
	}
}

/* Read everything buffered on id into h; returns bytes read. */
static size_t read_all(struct an_yamux *y, uint32_t id, uint64_t *h, uint64_t now)
{
	uint8_t buf[65536];
	size_t got, total = 0;
	do {
		if (an_yamux_stream_read(y, id, buf, sizeof buf, &got, now) < 0)
			break;
		if (h)
			*h = fnv(*h, buf, got);
		total += got;
	} while (got);
	return total;
}

/* ---- wire format against hand-built frames (yamux/README.md) ---- */

static void test_wire_header_codec(void)
{
	uint8_t h[12];
	struct an_yamux_header d;
	an_yamux_header_encode(h, AN_YAMUX_TYPE_WINDOW_UPDATE, AN_YAMUX_FLAG_SYN | AN_YAMUX_FLAG_FIN,
			       0x01020304, 0xa0b0c0d0);
	CHECK_EQ_MEM(h, "\x00\x01\x00\x05\x01\x02\x03\x04\xa0\xb0\xc0\xd0", 12);
	an_yamux_header_decode(h, &d);
	CHECK_EQ_INT(d.version, 0);
	CHECK_EQ_INT(d.type, 1);
	CHECK_EQ_INT(d.flags, 5);
	CHECK_EQ_INT(d.stream_id, 0x01020304);
	CHECK_EQ_INT(d.length, 0xa0b0c0d0u);
}

static void test_wire_open_is_window_update_syn(void)
{
	struct an_yamux *c, *s;
	uint32_t id;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK_EQ_INT(id, 1);
	CHECK_EQ_STR(send_hex(c), "000100010000000100000000");
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK_EQ_INT(id, 3);
	CHECK(an_yamux_stream_open(s, &id) == 0);
	CHECK_EQ_INT(id, 2);
	CHECK_EQ_STR(send_hex(s), "000100010000000200000000");
	an_yamux_free(c);
	an_yamux_free(s);
}

static void test_wire_bigger_initial_window_announced_in_syn(void)
{
	struct an_yamux_config cfg;
	struct an_yamux *c;
	uint32_t id;
	an_yamux_config_default(&cfg);
	cfg.initial_window = 1u << 20;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, &cfg) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	/* delta = 1 MiB - 256 KiB = 0x000c0000 */
	CHECK_EQ_STR(send_hex(c), "0001000100000001000c0000");
	an_yamux_free(c);
}

static void test_wire_inbound_syn_acked_once(void)
{
	struct an_yamux *s;
	struct evlog log;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(feed_hex(s, "000100010000000100000000") == 0);
	drain(s, &log);
	CHECK(has(&log, AN_YAMUX_EV_STREAM_NEW, 1));
	CHECK_EQ_STR(send_hex(s), "000100020000000100000000");
	/* a data frame on it later brings no second ACK */
	CHECK(feed_hex(s, "000000000000000100000002abcd") == 0);
	CHECK_EQ_STR(send_hex(s), "");
	CHECK_EQ_INT(an_yamux_stream_buffered(s, 1), 2);
	an_yamux_free(s);
}

static void test_wire_syn_on_data_frame(void)
{
	struct an_yamux *s;
	struct evlog log;
	const uint8_t *p;
	size_t n;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	/* Data|SYN with 3 payload bytes: length is the payload, not a delta */
	CHECK(feed_hex(s, "000000010000000300000003616263") == 0);
	drain(s, &log);
	CHECK(has(&log, AN_YAMUX_EV_STREAM_NEW, 3));
	CHECK(has(&log, AN_YAMUX_EV_READABLE, 3));
	CHECK(an_yamux_stream_peek(s, 3, &p, &n) == 0);
	CHECK_EQ_INT(n, 3);
	CHECK(n == 3 && memcmp(p, "abc", 3) == 0);
	CHECK_EQ_INT(an_yamux_stream_send_window(s, 3), AN_YAMUX_INITIAL_WINDOW);
	an_yamux_free(s);
}

static void test_wire_data_frame(void)
{
	struct an_yamux *c;
	struct an_buf out;
	uint32_t id;
	size_t acc;
	an_buf_init(&out, 1024);
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK(an_yamux_stream_write(c, id, (const uint8_t *)"hello", 5, &out, &acc) == 0);
	CHECK_EQ_INT(acc, 5);
	CHECK_EQ_INT(out.len, 12 + 12 + 5);
	/* SYN first, then Data, flags 0, length 5 */
	CHECK(out.len == 29 &&
	      memcmp(out.data, "\x00\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00"
			       "\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x05hello", 29) == 0);
	CHECK_EQ_INT(an_yamux_stream_send_window(c, id), AN_YAMUX_INITIAL_WINDOW - 5);
	an_buf_free(&out);
	an_yamux_free(c);
}

static void test_wire_ping_answered_with_same_opaque(void)
{
	struct an_yamux *s;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(feed_hex(s, "000200010000000001020304") == 0);
	CHECK_EQ_STR(send_hex(s), "000200020000000001020304");
	CHECK(an_yamux_error(s, NULL) == 0);
	an_yamux_free(s);
}

static void test_wire_goaway_normal(void)
{
	struct an_yamux *c;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(an_yamux_goaway(c, AN_YAMUX_GOAWAY_NORMAL) == 0);
	CHECK_EQ_STR(send_hex(c), "000300000000000000000000");
	CHECK(an_yamux_goaway(c, AN_YAMUX_GOAWAY_NORMAL) == 0);
	CHECK_EQ_STR(send_hex(c), "");
	an_yamux_free(c);
}

static void test_wire_fin_and_rst_frames(void)
{
	struct an_yamux *c;
	uint32_t id, id2;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK(an_yamux_stream_open(c, &id2) == 0);
	send_hex(c);
	CHECK(an_yamux_stream_close(c, id) == 0);
	CHECK_EQ_STR(send_hex(c), "000100040000000100000000");
	CHECK(an_yamux_stream_reset(c, id2) == 0);
	CHECK_EQ_STR(send_hex(c), "000100080000000300000000");
	an_yamux_free(c);
}

static void test_wire_window_update_after_half_consumed(void)
{
	struct an_yamux *s;
	uint8_t *frame = malloc(12 + 131072), buf[4096];
	size_t used, got;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(feed_hex(s, "000100010000000100000000") == 0);
	send_hex(s); /* the ACK */
	an_yamux_header_encode(frame, AN_YAMUX_TYPE_DATA, 0, 1, 131072);
	memset(frame + 12, 'x', 131072);
	CHECK(an_yamux_feed(s, frame, 12 + 131072, &used, 0) == 0);
	CHECK_EQ_INT(used, 12 + 131072);
	/* nothing consumed yet: no update (backpressure) */
	CHECK_EQ_STR(send_hex(s), "");
	CHECK(an_yamux_stream_read(s, 1, buf, 4096, &got, 0) == 0);
	CHECK_EQ_STR(send_hex(s), "");
	read_all(s, 1, NULL, 0);
	/* no RTT known: no growth, the consumed 128 KiB are credited back */
	CHECK_EQ_STR(send_hex(s), "000100000000000100020000");
	CHECK_EQ_INT(an_yamux_stream_recv_window(s, 1), AN_YAMUX_INITIAL_WINDOW);
	free(frame);
	an_yamux_free(s);
}

/* ---- behaviour, two sessions back to back ---- */

static void test_open_accept_data_both_ways(void)
{
	struct pair p;
	struct evlog log;
	uint32_t id;
	size_t acc, got;
	uint8_t buf[64];
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	CHECK(an_yamux_stream_write(p.a, id, (const uint8_t *)"ping?", 5, &p.ab, &acc) == 0);
	CHECK(pump(&p) == 0);
	drain(p.b, &log);
	CHECK(has(&log, AN_YAMUX_EV_STREAM_NEW, id));
	CHECK(has(&log, AN_YAMUX_EV_READABLE, id));
	CHECK(an_yamux_stream_read(p.b, id, buf, sizeof buf, &got, p.now) == 0);
	CHECK(got == 5 && memcmp(buf, "ping?", 5) == 0);
	CHECK(an_yamux_stream_write(p.b, id, (const uint8_t *)"pong!", 5, &p.ba, &acc) == 0);
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	CHECK(has(&log, AN_YAMUX_EV_READABLE, id));
	CHECK(an_yamux_stream_read(p.a, id, buf, sizeof buf, &got, p.now) == 0);
	CHECK(got == 5 && memcmp(buf, "pong!", 5) == 0);
	pair_free(&p);
}

static void test_window_exhaustion_and_resumption(void)
{
	struct pair p;
	struct evlog log;
	uint32_t id;
	size_t acc;
	size_t total = 300 * 1024;
	uint8_t *data = calloc(1, total);
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	CHECK(an_yamux_stream_write(p.a, id, data, total, &p.ab, &acc) == 0);
	CHECK_EQ_INT(acc, AN_YAMUX_INITIAL_WINDOW);
	CHECK_EQ_INT(an_yamux_stream_send_window(p.a, id), 0);
	CHECK(pump(&p) == 0);
	CHECK_EQ_INT(an_yamux_stream_buffered(p.b, id), AN_YAMUX_INITIAL_WINDOW);
	drain(p.a, &log);
	CHECK(!has(&log, AN_YAMUX_EV_WRITABLE, id)); /* b has not read yet */
	CHECK_EQ_INT(read_all(p.b, id, NULL, p.now), AN_YAMUX_INITIAL_WINDOW);
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	CHECK(has(&log, AN_YAMUX_EV_WRITABLE, id));
	CHECK_EQ_INT(an_yamux_stream_send_window(p.a, id), AN_YAMUX_INITIAL_WINDOW);
	size_t acc2;
	CHECK(an_yamux_stream_write(p.a, id, data + acc, total - acc, &p.ab, &acc2) == 0);
	CHECK_EQ_INT(acc2, total - AN_YAMUX_INITIAL_WINDOW);
	CHECK(pump(&p) == 0);
	CHECK_EQ_INT(read_all(p.b, id, NULL, p.now), total - AN_YAMUX_INITIAL_WINDOW);
	free(data);
	pair_free(&p);
}

static void test_transfer_64mib_checksum_and_window_growth(void)
{
	struct pair p;
	struct evlog log;
	uint32_t id, seed = 0x12345678;
	const size_t total = 64u << 20, chunk = 1u << 20;
	uint8_t *data = malloc(chunk);
	uint64_t hs = 1469598103934665603ull, hr = hs;
	size_t sent = 0, received = 0, pending = 0;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	/* the receiver (b) learns an RTT of 40 ms from its own ping */
	CHECK(an_yamux_ping(p.b, p.now) == 0);
	CHECK(move(p.b, &p.ba, p.a, p.now) >= 0);
	p.now += 40;
	CHECK(pump(&p) == 0);
	CHECK_EQ_INT(an_yamux_rtt(p.b), 40);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	for (int rounds = 0; rounds < 100000 && received < total; rounds++) {
		if (!pending && sent < total) {
			fill(data, chunk, &seed);
			hs = fnv(hs, data, chunk);
			pending = chunk;
		}
		if (pending) {
			size_t acc;
			CHECK(an_yamux_stream_write(p.a, id, data + chunk - pending, pending, &p.ab,
						    &acc) == 0);
			pending -= acc;
			sent += acc;
		}
		if (pump(&p) != 0)
			break;
		received += read_all(p.b, id, &hr, p.now); /* consumed at once: fast reader */
		p.now += 1;
	}
	CHECK(sent == total);
	CHECK(received == total);
	CHECK(hs == hr);
	/* the window doubled from 256 KiB towards the 16 MiB ceiling */
	CHECK(an_yamux_stream_recv_window(p.b, id) > AN_YAMUX_INITIAL_WINDOW);
	CHECK(an_yamux_stream_recv_window(p.b, id) <= 16u << 20);
	printf("# receive window grew to %u\n", an_yamux_stream_recv_window(p.b, id));
	drain(p.b, &log);
	CHECK(an_yamux_error(p.b, NULL) == 0);
	free(data);
	pair_free(&p);
}

static void test_no_window_growth_when_reader_is_slow(void)
{
	struct pair p;
	uint32_t id;
	uint8_t *data = calloc(1, 1u << 20);
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_ping(p.b, p.now) == 0);
	CHECK(move(p.b, &p.ba, p.a, p.now) >= 0);
	p.now += 10;
	CHECK(pump(&p) == 0);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	for (int i = 0; i < 8; i++) {
		size_t acc;
		CHECK(an_yamux_stream_write(p.a, id, data, 1u << 20, &p.ab, &acc) == 0);
		CHECK(pump(&p) == 0);
		p.now += 1000; /* each window takes far longer than 2 RTTs to drain */
		read_all(p.b, id, NULL, p.now);
		CHECK(pump(&p) == 0);
	}
	CHECK_EQ_INT(an_yamux_stream_recv_window(p.b, id), AN_YAMUX_INITIAL_WINDOW);
	free(data);
	pair_free(&p);
}

static void test_200_concurrent_streams(void)
{
	struct pair p;
	struct evlog log;
	uint32_t ids[200];
	uint8_t msg[1000], buf[2000];
	int ok = 1;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	for (int i = 0; i < 200; i++) {
		size_t acc;
		memset(msg, i, sizeof msg);
		CHECK(an_yamux_stream_open(p.a, &ids[i]) == 0);
		CHECK(an_yamux_stream_write(p.a, ids[i], msg, sizeof msg, &p.ab, &acc) == 0);
		CHECK(an_yamux_stream_close(p.a, ids[i]) == 0);
	}
	CHECK(pump(&p) == 0);
	CHECK_EQ_INT(an_yamux_stream_count(p.b), 200);
	drain(p.b, &log);
	for (int i = 0; i < 200; i++) {
		size_t got, acc;
		ok &= has(&log, AN_YAMUX_EV_STREAM_NEW, ids[i]) && has(&log, AN_YAMUX_EV_PEER_FIN, ids[i]);
		an_yamux_stream_read(p.b, ids[i], buf, sizeof buf, &got, p.now);
		ok &= got == 1000 && buf[0] == (uint8_t)i && buf[999] == (uint8_t)i;
		/* echo back after the peer's FIN, then close */
		ok &= an_yamux_stream_write(p.b, ids[i], buf, got, &p.ba, &acc) == 0 && acc == got;
		ok &= an_yamux_stream_close(p.b, ids[i]) == 0;
	}
	CHECK(ok);
	CHECK(pump(&p) == 0);
	drain(p.b, &log);
	CHECK_EQ_INT(an_yamux_stream_count(p.b), 0); /* both FINs through, data read */
	drain(p.a, &log);
	for (int i = 0; i < 200; i++) {
		size_t got;
		an_yamux_stream_read(p.a, ids[i], buf, sizeof buf, &got, p.now);
		ok &= got == 1000 && buf[500] == (uint8_t)i;
	}
	CHECK(ok);
	drain(p.a, &log);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	pair_free(&p);
}

/* Half-close from `closer`; the other side writes after the FIN. */
static void half_close_from(int client_closes)
{
	struct pair p;
	struct evlog log;
	uint32_t id;
	size_t acc, got;
	uint8_t buf[16];
	pair_with_stream(&p, &id);
	struct an_yamux *closer = client_closes ? p.a : p.b, *other = client_closes ? p.b : p.a;
	struct an_buf *other_out = client_closes ? &p.ba : &p.ab;
	CHECK(an_yamux_stream_close(closer, id) == 0);
	CHECK(an_yamux_stream_write(closer, id, (const uint8_t *)"x", 1, other_out, &acc) == AN_ECLOSED);
	CHECK(pump(&p) == 0);
	drain(other, &log);
	CHECK(has(&log, AN_YAMUX_EV_PEER_FIN, id));
	CHECK(an_yamux_stream_write(other, id, (const uint8_t *)"late", 4, other_out, &acc) == 0);
	CHECK_EQ_INT(acc, 4);
	CHECK(pump(&p) == 0);
	drain(closer, &log);
	CHECK(has(&log, AN_YAMUX_EV_READABLE, id));
	CHECK(an_yamux_stream_read(closer, id, buf, sizeof buf, &got, p.now) == 0);
	CHECK(got == 4 && memcmp(buf, "late", 4) == 0);
	CHECK(an_yamux_stream_close(other, id) == 0);
	CHECK(pump(&p) == 0);
	drain(closer, &log);
	CHECK(has(&log, AN_YAMUX_EV_PEER_FIN, id));
	drain(other, &log);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	CHECK_EQ_INT(an_yamux_stream_count(p.b), 0);
	pair_free(&p);
}

static void test_half_close_from_client(void)
{
	half_close_from(1);
}

static void test_half_close_from_server(void)
{
	half_close_from(0);
}

static void reset_from(int client_resets)
{
	struct pair p;
	struct evlog log;
	uint32_t id;
	size_t acc;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	CHECK(an_yamux_stream_write(p.a, id, (const uint8_t *)"data", 4, &p.ab, &acc) == 0);
	CHECK(pump(&p) == 0);
	drain(p.b, &log);
	struct an_yamux *resetter = client_resets ? p.a : p.b, *other = client_resets ? p.b : p.a;
	struct an_buf *other_out = client_resets ? &p.ba : &p.ab;
	CHECK(an_yamux_stream_reset(resetter, id) == 0);
	CHECK(pump(&p) == 0);
	drain(other, &log);
	CHECK(has(&log, AN_YAMUX_EV_PEER_RST, id));
	CHECK(an_yamux_stream_write(other, id, (const uint8_t *)"x", 1, other_out, &acc) == AN_ECLOSED);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	CHECK_EQ_INT(an_yamux_stream_count(p.b), 0);
	CHECK(an_yamux_error(p.a, NULL) == 0 && an_yamux_error(p.b, NULL) == 0);
	pair_free(&p);
}

static void test_reset_from_client(void)
{
	reset_from(1);
}

static void test_reset_from_server(void)
{
	reset_from(0);
}

static void test_data_in_flight_after_reset_is_dropped(void)
{
	struct pair p;
	uint32_t id;
	size_t acc;
	pair_with_stream(&p, &id);
	/* b writes while a resets: the data crosses the RST on the wire */
	CHECK(an_yamux_stream_write(p.b, id, (const uint8_t *)"late", 4, &p.ba, &acc) == 0);
	CHECK(an_yamux_stream_reset(p.a, id) == 0);
	CHECK(pump(&p) == 0);
	CHECK(an_yamux_error(p.a, NULL) == 0);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	pair_free(&p);
}

/* Data and a RST in one input: READABLE first, the data readable until the
   RST event is taken (a "na" or an error answer sent right before a reset
   must reach the application), then gone and the id released. */
static void test_data_before_peer_rst_is_readable(void)
{
	struct pair p;
	struct an_yamux_event ev;
	uint32_t id;
	size_t acc, got = 0;
	uint8_t buf[16];
	pair_with_stream(&p, &id);
	CHECK(an_yamux_stream_write(p.b, id, (const uint8_t *)"na\n", 3, &p.ba, &acc) == 0);
	CHECK(an_yamux_stream_reset(p.b, id) == 0);
	CHECK(pump(&p) == 0);
	CHECK(an_yamux_next_event(p.a, &ev) == 1);
	CHECK(ev.type == AN_YAMUX_EV_READABLE && ev.stream_id == id);
	CHECK(an_yamux_stream_read(p.a, id, buf, sizeof buf, &got, 0) == 0);
	CHECK_EQ_INT(got, 3);
	CHECK(memcmp(buf, "na\n", 3) == 0);
	CHECK(an_yamux_next_event(p.a, &ev) == 1);
	CHECK(ev.type == AN_YAMUX_EV_PEER_RST && ev.stream_id == id);
	CHECK(an_yamux_stream_read(p.a, id, buf, sizeof buf, &got, 0) == AN_ECLOSED);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	CHECK(!an_yamux_want_send(p.a)); /* no window update for a reset stream */
	pair_free(&p);
}

/* Not read before the RST event: dropped with it. */
static void test_unread_data_goes_with_the_rst_event(void)
{
	struct pair p;
	struct evlog log;
	uint32_t id;
	size_t acc;
	pair_with_stream(&p, &id);
	CHECK(an_yamux_stream_write(p.b, id, (const uint8_t *)"abc", 3, &p.ba, &acc) == 0);
	CHECK(an_yamux_stream_reset(p.b, id) == 0);
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	CHECK(has(&log, AN_YAMUX_EV_READABLE, id) && has(&log, AN_YAMUX_EV_PEER_RST, id));
	CHECK_EQ_INT(an_yamux_stream_buffered(p.a, id), 0);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 0);
	pair_free(&p);
}

static void test_ping_round_trip(void)
{
	struct pair p;
	struct evlog log;
	uint64_t sent;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK_EQ_INT(an_yamux_rtt(p.a), -1);
	CHECK(an_yamux_ping(p.a, 1000) == 0);
	CHECK(an_yamux_ping_outstanding(p.a, &sent) == 1 && sent == 1000);
	CHECK(move(p.a, &p.ab, p.b, 1000) == 1);
	p.now = 1042;
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	const struct an_yamux_event *ev = find(&log, AN_YAMUX_EV_PING_RTT);
	CHECK(ev && ev->value == 42);
	CHECK_EQ_INT(an_yamux_rtt(p.a), 42);
	CHECK(an_yamux_ping_outstanding(p.a, NULL) == 0);
	drain(p.b, &log);
	CHECK(find(&log, AN_YAMUX_EV_PING_RTT) == NULL); /* b only answered */
	pair_free(&p);
}

static void test_100_pings(void)
{
	struct pair p;
	struct evlog log;
	int answered = 0;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	for (int i = 0; i < 100; i++) {
		CHECK(an_yamux_ping(p.b, p.now) == 0);
		CHECK(pump(&p) == 0);
		drain(p.b, &log);
		answered += find(&log, AN_YAMUX_EV_PING_RTT) != NULL;
	}
	CHECK_EQ_INT(answered, 100);
	CHECK(an_yamux_error(p.a, NULL) == 0);
	pair_free(&p);
}

static void test_goaway_stops_new_streams(void)
{
	struct pair p;
	struct evlog log;
	uint32_t id, id2;
	size_t acc;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p.a, &id) == 0);
	CHECK(pump(&p) == 0);
	CHECK(an_yamux_goaway(p.b, AN_YAMUX_GOAWAY_NORMAL) == 0);
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	const struct an_yamux_event *ev = find(&log, AN_YAMUX_EV_GOAWAY);
	CHECK(ev && ev->value == 0);
	CHECK(an_yamux_peer_goaway(p.a, NULL) == 1);
	CHECK(an_yamux_stream_open(p.a, &id2) == AN_ECLOSED);
	CHECK(an_yamux_stream_open(p.b, &id2) == AN_ECLOSED);
	/* the existing stream goes on */
	CHECK(an_yamux_stream_write(p.a, id, (const uint8_t *)"still", 5, &p.ab, &acc) == 0);
	CHECK(pump(&p) == 0);
	CHECK_EQ_INT(an_yamux_stream_buffered(p.b, id), 5);
	CHECK(an_yamux_error(p.a, NULL) == 0);
	pair_free(&p);
}

static void test_goaway_error_code_fails_session(void)
{
	struct an_yamux *c;
	const char *why;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(feed_hex(c, "000300000000000000000001") == AN_ECLOSED);
	CHECK(an_yamux_error(c, &why) == AN_ECLOSED);
	CHECK(why && strstr(why, "protocol error"));
	CHECK_EQ_STR(send_hex(c), ""); /* no GoAway back to a peer that left */
	an_yamux_free(c);
}

static void test_goaway_refuses_inbound_streams(void)
{
	struct an_yamux *s;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(an_yamux_goaway(s, 0) == 0);
	send_hex(s);
	CHECK(feed_hex(s, "000100010000000100000000") == 0);
	CHECK_EQ_STR(send_hex(s), "000100080000000100000000");
	CHECK_EQ_INT(an_yamux_stream_count(s), 0);
	an_yamux_free(s);
}

static void test_inbound_stream_limit_refusal(void)
{
	struct pair p;
	struct an_yamux_config cb;
	struct evlog log;
	uint32_t id[3];
	an_yamux_config_default(&cb);
	cb.max_inbound_streams = 2;
	CHECK(pair_init(&p, NULL, &cb) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(an_yamux_stream_open(p.a, &id[i]) == 0);
	CHECK(pump(&p) == 0);
	drain(p.a, &log);
	CHECK(!has(&log, AN_YAMUX_EV_PEER_RST, id[0]));
	CHECK(!has(&log, AN_YAMUX_EV_PEER_RST, id[1]));
	CHECK(has(&log, AN_YAMUX_EV_PEER_RST, id[2]));
	CHECK_EQ_INT(an_yamux_stream_count(p.b), 2);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 2);
	CHECK(an_yamux_error(p.a, NULL) == 0 && an_yamux_error(p.b, NULL) == 0);
	/* a slot freed by a reset can be used again */
	CHECK(an_yamux_stream_reset(p.a, id[0]) == 0);
	CHECK(pump(&p) == 0);
	drain(p.b, &log);
	uint32_t id4;
	CHECK(an_yamux_stream_open(p.a, &id4) == 0);
	CHECK(pump(&p) == 0);
	drain(p.b, &log);
	CHECK(has(&log, AN_YAMUX_EV_STREAM_NEW, id4));
	pair_free(&p);
}

static void test_stream_flood_stays_within_limit(void)
{
	struct an_yamux *s;
	const size_t n = 10000;
	uint8_t *in = malloc(12 * n);
	struct an_buf out;
	size_t off = 0, used, rst = 0, ack = 0;
	struct an_yamux_header h;
	struct evlog log;
	an_buf_init(&out, 12 * n);
	for (size_t i = 0; i < n; i++)
		an_yamux_header_encode(in + 12 * i, AN_YAMUX_TYPE_WINDOW_UPDATE, AN_YAMUX_FLAG_SYN,
				       (uint32_t)(2 * i + 1), 0);
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	for (int rounds = 0; off < 12 * n && rounds < 1000; rounds++) {
		CHECK(an_yamux_feed(s, in + off, 12 * n - off, &used, 0) == 0);
		off += used;
		CHECK(an_yamux_send(s, &out) == 0);
	}
	CHECK(an_yamux_send(s, &out) == 0);
	CHECK_EQ_INT(off, 12 * n);
	CHECK_EQ_INT(an_yamux_stream_count(s), 512); /* the default inbound limit */
	for (size_t i = 0; i + 12 <= out.len; i += 12) {
		an_yamux_header_decode(out.data + i, &h);
		rst += h.flags == AN_YAMUX_FLAG_RST;
		ack += h.flags == AN_YAMUX_FLAG_ACK;
	}
	CHECK_EQ_INT(ack, 512);
	CHECK_EQ_INT(rst, n - 512);
	drain(s, &log);
	CHECK_EQ_INT(log.n, 512); /* one STREAM_NEW per accepted stream */
	CHECK(an_yamux_error(s, NULL) == 0);
	free(in);
	an_buf_free(&out);
	an_yamux_free(s);
}

static void test_outbound_stream_limit(void)
{
	struct an_yamux_config cfg;
	struct an_yamux *c;
	uint32_t id;
	an_yamux_config_default(&cfg);
	cfg.max_outbound_streams = 2;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, &cfg) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK(an_yamux_stream_open(c, &id) == 0);
	CHECK(an_yamux_stream_open(c, &id) == AN_ELIMIT);
	an_yamux_free(c);
}

static void test_both_dial_at_once(void)
{
	struct pair p;
	struct evlog la, lb;
	uint32_t ia, ib;
	CHECK(pair_init(&p, NULL, NULL) == 0);
	CHECK(an_yamux_stream_open(p.a, &ia) == 0);
	CHECK(an_yamux_stream_open(p.b, &ib) == 0);
	CHECK(pump(&p) == 0);
	drain(p.a, &la);
	drain(p.b, &lb);
	CHECK(has(&la, AN_YAMUX_EV_STREAM_NEW, ib));
	CHECK(has(&lb, AN_YAMUX_EV_STREAM_NEW, ia));
	CHECK(ia != ib);
	CHECK_EQ_INT(an_yamux_stream_count(p.a), 2);
	pair_free(&p);
}

static void test_split_feeding_byte_by_byte(void)
{
	struct an_yamux *s;
	const uint8_t in[] = "\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x03xyz"
			     "\x00\x02\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07";
	const uint8_t *p;
	size_t n, used;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	for (size_t i = 0; i < sizeof in - 1; i++) {
		CHECK(an_yamux_feed(s, in + i, 1, &used, 0) == 0);
		CHECK_EQ_INT(used, 1);
	}
	CHECK(an_yamux_stream_peek(s, 1, &p, &n) == 0);
	CHECK(n == 3 && memcmp(p, "xyz", 3) == 0);
	CHECK_EQ_STR(send_hex(s), "000200020000000000000007000100020000000100000000");
	an_yamux_free(s);
}

static void test_ping_flood_is_bounded(void)
{
	struct an_yamux *s;
	uint8_t in[100 * 12];
	size_t used, off = 0;
	struct an_buf out;
	int rounds = 0;
	for (int i = 0; i < 100; i++)
		an_yamux_header_encode(in + 12 * i, AN_YAMUX_TYPE_PING, AN_YAMUX_FLAG_SYN, 0, (uint32_t)i);
	an_buf_init(&out, 1u << 16);
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(an_yamux_feed(s, in, sizeof in, &used, 0) == 0);
	CHECK(used < sizeof in); /* the answers must be flushed first */
	off = used;
	while (off < sizeof in && rounds++ < 100) {
		CHECK(an_yamux_send(s, &out) == 0);
		CHECK(an_yamux_feed(s, in + off, sizeof in - off, &used, 0) == 0);
		off += used;
	}
	CHECK(an_yamux_send(s, &out) == 0);
	CHECK_EQ_INT(off, sizeof in);
	CHECK_EQ_INT(out.len, sizeof in); /* one ACK per ping */
	CHECK(out.len > 12 * 99 && out.data[12 * 99 + 11] == 99 && out.data[12 * 99 + 3] == 2);
	an_buf_free(&out);
	an_yamux_free(s);
}

/* Each malformed input fails the session with AN_EPROTO and a GoAway(1). */
static void malformed(enum an_yamux_role role, const char *setup_hex, const char *bad_hex,
		      int want, const char *reason_part)
{
	struct an_yamux *y;
	struct evlog log;
	const char *why = NULL;
	CHECK(an_yamux_new(&y, role, NULL) == 0);
	if (setup_hex)
		CHECK(feed_hex(y, setup_hex) == 0);
	CHECK_EQ_INT(feed_hex(y, bad_hex), want);
	CHECK_EQ_INT(an_yamux_error(y, &why), want);
	CHECK(why && strstr(why, reason_part));
	drain(y, &log);
	const struct an_yamux_event *ev = find(&log, AN_YAMUX_EV_ERROR);
	CHECK(ev && ev->err == want);
	/* setup frames may owe answers; the GoAway comes after them, once */
	const char *out = send_hex(y);
	size_t n = strlen(out);
	CHECK(n >= 24 && strcmp(out + n - 24, "000300000000000000000001") == 0);
	CHECK_EQ_STR(send_hex(y), "");
	CHECK_EQ_INT(feed_hex(y, "000200010000000000000001"), want);
	an_yamux_free(y);
}

static void test_malformed_bad_version(void)
{
	malformed(AN_YAMUX_SERVER, NULL, "010100010000000100000000", AN_EPROTO, "version");
}

static void test_malformed_unknown_type(void)
{
	malformed(AN_YAMUX_SERVER, NULL, "000400000000000000000000", AN_EPROTO, "unknown frame type");
}

static void test_malformed_wrong_parity_syn(void)
{
	/* a server receiving SYN for id 2: both ends think they are the server */
	malformed(AN_YAMUX_SERVER, NULL, "000100010000000200000000", AN_EPROTO, "parity");
}

static void test_malformed_data_over_window(void)
{
	struct an_yamux *s;
	uint8_t *frame = malloc(12 + AN_YAMUX_INITIAL_WINDOW + 1);
	size_t used;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(feed_hex(s, "000100010000000100000000") == 0);
	an_yamux_header_encode(frame, AN_YAMUX_TYPE_DATA, 0, 1, AN_YAMUX_INITIAL_WINDOW + 1);
	memset(frame + 12, 0, AN_YAMUX_INITIAL_WINDOW + 1);
	CHECK(an_yamux_feed(s, frame, 12 + AN_YAMUX_INITIAL_WINDOW + 1, &used, 0) == AN_EPROTO);
	CHECK_EQ_INT(an_yamux_stream_buffered(s, 1), 0);
	const char *why;
	CHECK(an_yamux_error(s, &why) == AN_EPROTO && strstr(why, "receive window"));
	free(frame);
	an_yamux_free(s);
}

static void test_malformed_data_over_window_in_two_frames(void)
{
	struct an_yamux *s;
	uint8_t *frame = calloc(1, 12 + 200000);
	size_t used;
	CHECK(an_yamux_new(&s, AN_YAMUX_SERVER, NULL) == 0);
	CHECK(feed_hex(s, "000100010000000100000000") == 0);
	an_yamux_header_encode(frame, AN_YAMUX_TYPE_DATA, 0, 1, 200000);
	CHECK(an_yamux_feed(s, frame, 12 + 200000, &used, 0) == 0);
	/* 200000 + 200000 > 256 KiB and nothing was consumed */
	CHECK(an_yamux_feed(s, frame, 12 + 200000, &used, 0) == AN_EPROTO);
	free(frame);
	an_yamux_free(s);
}

static void test_malformed_data_on_unknown_stream(void)
{
	malformed(AN_YAMUX_SERVER, NULL, "00000000000000050000000161", AN_EPROTO, "never opened");
}

static void test_malformed_window_update_on_our_unopened_id(void)
{
	malformed(AN_YAMUX_CLIENT, NULL, "000100000000000700000010", AN_EPROTO, "never opened");
}

static void test_malformed_unsolicited_ping_ack(void)
{
	malformed(AN_YAMUX_CLIENT, NULL, "000200020000000000000000", AN_EPROTO, "unsolicited");
}

static void test_malformed_ping_bad_flags(void)
{
	malformed(AN_YAMUX_CLIENT, NULL, "000200030000000000000000", AN_EPROTO, "flags");
}

static void test_malformed_duplicate_syn(void)
{
	malformed(AN_YAMUX_SERVER, "000100010000000100000000", "000100010000000100000000", AN_EPROTO,
		  "already used");
}

static void test_malformed_data_on_stream_zero(void)
{
	malformed(AN_YAMUX_SERVER, NULL, "000000000000000000000000", AN_EPROTO, "stream 0");
}

static void test_malformed_data_after_fin(void)
{
	malformed(AN_YAMUX_SERVER, "000100050000000100000000", "00000000000000010000000161", AN_EPROTO,
		  "after FIN");
}

static void test_malformed_frame_too_big(void)
{
	/* a Data header announcing 2 MiB: rejected before any payload */
	malformed(AN_YAMUX_SERVER, "000100010000000100000000", "000000000000000100200000", AN_ETOOBIG,
		  "frame limit");
}

static void test_malformed_window_overflow(void)
{
	malformed(AN_YAMUX_SERVER, "000100010000000100000000", "0001000000000001ffffffff", AN_EPROTO,
		  "overflow");
}

static void test_mismatched_ping_ack(void)
{
	struct an_yamux *c;
	CHECK(an_yamux_new(&c, AN_YAMUX_CLIENT, NULL) == 0);
	CHECK(an_yamux_ping(c, 0) == 0);
	CHECK_EQ_STR(send_hex(c), "000200010000000000000001");
	CHECK(feed_hex(c, "000200020000000000000002") == AN_EPROTO);
	an_yamux_free(c);
}

static void test_invalid_config(void)
{
	struct an_yamux_config cfg;
	struct an_yamux *y = (struct an_yamux *)&cfg;
	an_yamux_config_default(&cfg);
	cfg.initial_window = 1000;
	CHECK(an_yamux_new(&y, AN_YAMUX_CLIENT, &cfg) == -EINVAL);
	CHECK(y == NULL);
	an_yamux_free(NULL);
}

int main(void)
{
	RUN(test_wire_header_codec);
	RUN(test_wire_open_is_window_update_syn);
	RUN(test_wire_bigger_initial_window_announced_in_syn);
	RUN(test_wire_inbound_syn_acked_once);
	RUN(test_wire_syn_on_data_frame);
	RUN(test_wire_data_frame);
	RUN(test_wire_ping_answered_with_same_opaque);
	RUN(test_wire_goaway_normal);
	RUN(test_wire_fin_and_rst_frames);
	RUN(test_wire_window_update_after_half_consumed);
	RUN(test_open_accept_data_both_ways);
	RUN(test_window_exhaustion_and_resumption);
	RUN(test_transfer_64mib_checksum_and_window_growth);
	RUN(test_no_window_growth_when_reader_is_slow);
	RUN(test_200_concurrent_streams);
	RUN(test_half_close_from_client);
	RUN(test_half_close_from_server);
	RUN(test_reset_from_client);
	RUN(test_reset_from_server);
	RUN(test_data_before_peer_rst_is_readable);
	RUN(test_unread_data_goes_with_the_rst_event);
	RUN(test_data_in_flight_after_reset_is_dropped);
	RUN(test_ping_round_trip);
	RUN(test_100_pings);
	RUN(test_goaway_stops_new_streams);
	RUN(test_goaway_error_code_fails_session);
	RUN(test_goaway_refuses_inbound_streams);
	RUN(test_inbound_stream_limit_refusal);
	RUN(test_stream_flood_stays_within_limit);
	RUN(test_outbound_stream_limit);
	RUN(test_both_dial_at_once);
	RUN(test_split_feeding_byte_by_byte);
	RUN(test_ping_flood_is_bounded);
	RUN(test_malformed_bad_version);
	RUN(test_malformed_unknown_type);
	RUN(test_malformed_wrong_parity_syn);
	RUN(test_malformed_data_over_window);
	RUN(test_malformed_data_over_window_in_two_frames);
	RUN(test_malformed_data_on_unknown_stream);
	RUN(test_malformed_window_update_on_our_unopened_id);
	RUN(test_malformed_unsolicited_ping_ack);
	RUN(test_malformed_ping_bad_flags);
	RUN(test_malformed_duplicate_syn);
	RUN(test_malformed_data_on_stream_zero);
	RUN(test_malformed_data_after_fin);
	RUN(test_malformed_frame_too_big);
	RUN(test_malformed_window_overflow);
	RUN(test_mismatched_ping_ack);
	RUN(test_invalid_config);
	return check_done();
}
