/*
 * yamux.c - the yamux session machine; the contract is in yamux.h.
 *
 * Layout: streams live in a chained hash table keyed by id.  Two intrusive
 * FIFO lists thread through them: "dirty" (a control frame is pending for
 * send) and "evq" (events are pending for next_event).  A stream is freed
 * only when it is on neither list, so no list ever holds a dangling pointer.
 */
#include "transport/yamux.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Pending events of one stream (bits of stream.ev), delivered in this order. */
#define EV_NEW 0x01
#define EV_READ 0x02
#define EV_FIN 0x04
#define EV_RST 0x08
#define EV_WRITE 0x10

/* Bounded queues of answers owed to the peer (see an_yamux_feed). */
#define PING_ACK_QUEUE 16
#define REFUSE_QUEUE 64

/*
 * A drained receive buffer bigger than RBUF_KEEP is freed, so idle streams
 * stay small - unless the stream is busy: one that drained a buffer of
 * RBUF_BULK_MIN or more is a bulk transfer, and re-growing its buffer from
 * RBUF_MIN after every drain would copy each byte about once more on the way
 * (realloc doubling).  A busy stream keeps a drained buffer of up to
 * RBUF_BULK_KEEP (the spec's initial window), and frees it once it drains
 * while holding less than RBUF_BULK_MIN.
 */
#define RBUF_KEEP 16384
#define RBUF_MIN 4096
#define RBUF_BULK_MIN 65536
#define RBUF_BULK_KEEP (256 * 1024)

struct stream {
	uint32_t id;
	uint32_t send_window;   /* bytes the peer lets us send */
	uint32_t recv_window;   /* current window size (auto-tuned) */
	uint32_t recv_credit;   /* bytes the peer may still send */
	uint32_t uncredited;    /* consumed by the application, not yet credited */
	uint32_t pending_delta; /* window delta to announce in the next frame */
	uint8_t *rbuf;          /* received, unread data: rbuf[rhead..rhead+rlen) */
	uint32_t rhead, rlen, ralloc;
	uint32_t rpeak;         /* most bytes buffered since the buffer last drained */
	uint64_t last_update_ms; /* when the window was last re-opened */
	uint64_t fill_since_ms;  /* when the buffer last went from empty to not */
	uint16_t out_flags;      /* SYN/ACK/FIN/RST still to send */
	uint8_t ev;              /* EV_* pending */
	unsigned inbound : 1;
	unsigned fin_queued : 1; /* application closed its side */
	unsigned fin_sent : 1;
	unsigned fin_recv : 1;
	unsigned reset : 1; /* reset by either side: no more data either way */
	unsigned write_blocked : 1;
	unsigned reader_lagged : 1; /* data waited >= 2 RTTs since the last update */
	unsigned in_dirty : 1;
	unsigned in_evq : 1;
	struct stream *hnext, *dnext, *enext;
};

struct an_yamux {
	struct an_yamux_config cfg;
	enum an_yamux_role role;
	/* streams */
	struct stream **buckets;
	size_t nbuckets, count;
	uint32_t inbound_count, outbound_count;
	uint64_t next_out_id;     /* next id we will open */
	uint32_t last_inbound_id; /* highest id the peer opened */
	uint64_t budget_used;     /* window growth handed out beyond initial_window */
	struct stream *dirty_head, *dirty_tail;
	struct stream *ev_head, *ev_tail;
	/* input parser */
	uint8_t hdr[AN_YAMUX_HEADER_SIZE];
	size_t hdr_have;
	uint32_t body_left;   /* Data payload bytes still to read */
	uint32_t body_id;     /* their stream, or 0 to discard them */
	uint16_t body_flags;  /* FIN/RST to apply once the payload is in */
	/* answers owed */
	uint32_t ping_acks[PING_ACK_QUEUE];
	unsigned ping_ack_head, ping_ack_count;
	uint32_t refused[REFUSE_QUEUE];
	unsigned refused_head, refused_count;
	/* our ping */
	uint32_t ping_opaque;
	uint64_t ping_sent_ms;
	int ping_outstanding, ping_to_send;
	int64_t rtt_ms;
	/* session events */
	int ev_rtt, ev_goaway, ev_error;
	uint32_t ev_rtt_value;
	/* go-away */
	int local_goaway, goaway_to_send, goaway_sent;
	uint32_t local_goaway_code;
	int peer_goaway;
	uint32_t peer_goaway_code;
	/* failure */
	int err;
	const char *reason;
};

/* ---- wire helpers ---- */

