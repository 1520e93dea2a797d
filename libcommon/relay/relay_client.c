/*
 * relay_client.c - Circuit Relay v2 client: RESERVE, CONNECT and the stop
 * protocol, at the stream level.
 *
 * One struct an_relay_pipe per stream.  Until the exchange is over it reads relay
 * messages; after a successful CONNECT (or an accepted stop CONNECT) it
 * only forwards the stream's events to the caller's handler ("handed").
 */
#include "relay/relay_client.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay/envelope.h"
#include "relay/relay_stream.h"
#include "util/buf.h"
#include "util/error.h"

enum mode { M_RESERVE, M_CONNECT, M_STOP };

struct an_relay_pipe {
	enum mode mode;
	struct an_host *h;
	struct an_stream *s;
	struct an_buf in;
	ev_timer timer;
	bool reported, handed;
	bool refused;       /* stop: answered with a refusal */
	bool busy, dead;    /* inside a caller's callback; the stream ended meanwhile */
	an_relay_reserve_fn reserve_cb;
	an_relay_connect_fn connect_cb;
	void *arg;
	struct an_peerid target;
	struct an_relay_stop_service *svc; /* stop: NULL once unserved */
	struct an_relay_pipe *svc_prev, *svc_next;  /* stop: in svc's list while svc is set */
	const struct an_stream_handler *uh; /* the caller's handler once handed */
	void *uh_arg;
};

/* Take a stop pipe out of its service's list. */
static void svc_unlink(struct an_relay_pipe *p)
{
	if (!p->svc)
		return;
	if (p->svc_prev)
		p->svc_prev->svc_next = p->svc_next;
	else
		p->svc->pipes_ = p->svc_next;
	if (p->svc_next)
		p->svc_next->svc_prev = p->svc_prev;
	p->svc = NULL;
	p->svc_prev = p->svc_next = NULL;
}

static void pipe_free(struct an_relay_pipe *p)
{
	svc_unlink(p);
	ev_timer_stop(an_host_loop(p->h), &p->timer);
	an_buf_free(&p->in);
	free(p);
}

/* Report a failure once (before any answer). */
static void report_err(struct an_relay_pipe *p, int err)
{
	if (p->reported)
		return;
	p->reported = true;
	if (p->mode == M_RESERVE && p->reserve_cb)
		p->reserve_cb(p->arg, err, NULL);
	else if (p->mode == M_CONNECT && p->connect_cb)
		p->connect_cb(p->arg, err, 0, NULL, NULL);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct an_relay_pipe *p = (struct an_relay_pipe *)((char *)w - offsetof(struct an_relay_pipe, timer));
	struct an_stream *s = p->s;
	report_err(p, -ETIMEDOUT);
	if (s)
		an_stream_reset(s); /* on_close frees p */
}

static struct an_relay_pipe *pipe_new(struct an_host *h, enum mode mode, int timeout_ms)
{
	struct an_relay_pipe *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->mode = mode;
	p->h = h;
	an_buf_init(&p->in, AN_RELAY_MSG_MAX + 16);
	ev_timer_init(&p->timer, timer_cb, (timeout_ms > 0 ? timeout_ms : 10000) / 1000.0, 0);
	ev_timer_start(an_host_loop(h), &p->timer);
	return p;
}

/* Hand the stream over: later events go to the caller; leftover input first. */
static void hand_over(struct an_relay_pipe *p, size_t used)
{
	struct an_buf rest = p->in;
	p->handed = true;
	ev_timer_stop(an_host_loop(p->h), &p->timer);
	an_buf_init(&p->in, 0);
	if (rest.len > used && p->uh && p->uh->on_data)
		p->uh->on_data(p->s, rest.data + used, rest.len - used, p->uh_arg);
	an_buf_free(&rest);
}

/* ---- RESERVE ---- */

/*
 * One reservation address as text ending in /p2p/<relay>: circuit
 * addresses and other peers' addresses are skipped (0 = skip), a doubled
 * /p2p/<relay>/p2p/<relay> collapses (go-libp2p#3003).
 */
static int rsv_addr(const struct an_relay_bytes *b, const struct an_peerid *relay, char *out,
		    size_t cap)
{
	struct an_multiaddr ma, rest;
	struct an_peerid id;
	if (an_multiaddr_from_bytes(b->p, b->len, &ma) < 0 || an_multiaddr_is_circuit(&ma))
		return 0;
	while (an_multiaddr_split_p2p(&ma, &rest, &id) == 0) {
		if (!an_peerid_equal(&id, relay))
			return 0;
		ma = rest;
	}
	if (an_multiaddr_append_p2p(&ma, relay) < 0 || an_multiaddr_format(&ma, out, cap) < 0)
		return 0;
	return 1;
}

