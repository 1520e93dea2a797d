/*
 * host_stream.c - the host's streams: each one's multistream-select, reads
 * in place, queued writes and backpressure, half-close and reset, and the
 * early-streams rule; plus the yamux stream ops that TCP and relayed
 * connections (an an_conn inside) put in their struct an_transport.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/host_priv.h"
#include "util/error.h"

static bool registry_supported(void *ctx, const char *proto)
{
	return host_find_handler(ctx, proto) != NULL;
}

struct an_stream *host_find_stream(const struct an_host_conn *c, uint32_t id)
{
	for (struct an_stream *s = c->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void stream_unlink(struct an_stream *s)
{
	s->c->n_streams_total--;
	if (s->inbound)
		s->c->n_streams_in--;
	for (struct an_stream **pp = &s->c->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			return;
		}
	}
}

/* Remove s and tell its handler; s is freed. */
void host_stream_finish(struct an_stream *s, int err)
{
	ev_timer_stop(s->c->host->loop, &s->neg_timer);
	stream_unlink(s);
	if (s->h && s->h->on_close)
		s->h->on_close(s, err, s->arg);
	an_buf_free(&s->out);
	an_buf_free(&s->pending);
	free(s);
}


/* A stream still negotiating its protocol when the deadline passes is reset. */
static void negotiate_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_stream *s = (struct an_stream *)w;
	struct an_host_conn *c = s->c;
	host_log(c->host, "%s: stream %u: protocol negotiation timed out", c->remote_text, s->id);
	if (c->tp->stream_ready(c) && !s->deferred)
		c->tp->stream_reset(c, s->id);
	c->refs++;
	host_stream_finish(s, -ETIMEDOUT);
	host_conn_kick(c);
	host_conn_unref(c);
}

static struct an_stream *stream_new(struct an_host_conn *c, uint32_t id, bool inbound)
{
	struct an_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->c = c;
	s->id = id;
	s->inbound = inbound;
	s->negotiating = true;
	an_buf_init(&s->out, STREAM_OUT_MAX);
	an_buf_init(&s->pending, STREAM_OUT_MAX);
	ev_timer_init(&s->neg_timer, negotiate_timeout_cb, c->host->lim.negotiate_timeout_ms / 1000.0, 0);
	ev_timer_start(c->host->loop, &s->neg_timer);
	s->next = c->streams;
	c->streams = s;
	c->n_streams_total++;
	if (inbound)
		c->n_streams_in++;
	return s;
}


/*
 * s->out is taken from an offset (out_off) so that yamux taking part of it
 * moves nothing; the unsent rest moves to the front only when an append
 * finds no room at the end.
 */
static size_t out_len(const struct an_stream *s)
{
	return s->out.len - s->out_off;
}

static void out_consume(struct an_stream *s, size_t n)
{
	s->out_off += n;
	if (s->out_off >= s->out.len) {
		an_buf_reset(&s->out);
		s->out_off = 0;
	}
}

static int out_append(struct an_stream *s, const uint8_t *p, size_t n)
{
	if (s->out_off && s->out.max - s->out.len < n) {
		memmove(s->out.data, s->out.data + s->out_off, out_len(s));
		s->out.len -= s->out_off;
		s->out_off = 0;
	}
	return an_buf_append(&s->out, p, n);
}

/*
 * Push s->out into yamux; then a FIN if one is wanted and all is out.  The
 * FIN not while negotiating: a deferred stream's early bytes wait in
 * s->pending, and a listener that has not yet agreed reads a half-closed
 * stream as a failed negotiation (js does); it goes once the protocol is
 * agreed.
 */
int host_stream_flush(struct an_stream *s)
{
	struct an_host_conn *c = s->c;
	while (out_len(s) > 0) {
		size_t acc = 0;
		int rc = c->tp->stream_write(c, s->id, s->out.data + s->out_off, out_len(s), &acc);
		if (rc < 0)
			return rc;
		if (acc == 0)
			break;
		out_consume(s, acc);
	}
	if (s->fin_wanted && !s->fin_sent && !s->negotiating && out_len(s) == 0) {
		if (c->tp->stream_ready(c) && c->tp->stream_close_write(c, s->id) == 0)
			s->fin_sent = true;
	}
	return 0;
}

/* Both directions done: the stream ends cleanly. */
void host_stream_maybe_done(struct an_host_conn *c, uint32_t id)
{
	struct an_stream *s = host_find_stream(c, id);
	if (s && s->fin_sent && s->remote_fin)
		host_stream_finish(s, 0);
}

