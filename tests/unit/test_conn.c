/*
 * test_conn.c - the connection pipeline's data path: how stream writes
 * become Noise messages, the zero-copy input (an_conn_input_buffer /
 * an_conn_input_commit), output taken in pieces, and yamux window
 * auto-tuning on a link whose RTT is below the 1 ms clock.
 */
#include "crypto/key.h"
#include "transport/conn.h"
#include "transport/noise.h"
#include "transport/yamux.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static struct an_privkey *ka, *kb;

struct pair {
	struct an_conn *a, *b;
	bool ready_a, ready_b;
};

/*
 * Move bytes both ways until nothing moves (bounded).  a's output reaches b
 * through b's input buffer in pieces of at most piece bytes (0: all at
 * once), so output offsets and input compaction are exercised.
 */
static int pump(struct pair *p, size_t piece)
{
	for (int i = 0; i < 100000; i++) {
		bool moved = false;
		const uint8_t *out;
		size_t len, used;
		struct an_conn_event ev;
		if (an_conn_flush(p->a, 0) < 0 || an_conn_flush(p->b, 0) < 0)
			return -1;
		an_conn_output(p->a, &out, &len);
		if (len) {
			uint8_t *in;
			size_t room;
			if (an_conn_input_buffer(p->b, &in, &room) < 0)
				return -1;
			size_t n = len < room ? len : room;
			if (piece && n > piece)
				n = piece;
			if (n) {
				memcpy(in, out, n);
				if (an_conn_input_commit(p->b, n, 0) < 0)
					return -1;
				an_conn_output_consume(p->a, n);
				moved = true;
			}
		}
		an_conn_output(p->b, &out, &len);
		if (len) {
			if (an_conn_feed(p->a, out, len, &used, 0) < 0)
				return -1;
			an_conn_output_consume(p->b, used);
			moved |= used > 0;
		}
		while (an_conn_next_event(p->a, &ev))
			if (ev.type == AN_CONN_EV_READY)
				p->ready_a = true;
		while (an_conn_next_event(p->b, &ev))
			if (ev.type == AN_CONN_EV_READY)
				p->ready_b = true;
		if (!moved)
			return 0;
	}
	return -1;
}

/* a dials b over /noise, or over /tls/1.0.0 when tls (expecting expect) */
static int pair_new_sec(struct pair *p, bool tls, const struct an_peerid *expect)
{
	struct an_conn_config ca = {.key = ka, .initiator = true, .yamux_client = true, .tls = tls,
				    .expected = expect};
	struct an_conn_config cb = {.key = kb, .initiator = false, .yamux_client = false};
	memset(p, 0, sizeof(*p));
	if (an_conn_new(&ca, &p->a) < 0 || an_conn_new(&cb, &p->b) < 0)
		return -1;
	an_conn_start(p->a, 0);
	if (pump(p, 0) < 0 || !p->ready_a || !p->ready_b)
		return -1;
	return 0;
}

static int pair_new(struct pair *p)
{
	return pair_new_sec(p, false, NULL);
}

static void pair_free(struct pair *p)
{
	an_conn_free(p->a);
	an_conn_free(p->b);
}

/* Lengths of the Noise frames in a's pending output; returns the count. */
static size_t frame_lengths(struct an_conn *c, size_t *lens, size_t max)
{
	const uint8_t *out;
	size_t len, n = 0, pos = 0;
	an_conn_output(c, &out, &len);
	while (len - pos >= 2 && n < max) {
		size_t m = (size_t)out[pos] << 8 | out[pos + 1];
		lens[n++] = m;
		pos += 2 + m;
	}
	return n;
}

static void test_bulk_write_seals_only_full_messages(void)
{
	struct pair p;
	uint32_t id;
	size_t acc, lens[16];
	uint8_t *data = calloc(1, AN_YAMUX_INITIAL_WINDOW);
	CHECK_EQ_INT(pair_new(&p), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	/* the whole initial window: 16 yamux frames of 16 KiB + headers */
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, data, AN_YAMUX_INITIAL_WINDOW, &acc), 0);
	CHECK_EQ_INT(acc, AN_YAMUX_INITIAL_WINDOW);
	size_t n = frame_lengths(p.a, lens, 16);
	CHECK_EQ_INT(n, 4); /* 4 x 65519 plaintext bytes; the rest waits */
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(lens[i], AN_NOISE_MSG_MAX);
	free(data);
	pair_free(&p);
}