static int reserve_answer(struct an_relay_pipe *p, const struct an_relay_msg *m,
			  struct an_relay_reservation_info *info)
{
	struct an_host_conn *c = an_stream_conn(p->s);
	const struct an_peerid *relay = an_host_conn_peer(c);
	memset(info, 0, sizeof(*info));
	if (m->type != AN_HOP_STATUS || !m->has_status)
		return AN_EPROTO;
	info->status = m->status;
	if (m->status != AN_RELAY_OK)
		return 0;
	if (!m->rsv.present || !m->rsv.has_expire || m->rsv.expire <= (uint64_t)time(NULL))
		return AN_EPROTO;
	info->expire = m->rsv.expire;
	info->limit = m->limit;
	for (size_t i = 0; i < m->rsv.naddrs && info->naddrs < AN_RELAY_MAX_ADDRS; i++)
		info->naddrs += (size_t)rsv_addr(&m->rsv.addrs[i], relay, info->addrs[info->naddrs],
						 sizeof(info->addrs[0]));
	if (info->naddrs == 0) { /* as js: the address we reached the relay at */
		char id[AN_PEERID_TEXT_MAX];
		an_peerid_format(relay, id, sizeof(id));
		snprintf(info->addrs[0], sizeof(info->addrs[0]), "%s/p2p/%s",
			 an_host_conn_remote_addr(c), id);
		info->naddrs = 1;
	}
	if (m->rsv.voucher.len) {
		struct an_voucher v;
		info->has_voucher = true;
		info->voucher_ok = an_voucher_open(m->rsv.voucher.p, m->rsv.voucher.len, &v) == 0 &&
				   an_peerid_equal(&v.relay, relay) &&
				   an_peerid_equal(&v.peer, an_host_peer_id(p->h));
	}
	return 0;
}

/* ---- outbound hop streams (RESERVE, CONNECT) ---- */

static void client_data(struct an_stream *s, const uint8_t *d, size_t n, void *arg)
{
	struct an_relay_pipe *p = arg;
	struct an_relay_msg m;
	size_t used = 0;
	int rc;

	if (p->handed) {
		if (p->uh && p->uh->on_data)
			p->uh->on_data(s, d, n, p->uh_arg);
		return;
	}
	if (p->reported)
		return;
	if (an_buf_append(&p->in, d, n) < 0) {
		report_err(p, AN_EPROTO);
		an_stream_reset(s);
		return;
	}
	rc = an_relay_msg_read(AN_RELAY_HOP, p->in.data, p->in.len, &m, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc < 0) {
		report_err(p, AN_EPROTO);
		an_stream_reset(s);
		return;
	}
	if (p->mode == M_RESERVE) {
		struct an_relay_reservation_info info;
		rc = reserve_answer(p, &m, &info);
		p->reported = true;
		ev_timer_stop(an_host_loop(p->h), &p->timer);
		p->busy = true;
		p->reserve_cb(p->arg, rc, rc == 0 ? &info : NULL);
		p->busy = false;
		if (p->dead)
			pipe_free(p);
		else
			an_stream_close_write(s); /* s lives until the relay closes too */
		return;
	}
	p->reported = true;
	if (m.type != AN_HOP_STATUS || !m.has_status) {
		p->connect_cb(p->arg, AN_EPROTO, 0, NULL, NULL);
		an_stream_reset(s);
		return;
	}
	if (m.status != AN_RELAY_OK) {
		ev_timer_stop(an_host_loop(p->h), &p->timer);
		p->connect_cb(p->arg, 0, m.status, NULL, NULL);
		an_stream_close_write(s);
		return;
	}
	struct an_relay_limit limit = m.limit;
	p->handed = true; /* events during the callback go to the caller */
	ev_timer_stop(an_host_loop(p->h), &p->timer);
	p->busy = true;
	p->connect_cb(p->arg, 0, AN_RELAY_OK, s, &limit);
	p->busy = false;
	if (p->dead) {
		pipe_free(p);
		return;
	}
	hand_over(p, used);
}