void an_yamux_header_encode(uint8_t out[AN_YAMUX_HEADER_SIZE], uint8_t type, uint16_t flags,
			    uint32_t stream_id, uint32_t length)
{
	out[0] = AN_YAMUX_VERSION;
	out[1] = type;
	out[2] = (uint8_t)(flags >> 8);
	out[3] = (uint8_t)flags;
	for (int i = 0; i < 4; i++) {
		out[4 + i] = (uint8_t)(stream_id >> (24 - 8 * i));
		out[8 + i] = (uint8_t)(length >> (24 - 8 * i));
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void an_yamux_header_decode(const uint8_t in[AN_YAMUX_HEADER_SIZE], struct an_yamux_header *h)
{
	h->version = in[0];
	h->type = in[1];
	h->flags = (uint16_t)(in[2] << 8 | in[3]);
	h->stream_id = be32(in + 4);
	h->length = be32(in + 8);
}

static size_t buf_room(const struct an_buf *out)
{
	return out->max > out->len ? out->max - out->len : 0;
}

/* Append one header-only frame; 1 if written, 0 if out is full, <0 on error. */
static int emit(struct an_buf *out, uint8_t type, uint16_t flags, uint32_t id, uint32_t length)
{
	uint8_t h[AN_YAMUX_HEADER_SIZE];
	if (buf_room(out) < AN_YAMUX_HEADER_SIZE)
		return 0;
	an_yamux_header_encode(h, type, flags, id, length);
	int rc = an_buf_append(out, h, sizeof h);
	return rc < 0 ? rc : 1;
}

/* ---- session basics ---- */

void an_yamux_config_default(struct an_yamux_config *c)
{
	c->max_inbound_streams = 512;
	c->max_outbound_streams = 512;
	c->initial_window = AN_YAMUX_INITIAL_WINDOW;
	c->max_window = 16u << 20;
	c->window_budget = 64u << 20;
	c->max_frame_body = 1u << 20;
	c->max_send_frame = 16384;
}

static int fail(struct an_yamux *y, int code, const char *reason)
{
	if (!y->err) {
		y->err = code;
		y->reason = reason;
		y->ev_error = 1;
	}
	return y->err;
}

static int is_ours(const struct an_yamux *y, uint32_t id)
{
	return (id & 1u) == (y->role == AN_YAMUX_CLIENT ? 1u : 0u);
}

int an_yamux_new(struct an_yamux **out, enum an_yamux_role role, const struct an_yamux_config *cfg)
{
	struct an_yamux *y;
	*out = NULL;
	if (role != AN_YAMUX_CLIENT && role != AN_YAMUX_SERVER)
		return -EINVAL;
	if (cfg && (cfg->initial_window < AN_YAMUX_INITIAL_WINDOW ||
		    cfg->max_window < cfg->initial_window || cfg->max_send_frame == 0 ||
		    cfg->max_frame_body == 0))
		return -EINVAL;
	y = calloc(1, sizeof *y);
	if (!y)
		return -ENOMEM;
	if (cfg)
		y->cfg = *cfg;
	else
		an_yamux_config_default(&y->cfg);
	y->nbuckets = 16;
	y->buckets = calloc(y->nbuckets, sizeof *y->buckets);
	if (!y->buckets) {
		free(y);
		return -ENOMEM;
	}
	y->role = role;
	y->next_out_id = role == AN_YAMUX_CLIENT ? 1 : 2;
	y->rtt_ms = -1;
	*out = y;
	return 0;
}

void an_yamux_free(struct an_yamux *y)
{
	if (!y)
		return;
	for (size_t i = 0; i < y->nbuckets; i++) {
		struct stream *s = y->buckets[i], *n;
		for (; s; s = n) {
			n = s->hnext;
			free(s->rbuf);
			free(s);
		}
	}
	free(y->buckets);
	free(y);
}

/* ---- stream table ---- */

static size_t bucket_of(const struct an_yamux *y, uint32_t id)
{
	uint32_t h = id * 2654435761u; /* Knuth's multiplicative hash */
	return (h >> 8) & (y->nbuckets - 1);
}

static struct stream *lookup(const struct an_yamux *y, uint32_t id)
{
	struct stream *s = y->buckets[bucket_of(y, id)];
	while (s && s->id != id)
		s = s->hnext;
	return s;
}

static int table_grow(struct an_yamux *y)
{
	size_t old_n = y->nbuckets;
	struct stream **old = y->buckets, **nb = calloc(old_n * 2, sizeof *nb);
	if (!nb)
		return -ENOMEM;
	y->buckets = nb;
	y->nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct stream *s = old[i], *n;
		for (; s; s = n) {
			size_t b = bucket_of(y, s->id);
			n = s->hnext;
			s->hnext = nb[b];
			nb[b] = s;
		}
	}
	free(old);
	return 0;
}

static struct stream *stream_new(struct an_yamux *y, uint32_t id, int inbound)
{
	struct stream *s;
	if (y->count >= y->nbuckets && table_grow(y) < 0)
		return NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->id = id;
	s->inbound = inbound ? 1 : 0;
	s->send_window = AN_YAMUX_INITIAL_WINDOW;
	s->recv_window = y->cfg.initial_window;
	s->recv_credit = y->cfg.initial_window;
	size_t b = bucket_of(y, id);
	s->hnext = y->buckets[b];
	y->buckets[b] = s;
	y->count++;
	if (inbound)
		y->inbound_count++;
	else
		y->outbound_count++;
	return s;
}

static void mark_dirty(struct an_yamux *y, struct stream *s)
{
	if (s->in_dirty)
		return;
	s->in_dirty = 1;
	s->dnext = NULL;
	if (y->dirty_tail)
		y->dirty_tail->dnext = s;
	else
		y->dirty_head = s;
	y->dirty_tail = s;
}

static void push_event(struct an_yamux *y, struct stream *s, uint8_t bit)
{
	s->ev |= bit;
	if (s->in_evq)
		return;
	s->in_evq = 1;
	s->enext = NULL;
	if (y->ev_tail)
		y->ev_tail->enext = s;
	else
		y->ev_head = s;
	y->ev_tail = s;
}

static void drop_rbuf(struct stream *s)
{
	free(s->rbuf);
	s->rbuf = NULL;
	s->rhead = s->rlen = s->ralloc = s->rpeak = 0;
}

/* Free s if nothing refers to it any more and both directions are done. */
static void maybe_release(struct an_yamux *y, struct stream *s)
{
	if (s->in_dirty || s->in_evq || s->ev || s->out_flags)
		return;
	if (!s->reset && !(s->fin_sent && s->fin_recv && s->rlen == 0))
		return;
	struct stream **pp = &y->buckets[bucket_of(y, s->id)];
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	y->count--;
	if (s->inbound)
		y->inbound_count--;
	else
		y->outbound_count--;
	y->budget_used -= s->recv_window - y->cfg.initial_window;
	free(s->rbuf);
	free(s);
}

/* ---- output ---- */

int an_yamux_want_send(const struct an_yamux *y)
{
	if (y->err)
		return !y->goaway_sent;
	return y->ping_ack_count || y->refused_count || y->ping_to_send || y->dirty_head ||
	       y->goaway_to_send;
}

static int send_stream(struct an_buf *out, struct stream *s)
{
	uint16_t flags = s->out_flags;
	uint32_t delta = (flags & AN_YAMUX_FLAG_RST) ? 0 : s->pending_delta;
	int rc;
	if (!flags && !delta)
		return 1;
	rc = emit(out, AN_YAMUX_TYPE_WINDOW_UPDATE, flags, s->id, delta);
	if (rc <= 0)
		return rc;
	if (flags & AN_YAMUX_FLAG_FIN)
		s->fin_sent = 1;
	s->out_flags = 0;
	s->pending_delta = 0;
	return 1;
}

int an_yamux_send(struct an_yamux *y, struct an_buf *out)
{
	int rc;
	if (y->err) {
		if (!y->goaway_sent) {
			uint32_t code = (y->err == AN_EPROTO || y->err == AN_ETOOBIG)
						? AN_YAMUX_GOAWAY_PROTOCOL
						: AN_YAMUX_GOAWAY_INTERNAL;
			rc = emit(out, AN_YAMUX_TYPE_GO_AWAY, 0, 0, code);
			if (rc < 0)
				return rc;
			if (rc > 0)
				y->goaway_sent = 1;
		}
		return y->err;
	}
	while (y->ping_ack_count) {
		rc = emit(out, AN_YAMUX_TYPE_PING, AN_YAMUX_FLAG_ACK, 0, y->ping_acks[y->ping_ack_head]);
		if (rc <= 0)
			return rc;
		y->ping_ack_head = (y->ping_ack_head + 1) % PING_ACK_QUEUE;
		y->ping_ack_count--;
	}
	while (y->refused_count) {
		rc = emit(out, AN_YAMUX_TYPE_WINDOW_UPDATE, AN_YAMUX_FLAG_RST,
			  y->refused[y->refused_head], 0);
		if (rc <= 0)
			return rc;
		y->refused_head = (y->refused_head + 1) % REFUSE_QUEUE;
		y->refused_count--;
	}
	if (y->ping_to_send) {
		rc = emit(out, AN_YAMUX_TYPE_PING, AN_YAMUX_FLAG_SYN, 0, y->ping_opaque);
		if (rc <= 0)
			return rc;
		y->ping_to_send = 0;
	}
	while (y->dirty_head) {
		struct stream *s = y->dirty_head;
		rc = send_stream(out, s);
		if (rc <= 0)
			return rc;
		y->dirty_head = s->dnext;
		if (!y->dirty_head)
			y->dirty_tail = NULL;
		s->in_dirty = 0;
		maybe_release(y, s);
	}
	/* Last, so FINs queued before the shutdown go out first. */
	if (y->goaway_to_send) {
		rc = emit(out, AN_YAMUX_TYPE_GO_AWAY, 0, 0, y->local_goaway_code);
		if (rc <= 0)
			return rc;
		y->goaway_to_send = 0;
		y->goaway_sent = 1;
	}
	return 0;
}

/* ---- input ---- */

/* Returned by handlers when an answer queue is full: retry after send. */
#define STALL 1

static void apply_end_flags(struct an_yamux *y, struct stream *s, uint16_t flags)
{
	if (flags & AN_YAMUX_FLAG_RST) {
		if (!s->reset) {
			s->reset = 1;
			/* Nothing more goes to a stream the peer aborted.  What it
			   sent before the RST stays readable until the RST event is
			   taken (READABLE comes first): a "na" or an error response
			   that travels in the same message as the RST still reaches
			   the application. */
			s->out_flags = 0;
			s->pending_delta = 0;
			s->ev &= s->rlen ? (EV_NEW | EV_READ) : EV_NEW;
			if (!s->rlen)
				drop_rbuf(s);
			push_event(y, s, EV_RST);
		}
	} else if ((flags & AN_YAMUX_FLAG_FIN) && !s->fin_recv && !s->reset) {
		s->fin_recv = 1;
		push_event(y, s, EV_FIN);
	}
	maybe_release(y, s);
}

/* Has the peer never opened id (or have we never allocated it)? */
static int never_opened(const struct an_yamux *y, uint32_t id)
{
	if (is_ours(y, id))
		return id >= y->next_out_id;
	return id > y->last_inbound_id;
}

static int handle_stream_frame(struct an_yamux *y, const struct an_yamux_header *h)
{
	int is_data = h->type == AN_YAMUX_TYPE_DATA;
	uint32_t body = is_data ? h->length : 0;
	uint32_t delta = is_data ? 0 : h->length;
	struct stream *s = lookup(y, h->stream_id);

	/* By default the payload (if any) is read and dropped. */
	y->body_id = 0;
	y->body_left = body;
	y->body_flags = 0;
	if (h->flags & AN_YAMUX_FLAG_SYN) {
		if (is_ours(y, h->stream_id))
			return fail(y, AN_EPROTO, "SYN with our stream id parity (both endpoints clients?)");
		if (s || h->stream_id <= y->last_inbound_id)
			return fail(y, AN_EPROTO, "SYN for a stream id already used");
		if (y->local_goaway || y->inbound_count >= y->cfg.max_inbound_streams) {
			if (y->refused_count == REFUSE_QUEUE) {
				y->body_left = 0;
				return STALL;
			}
			y->refused[(y->refused_head + y->refused_count++) % REFUSE_QUEUE] =
				h->stream_id;
			y->last_inbound_id = h->stream_id;
			return 0;
		}
		s = stream_new(y, h->stream_id, 1);
		if (!s)
			return fail(y, -ENOMEM, "out of memory");
		y->last_inbound_id = h->stream_id;
		/* ACK at once, exactly once (rust's ACK backlog, K14). */
		s->out_flags |= AN_YAMUX_FLAG_ACK;
		s->pending_delta = y->cfg.initial_window - AN_YAMUX_INITIAL_WINDOW;
		mark_dirty(y, s);
		push_event(y, s, EV_NEW);
	} else if (!s) {
		if (never_opened(y, h->stream_id))
			return fail(y, AN_EPROTO, "frame for a stream that was never opened");
		return 0; /* a stream already gone: drop quietly (paritytech/yamux#110) */
	}
	if (s->reset)
		return 0; /* in flight when we reset it */
	/* An ACK only confirms the open; we never waited for it. */
	if (delta) {
		if (delta > UINT32_MAX - s->send_window)
			return fail(y, AN_EPROTO, "window update overflows the send window");
		s->send_window += delta;
		if (s->write_blocked) {
			s->write_blocked = 0;
			push_event(y, s, EV_WRITE);
		}
	}
	if (body) {
		if (s->fin_recv)
			return fail(y, AN_EPROTO, "data after FIN");
		if (body > s->recv_credit)
			return fail(y, AN_EPROTO, "data exceeds the receive window");
		s->recv_credit -= body;
		y->body_id = s->id;
		y->body_flags = h->flags & (AN_YAMUX_FLAG_FIN | AN_YAMUX_FLAG_RST);
		return 0;
	}
	apply_end_flags(y, s, h->flags);
	return 0;
}

static int handle_header(struct an_yamux *y, uint64_t now_ms)
{
	struct an_yamux_header h;
	an_yamux_header_decode(y->hdr, &h);
	if (h.version != AN_YAMUX_VERSION)
		return fail(y, AN_EPROTO, "unsupported yamux version");
	switch (h.type) {
	case AN_YAMUX_TYPE_DATA:
		if (h.length > y->cfg.max_frame_body)
			return fail(y, AN_ETOOBIG, "data frame larger than the frame limit");
		/* fall through */
	case AN_YAMUX_TYPE_WINDOW_UPDATE:
		if (h.stream_id == 0)
			return fail(y, AN_EPROTO, "data or window update on stream 0");
		return handle_stream_frame(y, &h);
	case AN_YAMUX_TYPE_PING:
		if (h.stream_id != 0)
			return fail(y, AN_EPROTO, "ping on a stream other than 0");
		/* js accepts exactly SYN or exactly ACK (ChainSafe/js-libp2p-yamux#48). */
		if (h.flags == AN_YAMUX_FLAG_SYN) {
			if (y->ping_ack_count == PING_ACK_QUEUE)
				return STALL;
			y->ping_acks[(y->ping_ack_head + y->ping_ack_count++) % PING_ACK_QUEUE] =
				h.length;
			return 0;
		}
		if (h.flags == AN_YAMUX_FLAG_ACK) {
			if (!y->ping_outstanding)
				return fail(y, AN_EPROTO, "unsolicited ping ACK");
			if (h.length != y->ping_opaque)
				return fail(y, AN_EPROTO, "ping ACK does not match our ping");
			y->ping_outstanding = 0;
			y->rtt_ms = now_ms >= y->ping_sent_ms ? (int64_t)(now_ms - y->ping_sent_ms) : 0;
			y->ev_rtt = 1;
			y->ev_rtt_value = y->rtt_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)y->rtt_ms;
			return 0;
		}
		return fail(y, AN_EPROTO, "ping with flags other than SYN or ACK");
	case AN_YAMUX_TYPE_GO_AWAY:
		if (h.stream_id != 0)
			return fail(y, AN_EPROTO, "GoAway on a stream other than 0");
		if (y->peer_goaway)
			return 0;
		y->peer_goaway = 1;
		y->peer_goaway_code = h.length;
		y->ev_goaway = 1;
		if (h.length != AN_YAMUX_GOAWAY_NORMAL) {
			y->goaway_sent = 1; /* the peer is gone; no GoAway back */
			return fail(y, AN_ECLOSED,
				    h.length == AN_YAMUX_GOAWAY_PROTOCOL ? "peer GoAway: protocol error"
				    : h.length == AN_YAMUX_GOAWAY_INTERNAL ? "peer GoAway: internal error"
									   : "peer GoAway: unknown error code");
		}
		return 0;
	default:
		return fail(y, AN_EPROTO, "unknown frame type");
	}
}