static void test_flush_seals_the_partly_filled_message(void)
{
	struct pair p;
	uint32_t id;
	size_t acc, lens[16];
	CHECK_EQ_INT(pair_new(&p), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, (const uint8_t *)"hello", 5, &acc), 0);
	CHECK_EQ_INT(frame_lengths(p.a, lens, 16), 0); /* still open */
	CHECK_EQ_INT(an_conn_flush(p.a, 0), 0);
	CHECK_EQ_INT(frame_lengths(p.a, lens, 16), 1);
	/* SYN window update (12) + data header (12) + 5 bytes + tag */
	CHECK_EQ_INT(lens[0], 12 + 12 + 5 + AN_NOISE_TAG_LEN);
	pair_free(&p);
}

/* 8 MiB of a known pattern a -> b, output taken in odd pieces; every byte arrives in order. */
static void transfer_in_pieces(bool tls)
{
	struct pair p;
	uint32_t id;
	const size_t total = 8u << 20;
	size_t sent = 0, got = 0;
	bool intact = true;
	uint8_t chunk[40000], buf[65536];
	CHECK_EQ_INT(pair_new_sec(&p, tls, NULL), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	for (int round = 0; round < 20000 && got < total; round++) {
		if (sent < total) {
			size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk), acc = 0;
			for (size_t i = 0; i < n; i++)
				chunk[i] = (uint8_t)((sent + i) * 7 + ((sent + i) >> 13));
			CHECK_EQ_INT(an_conn_stream_write(p.a, id, chunk, n, &acc), 0);
			sent += acc;
		}
		if (pump(&p, 7777) < 0)
			break;
		struct an_conn_event ev;
		while (an_conn_next_event(p.b, &ev))
			;
		size_t r;
		while (an_yamux_stream_read(an_conn_yamux(p.b), id, buf, sizeof(buf), &r, 0) == 0 && r) {
			for (size_t i = 0; i < r; i++)
				if (buf[i] != (uint8_t)((got + i) * 7 + ((got + i) >> 13)))
					intact = false;
			got += r;
		}
	}
	CHECK_EQ_INT(sent, total);
	CHECK_EQ_INT(got, total);
	CHECK(intact);
	pair_free(&p);
}

static void test_transfer_in_pieces_arrives_intact(void)
{
	transfer_in_pieces(false);
}

/* /tls/1.0.0: the listener takes it (after /noise), both learn the peer */
static void test_tls_upgrade_authenticates_both(void)
{
	struct pair p;
	struct an_pubkey pa, pb;
	struct an_peerid ida, idb;
	an_privkey_public(ka, &pa);
	an_privkey_public(kb, &pb);
	an_peerid_from_pubkey(&pa, &ida);
	an_peerid_from_pubkey(&pb, &idb);
	CHECK_EQ_INT(pair_new_sec(&p, true, &idb), 0);
	CHECK(an_conn_peer(p.a) && an_peerid_equal(an_conn_peer(p.a), &idb));
	CHECK(an_conn_peer(p.b) && an_peerid_equal(an_conn_peer(p.b), &ida));
	CHECK(an_conn_remote_key(p.a) && an_pubkey_equal(an_conn_remote_key(p.a), &pb));
	CHECK(an_conn_remote_key(p.b) && an_pubkey_equal(an_conn_remote_key(p.b), &pa));
	pair_free(&p);
}

static void test_tls_transfer_in_pieces_arrives_intact(void)
{
	transfer_in_pieces(true);
}

static void test_tls_unexpected_peer_fails(void)
{
	struct pair p;
	struct an_pubkey pa;
	struct an_peerid ida;
	const char *why = NULL;
	an_privkey_public(ka, &pa);
	an_peerid_from_pubkey(&pa, &ida); /* a expects itself: b is the wrong peer */
	CHECK(pair_new_sec(&p, true, &ida) < 0);
	CHECK_EQ_INT(an_conn_error(p.a, &why), AN_EMISMATCH);
	CHECK(why && strncmp(why, "tls: peer is ", 13) == 0);
	CHECK(!p.ready_a && !p.ready_b);
	pair_free(&p);
}

