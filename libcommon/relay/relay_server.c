/*
 * relay_server.c - the Circuit Relay v2 hop service.
 *
 * One struct circuit per inbound hop stream: it reads the request, answers
 * a RESERVE itself, and for a CONNECT also owns the stop stream and, once
 * spliced, both directions.  Host callbacks can end either stream from
 * inside a write to the other (a connection failing during a kick), so a
 * circuit is held (refs) across every call into the host and freed only
 * when the last holder lets go.
 */
#include "relay/relay_server.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoding/multiaddr.h"
#include "relay/circuit.h"
#include "relay/envelope.h"
#include "relay/relay_stream.h"
#include "util/buf.h"
#include "util/error.h"

/* Bytes a source may send after its CONNECT before the splice is ready. */
#define EARLY_MAX 65536
#define ADDRS_MAX 8

enum state {
	S_REQ,       /* reading the hop request */
	S_STOP_WAIT, /* CONNECT: waiting for the target's stop answer */
	S_SPLICED,   /* a byte pipe between hop and stop */
	S_DONE       /* answered; waiting for the client to close */
};

struct reservation {
	bool used;
	struct an_peerid peer;
	uint64_t expire; /* unix seconds */
	struct an_host_addr_key key; /* the reserving connection's address */
};

struct circuit {
	struct an_relay_server *r;
	struct circuit *prev, *next;
	struct an_stream *hop;  /* inbound hop stream; NULL once it closed */
	struct an_stream *stop; /* outbound stop stream (CONNECT); NULL if none */
	enum state state;
	bool counted;           /* counts toward the circuit limits */
	bool dead;              /* unlinked; memory freed when refs drops to 0 */
	int refs;
	bool hop_eof;           /* FIN from the hop side before the splice */
	struct an_peerid src;   /* CONNECT: the source peer */
	struct an_host_addr_key src_key; /* ... and its address (has_src_key) */
	bool has_src_key;
	struct an_buf in;       /* hop request, then the source's early bytes */
	struct an_buf stop_in;  /* the target's stop answer */
	uint64_t sent[2];       /* [0] hop -> stop, [1] stop -> hop */
	ev_timer timer;         /* hop timeout, then the circuit duration */
};

struct an_relay_server {
	struct an_host *h;
	struct an_relay_config cfg;
	struct reservation *rsv; /* cfg.max_reservations slots */
	struct circuit *circuits;
	size_t n_circuits;       /* counted ones */
	struct an_relay_stats st;
};

void an_relay_config_init(struct an_relay_config *cfg)
{
	cfg->reservation_ttl_s = AN_RELAY_DEFAULT_TTL_S;
	cfg->max_reservations = AN_RELAY_DEFAULT_MAX_RESERVATIONS;
	cfg->max_reservations_per_ip = AN_RELAY_DEFAULT_MAX_RESERVATIONS_PER_IP;
	cfg->max_reservations_per_net = AN_RELAY_DEFAULT_MAX_RESERVATIONS_PER_NET;
	cfg->max_circuits = AN_RELAY_DEFAULT_MAX_CIRCUITS;
	cfg->max_circuits_per_peer = AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_PEER;
	cfg->max_circuits_per_ip = AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_IP;
	cfg->max_circuits_per_net = AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_NET;
	cfg->circuit_duration_s = AN_RELAY_DEFAULT_DURATION_S;
	cfg->circuit_data = AN_RELAY_DEFAULT_DATA;
	cfg->hop_timeout_ms = AN_RELAY_DEFAULT_HOP_TIMEOUT_MS;
}

/* ---- circuit lifetime ---- */

static void circ_hold(struct circuit *c)
{
	c->refs++;
}

static void circ_destroy(struct circuit *c)
{
	an_buf_free(&c->in);
	an_buf_free(&c->stop_in);
	free(c);
}

/* False if c went away while held (the caller must not touch it). */
static bool circ_release(struct circuit *c)
{
	bool dead = c->dead;
	if (--c->refs == 0 && dead)
		circ_destroy(c);
	return !dead;
}