/* Store n payload bytes for s; the window check already made room. */
static int rbuf_append(struct stream *s, const uint8_t *p, uint32_t n)
{
	uint32_t need = s->rlen + n;
	if (s->rhead + need > s->ralloc && s->rhead) {
		memmove(s->rbuf, s->rbuf + s->rhead, s->rlen);
		s->rhead = 0;
	}
	if (need > s->ralloc) {
		uint32_t a = s->ralloc ? s->ralloc : RBUF_MIN;
		while (a < need)
			a = a > UINT32_MAX / 2 ? need : a * 2;
		if (a > s->recv_window && s->recv_window >= need)
			a = s->recv_window;
		uint8_t *nb = realloc(s->rbuf, a);
		if (!nb)
			return -ENOMEM;
		s->rbuf = nb;
		s->ralloc = a;
	}
	memcpy(s->rbuf + s->rhead + s->rlen, p, n);
	s->rlen += n;
	if (s->rlen > s->rpeak)
		s->rpeak = s->rlen;
	return 0;
}

static int feed_body(struct an_yamux *y, const uint8_t *p, uint32_t n, uint64_t now_ms)
{
	struct stream *s = y->body_id ? lookup(y, y->body_id) : NULL;
	y->body_left -= n;
	if (s && !s->reset && n) {
		if (s->rlen == 0)
			s->fill_since_ms = now_ms;
		if (rbuf_append(s, p, n) < 0)
			return fail(y, -ENOMEM, "out of memory");
		push_event(y, s, EV_READ);
	}
	if (y->body_left == 0) {
		y->body_id = 0;
		if (s)
			apply_end_flags(y, s, y->body_flags);
	}
	return 0;
}

