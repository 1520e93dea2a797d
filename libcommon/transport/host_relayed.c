/*
 * host_relayed.c - the host's relayed transport: a connection whose byte
 * stream is a stream of another connection (a Circuit Relay v2 circuit),
 * carrying a whole mss + Noise + yamux session (an_host_conn_over_stream).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/host_priv.h"
#include "util/error.h"

#define CARRIER_IN_MAX (4 * 1024 * 1024) /* held input; the carrier pauses far below */

/* The relayed twin of the socket write below: output into the carrier. */
static void carrier_write(struct an_host_conn *c)
{
	const uint8_t *p;
	size_t len;
	an_conn_output(c->conn, &p, &len);
	while (len > 0 && c->carrier && an_stream_queued(c->carrier) < AN_STREAM_QUEUE_HIGH) {
		if (an_stream_write(c->carrier, p, len) < 0) {
			host_conn_destroy_later(c, AN_ECLOSED, "relayed stream closed");
			return;
		}
		an_conn_output_consume(c->conn, len);
		c->last_activity = ev_now(c->host->loop);
		an_conn_output(c->conn, &p, &len);
	}
	bool blocked = an_conn_output_blocked(c->conn);
	if (host_conn_finish_if_done(c, len, blocked))
		return;
	/* the socket path waits for EV_WRITE here; the carrier's on_writable
	   covers a full queue, a zero timer the output that waited for room */
	if (len == 0 && blocked && !ev_is_active(&c->carrier_kick))
		ev_timer_start(c->host->loop, &c->carrier_kick);
}

/* Feed held carrier input to the conn as far as it takes it. */
static void carrier_drain(struct an_host_conn *c)
{
	if (c->carrier_draining)
		return;
	c->carrier_draining = true;
	c->refs++;
	for (int round = 0; round < 1024 && c->alive && !c->failing && c->carrier_in.len; round++) {
		size_t used = 0;
		an_conn_feed(c->conn, c->carrier_in.data, c->carrier_in.len, &used,
			     an_host_now_ms(c->host));
		an_buf_consume(&c->carrier_in, used);
		if (used)
			c->last_activity = ev_now(c->host->loop);
		host_conn_handle_events(c);
		if (!c->alive)
			break;
		an_conn_flush(c->conn, an_host_now_ms(c->host));
		host_conn_write(c);
		if (used == 0 && an_conn_input_room(c->conn) == 0)
			break; /* the conn is full until its streams are read */
	}
	if (c->alive && c->carrier)
		an_stream_pause(c->carrier, c->carrier_in.len >= AN_STREAM_QUEUE_HIGH);
	c->carrier_draining = false;
	host_conn_unref(c);
}

static void carrier_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier != s || !c->alive || c->failing)
		return;
	if (an_buf_append(&c->carrier_in, p, n) < 0) {
		host_conn_destroy_later(c, AN_ELIMIT, "relayed input over its cap");
		return;
	}
	carrier_drain(c);
}

static void carrier_eof(struct an_stream *s, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier == s && c->alive)
		host_conn_destroy_later(c, AN_ECLOSED, "relayed stream ended");
}

static void carrier_close(struct an_stream *s, int err, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier != s)
		return; /* reset by conn_destroy */
	c->carrier = NULL; /* s is freed when this returns */
	if (c->alive)
		host_conn_destroy_later(c, err ? err : AN_ECLOSED, "relayed stream closed");
}

static void carrier_writable(struct an_stream *s, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier == s && c->alive)
		host_conn_kick(c);
}

static void carrier_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, carrier_kick));
	c->refs++;
	if (c->carrier_in.len)
		carrier_drain(c);
	host_conn_kick(c);
	host_conn_unref(c);
}

static const struct an_stream_handler carrier_handler = {
	.on_data = carrier_data,
	.on_eof = carrier_eof,
	.on_close = carrier_close,
	.on_writable = carrier_writable,
};


int an_host_conn_over_stream(struct an_host *h, struct an_stream *s, bool initiator,
			     const struct an_peerid *expected, const char *remote_text,
			     int timeout_ms, an_host_dial_fn cb, void *arg,
			     const struct an_stream_handler **handler, void **handler_arg)
{
	if (h->shutting_down)
		return AN_ECLOSED;
	if (h->n_conns >= h->lim.max_conns || h->n_pending >= h->lim.max_pending)
		return AN_ELIMIT;
	struct an_host_conn *c = host_conn_new(h, &host_relayed_transport, !initiator, expected);
	if (!c)
		return -ENOMEM;
	ev_timer_init(&c->carrier_kick, carrier_kick_cb, 0, 0);
	an_buf_init(&c->carrier_in, CARRIER_IN_MAX);
	snprintf(c->remote_text, sizeof(c->remote_text), "%s", remote_text ? remote_text : "/p2p-circuit");
	c->relayed = true;
	if (cb && host_waiter_add(h, c, timeout_ms, cb, arg) < 0) {
		host_conn_destroy(c, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	c->carrier = s;
	*handler = &carrier_handler;
	*handler_arg = c;
	if (initiator)
		an_conn_start(c->conn, an_host_now_ms(h));
	host_conn_kick(c);
	return 0;
}


static void relayed_quiet(struct an_host_conn *c)
{
	(void)c; /* carrier_write and carrier_drain stop on c->failing */
}

static void relayed_close(struct an_host_conn *c)
{
	ev_timer_stop(c->host->loop, &c->carrier_kick);
	if (c->carrier) {
		struct an_stream *s = c->carrier;
		c->carrier = NULL; /* so its on_close does not come back here */
		an_stream_reset(s);
	}
}

const struct an_transport host_relayed_transport = {
	.name = "relayed",
	.carried = true,
	.write = carrier_write,
	.quiet = relayed_quiet,
	.close = relayed_close,
	.stream_ready = host_yamux_ready,
	.stream_open = host_yamux_open,
	.stream_write = host_yamux_write,
	.stream_close_write = host_yamux_close_write,
	.stream_reset = host_yamux_reset,
	.stream_peek = host_yamux_peek,
	.stream_consume = host_yamux_consume,
	.ping = host_yamux_ping,
	.goaway = host_yamux_goaway,
};
