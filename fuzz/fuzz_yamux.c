/*
 * fuzz_yamux.c - one yamux session fed arbitrary frames, interleaved with
 * application actions (open, write, read, close, reset, ping, GoAway, send
 * into small buffers, the clock moving) all taken from the fuzz input.
 *
 * Input: byte 0 picks the role; then a sequence of operations, each an
 * opcode byte followed by its arguments (missing bytes read as 0):
 *   0 n      feed the next n*4+1 raw bytes
 *   1        open a stream
 *   2 k n    write n*97 bytes on known stream k
 *   3 k n    read up to n*97 bytes from stream k
 *   4 k      close stream k          5 k   reset stream k
 *   6        ping                    7 n   send into a buffer capped at n*5
 *   8 c      GoAway with code c%3    9 n   advance the clock by n ms
 *   10 t f k l3 l2 l1 l0  feed one well-formed header (type t%4, flags f%16,
 *            stream id = a known id or k%9, length l) and up to 64 bytes of
 *            payload if it is a Data frame
 * Invariants checked: buffered data never exceeds a stream's window, the
 * stream count stays within the configured limits, a failed session stays
 * failed.
 */
#include "transport/yamux.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 16

struct input {
	const uint8_t *p;
	size_t n, i;
};

static uint8_t next(struct input *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static void note_id(uint32_t *ids, size_t *nids, uint32_t id)
{
	if (*nids < MAX_IDS)
		ids[(*nids)++] = id;
	else
		ids[id % MAX_IDS] = id;
}

static uint32_t pick(const uint32_t *ids, size_t nids, uint8_t k)
{
	return nids ? ids[k % nids] : k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t scratch[64 * 97 * 4];
	struct input in = { data, size, 0 };
	struct an_yamux_config cfg;
	struct an_yamux *y = NULL;
	struct an_buf out;
	uint32_t ids[MAX_IDS];
	size_t nids = 0;
	uint64_t now = 0;
	int failed = 0;

	an_yamux_config_default(&cfg);
	cfg.max_inbound_streams = 8;
	cfg.max_outbound_streams = 8;
	cfg.max_window = 1u << 20;
	cfg.window_budget = 2u << 20;
	cfg.max_frame_body = 1u << 18;
	an_buf_init(&out, 1u << 16);
	if (an_yamux_new(&y, (next(&in) & 1) ? AN_YAMUX_CLIENT : AN_YAMUX_SERVER, &cfg) < 0)
		goto out;
	memset(scratch, 0xa5, sizeof scratch);

	while (in.i < in.n) {
		uint8_t op = next(&in) % 11;
		int rc = 0;
		size_t used = 0;
		switch (op) {
		case 0: {
			size_t len = (size_t)next(&in) * 4 + 1;
			if (len > in.n - in.i)
				len = in.n - in.i;
			rc = an_yamux_feed(y, in.p + in.i, len, &used, now);
			if (used > len)
				abort();
			in.i += len;
			break;
		}
		case 1: {
			uint32_t id;
			rc = an_yamux_stream_open(y, &id);
			if (rc == 0)
				note_id(ids, &nids, id);
			break;
		}
		case 2: {
			uint32_t id = pick(ids, nids, next(&in));
			size_t n = (size_t)next(&in) * 97;
			rc = an_yamux_stream_write(y, id, scratch, n, &out, &used);
			if (used > n)
				abort();
			break;
		}
		case 3: {
			uint32_t id = pick(ids, nids, next(&in));
			size_t cap = (size_t)next(&in) * 97;
			rc = an_yamux_stream_read(y, id, scratch, cap, &used, now);
			if (used > cap)
				abort();
			break;
		}
		case 4:
			rc = an_yamux_stream_close(y, pick(ids, nids, next(&in)));
			break;
		case 5:
			rc = an_yamux_stream_reset(y, pick(ids, nids, next(&in)));
			break;
		case 6:
			rc = an_yamux_ping(y, now);
			break;
		case 7: {
			struct an_buf small;
			an_buf_init(&small, (size_t)next(&in) * 5);
			rc = an_yamux_send(y, &small);
			an_buf_free(&small);
			break;
		}
		case 8:
			rc = an_yamux_goaway(y, next(&in) % 3);
			break;
		case 9:
			now += next(&in);
			break;
		case 10: {
			uint8_t frame[12 + 64];
			uint8_t t = next(&in) % 4, f = next(&in) % 16, k = next(&in);
			uint32_t id = (k & 0x80) ? pick(ids, nids, k) : (uint32_t)(k % 9);
			uint32_t len = (uint32_t)next(&in) << 24;
			len |= (uint32_t)next(&in) << 16;
			len |= (uint32_t)next(&in) << 8;
			len |= next(&in);
			size_t body = t == AN_YAMUX_TYPE_DATA ? (len < 64 ? len : 64) : 0;
			an_yamux_header_encode(frame, t, f, id, len);
			memset(frame + 12, 0x5a, body);
			rc = an_yamux_feed(y, frame, 12 + body, &used, now);
			break;
		}
		}
		if (failed && rc != an_yamux_error(y, NULL) && op != 9)
			abort(); /* a failed session must stay failed */
		if (an_yamux_error(y, NULL))
			failed = 1;
		/* drain events, learning inbound stream ids */
		struct an_yamux_event ev;
		for (int guard = 0; guard < 10000 && an_yamux_next_event(y, &ev) == 1; guard++)
			if (ev.type == AN_YAMUX_EV_STREAM_NEW)
				note_id(ids, &nids, ev.stream_id);
		if (an_yamux_stream_count(y) > cfg.max_inbound_streams + cfg.max_outbound_streams)
			abort();
		for (size_t j = 0; j < nids; j++)
			if (an_yamux_stream_buffered(y, ids[j]) > an_yamux_stream_recv_window(y, ids[j]))
				abort();
		/* the host flushes its output now and then */
		if (out.len > out.max / 2)
			an_buf_reset(&out);
		an_yamux_send(y, &out);
	}
out:
	an_yamux_free(y);
	an_buf_free(&out);
	return 0;
}