int an_yamux_feed(struct an_yamux *y, const uint8_t *in, size_t len, size_t *consumed,
		  uint64_t now_ms)
{
	size_t pos = 0;
	int rc = 0;
	*consumed = 0;
	if (y->err)
		return y->err;
	for (;;) {
		if (y->hdr_have == AN_YAMUX_HEADER_SIZE) {
			/* A header waiting for queue room, or one just completed. */
			rc = handle_header(y, now_ms);
			if (rc == STALL) {
				rc = 0;
				break;
			}
			y->hdr_have = 0;
			if (rc < 0)
				break;
			continue;
		}
		if (y->body_left) {
			if (pos == len)
				break;
			size_t n = len - pos < y->body_left ? len - pos : y->body_left;
			rc = feed_body(y, in + pos, (uint32_t)n, now_ms);
			pos += n;
			if (rc < 0)
				break;
			continue;
		}
		if (pos == len)
			break;
		size_t n = AN_YAMUX_HEADER_SIZE - y->hdr_have;
		if (n > len - pos)
			n = len - pos;
		memcpy(y->hdr + y->hdr_have, in + pos, n);
		y->hdr_have += n;
		pos += n;
	}
	*consumed = pos;
	return rc < 0 ? rc : 0;
}

/* ---- events ---- */