/* Unlink c (both streams are gone); the memory goes now or at the last release. */
static void circ_free(struct circuit *c)
{
	struct an_relay_server *r = c->r;
	if (c->dead)
		return;
	c->dead = true;
	ev_timer_stop(an_host_loop(r->h), &c->timer);
	if (c->counted)
		r->n_circuits--;
	if (c->prev)
		c->prev->next = c->next;
	else
		r->circuits = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->refs == 0)
		circ_destroy(c);
}

/*
 * One stream of c ended with err.  Spliced circuits that end cleanly (both
 * FINs passed) let the other stream flush and finish; any other end resets
 * what is left.  Must be the caller's last use of c.
 */
static void circ_detached(struct circuit *c, int err)
{
	if (!c->hop && !c->stop) {
		circ_free(c);
		return;
	}
	if (c->state == S_DONE || (c->state == S_SPLICED && err == 0))
		return;
	an_stream_reset(c->hop ? c->hop : c->stop); /* its on_close frees c */
}

/* Reset whatever c still has; c may be gone afterwards. */
static void circ_abort(struct circuit *c)
{
	c->state = S_SPLICED; /* so the first reset takes the other one along */
	if (c->hop)
		an_stream_reset(c->hop);
	else if (c->stop)
		an_stream_reset(c->stop);
	else
		circ_free(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct circuit *c = (struct circuit *)((char *)w - offsetof(struct circuit, timer));
	if (c->state == S_SPLICED)
		c->r->st.circuits_limited++;
	circ_abort(c);
}

static void timer_start(struct circuit *c, double seconds)
{
	struct ev_loop *loop = an_host_loop(c->r->h);
	ev_timer_stop(loop, &c->timer);
	if (seconds <= 0)
		return;
	ev_timer_set(&c->timer, seconds, 0);
	ev_timer_start(loop, &c->timer);
}

/* ---- reservations ---- */

static bool relayed(struct an_host_conn *conn)
{
	return an_host_conn_relayed(conn);
}

/* An established connection to peer, or NULL. */
static struct an_host_conn *conn_to(struct an_relay_server *r, const struct an_peerid *peer)
{
	struct an_host_conn *conns[AN_HOST_DEFAULT_MAX_CONNS * 4];
	size_t n = an_host_conns(r->h, conns, sizeof(conns) / sizeof(conns[0]));
	for (size_t i = 0; i < n; i++) {
		const struct an_peerid *p = an_host_conn_peer(conns[i]);
		if (p && an_peerid_equal(p, peer) && !relayed(conns[i]))
			return conns[i];
	}
	return NULL;
}

/* Drop reservations that expired or whose peer is no longer connected. */
static void rsv_sweep(struct an_relay_server *r)
{
	uint64_t now = (uint64_t)time(NULL);
	for (size_t i = 0; i < r->cfg.max_reservations; i++) {
		struct reservation *v = &r->rsv[i];
		if (v->used && (v->expire <= now || !conn_to(r, &v->peer)))
			v->used = false;
	}
}

static struct reservation *rsv_find(struct an_relay_server *r, const struct an_peerid *peer)
{
	for (size_t i = 0; i < r->cfg.max_reservations; i++)
		if (r->rsv[i].used && an_peerid_equal(&r->rsv[i].peer, peer))
			return &r->rsv[i];
	return NULL;
}

/* Reservations in all (key NULL), or from key's address (net false) or network. */
static size_t rsv_count(const struct an_relay_server *r, const struct an_host_addr_key *key, bool net)
{
	size_t n = 0;
	for (size_t i = 0; i < r->cfg.max_reservations; i++) {
		const struct reservation *v = &r->rsv[i];
		if (v->used && (!key || (net ? memcmp(v->key.net, key->net, 16)
					     : memcmp(v->key.ip, key->ip, 16)) == 0))
			n++;
	}
	return n;
}

/* ---- answers ---- */

static void set_limit(const struct an_relay_server *r, struct an_relay_limit *l)
{
	l->present = r->cfg.circuit_duration_s || r->cfg.circuit_data;
	l->has_duration = r->cfg.circuit_duration_s != 0;
	l->duration = r->cfg.circuit_duration_s;
	l->has_data = r->cfg.circuit_data != 0;
	l->data = r->cfg.circuit_data;
}

/* Send m on s (0 or the write's error). */
/* Answer the hop request with a failure status and finish (state S_DONE). */
static void refuse(struct circuit *c, uint32_t status, bool connect)
{
	struct an_relay_msg m;
	struct an_stream *hop = c->hop;
	if (connect)
		c->r->st.circuits_refused++;
	else
		c->r->st.reservations_refused++;
	c->state = S_DONE;
	if (!hop)
		return;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.has_status = true;
	m.status = status;
	circ_hold(c);
	if (an_relay_stream_send(hop, &m) == 0 && c->hop)
		an_stream_close_write(c->hop);
	circ_release(c);
}

static void handle_reserve(struct circuit *c)
{
	struct an_relay_server *r = c->r;
	struct an_host_conn *conn = an_stream_conn(c->hop);
	const struct an_peerid *peer = an_host_conn_peer(conn);
	const char *addrs[ADDRS_MAX];
	struct an_multiaddr ma[ADDRS_MAX];
	struct an_relay_msg m;
	struct an_buf voucher;
	struct reservation *v;
	struct an_host_addr_key key;
	size_t n, k = 0;

	if (relayed(conn)) {
		refuse(c, AN_RELAY_PERMISSION_DENIED, false);
		return;
	}
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	n = an_host_addrs(r->h, addrs, ADDRS_MAX);
	for (size_t i = 0; i < n; i++) {
		if (an_multiaddr_parse(addrs[i], &ma[k]) < 0 || an_multiaddr_is_circuit(&ma[k]) ||
		    an_multiaddr_append_p2p(&ma[k], an_host_peer_id(r->h)) < 0)
			continue;
		m.rsv.addrs[k].p = ma[k].bytes;
		m.rsv.addrs[k].len = ma[k].len;
		k++;
	}
	if (k == 0) { /* rust clients refuse a reservation without addresses */
		refuse(c, AN_RELAY_RESERVATION_REFUSED, false);
		return;
	}
	rsv_sweep(r);
	an_host_conn_addr_key(conn, &key); /* zeroes when it has none */
	v = rsv_find(r, peer);
	if (!v) {
		if (rsv_count(r, NULL, false) >= r->cfg.max_reservations ||
		    rsv_count(r, &key, false) >= r->cfg.max_reservations_per_ip ||
		    rsv_count(r, &key, true) >= r->cfg.max_reservations_per_net) {
			refuse(c, AN_RELAY_RESOURCE_LIMIT_EXCEEDED, false);
			return;
		}
		for (size_t i = 0; i < r->cfg.max_reservations && !v; i++)
			if (!r->rsv[i].used)
				v = &r->rsv[i];
	}
	v->used = true;
	v->peer = *peer;
	v->expire = (uint64_t)time(NULL) + r->cfg.reservation_ttl_s;
	v->key = key;

	an_buf_init(&voucher, AN_ENVELOPE_MAX);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	m.rsv.present = true;
	m.rsv.has_expire = true;
	m.rsv.expire = v->expire;
	m.rsv.naddrs = k;
	if (an_voucher_sign(an_host_key(r->h), peer, v->expire, &voucher) == 0) {
		m.rsv.voucher.p = voucher.data;
		m.rsv.voucher.len = voucher.len;
	}
	set_limit(r, &m.limit);
	r->st.reservations_accepted++;
	c->state = S_DONE;
	circ_hold(c);
	if (an_relay_stream_send(c->hop, &m) == 0 && c->hop)
		an_stream_close_write(c->hop);
	circ_release(c);
	an_buf_free(&voucher);
}

static const struct an_stream_handler stop_handler;

static size_t circuits_from(const struct an_relay_server *r, const struct an_peerid *src)
{
	size_t n = 0;
	for (const struct circuit *c = r->circuits; c; c = c->next)
		if (c->counted && an_peerid_equal(&c->src, src))
			n++;
	return n;
}

/* Counted circuits whose source is at key's address (net false) or network. */
static size_t circuits_from_addr(const struct an_relay_server *r, const struct an_host_addr_key *key,
				 bool net)
{
	size_t n = 0;
	for (const struct circuit *c = r->circuits; c; c = c->next)
		if (c->counted && c->has_src_key &&
		    (net ? memcmp(c->src_key.net, key->net, 16) : memcmp(c->src_key.ip, key->ip, 16)) == 0)
			n++;
	return n;
}

static void handle_connect(struct circuit *c, const struct an_relay_msg *req)
{
	struct an_relay_server *r = c->r;
	struct an_host_conn *conn = an_stream_conn(c->hop), *dconn;
	int rc;

	if (relayed(conn)) {
		refuse(c, AN_RELAY_PERMISSION_DENIED, true);
		return;
	}
	if (!req->peer.present || !req->peer.has_id) {
		refuse(c, AN_RELAY_MALFORMED_MESSAGE, true);
		return;
	}
	c->src = *an_host_conn_peer(conn);
	c->has_src_key = an_host_conn_addr_key(conn, &c->src_key);
	if (r->n_circuits >= r->cfg.max_circuits ||
	    circuits_from(r, &c->src) >= r->cfg.max_circuits_per_peer ||
	    (c->has_src_key && (circuits_from_addr(r, &c->src_key, false) >= r->cfg.max_circuits_per_ip ||
				circuits_from_addr(r, &c->src_key, true) >= r->cfg.max_circuits_per_net))) {
		refuse(c, AN_RELAY_RESOURCE_LIMIT_EXCEEDED, true);
		return;
	}
	rsv_sweep(r);
	if (!rsv_find(r, &req->peer.id) || !(dconn = conn_to(r, &req->peer.id))) {
		refuse(c, AN_RELAY_NO_RESERVATION, true);
		return;
	}
	c->counted = true;
	r->n_circuits++;
	c->state = S_STOP_WAIT;
	circ_hold(c);
	rc = an_host_stream_open(dconn, AN_RELAY_STOP_PROTOCOL, &stop_handler, c, &c->stop);
	if (circ_release(c) && rc < 0) {
		c->stop = NULL;
		refuse(c, AN_RELAY_CONNECTION_FAILED, true);
	}
}

/* ---- the splice ---- */

/* Forward n bytes in direction dir (0: hop -> stop).  False if c went away. */
static bool forward(struct circuit *c, int dir, const uint8_t *p, size_t n)
{
	struct an_relay_server *r = c->r;
	struct an_stream *dst = dir == 0 ? c->stop : c->hop;
	struct an_stream *src = dir == 0 ? c->hop : c->stop;
	bool alive;
	int rc;

	if (n == 0)
		return true;
	if (!dst || (r->cfg.circuit_data && c->sent[dir] + n > r->cfg.circuit_data)) {
		if (dst)
			r->st.circuits_limited++;
		circ_abort(c);
		return false;
	}
	c->sent[dir] += n;
	r->st.bytes_relayed += n;
	circ_hold(c);
	rc = an_stream_write(dst, p, n);
	alive = circ_release(c);
	if (!alive)
		return false;
	if (rc < 0) {
		circ_abort(c);
		return false;
	}
	dst = dir == 0 ? c->stop : c->hop;
	src = dir == 0 ? c->hop : c->stop;
	if (dst && src && an_stream_queued(dst) >= AN_STREAM_QUEUE_HIGH)
		an_stream_pause(src, true); /* restarted from dst's on_writable */
	return true;
}

/* The target said OK: answer the source and start piping. */
static void splice(struct circuit *c, const uint8_t *rest, size_t rest_len)
{
	struct an_relay_server *r = c->r;
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	set_limit(r, &m.limit);
	c->state = S_SPLICED;
	r->st.circuits_opened++;
	timer_start(c, r->cfg.circuit_duration_s);
	int rc;
	circ_hold(c);
	rc = c->hop ? an_relay_stream_send(c->hop, &m) : AN_ECLOSED;
	if (!circ_release(c))
		return;
	if (rc < 0) {
		circ_abort(c);
		return;
	}
	if (!forward(c, 1, rest, rest_len))
		return;
	if (c->in.len) {
		/* copy: forward may reset and free c (and c->in with it) */
		struct an_buf early = c->in;
		an_buf_init(&c->in, 0);
		bool alive = forward(c, 0, early.data, early.len);
		an_buf_free(&early);
		if (!alive)
			return;
	}
	if (c->hop_eof && c->stop)
		an_stream_close_write(c->stop);
}

/* ---- hop stream handlers (arg: the server) ---- */

static void hop_open(struct an_stream *s, void *arg)
{
	struct an_relay_server *r = arg;
	struct circuit *c = calloc(1, sizeof(*c));
	if (!c) {
		an_stream_reset(s);
		return;
	}
	c->r = r;
	c->hop = s;
	c->state = S_REQ;
	an_buf_init(&c->in, AN_RELAY_MSG_MAX + 16);
	an_buf_init(&c->stop_in, AN_RELAY_MSG_MAX + 16);
	ev_timer_init(&c->timer, timer_cb, 0, 0);
	c->next = r->circuits;
	if (r->circuits)
		r->circuits->prev = c;
	r->circuits = c;
	an_stream_set_user(s, c);
	timer_start(c, r->cfg.hop_timeout_ms / 1000.0);
}

static void hop_request(struct circuit *c)
{
	struct an_relay_msg m;
	size_t used = 0;
	int rc = an_relay_msg_read(AN_RELAY_HOP, c->in.data, c->in.len, &m, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc < 0) {
		refuse(c, AN_RELAY_MALFORMED_MESSAGE, false);
		return;
	}
	if (m.type == AN_HOP_RESERVE) {
		handle_reserve(c);
	} else if (m.type == AN_HOP_CONNECT) {
		/* m borrows from c->in: handle it before dropping the frame */
		struct an_relay_msg req = m;
		struct an_buf frame = c->in;
		an_buf_init(&c->in, EARLY_MAX);
		if (frame.len > used && an_buf_append(&c->in, frame.data + used, frame.len - used) < 0) {
			an_buf_free(&frame);
			circ_abort(c);
			return;
		}
		req.peer.naddrs = 0; /* addrs borrowed from frame: not used past here */
		handle_connect(c, &req);
		an_buf_free(&frame);
	} else {
		refuse(c, AN_RELAY_UNEXPECTED_MESSAGE, false);
	}
}

static void hop_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct circuit *c = an_stream_user(s);
	if (!c)
		return;
	switch (c->state) {
	case S_REQ:
		if (an_buf_append(&c->in, p, n) < 0) {
			refuse(c, AN_RELAY_MALFORMED_MESSAGE, false);
			return;
		}
		hop_request(c);
		return;
	case S_STOP_WAIT:
		if (an_buf_append(&c->in, p, n) < 0)
			circ_abort(c);
		return;
	case S_SPLICED:
		forward(c, 0, p, n);
		return;
	case S_DONE:
		return;
	}
}

