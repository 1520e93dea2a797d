/* kad_request.c - outbound kad requests: one stream each, LP-framed, a deadline. */
#include "dht/kad_node_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dht/claim.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "dht/validate.h"
#include "encoding/protobuf.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/file.h"

/* ---------------------------------------------------------------------- */
/* Outbound requests: one stream each, LP-framed, a deadline.              */


static void kreq_maybe_free(struct kreq *r)
{
	struct an_kad_node *n = r->node;
	if (r->dialing || r->s || r->sending)
		return;
	ev_timer_stop(n->loop, &r->timer);
	if (r->prev)
		r->prev->next = r->next;
	else if (n->reqs == r)
		n->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	an_buf_free(&r->out);
	an_buf_free(&r->in);
	if (r->conn)
		an_host_conn_unref(r->conn);
	free(r);
	kad_node_unref(n);
}

static void kreq_finish(struct kreq *r, int err, const struct an_kad_msg *m)
{
	if (r->finished)
		return;
	r->finished = true;
	if (r->cb)
		r->cb(r->arg, r, err, m);
	/* keep the timer as the stream's linger deadline */
	ev_timer_stop(r->node->loop, &r->timer);
	if (r->s) {
		ev_timer_set(&r->timer, LINGER_MS / 1000.0, 0);
		ev_timer_start(r->node->loop, &r->timer);
	}
}

static void kreq_data(struct an_stream *s, const uint8_t *p, size_t len, void *arg)
{
	struct kreq *r = arg;
	const uint8_t *msg;
	size_t msg_len, used;
	struct an_kad_msg m;
	int rc;
	if (r->finished)
		return;
	if (an_buf_append(&r->in, p, len) < 0) {
		kreq_finish(r, AN_ETOOBIG, NULL);
		an_stream_reset(s);
		return;
	}
	rc = an_lp_get(r->in.data, r->in.len, AN_KAD_MSG_MAX_DEFAULT, &msg, &msg_len, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc == 0)
		rc = an_kad_msg_decode(msg, msg_len, AN_KAD_MSG_MAX_DEFAULT, &m);
	if (rc < 0) {
		kreq_finish(r, rc, NULL);
		an_stream_reset(s);
		return;
	}
	kreq_finish(r, 0, &m);
	an_kad_msg_free(&m);
	an_stream_close_write(s);
}

/* Right after the open, not in on_open: the request follows the protocol
   proposal in the same frame (lazy select, transport/host.c). */
static void kreq_send(struct an_stream *s, struct kreq *r)
{
	if (an_stream_write(s, r->out.data, r->out.len) < 0) {
		kreq_finish(r, AN_ECLOSED, NULL);
		an_stream_reset(s);
		return;
	}
	if (!r->want_resp) {
		an_stream_close_write(s);
		kreq_finish(r, 0, NULL);
	}
}

static void kreq_eof(struct an_stream *s, void *arg)
{
	struct kreq *r = arg;
	if (!r->finished)
		kreq_finish(r, AN_ECLOSED, NULL);
	an_stream_close_write(s);
}

static void kreq_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct kreq *r = arg;
	r->s = NULL;
	if (!r->finished)
		kreq_finish(r, err ? err : AN_ECLOSED, NULL);
	kreq_maybe_free(r);
}

static const struct an_stream_handler kreq_handler = {
	.on_data = kreq_data,
	.on_eof = kreq_eof,
	.on_close = kreq_close,
};

static void kreq_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct kreq *r = w->data;
	if (!r->finished)
		kreq_finish(r, -ETIMEDOUT, NULL);
	ev_timer_stop(loop, &r->timer);
	if (r->s) {
		an_stream_reset(r->s); /* on_close frees r */
		return;
	}
	kreq_maybe_free(r);
}

static void kreq_on_conn(struct kreq *r, struct an_host_conn *c)
{
	int rc;
	an_host_conn_ref(c);
	r->conn = c;
	rc = an_host_stream_open(c, r->node->protocol, &kreq_handler, r, &r->s);
	if (rc < 0) {
		r->s = NULL;
		kreq_finish(r, rc, NULL);
		return;
	}
	/* a failed send resets the stream, whose on_close must not free r
	   under our callers (they call kreq_maybe_free) */
	r->sending = true;
	kreq_send(r->s, r);
	r->sending = false;
}

static void kreq_dial_next(struct kreq *r);