int an_yamux_next_event(struct an_yamux *y, struct an_yamux_event *ev)
{
	memset(ev, 0, sizeof *ev);
	if (y->ev_error) {
		y->ev_error = 0;
		ev->type = AN_YAMUX_EV_ERROR;
		ev->err = y->err;
		ev->reason = y->reason;
		return 1;
	}
	if (y->err)
		return 0;
	if (y->ev_rtt) {
		y->ev_rtt = 0;
		ev->type = AN_YAMUX_EV_PING_RTT;
		ev->value = y->ev_rtt_value;
		return 1;
	}
	if (y->ev_goaway) {
		y->ev_goaway = 0;
		ev->type = AN_YAMUX_EV_GOAWAY;
		ev->value = y->peer_goaway_code;
		return 1;
	}
	while (y->ev_head) {
		struct stream *s = y->ev_head;
		static const struct {
			uint8_t bit;
			enum an_yamux_event_type type;
		} order[] = { { EV_NEW, AN_YAMUX_EV_STREAM_NEW },
			      { EV_READ, AN_YAMUX_EV_READABLE },
			      { EV_FIN, AN_YAMUX_EV_PEER_FIN },
			      { EV_RST, AN_YAMUX_EV_PEER_RST },
			      { EV_WRITE, AN_YAMUX_EV_WRITABLE } };
		for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
			if (s->ev & order[i].bit) {
				s->ev &= (uint8_t)~order[i].bit;
				ev->type = order[i].type;
				ev->stream_id = s->id;
				if (order[i].bit == EV_RST)
					drop_rbuf(s); /* unread data before the RST goes now */
				break;
			}
		}
		if (!s->ev) {
			y->ev_head = s->enext;
			if (!y->ev_head)
				y->ev_tail = NULL;
			s->in_evq = 0;
			maybe_release(y, s);
		}
		if (ev->type != AN_YAMUX_EV_NONE)
			return 1;
	}
	return 0;
}