static void hop_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	struct circuit *c = an_stream_user(s);
	if (!c)
		return;
	if (c->state == S_REQ) {
		refuse(c, AN_RELAY_MALFORMED_MESSAGE, false); /* FIN before a whole request */
	} else if (c->state == S_STOP_WAIT) {
		c->hop_eof = true;
	} else if (c->state == S_SPLICED && c->stop) {
		an_stream_close_write(c->stop);
	}
}

static void hop_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	struct circuit *c = an_stream_user(s);
	if (!c)
		return;
	c->hop = NULL;
	circ_detached(c, err);
}

static void hop_writable(struct an_stream *s, void *arg)
{
	(void)arg;
	struct circuit *c = an_stream_user(s);
	if (c && c->state == S_SPLICED && c->stop)
		an_stream_pause(c->stop, false);
}

static const struct an_stream_handler hop_handler = {
	.on_open = hop_open,
	.on_data = hop_data,
	.on_eof = hop_eof,
	.on_close = hop_close,
	.on_writable = hop_writable,
};

/* ---- stop stream handlers (arg: the circuit) ---- */

static void stop_open(struct an_stream *s, void *arg)
{
	struct circuit *c = arg;
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_CONNECT);
	m.peer.present = true;
	m.peer.has_id = true;
	m.peer.id = c->src;
	set_limit(c->r, &m.limit);
	if (an_relay_stream_send(s, &m) < 0)
		an_stream_reset(s);
}