/*
 * After 1 MiB a -> b the buffers of both sides are at their high-water size;
 * one small message each way (as a keep-alive ping would be) leaves them
 * drained, and then neither side holds more than a few KiB of buffers.
 */
static void test_idle_connection_gives_buffers_back(void)
{
	struct pair p;
	uint32_t id;
	const size_t total = 1u << 20;
	size_t sent = 0, got = 0, peak_b = 0;
	static uint8_t chunk[60000], buf[65536];
	CHECK_EQ_INT(pair_new(&p), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	for (int round = 0; round < 2000 && got < total; round++) {
		size_t acc = 0, r;
		struct an_conn_event ev;
		if (sent < total) {
			size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
			CHECK_EQ_INT(an_conn_stream_write(p.a, id, chunk, n, &acc), 0);
			sent += acc;
		}
		if (an_conn_flush(p.a, 0) < 0)
			break;
		if (an_conn_buffer_bytes(p.a) > peak_b)
			peak_b = an_conn_buffer_bytes(p.a);
		if (pump(&p, 0) < 0)
			break;
		while (an_conn_next_event(p.b, &ev))
			;
		while (an_yamux_stream_read(an_conn_yamux(p.b), id, buf, sizeof(buf), &r, 0) == 0 && r)
			got += r;
	}
	CHECK_EQ_INT(got, total);
	CHECK(peak_b > 64 * 1024); /* the burst did grow them */
	size_t acc = 0;
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, (const uint8_t *)"ping", 4, &acc), 0);
	CHECK_EQ_INT(pump(&p, 0), 0);
	CHECK_EQ_INT(an_conn_stream_write(p.b, id, (const uint8_t *)"pong", 4, &acc), 0);
	CHECK_EQ_INT(pump(&p, 0), 0);
	CHECK(an_conn_buffer_bytes(p.a) <= 4 * 4096);
	CHECK(an_conn_buffer_bytes(p.b) <= 4 * 4096);
	pair_free(&p);
}

/* A writer the output buffer stops: the full message waits, and says so until a flush after the drain. */
static void test_output_blocked_until_flushed_after_drain(void)
{
	struct pair p;
	struct an_yamux_config yc;
	uint32_t id;
	size_t acc, len;
	const uint8_t *out;
	const size_t big = 2u << 20;
	uint8_t *data = calloc(1, big);
	an_yamux_config_default(&yc);
	yc.initial_window = 4u << 20; /* b grants 4 MiB: the window is not the limit */
	struct an_conn_config ca = {.key = ka, .initiator = true, .yamux_client = true};
	struct an_conn_config cb = {.key = kb, .initiator = false, .yamux_client = false, .yamux = &yc};
	memset(&p, 0, sizeof(p));
	CHECK(an_conn_new(&ca, &p.a) == 0 && an_conn_new(&cb, &p.b) == 0);
	an_conn_start(p.a, 0);
	CHECK_EQ_INT(pump(&p, 0), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, data, 1, &acc), 0);
	CHECK_EQ_INT(pump(&p, 0), 0); /* b's ACK carries the larger window */
	CHECK(an_yamux_stream_send_window(an_conn_yamux(p.a), id) > big);
	CHECK(!an_conn_output_blocked(p.a));
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, data, big, &acc), 0);
	CHECK(acc < big); /* stopped by the 1 MiB output buffer */
	CHECK(an_conn_output_blocked(p.a));
	an_conn_output(p.a, &out, &len);
	an_conn_output_consume(p.a, len); /* the byte stream took everything */
	CHECK(an_conn_output_blocked(p.a)); /* still: only a flush moves it */
	CHECK_EQ_INT(an_conn_flush(p.a, 0), 0);
	CHECK(!an_conn_output_blocked(p.a));
	an_conn_output(p.a, &out, &len);
	CHECK_EQ_INT(len, 2 + AN_NOISE_MSG_MAX);
	free(data);
	pair_free(&p);
}