/* ---- streams ---- */

int an_yamux_stream_open(struct an_yamux *y, uint32_t *id)
{
	struct stream *s;
	*id = 0;
	if (y->err)
		return y->err;
	if (y->local_goaway || y->peer_goaway)
		return AN_ECLOSED;
	if (y->outbound_count >= y->cfg.max_outbound_streams || y->next_out_id > UINT32_MAX)
		return AN_ELIMIT;
	s = stream_new(y, (uint32_t)y->next_out_id, 0);
	if (!s)
		return -ENOMEM;
	y->next_out_id += 2;
	/* js and rust open with WindowUpdate|SYN; its delta announces any window beyond 256 KiB. */
	s->out_flags = AN_YAMUX_FLAG_SYN;
	s->pending_delta = y->cfg.initial_window - AN_YAMUX_INITIAL_WINDOW;
	mark_dirty(y, s);
	*id = s->id;
	return 0;
}

int an_yamux_stream_write(struct an_yamux *y, uint32_t id, const uint8_t *data, size_t len,
			  struct an_buf *out, size_t *accepted)
{
	struct stream *s = lookup(y, id);
	int rc;
	*accepted = 0;
	if (y->err)
		return y->err;
	if (!s || s->reset || s->fin_queued)
		return AN_ECLOSED;
	rc = an_yamux_send(y, out);
	if (rc < 0)
		return rc;
	if (an_yamux_want_send(y))
		return 0; /* out is full; our SYN may not be out yet */
	while (*accepted < len) {
		size_t room = buf_room(out), n = len - *accepted;
		uint8_t h[AN_YAMUX_HEADER_SIZE];
		if (room <= AN_YAMUX_HEADER_SIZE)
			break;
		if (n > s->send_window)
			n = s->send_window;
		if (n > y->cfg.max_send_frame)
			n = y->cfg.max_send_frame;
		if (n > room - AN_YAMUX_HEADER_SIZE)
			n = room - AN_YAMUX_HEADER_SIZE;
		if (n == 0)
			break;
		an_yamux_header_encode(h, AN_YAMUX_TYPE_DATA, 0, id, (uint32_t)n);
		if ((rc = an_buf_append(out, h, sizeof h)) < 0 ||
		    (rc = an_buf_append(out, data + *accepted, n)) < 0)
			return rc; /* only -ENOMEM: room was checked */
		s->send_window -= (uint32_t)n;
		*accepted += n;
	}
	if (*accepted < len && s->send_window == 0)
		s->write_blocked = 1;
	return 0;
}