static void client_eof(struct an_stream *s, void *arg)
{
	struct an_relay_pipe *p = arg;
	if (p->handed) {
		if (p->uh && p->uh->on_eof)
			p->uh->on_eof(s, p->uh_arg);
		return;
	}
	if (!p->reported) {
		report_err(p, AN_ECLOSED);
		an_stream_reset(s);
	}
}

static void client_close(struct an_stream *s, int err, void *arg)
{
	struct an_relay_pipe *p = arg;
	if (p->handed) {
		if (p->uh && p->uh->on_close)
			p->uh->on_close(s, err, p->uh_arg);
	} else {
		report_err(p, err ? err : AN_ECLOSED);
	}
	if (p->busy)
		p->dead = true; /* freed when the callback returns */
	else
		pipe_free(p);
}

static void client_writable(struct an_stream *s, void *arg)
{
	struct an_relay_pipe *p = arg;
	if (p->handed && p->uh && p->uh->on_writable)
		p->uh->on_writable(s, p->uh_arg);
}

static const struct an_stream_handler client_handler = {
	.on_data = client_data,
	.on_eof = client_eof,
	.on_close = client_close,
	.on_writable = client_writable,
};

static int hop_open(struct an_host_conn *c, struct an_relay_pipe *p, const struct an_relay_msg *m)
{
	struct an_stream *s = NULL;
	int rc = an_host_stream_open(c, AN_RELAY_HOP_PROTOCOL, &client_handler, p, &s);
	if (rc < 0) {
		pipe_free(p);
		return rc;
	}
	p->s = s;
	an_stream_set_user(s, p);
	if ((rc = an_relay_stream_send(s, m)) < 0) {
		p->reported = true; /* the caller learns it from rc */
		an_stream_reset(s);   /* on_close frees p */
		return rc;
	}
	return 0;
}

int an_relay_reserve(struct an_host_conn *c, int timeout_ms, an_relay_reserve_fn cb, void *arg)
{
	struct an_relay_msg m;
	struct an_relay_pipe *p = pipe_new(an_host_conn_host(c), M_RESERVE, timeout_ms);
	if (!p)
		return -ENOMEM;
	p->reserve_cb = cb;
	p->arg = arg;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_RESERVE);
	return hop_open(c, p, &m);
}

int an_relay_connect(struct an_host_conn *c, const struct an_peerid *target, int timeout_ms,
		     an_relay_connect_fn cb, void *arg, const struct an_stream_handler *handler,
		     void *handler_arg)
{
	struct an_relay_msg m;
	struct an_relay_pipe *p = pipe_new(an_host_conn_host(c), M_CONNECT, timeout_ms);
	if (!p)
		return -ENOMEM;
	p->connect_cb = cb;
	p->arg = arg;
	p->target = *target;
	p->uh = handler;
	p->uh_arg = handler_arg;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	m.peer.present = true;
	m.peer.has_id = true;
	m.peer.id = *target;
	return hop_open(c, p, &m);
}

/* ---- the stop service (inbound) ---- */

static void stop_open(struct an_stream *s, void *arg)
{
	struct an_relay_stop_service *svc = arg;
	struct an_relay_pipe *p = pipe_new(an_host_conn_host(an_stream_conn(s)), M_STOP, svc->timeout_ms);
	if (!p) {
		an_stream_reset(s);
		return;
	}
	p->s = s;
	p->svc = svc;
	p->svc_next = svc->pipes_;
	if (svc->pipes_)
		svc->pipes_->svc_prev = p;
	svc->pipes_ = p;
	p->reported = true; /* nothing to report: failures just end the stream */
	an_stream_set_user(s, p);
}

static void stop_refuse(struct an_stream *s, uint32_t status)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_STATUS);
	m.has_status = true;
	m.status = status;
	if (an_relay_stream_send(s, &m) == 0)
		an_stream_close_write(s);
	else
		an_stream_reset(s);
}