static void test_input_commit_beyond_room_is_einval(void)
{
	struct pair p;
	uint8_t *in;
	size_t room;
	CHECK_EQ_INT(pair_new(&p), 0);
	CHECK_EQ_INT(an_conn_input_buffer(p.b, &in, &room), 0);
	CHECK(room > 0 && room <= AN_CONN_READ_MAX);
	CHECK_EQ_INT(an_conn_input_commit(p.b, AN_CONN_RAW_IN_MAX + 1, 0), -EINVAL);
	pair_free(&p);
}

/* ---- yamux window auto-tuning below the clock's resolution ---- */

static int ymove(struct an_yamux *from, struct an_buf *wire, struct an_yamux *to, uint64_t now)
{
	size_t used = 0;
	if (an_yamux_send(from, wire) < 0)
		return -1;
	if (wire->len == 0)
		return 0;
	if (an_yamux_feed(to, wire->data, wire->len, &used, now) < 0)
		return -1;
	an_buf_consume(wire, used);
	return used > 0;
}

/* A stream a -> b where b measured an RTT of 0 ms; 16 MiB pass, b reads
   after read_delay ms each round.  Returns b's receive window at the end. */
static uint32_t window_after_transfer(uint64_t read_delay)
{
	struct an_yamux *a, *b;
	struct an_buf ab, ba;
	uint8_t *data = calloc(1, 1u << 20), buf[65536];
	uint64_t now = 1000;
	uint32_t id, win = 0;
	size_t sent = 0, got = 0;
	const size_t total = 16u << 20;
	an_buf_init(&ab, 32u << 20);
	an_buf_init(&ba, 32u << 20);
	if (!data || an_yamux_new(&a, AN_YAMUX_CLIENT, NULL) < 0)
		goto out_data;
	if (an_yamux_new(&b, AN_YAMUX_SERVER, NULL) < 0)
		goto out_a;
	/* the ping goes out and its ACK comes back within the same ms */
	an_yamux_ping(b, now);
	if (ymove(b, &ba, a, now) < 0 || ymove(a, &ab, b, now) < 0 || an_yamux_rtt(b) != 0)
		goto out;
	if (an_yamux_stream_open(a, &id) < 0)
		goto out;
	for (int round = 0; round < 100000 && got < total; round++) {
		size_t acc = 0, r;
		if (sent < total && an_yamux_stream_write(a, id, data, total - sent < (1u << 20) ?
						 total - sent : (1u << 20), &ab, &acc) < 0)
			goto out;
		sent += acc;
		if (ymove(a, &ab, b, now) < 0)
			goto out;
		struct an_yamux_event ev;
		while (an_yamux_next_event(b, &ev))
			;
		now += read_delay;
		while (an_yamux_stream_read(b, id, buf, sizeof(buf), &r, now) == 0 && r)
			got += r;
		if (ymove(b, &ba, a, now) < 0)
			goto out;
		while (an_yamux_next_event(a, &ev))
			;
	}
	if (got == total)
		win = an_yamux_stream_recv_window(b, id);
out:
	an_yamux_free(b);
out_a:
	an_yamux_free(a);
out_data:
	an_buf_free(&ab);
	an_buf_free(&ba);
	free(data);
	return win;
}

static void test_window_grows_when_rtt_is_below_1ms(void)
{
	/* a fast reader on a 0 ms link: the window must grow (it never did) */
	CHECK(window_after_transfer(0) > AN_YAMUX_INITIAL_WINDOW);
}

static void test_window_stays_for_a_slow_reader_below_1ms(void)
{
	/* each half window waits 5 ms (> 2 x the 1 ms floor) to be read */
	CHECK_EQ_INT(window_after_transfer(5), AN_YAMUX_INITIAL_WINDOW);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0)
		return 1;
	RUN(test_bulk_write_seals_only_full_messages);
	RUN(test_flush_seals_the_partly_filled_message);
	RUN(test_transfer_in_pieces_arrives_intact);
	RUN(test_tls_upgrade_authenticates_both);
	RUN(test_tls_transfer_in_pieces_arrives_intact);
	RUN(test_tls_unexpected_peer_fails);
	RUN(test_output_blocked_until_flushed_after_drain);
	RUN(test_idle_connection_gives_buffers_back);
	RUN(test_input_commit_beyond_room_is_einval);
	RUN(test_window_grows_when_rtt_is_below_1ms);
	RUN(test_window_stays_for_a_slow_reader_below_1ms);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