uint32_t an_yamux_stream_send_window(const struct an_yamux *y, uint32_t id)
{
	const struct stream *s = lookup(y, id);
	return s && !s->reset ? s->send_window : 0;
}

int an_yamux_stream_peek(const struct an_yamux *y, uint32_t id, const uint8_t **data, size_t *len)
{
	const struct stream *s = lookup(y, id);
	*data = NULL;
	*len = 0;
	if (y->err)
		return y->err;
	if (!s || (s->reset && !s->rlen)) /* data before a peer's RST: readable */
		return AN_ECLOSED;
	if (s->rlen) {
		*data = s->rbuf + s->rhead;
		*len = s->rlen;
	}
	return 0;
}

/*
 * The RTT for auto-tuning, at least 1 ms: the clock counts whole ms, so a
 * sub-ms RTT (loopback, a LAN) reads as 0 and "within 2 RTTs" would be an
 * empty interval - the window would never grow exactly where the link is
 * fastest, and "waited 2 RTTs" would call every reader slow.
 */
static uint64_t rtt_floor(const struct an_yamux *y)
{
	return y->rtt_ms > 0 ? (uint64_t)y->rtt_ms : 1;
}

/* Re-open the window once half of it was used (rust-yamux's threshold). */
static void maybe_window_update(struct an_yamux *y, struct stream *s, uint64_t now_ms)
{
	if (s->fin_recv || s->reset || s->uncredited < s->recv_window / 2)
		return;
	/*
	 * Auto-tuning: a half window consumed within 2 RTTs of the last update
	 * means the window, not the reader, limits throughput: double it.  Unlike
	 * rust we also require that the data did not sit in our buffer for 2 RTTs
	 * (reader_lagged): a slow reader that drains its buffer in one burst
	 * would otherwise look fast and grow the window it cannot use.
	 */
	uint64_t grow = 0;
	if (y->rtt_ms >= 0 && !s->reader_lagged && now_ms >= s->last_update_ms &&
	    now_ms - s->last_update_ms < 2 * rtt_floor(y) &&
	    s->recv_window < y->cfg.max_window) {
		grow = s->recv_window;
		if (grow > y->cfg.max_window - s->recv_window)
			grow = y->cfg.max_window - s->recv_window;
		if (grow > y->cfg.window_budget - y->budget_used)
			grow = y->cfg.window_budget - y->budget_used;
		s->recv_window += (uint32_t)grow;
		y->budget_used += grow;
	}
	/*
	 * Credit back what was consumed plus any growth; not "window - credit -
	 * buffered", since part of a Data frame may still be on its way in.
	 */
	uint32_t delta = s->uncredited + (uint32_t)grow;
	s->recv_credit += delta;
	s->pending_delta += delta;
	s->uncredited = 0;
	s->reader_lagged = 0;
	s->last_update_ms = now_ms;
	mark_dirty(y, s);
}