/* The stop exchange failed: tell the source and drop the stop stream. */
static void stop_failed(struct circuit *c)
{
	struct an_stream *stop = c->stop;
	refuse(c, AN_RELAY_CONNECTION_FAILED, true);
	if (!c->dead && c->stop == stop && stop)
		an_stream_reset(stop);
}

static void stop_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	struct circuit *c = arg;
	struct an_relay_msg m;
	size_t used = 0;
	int rc;

	if (c->state == S_SPLICED) {
		forward(c, 1, p, n);
		return;
	}
	if (c->state != S_STOP_WAIT)
		return;
	if (an_buf_append(&c->stop_in, p, n) < 0) {
		stop_failed(c);
		return;
	}
	rc = an_relay_msg_read(AN_RELAY_STOP, c->stop_in.data, c->stop_in.len, &m, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc < 0 || m.type != AN_STOP_STATUS || !m.has_status || m.status != AN_RELAY_OK) {
		stop_failed(c);
		return;
	}
	struct an_buf answer = c->stop_in;
	an_buf_init(&c->stop_in, 0);
	splice(c, answer.data + used, answer.len - used); /* may end c */
	an_buf_free(&answer);
}

static void stop_eof(struct an_stream *s, void *arg)
{
	(void)s;
	struct circuit *c = arg;
	if (c->state == S_STOP_WAIT)
		stop_failed(c);
	else if (c->state == S_SPLICED && c->hop)
		an_stream_close_write(c->hop);
}