int an_stream_write(struct an_stream *s, const uint8_t *p, size_t n)
{
	if (s->fin_wanted || !s->c->alive)
		return AN_ECLOSED;
	/* An outbound stream proposes one protocol, so its bytes follow the
	   proposal at once (stream_start_outbound); a deferred one's wait. */
	if (s->negotiating && (s->inbound || s->deferred))
		return an_buf_append(&s->pending, p, n);
	size_t acc = 0;
	int rc = 0;
	/* Nothing queued: straight into the connection, queue only the rest
	   (one copy fewer for a writer the window and output keep up with). */
	if (out_len(s) == 0) {
		rc = s->c->tp->stream_write(s->c, s->id, p, n, &acc);
		if (rc < 0)
			acc = 0;
	}
	if (rc == 0 && acc < n) {
		rc = out_append(s, p + acc, n - acc);
		if (rc < 0)
			return rc;
		rc = host_stream_flush(s);
	}
	if (out_len(s) >= AN_STREAM_QUEUE_HIGH)
		s->want_writable = true;
	host_conn_kick(s->c);
	return rc;
}

size_t an_stream_queued(const struct an_stream *s)
{
	return out_len(s) + s->pending.len;
}

int an_stream_close_write(struct an_stream *s)
{
	if (!s->c->alive)
		return AN_ECLOSED;
	s->fin_wanted = true;
	if (s->negotiating)
		return 0; /* sent once the protocol is agreed */
	struct an_host_conn *c = s->c;
	uint32_t id = s->id;
	int rc = host_stream_flush(s);
	c->refs++;
	host_conn_kick(c);
	if (c->alive)
		host_stream_maybe_done(c, id);
	host_conn_unref(c);
	return rc;
}

void an_stream_reset(struct an_stream *s)
{
	struct an_host_conn *c = s->c;
	bool y = c->alive && c->tp->stream_ready(c);
	if (y && !s->deferred && c->delivering == s->id)
		c->reset_delivered = true; /* its on_data still reads the transport's bytes */
	else if (y && !s->deferred)
		c->tp->stream_reset(c, s->id);
	host_stream_finish(s, AN_ERESET);
	if (c->alive)
		host_conn_kick(c);
}

void an_stream_pause(struct an_stream *s, bool paused)
{
	struct an_host_conn *c = s->c;
	s->paused = paused;
	if (paused || !s->read_blocked || !c->alive)
		return;
	host_conn_kick(c); /* its conn_handle_events resumes the reading */
}

const char *an_stream_protocol(const struct an_stream *s)
{
	return s->proto;
}

struct an_host_conn *an_stream_conn(const struct an_stream *s)
{
	return s->c;
}

bool an_stream_inbound(const struct an_stream *s)
{
	return s->inbound;
}

void an_stream_set_user(struct an_stream *s, void *user)
{
	s->user = user;
}

void *an_stream_user(const struct an_stream *s)
{
	return s->user;
}

/*
 * Early streams: js-libp2p aborts the whole connection when more than 10
 * streams arrive before its upgrader has attached its stream listener
 * (MaxEarlyStreamsError in @libp2p/utils abstract-stream-muxer), which can
 * be well after its yamux is running.  So until the peer has shown that it
 * serves streams (it answered one of ours or opened one), at most
 * EARLY_STREAMS_MAX of ours negotiate at once; later opens wait, deferred.
 */
#define EARLY_STREAMS_MAX 8

/* Give s a yamux id and propose its protocol.  0 or an error (s untouched by then). */
static int stream_start_outbound(struct an_host_conn *c, struct an_stream *s)
{
	uint32_t id;
	if (!c->tp->stream_ready(c))
		return AN_ECLOSED;
	int rc = c->tp->stream_open(c, &id);
	if (rc < 0)
		return rc;
	s->id = id;
	s->deferred = false;
	/*
	 * One proposal, and the application's first bytes right behind it in
	 * the same frame (multistream "lazy" select, as rust-libp2p's V1Lazy
	 * and js's single-protocol select do): a ping, a kad request or an
	 * HTTP head costs one round trip, not two.  Sound with one proposal:
	 * on "na" the stream fails either way, and the listener, reading our
	 * bytes as a multistream line, fails it too.  A FIN still waits for
	 * the agreement (stream_flush).
	 */
	rc = an_mss_dialer_init(&s->mss, s->proposal, 1);
	if (rc == 0)
		rc = an_mss_start(&s->mss, &s->out);
	if (rc == 0 && s->pending.len) {
		rc = out_append(s, s->pending.data, s->pending.len);
		an_buf_reset(&s->pending);
	}
	if (rc == 0)
		rc = host_stream_flush(s);
	if (rc < 0)
		c->tp->stream_reset(c, id);
	return rc;
}

static size_t outbound_negotiating(const struct an_host_conn *c)
{
	size_t n = 0;
	for (const struct an_stream *s = c->streams; s; s = s->next)
		if (!s->inbound && s->negotiating)
			n++;
	return n;
}