int an_yamux_stream_consume(struct an_yamux *y, uint32_t id, size_t n, uint64_t now_ms)
{
	struct stream *s = lookup(y, id);
	if (y->err)
		return y->err;
	if (!s || (s->reset && !s->rlen))
		return AN_ECLOSED;
	if (n > s->rlen)
		return -EINVAL;
	if (n && y->rtt_ms >= 0 && now_ms >= s->fill_since_ms &&
	    now_ms - s->fill_since_ms >= 2 * rtt_floor(y))
		s->reader_lagged = 1;
	s->rhead += (uint32_t)n;
	s->rlen -= (uint32_t)n;
	s->uncredited += (uint32_t)n;
	if (s->rlen == 0) {
		bool bulk = s->rpeak >= RBUF_BULK_MIN;
		s->rhead = 0;
		s->rpeak = 0;
		if (s->ralloc > (bulk ? RBUF_BULK_KEEP : RBUF_KEEP))
			drop_rbuf(s);
	}
	maybe_window_update(y, s, now_ms);
	maybe_release(y, s);
	return 0;
}

int an_yamux_stream_read(struct an_yamux *y, uint32_t id, uint8_t *buf, size_t cap, size_t *got,
			 uint64_t now_ms)
{
	const uint8_t *p;
	size_t n;
	int rc = an_yamux_stream_peek(y, id, &p, &n);
	*got = 0;
	if (rc < 0)
		return rc;
	if (n > cap)
		n = cap;
	if (n)
		memcpy(buf, p, n);
	*got = n;
	return an_yamux_stream_consume(y, id, n, now_ms);
}

size_t an_yamux_stream_buffered(const struct an_yamux *y, uint32_t id)
{
	const struct stream *s = lookup(y, id);
	return s ? s->rlen : 0;
}

uint32_t an_yamux_stream_recv_window(const struct an_yamux *y, uint32_t id)
{
	const struct stream *s = lookup(y, id);
	return s ? s->recv_window : 0;
}

int an_yamux_stream_close(struct an_yamux *y, uint32_t id)
{
	struct stream *s = lookup(y, id);
	if (y->err)
		return y->err;
	if (!s || s->reset)
		return AN_ECLOSED;
	if (s->fin_queued)
		return 0;
	s->fin_queued = 1;
	s->out_flags |= AN_YAMUX_FLAG_FIN;
	mark_dirty(y, s);
	return 0;
}

int an_yamux_stream_reset(struct an_yamux *y, uint32_t id)
{
	struct stream *s = lookup(y, id);
	if (y->err)
		return y->err;
	if (!s)
		return AN_ECLOSED;
	if (s->reset)
		return 0;
	s->reset = 1;
	drop_rbuf(s);
	s->ev = 0; /* the application asked for it: no more news of this stream */
	s->pending_delta = 0;
	if (s->out_flags & AN_YAMUX_FLAG_SYN) {
		s->out_flags = 0; /* never announced, and no data went out: forget it */
	} else {
		s->out_flags = AN_YAMUX_FLAG_RST;
		mark_dirty(y, s);
	}
	maybe_release(y, s);
	return 0;
}

size_t an_yamux_stream_count(const struct an_yamux *y)
{
	return y->count;
}

/* ---- session control ---- */

int an_yamux_ping(struct an_yamux *y, uint64_t now_ms)
{
	if (y->err)
		return y->err;
	if (y->ping_outstanding)
		return 0;
	y->ping_opaque++;
	y->ping_sent_ms = now_ms;
	y->ping_outstanding = 1;
	y->ping_to_send = 1;
	return 0;
}

int an_yamux_ping_outstanding(const struct an_yamux *y, uint64_t *sent_ms)
{
	if (!y->ping_outstanding)
		return 0;
	if (sent_ms)
		*sent_ms = y->ping_sent_ms;
	return 1;
}

int64_t an_yamux_rtt(const struct an_yamux *y)
{
	return y->rtt_ms;
}

int an_yamux_goaway(struct an_yamux *y, uint32_t code)
{
	if (y->err)
		return y->err;
	if (y->local_goaway)
		return 0;
	y->local_goaway = 1;
	y->local_goaway_code = code;
	y->goaway_to_send = 1;
	return 0;
}

int an_yamux_peer_goaway(const struct an_yamux *y, uint32_t *code)
{
	if (!y->peer_goaway)
		return 0;
	if (code)
		*code = y->peer_goaway_code;
	return 1;
}

int an_yamux_error(const struct an_yamux *y, const char **reason)
{
	if (reason)
		*reason = y->err ? y->reason : NULL;
	return y->err;
}