static void kreq_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct kreq *r = arg;
	struct an_kad_node *n = r->node;
	r->dialing = false;
	if (r->finished || n->closed) {
		kreq_maybe_free(r);
		return;
	}
	if (err < 0) {
		if (r->ai < r->naddrs) {
			kreq_dial_next(r);
		} else {
			/* A refused dial: the peer is gone, take it out of the table. */
			if (err == -ECONNREFUSED)
				an_rt_remove(&n->rt, &r->peer);
			kreq_finish(r, err, NULL);
		}
		kreq_maybe_free(r);
		return;
	}
	if (an_host_conn_relayed(c)) {
		/* the host reused a relayed connection: no kad over it (see inbound_open) */
		kreq_finish(r, AN_ELIMIT, NULL);
		kreq_maybe_free(r);
		return;
	}
	kreq_on_conn(r, c);
	kreq_maybe_free(r);
}

static void kreq_dial_next(struct kreq *r)
{
	struct an_kad_node *n = r->node;
	char text[AN_MULTIADDR_TEXT_MAX];
	int err = AN_ENOTFOUND;
	while (r->ai < r->naddrs) {
		const struct an_multiaddr *a = &r->addrs[r->ai++];
		if (kad_dial_text(a, &r->peer, text, sizeof(text)) < 0)
			continue;
		err = an_host_dial(n->host, text, (int)n->cfg.request_timeout_ms, kreq_dial_cb, r);
		if (err == 0) {
			r->dialing = true;
			return;
		}
	}
	kreq_finish(r, err, NULL);
}

/* A live connection to peer, if any (borrowed). */
static struct an_host_conn *find_conn(struct an_kad_node *n, const struct an_peerid *peer)
{
	struct an_host_conn *conns[AN_HOST_DEFAULT_MAX_CONNS];
	size_t c = an_host_conns(n->host, conns, AN_HOST_DEFAULT_MAX_CONNS);
	for (size_t i = 0; i < c; i++) {
		const struct an_peerid *id = an_host_conn_peer(conns[i]);
		if (id && an_peerid_equal(id, peer) && an_host_conn_alive(conns[i]))
			return conns[i];
	}
	return NULL;
}

static void kreq_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct kreq *r = w->data;
	struct an_host_conn *c;
	ev_timer_stop(loop, w);
	ev_timer_init(&r->timer, kreq_timer, r->node->cfg.request_timeout_ms / 1000.0, 0);
	r->timer.data = r;
	ev_timer_start(loop, &r->timer);
	if (r->node->closed) {
		kreq_finish(r, AN_ECLOSED, NULL);
	} else if ((c = find_conn(r->node, &r->peer))) {
		kreq_on_conn(r, c);
	} else {
		kreq_dial_next(r);
	}
	kreq_maybe_free(r);
}

/*
 * Send body (protobuf, copied) to peer: cb later, exactly once (unless
 * detached by clearing r->cb).  The start itself is deferred to the loop so
 * no callback ever runs inside the caller.  NULL on allocation failure.
 */
struct kreq *kad_kreq_start(struct an_kad_node *n, const struct an_peerid *peer,
			       const struct an_multiaddr *addrs, size_t naddrs, const uint8_t *body,
			       size_t len, bool want_resp, kreq_fn cb, void *arg, size_t tag)
{
	struct kreq *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	an_buf_init(&r->out, AN_KAD_MSG_SEND_MAX + 16);
	an_buf_init(&r->in, AN_KAD_MSG_MAX_DEFAULT + 16);
	if (an_lp_put(&r->out, body, len) < 0) {
		an_buf_free(&r->out);
		free(r);
		return NULL;
	}
	r->node = n;
	r->peer = *peer;
	for (size_t i = 0; i < naddrs && r->naddrs < AN_RT_ADDRS_MAX; i++)
		r->addrs[r->naddrs++] = addrs[i];
	r->want_resp = want_resp;
	r->cb = cb;
	r->arg = arg;
	r->tag = tag;
	r->next = n->reqs;
	if (n->reqs)
		n->reqs->prev = r;
	n->reqs = r;
	n->refs++;
	ev_timer_init(&r->timer, kreq_start_cb, 0, 0);
	r->timer.data = r;
	ev_timer_start(n->loop, &r->timer);
	return r;
}

/* Detach every request made for arg: their answers are dropped. */
void kad_kreq_detach(struct an_kad_node *n, void *arg)
{
	for (struct kreq *r = n->reqs; r; r = r->next)
		if (r->arg == arg) {
			r->cb = NULL;
			r->arg = NULL;
		}
}