static void stop_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct circuit *c = arg;
	c->stop = NULL;
	if (c->state == S_STOP_WAIT) {
		circ_hold(c);
		refuse(c, AN_RELAY_CONNECTION_FAILED, true);
		if (!circ_release(c))
			return;
	}
	circ_detached(c, err);
}

static void stop_writable(struct an_stream *s, void *arg)
{
	(void)s;
	struct circuit *c = arg;
	if (c->state == S_SPLICED && c->hop)
		an_stream_pause(c->hop, false);
}

static const struct an_stream_handler stop_handler = {
	.on_open = stop_open,
	.on_data = stop_data,
	.on_eof = stop_eof,
	.on_close = stop_close,
	.on_writable = stop_writable,
};

/* ---- the server ---- */

int an_relay_server_new(struct an_host *h, const struct an_relay_config *cfg,
			struct an_relay_server **out)
{
	struct an_relay_server *r = calloc(1, sizeof(*r));
	int rc;
	if (!r)
		return -ENOMEM;
	r->h = h;
	if (cfg)
		r->cfg = *cfg;
	else
		an_relay_config_init(&r->cfg);
	if (r->cfg.max_reservations == 0)
		r->cfg.max_reservations = 1;
	/* the per-address limits came later: 0 (a config filled by hand) takes the default */
	if (!r->cfg.max_reservations_per_net)
		r->cfg.max_reservations_per_net = AN_RELAY_DEFAULT_MAX_RESERVATIONS_PER_NET;
	if (!r->cfg.max_circuits_per_ip)
		r->cfg.max_circuits_per_ip = AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_IP;
	if (!r->cfg.max_circuits_per_net)
		r->cfg.max_circuits_per_net = AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_NET;
	r->rsv = calloc(r->cfg.max_reservations, sizeof(*r->rsv));
	if (!r->rsv) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = an_host_handle(h, AN_RELAY_HOP_PROTOCOL, &hop_handler, r)) < 0)
		goto out;
	*out = r;
	return 0;
out:
	free(r->rsv);
	free(r);
	return rc;
}

void an_relay_server_free(struct an_relay_server *r)
{
	if (!r)
		return;
	/*
	 * Circuits first, then the registration: the host points open inbound
	 * streams at their registration's slot, which an_host_unhandle fills
	 * with another protocol's, so a hop stream reset after it would reach
	 * that protocol's on_close.  Each abort ends its circuit synchronously
	 * (bounded by the list).
	 */
	for (size_t guard = 0; r->circuits && guard < 1000000; guard++) {
		struct circuit *c = r->circuits;
		if (c->hop)
			an_stream_set_user(c->hop, c);
		circ_abort(c);
		if (r->circuits == c) { /* not ended: cut it loose */
			if (c->hop)
				an_stream_set_user(c->hop, NULL);
			c->hop = NULL;
			c->stop = NULL;
			circ_free(c);
		}
	}
	an_host_unhandle(r->h, AN_RELAY_HOP_PROTOCOL);
	free(r->rsv);
	free(r);
}

void an_relay_server_stats(const struct an_relay_server *r, struct an_relay_stats *out)
{
	*out = r->st;
	out->circuits = r->n_circuits;
	out->reservations = rsv_count(r, NULL, false);
}