static void stop_data(struct an_stream *s, const uint8_t *d, size_t n, void *arg)
{
	(void)arg;
	struct an_relay_pipe *p = an_stream_user(s);
	struct an_relay_msg m, ok;
	size_t used = 0;
	int rc;

	if (!p)
		return;
	if (p->handed) {
		if (p->uh && p->uh->on_data)
			p->uh->on_data(s, d, n, p->uh_arg);
		return;
	}
	if (p->refused)
		return; /* waiting for the relay to close */
	if (!p->svc) { /* the service went away (an_relay_stop_unserve) */
		an_stream_reset(s);
		return;
	}
	if (an_buf_append(&p->in, d, n) < 0) {
		an_stream_reset(s);
		return;
	}
	rc = an_relay_msg_read(AN_RELAY_STOP, p->in.data, p->in.len, &m, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc < 0 || m.type != AN_STOP_CONNECT || !m.peer.has_id) {
		p->refused = true;
		ev_timer_stop(an_host_loop(p->h), &p->timer);
		stop_refuse(s, rc < 0 || m.type == AN_STOP_CONNECT ? AN_RELAY_MALFORMED_MESSAGE
								 : AN_RELAY_UNEXPECTED_MESSAGE);
		return;
	}
	const struct an_stream_handler *uh = NULL;
	void *uh_arg = NULL;
	struct an_relay_limit limit = m.limit;
	struct an_peerid src = m.peer.id;
	p->busy = true;
	bool accepted = p->svc->accept(p->svc->arg, s, &src, &limit, &uh, &uh_arg);
	p->busy = false;
	if (p->dead) {
		pipe_free(p);
		return;
	}
	if (!accepted) {
		p->refused = true;
		ev_timer_stop(an_host_loop(p->h), &p->timer);
		stop_refuse(s, AN_RELAY_PERMISSION_DENIED);
		return;
	}
	p->uh = uh;
	p->uh_arg = uh_arg;
	an_relay_msg_init(&ok, AN_RELAY_STOP, AN_STOP_STATUS);
	ok.has_status = true;
	ok.status = AN_RELAY_OK;
	if (an_relay_stream_send(s, &ok) < 0) {
		an_stream_reset(s);
		return;
	}
	hand_over(p, used);
}

static void stop_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	struct an_relay_pipe *p = an_stream_user(s);
	if (p && p->handed) {
		if (p->uh && p->uh->on_eof)
			p->uh->on_eof(s, p->uh_arg);
	} else {
		an_stream_close_write(s);
	}
}

static void stop_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	struct an_relay_pipe *p = an_stream_user(s);
	if (!p)
		return;
	if (p->handed && p->uh && p->uh->on_close)
		p->uh->on_close(s, err, p->uh_arg);
	if (p->busy)
		p->dead = true; /* freed when the accept callback returns */
	else
		pipe_free(p);
}

static void stop_writable(struct an_stream *s, void *arg)
{
	(void)arg;
	struct an_relay_pipe *p = an_stream_user(s);
	if (p && p->handed && p->uh && p->uh->on_writable)
		p->uh->on_writable(s, p->uh_arg);
}

static const struct an_stream_handler stop_handler = {
	.on_open = stop_open,
	.on_data = stop_data,
	.on_eof = stop_eof,
	.on_close = stop_close,
	.on_writable = stop_writable,
};

void an_relay_stream_redirect(struct an_stream *s, const struct an_stream_handler *handler,
			      void *handler_arg)
{
	struct an_relay_pipe *p = an_stream_user(s);
	if (!p)
		return;
	p->uh = handler;
	p->uh_arg = handler_arg;
}

int an_relay_stop_serve(struct an_host *h, struct an_relay_stop_service *svc)
{
	svc->pipes_ = NULL;
	return an_host_handle(h, AN_RELAY_STOP_PROTOCOL, &stop_handler, svc);
}

static bool refuse_all(void *arg, struct an_stream *s, const struct an_peerid *src,
		       const struct an_relay_limit *limit, const struct an_stream_handler **handler,
		       void **handler_arg)
{
	(void)arg, (void)s, (void)src, (void)limit, (void)handler, (void)handler_arg;
	return false;
}

static struct an_relay_stop_service refusing = {.accept = refuse_all};

void an_relay_stop_unserve(struct an_host *h, struct an_relay_stop_service *svc)
{
	struct an_relay_pipe *p, *next;
	/*
	 * Replace the registration rather than an_host_unhandle it: the host
	 * points open inbound streams at their registration's slot, which
	 * unhandle fills with another protocol's, and the circuits already
	 * handed over still need stop_handler.  Replacing keeps stop_handler
	 * in the slot; new stop streams meet the refusing service.
	 */
	an_host_handle(h, AN_RELAY_STOP_PROTOCOL, &stop_handler, &refusing);
	for (p = svc->pipes_; p; p = next) {
		next = p->svc_next;
		svc_unlink(p);
		if (!p->handed && !p->refused && !p->busy)
			an_stream_reset(p->s); /* its on_close frees p */
	}
	svc->pipes_ = NULL;
}