/* The peer serves streams: start the ones that waited. */
static void peer_is_ready(struct an_host_conn *c)
{
	if (c->peer_ready)
		return;
	c->peer_ready = true;
	for (;;) {
		struct an_stream *s;
		for (s = c->streams; s && !s->deferred; s = s->next)
			;
		if (!s || !c->alive)
			return;
		int rc = stream_start_outbound(c, s);
		if (rc < 0)
			host_stream_finish(s, rc);
	}
}

int an_host_stream_open(struct an_host_conn *c, const char *proto,
			const struct an_stream_handler *handler, void *arg, struct an_stream **out)
{
	if (out)
		*out = NULL;
	if (!c->alive || !c->established || c->closing || c->failing)
		return AN_ECLOSED;
	if (strlen(proto) > AN_MSS_PROTO_MAX)
		return -EINVAL;
	if (!c->tp->stream_ready(c))
		return AN_ECLOSED;
	if (c->n_streams_total >= c->host->lim.max_streams_per_conn)
		return AN_ELIMIT;
	struct an_stream *s = stream_new(c, 0, false);
	if (!s)
		return -ENOMEM;
	strcpy(s->proto, proto);
	s->proposal[0] = s->proto;
	s->h = handler;
	s->arg = arg;
	if (!c->peer_ready && outbound_negotiating(c) > EARLY_STREAMS_MAX) {
		s->deferred = true; /* id 0 until peer_is_ready() */
		if (out)
			*out = s;
		return 0;
	}
	int rc = stream_start_outbound(c, s);
	if (rc < 0) {
		s->h = NULL; /* the caller learns from rc, not from on_close */
		host_stream_finish(s, rc);
		return rc;
	}
	/* before the kick: should it end s, on_close sees the caller's pointer set */
	if (out)
		*out = s;
	host_conn_kick(c);
	return 0;
}

/* The protocol is agreed: tell the handler, release early writes. */
static void stream_opened(struct an_host_conn *c, struct an_stream *s)
{
	uint32_t id = s->id;
	ev_timer_stop(c->host->loop, &s->neg_timer);
	s->negotiating = false;
	s->opened = true;
	peer_is_ready(c);
	if (!c->alive || !(s = host_find_stream(c, id)))
		return;
	if (s->inbound) {
		snprintf(s->proto, sizeof(s->proto), "%s", an_mss_selected(&s->mss));
		struct handler_entry *e = host_find_handler(c->host, s->proto);
		if (!e) { /* unregistered meanwhile */
			an_stream_reset(s);
			return;
		}
		s->h_copy = e->h;
		s->h = &s->h_copy;
		s->arg = e->arg;
	}
	if (s->pending.len) {
		out_append(s, s->pending.data, s->pending.len);
		an_buf_reset(&s->pending);
	}
	host_stream_flush(s);
	if (s->h->on_open)
		s->h->on_open(s, s->arg);
	if (!c->alive || !(s = host_find_stream(c, id)))
		return;
	if (s->fin_wanted)
		host_stream_flush(s);
}

/* Read everything buffered on id and hand it up. */
void host_stream_readable(struct an_host_conn *c, uint32_t id)
{
	struct an_host *h = c->host;
	for (;;) {
		struct an_stream *s = host_find_stream(c, id);
		if (!s || !c->alive || !c->tp->stream_ready(c))
			return;
		if (s->negotiating) {
			const uint8_t *p;
			size_t len, used = 0;
			if (c->tp->stream_peek(c, id, &p, &len) < 0 || len == 0)
				return;
			int rc = an_mss_recv(&s->mss, p, len, &used, &s->out);
			c->tp->stream_consume(c, id, used);
			host_stream_flush(s);
			if (rc == 0)
				return;
			if (rc < 0) {
				host_log(h, "%s: stream %u: negotiation failed: %s", c->remote_text, id,
				     an_mss_reason(&s->mss)[0] ? an_mss_reason(&s->mss) : an_strerror(rc));
				c->tp->stream_reset(c, id);
				host_stream_finish(s, rc);
				return;
			}
			stream_opened(c, s);
			continue;
		}
		if (s->paused) {
			s->read_blocked = true; /* until an_stream_pause(s, false) */
			return;
		}
		if (out_len(s) >= READ_BLOCK_MARK) {
			s->read_blocked = true; /* resumed from conn_handle_events */
			return;
		}
		/*
		 * The handler reads the bytes where yamux holds them (no copy),
		 * and they are consumed when it returns.  So that they stay put
		 * meanwhile, c->delivering holds back what could move them: a
		 * reset of this stream (an_stream_reset), and an immediate kick,
		 * whose flush could feed more input to yamux (conn_kick).
		 */
		const uint8_t *p;
		size_t got = 0;
		if (c->tp->stream_peek(c, id, &p, &got) < 0 || got == 0)
			return;
		if (got > READ_CHUNK)
			got = READ_CHUNK;
		if (s->h->on_data) {
			c->delivering = id;
			s->h->on_data(s, p, got, s->arg);
			c->delivering = 0;
		}
		if (!c->tp->stream_ready(c))
			return; /* the connection failed meanwhile */
		if (c->reset_delivered) {
			c->reset_delivered = false;
			c->tp->stream_reset(c, id); /* the handler reset the stream */
			return;
		}
		if (c->tp->stream_consume(c, id, got) < 0)
			return;
	}
}

void host_stream_peer_fin(struct an_host_conn *c, uint32_t id)
{
	host_stream_readable(c, id);
	struct an_stream *s = host_find_stream(c, id);
	if (!s || !c->alive)
		return;
	if (s->read_blocked) {
		s->fin_deferred = true; /* after the data still buffered */
		return;
	}
	s->fin_deferred = false;
	s->remote_fin = true;
	if (s->negotiating) {
		if (c->tp->stream_ready(c))
			c->tp->stream_reset(c, id);
		host_stream_finish(s, AN_ECLOSED);
		return;
	}
	if (s->h->on_eof)
		s->h->on_eof(s, s->arg);
	if (c->alive)
		host_stream_maybe_done(c, id);
}


void host_inbound_stream(struct an_host_conn *c, uint32_t id)
{
	peer_is_ready(c);
	if (!host_addr_stream_allowed(c)) {
		c->tp->stream_reset(c, id);
		return;
	}
	struct an_stream *s = stream_new(c, id, true);
	if (!s) {
		c->tp->stream_reset(c, id);
		return;
	}
	if (an_mss_listener_init(&s->mss, NULL, 0, registry_supported, c->host) < 0) {
		c->tp->stream_reset(c, id);
		host_stream_finish(s, AN_EPROTO);
	}
}


/* Streams that were waiting for room in the output: flush them, resume
 * reading where the queue drained, tell writers they may go on.  Any
 * callback may change the list, so restart after each one (bounded). */
void host_streams_service(struct an_host_conn *c)
{
	for (int round = 0; c->alive && round < 4096; round++) {
		struct an_stream *s;
		bool again = false;
		for (s = c->streams; s; s = s->next) {
			if (out_len(s) || (s->fin_wanted && !s->fin_sent && !s->negotiating))
				host_stream_flush(s);
			if (!s->paused && (s->read_blocked || s->fin_deferred) && out_len(s) < READ_BLOCK_MARK) {
				uint32_t id = s->id;
				bool fin = s->fin_deferred;
				s->read_blocked = false;
				host_stream_readable(c, id);
				s = host_find_stream(c, id);
				if (fin && s && !s->read_blocked)
					host_stream_peer_fin(c, id);
				again = true;
				break;
			}
			if (s->want_writable && out_len(s) < AN_STREAM_QUEUE_HIGH) {
				s->want_writable = false;
				if (s->h && s->h->on_writable) {
					s->h->on_writable(s, s->arg);
					again = true;
					break;
				}
			}
		}
		if (!again)
			break;
	}
}

/* ---- the yamux stream ops (transports that carry an an_conn) ---- */

bool host_yamux_ready(struct an_host_conn *c)
{
	return an_conn_yamux(c->conn) != NULL;
}

int host_yamux_open(struct an_host_conn *c, uint32_t *id)
{
	return an_yamux_stream_open(an_conn_yamux(c->conn), id);
}

int host_yamux_write(struct an_host_conn *c, uint32_t id, const uint8_t *p, size_t n,
		     size_t *accepted)
{
	return an_conn_stream_write(c->conn, id, p, n, accepted);
}

int host_yamux_close_write(struct an_host_conn *c, uint32_t id)
{
	return an_yamux_stream_close(an_conn_yamux(c->conn), id);
}

void host_yamux_reset(struct an_host_conn *c, uint32_t id)
{
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (y)
		an_yamux_stream_reset(y, id);
}

int host_yamux_peek(struct an_host_conn *c, uint32_t id, const uint8_t **p, size_t *len)
{
	return an_yamux_stream_peek(an_conn_yamux(c->conn), id, p, len);
}

int host_yamux_consume(struct an_host_conn *c, uint32_t id, size_t n)
{
	return an_yamux_stream_consume(an_conn_yamux(c->conn), id, n, an_host_now_ms(c->host));
}

void host_yamux_ping(struct an_host_conn *c)
{
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (y)
		an_yamux_ping(y, an_host_now_ms(c->host));
}

void host_yamux_goaway(struct an_host_conn *c)
{
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (y)
		an_yamux_goaway(y, AN_YAMUX_GOAWAY_NORMAL);
}
