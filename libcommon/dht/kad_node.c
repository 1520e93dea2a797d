/* kad_node.c - the Kademlia service on a libev host (see kad_node.h). */
#include "dht/kad_node.h"

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

#define SELF_ADDRS_MAX 8
#define SNAPSHOT_MAX ((size_t)4 << 20)
#define LINGER_MS 2000 /* a finished request's stream may wait this long for the peer's FIN */
#define CLAIM_CACHE 8          /* bare-name proofs remembered (fqdn, bits, nonce) */
#define CLAIM_CHECK_PEERS 3    /* closest peers asked whether they kept our claim */
#define CLAIM_CHECK_DELAY 0.2  /* s after the ADD_PROVIDERs are written */

struct claim_proof {
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	unsigned bits;
	uint64_t nonce;
};

struct kreq;
struct inbound;

struct an_kad_node {
	struct an_host *host;
	struct ev_loop *loop;
	struct an_kad_node_config cfg;
	char protocol[256];
	char state_dir[4096];
	struct an_store *store;
	struct an_rt rt;
	struct an_kad_server srv;
	struct an_multiaddr self_addrs[SELF_ADDRS_MAX];
	size_t nself;
	int refs;      /* the node itself, requests, inbound streams, checks */
	bool closed;
	struct an_kad_op *ops;
	struct kreq *reqs;
	struct inbound *ins;
	size_t in_large;  /* bytes charged to large inbound requests (AN_KAD_NODE_IN_BUDGET) */
	ev_timer refresh, maintain;
	bool maintaining;
	char **boot;
	size_t nboot;
	ev_timer boot_retry;       /* the next bootstrap while the table is small */
	uint64_t boot_backoff_ms;  /* 0: none under way */
	struct claim_proof claims[CLAIM_CACHE]; /* our proofs, round robin */
	size_t nclaims;
};

static uint64_t now_ms(const struct an_kad_node *n)
{
	return an_host_now_ms(n->host);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void node_log(struct an_kad_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void node_log(struct an_kad_node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!n->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->cfg.log(n->cfg.log_arg, msg);
}

static void node_unref(struct an_kad_node *n)
{
	if (--n->refs == 0) {
		for (size_t i = 0; i < n->nboot; i++)
			free(n->boot[i]);
		free(n->boot);
		free(n);
	}
}

static void refresh_self_addrs(struct an_kad_node *n)
{
	const char *addrs[SELF_ADDRS_MAX];
	size_t c = an_host_addrs(n->host, addrs, SELF_ADDRS_MAX);
	n->nself = 0;
	for (size_t i = 0; i < c; i++)
		if (an_multiaddr_parse(addrs[i], &n->self_addrs[n->nself]) == 0)
			n->nself++;
	n->srv.self_addrs = n->self_addrs;
	n->srv.nself_addrs = n->nself;
}

/* ---------------------------------------------------------------------- */
/* Liveness checks asked for by the routing table (routing.h events).      */

struct check {
	struct an_kad_node *node;
	struct an_peerid peer;
	struct an_host_conn *conn;
};

static void rt_events(struct an_kad_node *n);

static void check_end(struct check *c, bool alive)
{
	struct an_kad_node *n = c->node;
	if (!n->closed) {
		an_rt_check_result(&n->rt, &c->peer, alive, now_ms(n));
		rt_events(n);
	}
	if (c->conn)
		an_host_conn_unref(c->conn);
	free(c);
	node_unref(n);
}

static void check_ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	(void)rtt_ms;
	check_end(arg, err == 0);
}

static void check_dial_cb(struct an_host *h, struct an_host_conn *conn, int err, void *arg)
{
	(void)h;
	struct check *c = arg;
	if (err < 0 || c->node->closed) {
		check_end(c, false);
		return;
	}
	an_host_conn_ref(conn);
	c->conn = conn;
	if (an_ping_once(conn, AN_PING_TIMEOUT_MS / 2, check_ping_cb, c) < 0)
		check_end(c, false);
}

/* Dial text for a peer at addr: addr with /p2p/<peer> unless it has one. */
static int dial_text(const struct an_multiaddr *addr, const struct an_peerid *peer, char *out,
		     size_t cap)
{
	struct an_multiaddr full = *addr;
	struct an_multiaddr rest;
	struct an_peerid id;
	if (an_multiaddr_split_p2p(addr, &rest, &id) != 0 &&
	    an_multiaddr_append_p2p(&full, peer) < 0)
		return AN_ETOOBIG;
	return an_multiaddr_format(&full, out, cap);
}

static void rt_events(struct an_kad_node *n)
{
	struct an_rt_event ev;
	while (!n->closed && an_rt_next_event(&n->rt, &ev) == 1) {
		const struct an_rt_entry *e = an_rt_find(&n->rt, &ev.ping);
		char text[AN_MULTIADDR_TEXT_MAX];
		struct check *c;
		if (!e || e->naddrs == 0 || dial_text(&e->addrs[0], &e->id, text, sizeof(text)) < 0 ||
		    !(c = calloc(1, sizeof(*c)))) {
			an_rt_check_result(&n->rt, &ev.ping, false, now_ms(n));
			continue;
		}
		c->node = n;
		c->peer = ev.ping;
		n->refs++;
		if (an_host_dial(n->host, text, AN_PING_TIMEOUT_MS / 2, check_dial_cb, c) < 0) {
			n->refs--;
			free(c);
			an_rt_check_result(&n->rt, &ev.ping, false, now_ms(n));
		}
	}
}

static void rt_seen(struct an_kad_node *n, const struct an_peerid *id,
		    const struct an_multiaddr *addrs, size_t naddrs)
{
	if (n->closed)
		return;
	if (an_rt_update(&n->rt, id, addrs, naddrs, now_ms(n)) == AN_RT_PENDING)
		rt_events(n);
}

/* ---------------------------------------------------------------------- */
/* Outbound requests: one stream each, LP-framed, a deadline.              */

typedef void (*kreq_fn)(void *arg, struct kreq *r, int err, const struct an_kad_msg *resp);

struct kreq {
	struct an_kad_node *node;
	struct kreq *next, *prev;
	struct an_peerid peer;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t naddrs, ai;
	struct an_buf out, in;
	bool want_resp;
	bool dialing;
	bool sending;  /* inside kreq_send: its callers free r, not on_close */
	bool finished;
	struct an_host_conn *conn;
	struct an_stream *s;
	ev_timer timer;
	kreq_fn cb;
	void *arg;
	size_t tag; /* the caller's index */
};

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
	node_unref(n);
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
		if (dial_text(a, &r->peer, text, sizeof(text)) < 0)
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
static struct kreq *kreq_start(struct an_kad_node *n, const struct an_peerid *peer,
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
static void kreq_detach(struct an_kad_node *n, void *arg)
{
	for (struct kreq *r = n->reqs; r; r = r->next)
		if (r->arg == arg) {
			r->cb = NULL;
			r->arg = NULL;
		}
}

/* ---------------------------------------------------------------------- */
/* Inbound streams: requests answered by kad_server.                        */

struct inbound {
	struct an_kad_node *node;
	struct inbound *next, *prev;
	struct an_stream *s;
	struct an_buf in;
	size_t large;   /* bytes charged to the node's large-request budget */
	ev_timer idle;
};

/*
 * May b hold new_len bytes of a request?  Past AN_KAD_NODE_IN_SMALL the
 * whole buffer is charged to the node's budget, and only one stream of a
 * connection may be large at a time (kad_node.h).
 */
static bool inbound_may_hold(struct inbound *b, size_t new_len)
{
	struct an_kad_node *n = b->node;
	size_t want = new_len > AN_KAD_NODE_IN_SMALL ? new_len : 0;
	if (want <= b->large)
		return true;
	if (!b->large)
		for (const struct inbound *o = n->ins; o; o = o->next)
			if (o != b && o->large && an_stream_conn(o->s) == an_stream_conn(b->s))
				return false;
	if (n->in_large - b->large + want > AN_KAD_NODE_IN_BUDGET)
		return false;
	n->in_large = n->in_large - b->large + want;
	b->large = want;
	return true;
}

/* b's buffer drained to small: give its charge back (and its memory). */
static void inbound_release(struct inbound *b)
{
	if (b->in.len > AN_KAD_NODE_IN_SMALL)
		return;
	b->node->in_large -= b->large;
	b->large = 0;
	an_buf_shrink(&b->in, AN_KAD_NODE_IN_SMALL);
}

static void inbound_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct inbound *b = w->data;
	ev_timer_stop(loop, w);
	an_stream_reset(b->s);
}

static void inbound_open(struct an_stream *s, void *arg)
{
	struct an_kad_node *n = arg;
	struct inbound *b;
	/*
	 * No kad over a relayed (limited) connection: js-libp2p does not run
	 * kad-dht on limited connections and a relay's data limit would cut
	 * it anyway; the peer uses a direct connection or another peer.
	 */
	if (an_host_conn_relayed(an_stream_conn(s))) {
		an_stream_reset(s);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b || n->closed) {
		free(b);
		an_stream_reset(s);
		return;
	}
	b->node = n;
	b->s = s;
	an_buf_init(&b->in, AN_KAD_MSG_MAX_DEFAULT + 16);
	ev_timer_init(&b->idle, inbound_idle, AN_KAD_NODE_IDLE_MS / 1000.0, 0);
	b->idle.data = b;
	ev_timer_start(n->loop, &b->idle);
	b->next = n->ins;
	if (n->ins)
		n->ins->prev = b;
	n->ins = b;
	n->refs++;
	an_stream_set_user(s, b);
}

static void inbound_data(struct an_stream *s, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	struct inbound *b = an_stream_user(s);
	struct an_kad_node *n;
	if (!b)
		return;
	n = b->node;
	if (!inbound_may_hold(b, b->in.len + len)) {
		node_log(n, "kad: large request refused (one a connection, %u MiB in all)",
			 (unsigned)(AN_KAD_NODE_IN_BUDGET >> 20));
		an_stream_reset(s);
		return;
	}
	if (an_buf_append(&b->in, p, len) < 0) {
		node_log(n, "kad: request over %u bytes", (unsigned)AN_KAD_MSG_MAX_DEFAULT);
		an_stream_reset(s);
		return;
	}
	for (;;) {
		const uint8_t *msg;
		size_t msg_len, used;
		struct an_kad_msg req;
		struct an_buf resp;
		const char *why = NULL;
		int rc = an_lp_get(b->in.data, b->in.len, AN_KAD_MSG_MAX_DEFAULT, &msg, &msg_len, &used);
		if (rc == AN_EAGAIN)
			return;
		if (rc == 0)
			rc = an_kad_msg_decode(msg, msg_len, AN_KAD_MSG_MAX_DEFAULT, &req);
		if (rc < 0) {
			node_log(n, "kad: malformed request: %s", an_strerror(rc));
			an_stream_reset(s);
			return;
		}
		ev_timer_stop(n->loop, &b->idle);
		ev_timer_set(&b->idle, AN_KAD_NODE_IDLE_MS / 1000.0, 0);
		ev_timer_start(n->loop, &b->idle);
		an_buf_init(&resp, AN_KAD_MSG_SEND_MAX + 16);
		refresh_self_addrs(n);
		rc = an_kad_server_handle(&n->srv, an_host_conn_peer(an_stream_conn(s)), &req,
					  now_ms(n), &resp, &why);
		an_kad_msg_free(&req);
		if (rc == 0) {
			struct an_buf framed;
			an_buf_init(&framed, AN_KAD_MSG_SEND_MAX + 16);
			rc = an_lp_put(&framed, resp.data, resp.len);
			if (rc == 0)
				rc = an_stream_write(s, framed.data, framed.len);
			an_buf_free(&framed);
		}
		an_buf_free(&resp);
		if (rc < 0) {
			node_log(n, "kad: request refused: %s%s%s", an_strerror(rc), why ? ": " : "",
				 why ? why : "");
			an_stream_reset(s);
			return;
		}
		an_buf_consume(&b->in, used);
		inbound_release(b);
	}
}

static void inbound_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static void inbound_close(struct an_stream *s, int err, void *arg)
{
	(void)arg; (void)err;
	struct inbound *b = an_stream_user(s);
	struct an_kad_node *n;
	if (!b)
		return;
	n = b->node;
	ev_timer_stop(n->loop, &b->idle);
	if (b->prev)
		b->prev->next = b->next;
	else if (n->ins == b)
		n->ins = b->next;
	if (b->next)
		b->next->prev = b->prev;
	n->in_large -= b->large;
	an_buf_free(&b->in);
	free(b);
	node_unref(n);
}

static const struct an_stream_handler inbound_handler = {
	.on_open = inbound_open,
	.on_data = inbound_data,
	.on_eof = inbound_eof,
	.on_close = inbound_close,
};

/* ---- the store behind kad_server (ms -> s, key caps 512 -> 511) ---- */

static int ops_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *value,
		   char when[AN_KAD_TIME_LEN + 1], uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_record r;
	int rc;
	if (key_len > AN_VALIDATE_KEY_MAX || an_validate_namespace(key, key_len) == AN_NS_UNKNOWN)
		return AN_ENOTFOUND;
	an_store_record_init(&r);
	rc = an_store_get(n->store, key, key_len, now_s(), &r);
	if (rc == 0)
		rc = an_buf_append(value, r.value.data, r.value.len);
	if (rc == 0 && an_kad_time_format(r.time_received, 0, when) < 0)
		when[0] = 0;
	an_store_record_free(&r);
	return rc;
}

static int ops_put(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
		   size_t value_len, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_put p = {.key = key, .key_len = key_len, .value = value, .value_len = value_len};
	struct an_record_error e = {{0}, {0}};
	int rc;
	if (key_len > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	rc = an_store_put(n->store, &p, now_s(), NULL, &e);
	if (rc < 0 && rc != AN_ESTALE)
		node_log(n, "kad: PUT_VALUE refused: %s%s%s", an_strerror(rc), e.message[0] ? ": " : "",
			 e.message);
	return rc;
}

/* cfg's claim bits, else $AN_CLAIM_BITS, else the default; capped. */
static unsigned claim_bits(const struct an_kad_node_config *cfg)
{
	const char *env = getenv("AN_CLAIM_BITS");
	unsigned long b = AN_CLAIM_BITS_DEFAULT;
	char *end;
	if (cfg->claim_bits)
		b = cfg->claim_bits;
	else if (env && *env) {
		b = strtoul(env, &end, 10);
		if (*end)
			b = AN_CLAIM_BITS_DEFAULT;
	}
	return b > AN_CLAIM_BITS_MAX ? AN_CLAIM_BITS_MAX : (unsigned)b;
}

static int ops_add_provider(void *arg, const uint8_t *key, size_t key_len,
			    const struct an_kad_provider *p, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	return an_store_provider_claim(n->store, key, key_len, &p->id, p->addrs, p->naddrs,
				       p->verified, p->work, now_s());
}

static int ops_get_providers(void *arg, const uint8_t *key, size_t key_len,
			     struct an_kad_provider *out, size_t cap, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_provider ps[AN_KAD_SERVER_PROVIDERS_MAX];
	size_t np = 0;
	int rc;
	if (cap > AN_KAD_SERVER_PROVIDERS_MAX)
		cap = AN_KAD_SERVER_PROVIDERS_MAX;
	rc = an_store_providers_get(n->store, key, key_len, now_s(), ps, cap, &np);
	if (rc < 0)
		return rc == AN_EMALFORMED ? 0 : rc;
	for (size_t i = 0; i < np; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].id = ps[i].id;
		for (size_t a = 0; a < ps[i].naddrs && a < AN_RT_ADDRS_MAX; a++)
			out[i].addrs[out[i].naddrs++] = ps[i].addrs[a];
	}
	return (int)np;
}

/* get_root of the validator: the store's live value. */
static int store_root_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out)
{
	struct an_kad_node *n = arg;
	struct an_store_record r;
	int rc;
	an_store_record_init(&r);
	rc = an_store_get(n->store, key, key_len, now_s(), &r);
	if (rc == 0)
		rc = an_buf_append(out, r.value.data, r.value.len);
	an_store_record_free(&r);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Identify: peers that advertise our protocol join the routing table.      */

struct ident {
	struct an_kad_node *node;
	struct an_host_conn *conn;
};

static bool ident_speaks_kad(const struct an_kad_node *n, const struct an_identify *m)
{
	for (size_t i = 0; i < m->n_protocols; i++)
		if (strcmp(m->protocols[i], n->protocol) == 0)
			return true;
	return false;
}

/* m's listen addresses we can dial (no relayed ones) into addrs; the count. */
static size_t ident_addrs(const struct an_identify *m, struct an_multiaddr addrs[AN_RT_ADDRS_MAX])
{
	size_t na = 0;
	for (size_t i = 0; i < m->n_addrs && na < AN_RT_ADDRS_MAX; i++)
		if (an_multiaddr_from_bytes(m->addrs[i].data, m->addrs[i].len, &addrs[na]) == 0 &&
		    !an_multiaddr_is_circuit(&addrs[na]))
			na++;
	return na;
}

static void ident_cb(void *arg, int err, const struct an_identify *m)
{
	struct ident *x = arg;
	struct an_kad_node *n = x->node;
	if (err == 0 && !n->closed && an_host_conn_alive(x->conn)) {
		struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
		size_t na = ident_addrs(m, addrs);
		if (ident_speaks_kad(n, m) && na > 0)
			rt_seen(n, an_host_conn_peer(x->conn), addrs, na);
	}
	an_host_conn_unref(x->conn);
	free(x);
	node_unref(n);
}

/*
 * An identify push: a peer that now lists our protocol (it switched to DHT
 * server mode) joins the table, one that no longer does (client mode)
 * leaves it - js-libp2p does the same through its registrar, whose
 * topology hears of protocols a peer:update adds or removes.  A push
 * without protocols changes nothing; one without addresses keeps those
 * the table has (a newcomer without any is not added).
 */
static void on_identify_push(struct an_host_conn *c, const struct an_identify *m, void *arg)
{
	struct an_kad_node *n = arg;
	const struct an_peerid *id = an_host_conn_peer(c);
	const struct an_rt_entry *e;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t na = 0;
	if (n->closed || !id || !(m->present & AN_IDENTIFY_HAS_PROTOCOLS))
		return;
	e = an_rt_find(&n->rt, id);
	if (!ident_speaks_kad(n, m)) {
		if (e)
			an_rt_remove(&n->rt, id);
		return;
	}
	if (m->present & AN_IDENTIFY_HAS_ADDRS)
		na = ident_addrs(m, addrs);
	if (na == 0 && e) {
		na = e->naddrs;
		memcpy(addrs, e->addrs, na * sizeof(addrs[0]));
	}
	if (na > 0)
		rt_seen(n, id, addrs, na);
}

static void on_connection(struct an_host_conn *c, void *arg)
{
	struct an_kad_node *n = arg;
	struct ident *x;
	/* a peer met through a relay is not a DHT peer (no kad over that connection) */
	if (n->closed || an_host_conn_relayed(c) || !(x = calloc(1, sizeof(*x))))
		return;
	x->node = n;
	x->conn = c;
	an_host_conn_ref(c);
	n->refs++;
	if (an_identify_request(c, AN_IDENTIFY_TIMEOUT_MS, ident_cb, x) < 0) {
		an_host_conn_unref(c);
		free(x);
		n->refs--;
	}
}

/* ---------------------------------------------------------------------- */
/* Operations.                                                              */

enum op_kind { OP_BOOT, OP_PUT, OP_GET, OP_PROV, OP_REPUB };

/* A peer a put (or a get's correction) sends to. */
struct target {
	struct an_peerid id;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t naddrs;
	int stage; /* 0 root to send, 1 value to send, 2 done */
	bool stored;
};

struct an_kad_op {
	struct an_kad_node *node;
	struct an_kad_op *next, *prev;
	enum op_kind kind;
	int phase;
	bool bootstrap; /* an_kad_node_bootstrap's: retried while the table is small */
	bool cancelled;
	bool called; /* the user's callback ran */
	size_t dials;
	struct an_lookup *lk;
	ev_timer timer;
	ev_timer defer;
	struct an_buf key, value, root_key, root_value;
	unsigned flags;
	/* put and corrections */
	struct target *targets;
	size_t ntargets, pending, stored;
	uint8_t name_key[34];
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	bool announce;
	/* the claim: ADD_PROVIDER targets, then GET_PROVIDERS to some of them */
	struct target *ann;
	size_t nann, ann_pending, check_pending;
	bool listed;
	int claim; /* AN_KAD_CLAIM_* */
	/* get */
	json_t *root_json;
	struct an_validate_ctx vctx;
	size_t from_peers;
	/* bootstrap seeds */
	struct an_peerid seeds[AN_KAD_NODE_BOOTSTRAP_MAX];
	struct an_multiaddr seed_addrs[AN_KAD_NODE_BOOTSTRAP_MAX];
	size_t nseeds;
	/* republish */
	bool force;
	int pass;
	struct an_store_record rec;
	struct an_kad_op *child;
	const char *child_status;
	int err;
	/* callbacks */
	an_kad_bootstrap_fn boot_cb;
	an_kad_put_fn put_cb;
	an_kad_get_fn get_cb;
	an_kad_providers_fn prov_cb;
	an_kad_republish_item_fn item_cb;
	an_kad_done_fn done_cb;
	void *arg;
};

static void op_free(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->dials) { /* dial callbacks still to come: they free it */
		op->cancelled = true;
		return;
	}
	kreq_detach(n, op);
	ev_timer_stop(n->loop, &op->timer);
	ev_timer_stop(n->loop, &op->defer);
	if (op->prev)
		op->prev->next = op->next;
	else if (n->ops == op)
		n->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = op->prev = NULL;
	if (op->child) {
		op->child->cancelled = true;
		op_free(op->child);
	}
	an_lookup_free(op->lk);
	an_buf_free(&op->key);
	an_buf_free(&op->value);
	an_buf_free(&op->root_key);
	an_buf_free(&op->root_value);
	free(op->targets);
	free(op->ann);
	json_decref(op->root_json);
	an_store_record_free(&op->rec);
	free(op);
	node_unref(n);
}

void an_kad_op_cancel(struct an_kad_op *op)
{
	if (!op)
		return;
	op->cancelled = true;
	op_free(op);
}

static struct an_kad_op *op_new(struct an_kad_node *n, enum op_kind kind, void *arg)
{
	struct an_kad_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->node = n;
	op->kind = kind;
	op->arg = arg;
	an_buf_init(&op->key, AN_KAD_KEY_MAX);
	an_buf_init(&op->value, AN_LOOKUP_VALUE_MAX_DEFAULT);
	an_buf_init(&op->root_key, AN_KAD_KEY_MAX);
	an_buf_init(&op->root_value, AN_LOOKUP_VALUE_MAX_DEFAULT);
	an_store_record_init(&op->rec);
	op->next = n->ops;
	if (n->ops)
		n->ops->prev = op;
	n->ops = op;
	n->refs++;
	return op;
}

static void lookup_pump(struct an_kad_op *op);
static void lookup_done(struct an_kad_op *op);
static void find_root(struct an_kad_node *n, struct an_kad_op *op, const json_t *root);

static void op_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	lookup_pump(w->data);
}

static void lookup_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	struct an_kad_op *op = arg;
	struct an_kad_node *n = op->node;
	if (!op->lk)
		return;
	if (err < 0 || !m) {
		an_lookup_failure(op->lk, now_ms(n), &r->peer);
	} else if (an_lookup_response(op->lk, now_ms(n), &r->peer, m) == 0) {
		/* It answered our kad request: a server, reachable at what we dialed. */
		if (r->naddrs)
			rt_seen(n, &r->peer, r->addrs, r->naddrs);
	}
	lookup_pump(op);
}

static void lookup_pump(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	struct an_lookup_request req;
	for (;;) {
		int ev = an_lookup_next_request(op->lk, now_ms(n), &req);
		if (ev == AN_LOOKUP_REQUEST) {
			if (!kreq_start(n, &req.peer, req.addrs, req.naddrs, req.msg, req.msg_len, true,
					lookup_resp, op, 0))
				an_lookup_failure(op->lk, now_ms(n), &req.peer);
			continue;
		}
		if (ev == AN_LOOKUP_TIMEOUT) {
			for (struct kreq *r = n->reqs; r; r = r->next)
				if (r->arg == op && an_peerid_equal(&r->peer, &req.peer))
					r->cb = NULL;
			continue;
		}
		if (ev == AN_LOOKUP_WAIT) {
			uint64_t d = an_lookup_next_deadline(op->lk), now = now_ms(n);
			ev_timer_stop(n->loop, &op->timer);
			if (d != UINT64_MAX) {
				ev_timer_set(&op->timer, d > now ? (double)(d - now) / 1000.0 + 0.001 : 0.001, 0);
				ev_timer_start(n->loop, &op->timer);
			}
			return;
		}
		ev_timer_stop(n->loop, &op->timer);
		kreq_detach(n, op);
		lookup_done(op); /* may free op */
		return;
	}
}

static int lookup_begin(struct an_kad_op *op, enum an_lookup_kind kind, const uint8_t *key,
			size_t key_len)
{
	struct an_kad_node *n = op->node;
	struct an_lookup_config lc = {
		.kind = kind,
		.k = n->cfg.k,
		.alpha = n->cfg.alpha,
		.paths = n->cfg.paths,
		.request_timeout_ms = n->cfg.request_timeout_ms,
		.quorum = n->cfg.quorum,
	};
	const struct an_rt_entry *close[AN_RT_K_MAX];
	struct an_kad_id target;
	size_t c;
	int rc;
	if (kind == AN_LOOKUP_GET_VALUE) {
		op->vctx.now = now_s();
		op->vctx.root = op->root_json;
		op->vctx.get_root = store_root_get;
		op->vctx.arg = n;
		lc.validate = an_validate_cb;
		lc.compare = an_validate_compare_cb;
		lc.arg = &op->vctx;
	}
	an_lookup_free(op->lk);
	op->lk = NULL;
	rc = an_lookup_new(&op->lk, &lc, an_host_peer_id(n->host), key, key_len);
	if (rc < 0)
		return rc;
	an_kad_id_from_key(key, key_len, &target);
	c = an_rt_closest(&n->rt, &target, NULL, close, n->cfg.k);
	for (size_t i = 0; i < c; i++)
		an_lookup_seed(op->lk, &close[i]->id, close[i]->addrs, close[i]->naddrs);
	for (size_t i = 0; i < op->nseeds; i++)
		an_lookup_seed(op->lk, &op->seeds[i], &op->seed_addrs[i], 1);
	ev_init(&op->timer, op_timer_cb);
	op->timer.data = op;
	return 0;
}

/* Run fn from the loop (so callbacks never run inside the starting call). */
static void op_defer(struct an_kad_op *op, void (*fn)(struct ev_loop *, ev_timer *, int))
{
	ev_timer_init(&op->defer, fn, 0, 0);
	op->defer.data = op;
	ev_timer_start(op->node->loop, &op->defer);
}

/* ---- put: targets ---- */

static void put_finish(struct an_kad_op *op);
static void put_step(struct an_kad_op *op, size_t i);

static void put_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	struct an_kad_op *op = arg;
	struct target *t = &op->targets[r->tag];
	if (t->stage == 1 && err == 0 && m && m->has_record && m->record.value.len == op->value.len &&
	    memcmp(m->record.value.p, op->value.data, op->value.len) == 0) {
		t->stored = true;
		op->stored++;
	}
	t->stage++;
	put_step(op, r->tag);
}

/* Send target i its next PUT_VALUE; when every target is done, finish. */
static void put_step(struct an_kad_op *op, size_t i)
{
	struct an_kad_node *n = op->node;
	struct target *t = &op->targets[i];
	for (;;) {
		const struct an_buf *k = t->stage == 0 ? &op->root_key : &op->key;
		const struct an_buf *v = t->stage == 0 ? &op->root_value : &op->value;
		struct an_kad_msg m;
		struct an_buf body;
		char when[AN_KAD_TIME_LEN + 1];
		struct kreq *r = NULL;
		if (t->stage >= 2) {
			if (--op->pending == 0)
				put_finish(op); /* may free op */
			return;
		}
		if (t->stage == 0 && op->root_value.len == 0) {
			t->stage = 1;
			continue;
		}
		an_kad_msg_init(&m);
		m.type = AN_KAD_PUT_VALUE;
		m.has_key = true;
		m.key.p = k->data;
		m.key.len = k->len;
		m.has_record = true;
		m.record.key = m.key;
		m.record.value.p = v->data;
		m.record.value.len = v->len;
		if (an_kad_time_format(now_s(), 0, when) == 0) {
			m.record.time_received.p = (const uint8_t *)when;
			m.record.time_received.len = strlen(when);
		}
		an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
		if (an_kad_msg_encode(&m, &body) == 0)
			r = kreq_start(n, &t->id, t->addrs, t->naddrs, body.data, body.len, true, put_resp,
				       op, i);
		an_buf_free(&body);
		an_kad_msg_free(&m);
		if (r)
			return;
		t->stage++;
	}
}

static void put_send_all(struct an_kad_op *op, const struct an_lookup_peer *const *peers, size_t c)
{
	free(op->targets);
	op->targets = calloc(c ? c : 1, sizeof(*op->targets));
	op->ntargets = 0;
	if (!op->targets)
		c = 0;
	for (size_t i = 0; i < c; i++) {
		struct target *t = &op->targets[op->ntargets++];
		t->id = peers[i]->id;
		t->naddrs = peers[i]->naddrs;
		memcpy(t->addrs, peers[i]->addrs, t->naddrs * sizeof(t->addrs[0]));
	}
	op->pending = op->ntargets + 1;
	for (size_t i = 0; i < op->ntargets; i++)
		put_step(op, i);
	if (--op->pending == 0)
		put_finish(op);
}

/* Our proof for fqdn at the node's claim bits: from the cache, else found now. */
static int claim_nonce(struct an_kad_node *n, const char *fqdn, uint64_t *nonce)
{
	unsigned bits = n->srv.claim_bits;
	struct claim_proof *c;
	int rc;
	for (size_t i = 0; i < n->nclaims && i < CLAIM_CACHE; i++)
		if (n->claims[i].bits == bits && strcmp(n->claims[i].fqdn, fqdn) == 0) {
			*nonce = n->claims[i].nonce;
			return 0;
		}
	/* 2^(bits+6) tries fail with odds e^-64: the cap only bounds the loop. */
	rc = an_claim_find(an_host_peer_id(n->host), fqdn, strlen(fqdn), bits,
			   bits + 6 < 64 ? (uint64_t)1 << (bits + 6) : 0, nonce);
	if (rc < 0)
		return rc;
	c = &n->claims[n->nclaims++ % CLAIM_CACHE];
	snprintf(c->fqdn, sizeof(c->fqdn), "%s", fqdn);
	c->bits = bits;
	c->nonce = *nonce;
	return 0;
}

static void claim_done(struct an_kad_op *op, int claim)
{
	op->claim = claim;
	put_finish(op); /* may free op */
}

static void claim_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	(void)r;
	struct an_kad_op *op = arg;
	const struct an_peerid *self = an_host_peer_id(op->node->host);
	for (size_t i = 0; err == 0 && m && i < m->nproviders; i++)
		if (an_peerid_equal(&m->providers[i].id, self))
			op->listed = true;
	if (--op->check_pending == 0)
		claim_done(op, op->listed ? AN_KAD_CLAIM_STORED : AN_KAD_CLAIM_REFUSED);
}

/* Ask the first CLAIM_CHECK_PEERS peers that took our ADD_PROVIDER for the key's providers. */
static void claim_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	struct an_kad_node *n = op->node;
	struct an_kad_msg m;
	struct an_buf body;
	size_t asked = 0;
	ev_timer_stop(loop, w);
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_PROVIDERS;
	m.has_key = true;
	m.key.p = op->name_key;
	m.key.len = sizeof(op->name_key);
	an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
	op->check_pending = 1;
	if (an_kad_msg_encode(&m, &body) == 0)
		for (size_t i = 0; i < op->nann && asked < CLAIM_CHECK_PEERS; i++) {
			const struct target *t = &op->ann[i];
			if (!t->stored)
				continue;
			if (kreq_start(n, &t->id, t->addrs, t->naddrs, body.data, body.len, true,
				       claim_resp, op, i)) {
				asked++;
				op->check_pending++;
			}
		}
	an_buf_free(&body);
	an_kad_msg_free(&m);
	if (--op->check_pending == 0)
		claim_done(op, op->listed ? AN_KAD_CLAIM_STORED : AN_KAD_CLAIM_REFUSED);
}

static void claim_written(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	(void)m;
	struct an_kad_op *op = arg;
	op->ann[r->tag].stored = err == 0;
	if (--op->ann_pending == 0) {
		/* Give the peers a moment to take the request in before asking. */
		ev_timer_init(&op->defer, claim_check_cb, CLAIM_CHECK_DELAY, 0);
		op->defer.data = op;
		ev_timer_start(op->node->loop, &op->defer);
	}
}

/*
 * ADD_PROVIDER of the bare-name key, with our claim's proof, to the
 * closest, and to our own store; then the check of whether they kept it.
 * true if the check is under way (it calls put_finish), false if the put
 * is to finish now.
 */
static bool announce_send(struct an_kad_op *op, const struct an_lookup_peer *const *peers, size_t c)
{
	struct an_kad_node *n = op->node;
	struct an_kad_msg m;
	struct an_buf body;
	const struct an_multiaddr *addrs = n->self_addrs;
	size_t na = n->nself;
	struct an_multiaddr rec_addrs[AN_RT_ADDRS_MAX];
	char name[AN_CLAIM_NAME_MAX];
	uint8_t nb[AN_CLAIM_NONCE_LEN];
	uint64_t nonce = 0;
	bool checking = false;
	int rc;
	refresh_self_addrs(n);
	na = n->nself;
	if (na == 0) {
		/* A client without listen addresses: announce the record's own. */
		json_t *rec = json_loadb((const char *)op->value.data, op->value.len, 0, NULL);
		size_t i;
		json_t *a;
		json_array_foreach(json_object_get(rec, "multiaddrs"), i, a)
		{
			if (na < AN_RT_ADDRS_MAX && json_is_string(a) &&
			    an_multiaddr_parse(json_string_value(a), &rec_addrs[na]) == 0)
				na++;
		}
		json_decref(rec);
		addrs = rec_addrs;
	}
	if (na > AN_RT_ADDRS_MAX)
		na = AN_RT_ADDRS_MAX;
	if (na == 0) {
		node_log(n, "kad: no address to announce as provider");
		op->claim = AN_KAD_CLAIM_REFUSED;
		return false;
	}
	rc = claim_nonce(n, op->fqdn, &nonce);
	if (rc < 0) {
		node_log(n, "kad: no proof of work for the claim on '%s': %s", op->fqdn, an_strerror(rc));
		op->claim = AN_KAD_CLAIM_REFUSED;
		return false;
	}
	an_claim_nonce_bytes(nonce, nb);
	snprintf(name, sizeof(name), "%s%s", AN_CLAIM_NAME_PREFIX, op->fqdn);
	an_store_provider_claim(n->store, op->name_key, sizeof(op->name_key), an_host_peer_id(n->host),
				addrs, na, true,
				an_claim_work(an_host_peer_id(n->host), op->fqdn, strlen(op->fqdn), nonce),
				now_s());
	free(op->ann);
	op->ann = calloc(c ? c : 1, sizeof(*op->ann));
	op->nann = 0;
	op->ann_pending = 0;
	an_kad_msg_init(&m);
	m.type = AN_KAD_ADD_PROVIDER;
	m.has_key = true;
	m.key.p = op->name_key;
	m.key.len = sizeof(op->name_key);
	m.has_record = true;
	m.record.key.p = (const uint8_t *)name;
	m.record.key.len = strlen(name);
	m.record.value.p = nb;
	m.record.value.len = sizeof(nb);
	an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
	if (op->ann &&
	    an_kad_msg_add_peer_ma(&m, true, an_host_peer_id(n->host), addrs, na,
				   AN_KAD_CONNECTED) == 0 &&
	    an_kad_msg_encode(&m, &body) == 0)
		for (size_t i = 0; i < c; i++) {
			struct target *t = &op->ann[op->nann];
			t->id = peers[i]->id;
			t->naddrs = peers[i]->naddrs;
			memcpy(t->addrs, peers[i]->addrs, t->naddrs * sizeof(t->addrs[0]));
			if (kreq_start(n, &peers[i]->id, peers[i]->addrs, peers[i]->naddrs, body.data,
				       body.len, false, claim_written, op, op->nann)) {
				op->nann++;
				op->ann_pending++;
			}
		}
	an_buf_free(&body);
	an_kad_msg_free(&m);
	checking = op->ann_pending > 0;
	if (!checking)
		op->claim = AN_KAD_CLAIM_REFUSED; /* nobody to hold it */
	return checking;
}

static void put_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->kind == OP_GET) { /* corrections sent: the get's answer went out already */
		op_free(op);
		return;
	}
	if (op->announce && op->phase == 1) {
		op->phase = 2;
		if (lookup_begin(op, AN_LOOKUP_FIND_NODE, op->name_key, sizeof(op->name_key)) == 0) {
			lookup_pump(op);
			return;
		}
	}
	struct an_peerid *peers = calloc(op->ntargets ? op->ntargets : 1, sizeof(*peers));
	size_t np = 0;
	for (size_t i = 0; peers && i < op->ntargets; i++)
		if (op->targets[i].stored)
			peers[np++] = op->targets[i].id;
	if (!op->cancelled && op->put_cb)
		op->put_cb(op->arg, 0, op->stored, peers, np);
	free(peers);
	(void)n;
	op_free(op);
}

/* ---- lookup results, per operation ---- */

/*
 * A bootstrap that left the table smaller than the bootstrap set (a seed
 * down, or refusing us at its pending-handshake limit when a whole network
 * starts at once) is tried again after a backoff that doubles from
 * AN_KAD_NODE_BOOT_RETRY_MIN_MS to _MAX_MS, each delay drawn from its
 * upper half so nodes started together spread out, instead of waiting for
 * the next refresh (10 min).  Daemons only (cfg.maintain): tools bootstrap
 * once, with their own deadline.
 */
static void boot_schedule(struct an_kad_node *n)
{
	uint64_t b, delay;
	if (!n->cfg.maintain || n->nboot == 0 || n->closed)
		return;
	if (n->rt.size >= n->nboot) {
		n->boot_backoff_ms = 0;
		return;
	}
	if (ev_is_active(&n->boot_retry))
		return;
	b = n->boot_backoff_ms ? n->boot_backoff_ms : AN_KAD_NODE_BOOT_RETRY_MIN_MS;
	delay = b / 2 + randombytes_uniform((uint32_t)(b / 2 + 1));
	n->boot_backoff_ms = b * 2 < AN_KAD_NODE_BOOT_RETRY_MAX_MS ? b * 2 : AN_KAD_NODE_BOOT_RETRY_MAX_MS;
	ev_timer_set(&n->boot_retry, (double)delay / 1000.0, 0);
	ev_timer_start(n->loop, &n->boot_retry);
	node_log(n, "kad: %zu peers in the table, %zu bootstrap addresses: bootstrapping again in %.1f s",
		 n->rt.size, n->nboot, (double)delay / 1000.0);
}

static void boot_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	if (n->closed)
		return;
	if (n->rt.size >= n->nboot) {
		n->boot_backoff_ms = 0;
		return;
	}
	if (an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL) < 0)
		boot_schedule(n); /* out of memory now: later */
}

static void boot_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->bootstrap && !op->cancelled)
		boot_schedule(n);
	if (!op->cancelled && op->boot_cb)
		op->boot_cb(op->arg, n->rt.size ? 0 : AN_ENOTFOUND, n->rt.size);
	op_free(op);
}

static void get_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	const uint8_t *val = NULL;
	size_t len = 0, count = 0;
	const struct an_lookup_peer *corr[AN_RT_K_MAX];
	size_t nc = 0;
	int have = an_lookup_value(op->lk, &val, &len, &count) == 0;
	/* op->value holds the local value, if any; the better of the two wins. */
	if (have && op->value.len &&
	    an_validate_compare(op->key.data, op->key.len, op->value.data, op->value.len, val, len) >= 0) {
		have = 0;
	}
	if (have) {
		an_buf_reset(&op->value);
		if (an_buf_append(&op->value, val, len) < 0)
			an_buf_reset(&op->value);
		op->from_peers = count;
		nc = an_lookup_corrections(op->lk, corr, n->cfg.k);
	}
	if (!op->cancelled && op->get_cb) {
		if (op->value.len)
			op->get_cb(op->arg, 0, op->value.data, op->value.len, op->from_peers);
		else
			op->get_cb(op->arg, AN_ENOTFOUND, NULL, 0, 0);
	}
	op->get_cb = NULL;
	if (nc == 0 || op->cancelled) {
		op_free(op);
		return;
	}
	/* Corrections (js does the same): the best value to those that lacked it,
	 * a subdomain's root first (the caller's, else the store's). */
	find_root(n, op, op->root_json);
	put_send_all(op, corr, nc);
}

static void prov_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	struct an_kad_provider out[AN_KAD_SERVER_PROVIDERS_MAX];
	size_t np = 0;
	int local = ops_get_providers(n, op->key.data, op->key.len, out, AN_KAD_SERVER_PROVIDERS_MAX, 0);
	if (local > 0)
		np = (size_t)local;
	if (op->lk) {
		const struct an_lookup_peer *ps[AN_KAD_SERVER_PROVIDERS_MAX];
		size_t c = an_lookup_providers(op->lk, ps, AN_KAD_SERVER_PROVIDERS_MAX);
		for (size_t i = 0; i < c && np < AN_KAD_SERVER_PROVIDERS_MAX; i++) {
			bool dup = false;
			for (size_t j = 0; j < np; j++)
				if (an_peerid_equal(&out[j].id, &ps[i]->id))
					dup = true;
			if (dup)
				continue;
			memset(&out[np], 0, sizeof(out[np]));
			out[np].id = ps[i]->id;
			for (size_t a = 0; a < ps[i]->naddrs && a < AN_RT_ADDRS_MAX; a++)
				out[np].addrs[out[np].naddrs++] = ps[i]->addrs[a];
			np++;
		}
	}
	if (!op->cancelled && op->prov_cb)
		op->prov_cb(op->arg, 0, out, np);
	op_free(op);
}

static void lookup_done(struct an_kad_op *op)
{
	const struct an_lookup_peer *peers[AN_RT_K_MAX];
	size_t c;
	switch (op->kind) {
	case OP_BOOT:
		boot_finish(op);
		return;
	case OP_GET:
		get_finish(op);
		return;
	case OP_PROV:
		prov_finish(op);
		return;
	case OP_PUT:
		c = an_lookup_closest(op->lk, peers, op->node->cfg.k);
		if (op->phase == 0) {
			op->phase = 1;
			put_send_all(op, peers, c);
		} else {
			op->announce = false;
			if (!announce_send(op, peers, c))
				put_finish(op);
		}
		return;
	case OP_REPUB:
		return;
	}
}

/* ---- starting operations ---- */

static void boot_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg);

struct boot_dial {
	struct an_kad_op *op;
	struct an_multiaddr addr;
};

static void boot_lookup(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	const struct an_peerid *self = an_host_peer_id(n->host);
	if (n->closed || lookup_begin(op, AN_LOOKUP_FIND_NODE, self->bytes, self->len) < 0) {
		boot_finish(op);
		return;
	}
	lookup_pump(op);
}

static void boot_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct boot_dial *d = arg;
	struct an_kad_op *op = d->op;
	op->dials--;
	if (err == 0 && !op->cancelled && op->nseeds < AN_KAD_NODE_BOOTSTRAP_MAX) {
		const struct an_peerid *id = an_host_conn_peer(c);
		struct an_multiaddr rest;
		struct an_peerid ignored;
		an_multiaddr_split_p2p(&d->addr, &rest, &ignored);
		op->seeds[op->nseeds] = *id;
		op->seed_addrs[op->nseeds++] = rest;
	} else if (err < 0 && !op->cancelled) {
		char text[AN_MULTIADDR_TEXT_MAX];
		if (an_multiaddr_format(&d->addr, text, sizeof(text)) == 0)
			node_log(op->node, "kad: bootstrap peer %s: %s", text, an_strerror(err));
	}
	free(d);
	if (op->cancelled) {
		if (op->dials == 0)
			op_free(op);
		return;
	}
	if (op->dials == 0)
		boot_lookup(op);
}

static void boot_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	struct an_kad_node *n = op->node;
	ev_timer_stop(loop, w);
	for (size_t i = 0; i < n->nboot; i++) {
		struct boot_dial *d = calloc(1, sizeof(*d));
		if (!d || an_multiaddr_parse(n->boot[i], &d->addr) < 0) {
			free(d);
			continue;
		}
		d->op = op;
		op->dials++;
		if (an_host_dial(n->host, n->boot[i], (int)n->cfg.request_timeout_ms, boot_dial_cb, d) < 0) {
			op->dials--;
			free(d);
		}
	}
	if (op->dials == 0)
		boot_lookup(op);
}

int an_kad_node_bootstrap(struct an_kad_node *n, const char *const *addrs, size_t naddrs,
			  an_kad_bootstrap_fn cb, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op;
	if (addrs && naddrs) {
		for (size_t i = 0; i < n->nboot; i++)
			free(n->boot[i]);
		free(n->boot);
		n->nboot = 0;
		if (naddrs > AN_KAD_NODE_BOOTSTRAP_MAX)
			naddrs = AN_KAD_NODE_BOOTSTRAP_MAX;
		n->boot = calloc(naddrs, sizeof(char *));
		if (!n->boot)
			return -ENOMEM;
		for (size_t i = 0; i < naddrs; i++)
			if ((n->boot[n->nboot] = strdup(addrs[i])))
				n->nboot++;
	}
	op = op_new(n, OP_BOOT, arg);
	if (!op)
		return -ENOMEM;
	op->bootstrap = true;
	op->boot_cb = cb;
	op_defer(op, boot_start_cb);
	if (out)
		*out = op;
	return 0;
}

static void lookup_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	ev_timer_stop(loop, w);
	lookup_pump(op);
}

/* The root record's key and value for a subdomain value (from the store). */
static void find_root(struct an_kad_node *n, struct an_kad_op *op, const json_t *root)
{
	json_t *rec = json_loadb((const char *)op->value.data, op->value.len, 0, NULL);
	const char *ctx = json_string_value(
		json_object_get(json_array_get(json_object_get(rec, "root"), 0), "context"));
	const char *key = (const char *)op->key.data;
	const char *at = memchr(key, '@', op->key.len);
	if (ctx && at && an_validate_namespace(op->key.data, op->key.len) == AN_NS_AN) {
		struct an_store_record r;
		an_buf_append(&op->root_key, key, (size_t)(at - key) + 1);
		an_buf_append(&op->root_key, ctx, strlen(ctx));
		an_store_record_init(&r);
		if (root) {
			if (an_record_serialize(root, &op->root_value) < 0)
				an_buf_reset(&op->root_value);
		} else if (an_store_get(n->store, op->root_key.data, op->root_key.len, now_s(), &r) == 0) {
			an_buf_append(&op->root_value, r.value.data, r.value.len);
		}
		an_store_record_free(&r);
	}
	json_decref(rec);
}

/* The fqdn of an /an/<ph>@<fqdn> key, parsed as an_validate_name_key does. */
static int key_fqdn(const uint8_t *key, size_t key_len, char fqdn[AN_RECORD_FQDN_MAX + 1])
{
	char text[AN_VALIDATE_KEY_MAX + 8], peerhash[AN_PEERHASH_LEN + 1];
	if (key_len < 4 || key_len > AN_VALIDATE_KEY_MAX || memchr(key, 0, key_len))
		return AN_EMALFORMED;
	memcpy(text, "an://", 5);
	memcpy(text + 5, key + 4, key_len - 4);
	text[5 + key_len - 4] = 0;
	return an_record_parse_name(text, false, peerhash, fqdn) == 0 ? 0 : AN_EMALFORMED;
}

int an_kad_op_claim(const struct an_kad_op *op)
{
	return op ? op->claim : AN_KAD_CLAIM_NONE;
}

int an_kad_node_put(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *value, size_t value_len, unsigned flags, const json_t *root,
		    an_kad_put_fn cb, void *arg, struct an_kad_op **out, struct an_record_error *e)
{
	struct an_kad_op *op;
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	if (!(flags & AN_KAD_PUT_NO_STORE)) {
		struct an_store_put p = {.key = key,
					 .key_len = key_len,
					 .value = value,
					 .value_len = value_len,
					 .flags = (flags & AN_KAD_PUT_OURS) ? AN_STORE_OURS : 0,
					 .root = root};
		rc = an_store_put(n->store, &p, now_s(), NULL, e);
		if (rc < 0 && rc != AN_ESTALE)
			return rc;
		if (rc == AN_ESTALE)
			return rc;
	}
	op = op_new(n, OP_PUT, arg);
	if (!op)
		return -ENOMEM;
	op->put_cb = cb;
	op->flags = flags;
	if (an_buf_append(&op->key, key, key_len) < 0 ||
	    an_buf_append(&op->value, value, value_len) < 0) {
		op_free(op);
		return AN_ETOOBIG;
	}
	find_root(n, op, root);
	if ((flags & AN_KAD_PUT_OURS) && an_validate_name_key(key, key_len, op->name_key) == 0) {
		/* Announce only as the publisher itself: the provider is the sender (js, rust). */
		json_t *rec = json_loadb((const char *)value, value_len, 0, NULL);
		struct an_peerid pub;
		const char *pk = json_string_value(json_object_get(rec, "publisherPublicKey"));
		op->announce = pk && an_peerid_parse(pk, &pub) == 0 &&
			       an_peerid_equal(&pub, an_host_peer_id(n->host)) &&
			       key_fqdn(key, key_len, op->fqdn) == 0;
		json_decref(rec);
	}
	rc = lookup_begin(op, AN_LOOKUP_FIND_NODE, key, key_len);
	if (rc < 0) {
		op_free(op);
		return rc;
	}
	op_defer(op, lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

int an_kad_node_get(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *root_value, size_t root_len, an_kad_get_fn cb, void *arg,
		    struct an_kad_op **out)
{
	struct an_kad_op *op = op_new(n, OP_GET, arg);
	struct an_store_record r;
	int rc;
	if (!op)
		return -ENOMEM;
	op->get_cb = cb;
	if (an_buf_append(&op->key, key, key_len) < 0) {
		op_free(op);
		return AN_ETOOBIG;
	}
	if (root_value && root_len) {
		op->root_json = json_loadb((const char *)root_value, root_len, 0, NULL);
		if (!op->root_json) {
			op_free(op);
			return AN_EMALFORMED;
		}
	}
	an_store_record_init(&r);
	if (key_len <= AN_VALIDATE_KEY_MAX && an_store_get(n->store, key, key_len, now_s(), &r) == 0)
		an_buf_append(&op->value, r.value.data, r.value.len);
	an_store_record_free(&r);
	rc = lookup_begin(op, AN_LOOKUP_GET_VALUE, key, key_len);
	if (rc < 0) {
		op_free(op);
		return rc;
	}
	op_defer(op, lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

int an_kad_node_providers(struct an_kad_node *n, const uint8_t *key, size_t key_len,
			  an_kad_providers_fn cb, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op = op_new(n, OP_PROV, arg);
	int rc;
	if (!op)
		return -ENOMEM;
	op->prov_cb = cb;
	if (an_buf_append(&op->key, key, key_len) < 0) {
		op_free(op);
		return AN_ETOOBIG;
	}
	rc = lookup_begin(op, AN_LOOKUP_GET_PROVIDERS, key, key_len);
	if (rc < 0) {
		op_free(op);
		return rc;
	}
	op_defer(op, lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

/* ---- republish ---- */

static void repub_next(struct an_kad_op *op);

static void repub_child_cb(void *arg, int err, size_t stored, const struct an_peerid *peers,
			   size_t np)
{
	(void)err; (void)np; (void)peers;
	struct an_kad_op *op = arg;
	op->child = NULL;
	if (!op->cancelled && op->item_cb)
		op->item_cb(op->arg, op->rec.key.data, op->rec.key.len, op->child_status, stored);
	repub_next(op);
}

static void repub_item(struct an_kad_op *op, const char *status, size_t stored)
{
	if (!op->cancelled && op->item_cb)
		op->item_cb(op->arg, op->rec.key.data, op->rec.key.len, status, stored);
}

/* Handle op->rec; 1 if a put was started (its callback continues), else 0. */
static int repub_one(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	int64_t now = now_s();
	json_t *rec = NULL, *root = NULL;
	struct an_buf val;
	struct an_record_error e;
	int started = 0, rc;
	bool is_an = an_validate_namespace(op->rec.key.data, op->rec.key.len) == AN_NS_AN;
	bool is_root = true;
	an_buf_init(&val, AN_RECORD_MAX * 2);
	if (is_an) {
		rec = json_loadb((const char *)op->rec.value.data, op->rec.value.len, 0, NULL);
		is_root = json_is_true(json_object_get(json_object_get(rec, "dns"), "isRoot"));
	}
	if ((op->pass == 0) != is_root)
		goto out;
	if (op->force ? !(op->rec.flags & (AN_STORE_OURS | AN_STORE_PINNED)) : false)
		goto out;
	an_store_mark_republished(n->store, op->rec.key.data, op->rec.key.len, now);
	const char *pk = json_string_value(json_object_get(rec, "publisherPublicKey"));
	struct an_peerid pub;
	if ((op->rec.flags & AN_STORE_OURS) && is_an && pk && an_peerid_parse(pk, &pub) == 0 &&
	    an_peerid_equal(&pub, an_host_peer_id(n->host))) {
		struct an_record_sign_opts so = {.now = now, .resign = true};
		if (!is_root) {
			/* refer to the root as it is now (re-signed in pass 0) */
			struct an_buf rk;
			struct an_store_record rr;
			const char *ctx = json_string_value(json_object_get(
				json_array_get(json_object_get(rec, "root"), 0), "context"));
			const char *at = memchr(op->rec.key.data, '@', op->rec.key.len);
			an_buf_init(&rk, AN_KAD_KEY_MAX);
			an_store_record_init(&rr);
			if (ctx && at) {
				an_buf_append(&rk, op->rec.key.data, (size_t)((const uint8_t *)at - op->rec.key.data) + 1);
				an_buf_append(&rk, ctx, strlen(ctx));
				if (an_store_get(n->store, rk.data, rk.len, now, &rr) == 0)
					root = json_loadb((const char *)rr.value.data, rr.value.len, 0, NULL);
			}
			an_buf_free(&rk);
			an_store_record_free(&rr);
			so.root = root;
		}
		rc = an_record_sign(rec, an_host_key(n->host), &so, &e);
		if (rc == 0)
			rc = an_record_serialize(rec, &val);
		if (rc == 0)
			rc = an_kad_node_put(n, op->rec.key.data, op->rec.key.len, val.data, val.len,
					     AN_KAD_PUT_OURS, root, repub_child_cb, op, &op->child, &e);
		if (rc < 0) {
			node_log(n, "kad: republish: %s: %s", an_strerror(rc), e.message);
			repub_item(op, "refused", 0);
			goto out;
		}
		op->child_status = "resigned";
		started = 1;
		goto out;
	}
	if (op->rec.expires && op->rec.expires <= now) {
		repub_item(op, "expired", 0);
		goto out;
	}
	rc = an_kad_node_put(n, op->rec.key.data, op->rec.key.len, op->rec.value.data,
			     op->rec.value.len, AN_KAD_PUT_NO_STORE, NULL, repub_child_cb, op,
			     &op->child, NULL);
	if (rc < 0) {
		repub_item(op, "refused", 0);
		goto out;
	}
	op->child_status = "republished";
	started = 1;
out:
	json_decref(rec);
	json_decref(root);
	an_buf_free(&val);
	return started;
}

static void repub_next(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	for (;;) {
		int rc = an_store_next(n->store, op->force ? AN_STORE_ALL : AN_STORE_REPUBLISH_DUE,
				       now_s(), &op->rec);
		if (rc == AN_ENOTFOUND) {
			if (op->pass == 0) {
				op->pass = 1;
				an_buf_reset(&op->rec.key);
				continue;
			}
			break;
		}
		if (rc < 0) {
			op->err = rc;
			break;
		}
		if (repub_one(op))
			return;
	}
	if (!op->cancelled && op->done_cb)
		op->done_cb(op->arg, op->err);
	op_free(op);
}

static void repub_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(loop, w);
	repub_next(w->data);
}

int an_kad_node_republish(struct an_kad_node *n, bool force, an_kad_republish_item_fn item,
			  an_kad_done_fn done, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op = op_new(n, OP_REPUB, arg);
	if (!op)
		return -ENOMEM;
	op->force = force;
	op->item_cb = item;
	op->done_cb = done;
	op_defer(op, repub_start_cb);
	if (out)
		*out = op;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Maintenance: refresh, re-replication, republish, sweep.                  */

static void maint_repl_next(struct an_kad_node *n, struct an_store_record *r);

struct repl {
	struct an_kad_node *node;
	struct an_store_record rec;
};

static void maint_end(struct an_kad_node *n)
{
	size_t removed = 0;
	an_store_sweep(n->store, now_s(), AN_KAD_NODE_SWEEP_MAX, &removed);
	n->maintaining = false;
}

static void maint_repub_done(void *arg, int err)
{
	(void)err;
	maint_end(arg);
}

static void maint_repl_cb(void *arg, int err, size_t stored, const struct an_peerid *peers,
			  size_t np)
{
	(void)err; (void)np; (void)peers; (void)stored;
	struct repl *x = arg;
	an_store_mark_replicated(x->node->store, x->rec.key.data, x->rec.key.len, now_s());
	maint_repl_next(x->node, &x->rec);
	an_store_record_free(&x->rec);
	free(x);
}

/* Re-replicate the next due record after r's key; then republish. */
static void maint_repl_next(struct an_kad_node *n, struct an_store_record *r)
{
	while (an_store_next(n->store, AN_STORE_REPLICATE_DUE, now_s(), r) == 0) {
		struct repl *x = calloc(1, sizeof(*x));
		if (!x)
			break;
		x->node = n;
		an_store_record_init(&x->rec);
		if (an_buf_append(&x->rec.key, r->key.data, r->key.len) == 0 &&
		    an_kad_node_put(n, r->key.data, r->key.len, r->value.data, r->value.len,
				    AN_KAD_PUT_NO_STORE, NULL, maint_repl_cb, x, NULL, NULL) == 0)
			return;
		an_store_mark_replicated(n->store, r->key.data, r->key.len, now_s());
		an_store_record_free(&x->rec);
		free(x);
	}
	if (an_kad_node_republish(n, false, NULL, maint_repub_done, n, NULL) < 0)
		maint_end(n);
}

static void maintain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	struct an_store_record r;
	if (n->maintaining || n->closed)
		return;
	n->maintaining = true;
	an_store_record_init(&r);
	maint_repl_next(n, &r);
	an_store_record_free(&r);
}

static void refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	unsigned stale[AN_KAD_NODE_REFRESH_CPL_MAX + 1];
	size_t c;
	an_rt_expire_checks(&n->rt, now_ms(n));
	if (n->rt.size == 0) {
		if (!ev_is_active(&n->boot_retry)) /* else a retry is due anyway */
			an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL);
		return;
	}
	an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL); /* the self lookup */
	c = an_rt_stale_buckets(&n->rt, now_ms(n), n->cfg.refresh_ms, AN_KAD_NODE_REFRESH_CPL_MAX,
				stale, AN_KAD_NODE_REFRESH_CPL_MAX + 1);
	for (size_t i = 0; i < c; i++) {
		uint8_t key[34];
		struct an_kad_op *op;
		if (an_kad_key_with_cpl(&n->rt.self_kad, stale[i], (uint64_t)rand(), 1u << 20, key) < 0)
			continue;
		an_rt_bucket_touch(&n->rt, stale[i], now_ms(n));
		op = op_new(n, OP_BOOT, NULL);
		if (!op)
			break;
		if (lookup_begin(op, AN_LOOKUP_FIND_NODE, key, sizeof(key)) < 0) {
			op_free(op);
			continue;
		}
		op_defer(op, lookup_start_cb);
	}
}

/* ---------------------------------------------------------------------- */

static void snapshot_load(struct an_kad_node *n)
{
	char path[4200];
	struct an_buf b;
	snprintf(path, sizeof(path), "%s/%s", n->state_dir, AN_KAD_SNAPSHOT_NAME);
	an_buf_init(&b, SNAPSHOT_MAX);
	if (an_read_file(path, &b) == 0 && an_rt_load(&n->rt, b.data, b.len) < 0)
		node_log(n, "kad: routing snapshot %s is damaged; partly loaded", path);
	an_buf_free(&b);
}

static void snapshot_save(struct an_kad_node *n)
{
	char path[4200], tmp[4220];
	struct an_buf b;
	int fd;
	snprintf(path, sizeof(path), "%s/%s", n->state_dir, AN_KAD_SNAPSHOT_NAME);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	an_buf_init(&b, SNAPSHOT_MAX);
	if (an_rt_save(&n->rt, &b) == 0 &&
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
		size_t off = 0;
		while (off < b.len) {
			ssize_t w = write(fd, b.data + off, b.len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (close(fd) == 0 && off == b.len)
			rename(tmp, path);
		else
			unlink(tmp);
	}
	an_buf_free(&b);
}

/* snprintf that refuses to truncate: 0 or -ENAMETOOLONG. */
static int copy_text(char *out, size_t cap, const char *a, const char *b)
{
	int len = snprintf(out, cap, "%s%s", a, b);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

int an_kad_node_new(struct an_host *h, const struct an_kad_node_config *cfg,
		    struct an_kad_node **out)
{
	struct an_kad_node *n = NULL;
	char dir[4200];
	struct an_rt_config rc_cfg = {0};
	bool handled = false;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->host = h;
	n->loop = an_host_loop(h);
	n->cfg = *cfg;
	n->refs = 1;
	rc = copy_text(n->protocol, sizeof(n->protocol),
		       cfg->protocol ? cfg->protocol : AN_KAD_PROTOCOL_DEFAULT, "");
	if (rc == 0)
		rc = copy_text(n->state_dir, sizeof(n->state_dir), cfg->state_dir ? cfg->state_dir : ".", "");
	if (rc == 0)
		rc = copy_text(dir, sizeof(dir), n->state_dir, "/" AN_KAD_STORE_NAME);
	if (rc < 0)
		goto out;
	n->cfg.protocol = n->protocol;
	n->cfg.state_dir = n->state_dir;
	if (!n->cfg.k)
		n->cfg.k = AN_RT_K_DEFAULT;
	if (n->cfg.k > AN_RT_K_MAX)
		n->cfg.k = AN_RT_K_MAX;
	if (!n->cfg.request_timeout_ms)
		n->cfg.request_timeout_ms = AN_LOOKUP_TIMEOUT_DEFAULT;
	if (!n->cfg.refresh_ms)
		n->cfg.refresh_ms = AN_KAD_NODE_REFRESH_MS;
	if (!n->cfg.maintain_ms)
		n->cfg.maintain_ms = AN_KAD_NODE_MAINTAIN_MS;
	rc_cfg.k = n->cfg.k;
	rc = an_rt_init(&n->rt, an_host_peer_id(h), &rc_cfg);
	if (rc < 0)
		goto out;
	rc = an_store_open(&n->store, dir, &cfg->store);
	if (rc < 0)
		goto out;
	snapshot_load(n);
	n->srv.self = *an_host_peer_id(h);
	n->srv.rt = &n->rt;
	n->srv.k = n->cfg.k;
	n->srv.claim_bits = claim_bits(&n->cfg);
	n->srv.store.get = ops_get;
	n->srv.store.put = ops_put;
	n->srv.store.add_provider = ops_add_provider;
	n->srv.store.get_providers = ops_get_providers;
	n->srv.store.arg = n;
	refresh_self_addrs(n);
	if (!n->cfg.client) {
		rc = an_host_handle(h, n->protocol, &inbound_handler, n);
		if (rc < 0)
			goto out;
		handled = true;
	}
	an_host_on_connection(h, on_connection, n);
	an_host_on_identify_push(h, on_identify_push, n);
	ev_init(&n->refresh, refresh_cb);
	n->refresh.data = n;
	n->refresh.repeat = n->cfg.refresh_ms / 1000.0;
	ev_init(&n->boot_retry, boot_retry_cb);
	n->boot_retry.data = n;
	ev_init(&n->maintain, maintain_cb);
	n->maintain.data = n;
	n->maintain.repeat = n->cfg.maintain_ms / 1000.0;
	if (n->cfg.maintain) {
		ev_timer_again(n->loop, &n->refresh);
		ev_timer_again(n->loop, &n->maintain);
	}
	*out = n;
	n = NULL;
out:
	if (n) {
		if (handled)
			an_host_unhandle(h, n->protocol);
		an_store_close(n->store);
		an_rt_free(&n->rt);
		free(n);
	}
	return rc;
}

void an_kad_node_free(struct an_kad_node *n)
{
	if (!n)
		return;
	snapshot_save(n);
	n->closed = true;
	ev_timer_stop(n->loop, &n->refresh);
	ev_timer_stop(n->loop, &n->maintain);
	ev_timer_stop(n->loop, &n->boot_retry);
	/* Every op goes below, a republish's child put on its own (it may come
	   first in the list): no parent may free it again. */
	for (struct an_kad_op *op = n->ops; op; op = op->next)
		op->child = NULL;
	while (n->ops) {
		struct an_kad_op *op = n->ops;
		op->cancelled = true;
		if (op->dials) { /* unlink: its dial callbacks free it */
			n->ops = op->next;
			if (n->ops)
				n->ops->prev = NULL;
			op->next = op->prev = NULL;
			continue;
		}
		op_free(op);
	}
	for (struct kreq *r = n->reqs, *next; r; r = next) {
		next = r->next;
		r->cb = NULL;
		ev_timer_stop(n->loop, &r->timer);
		/* a finished request's stream only lingers: let the host close it */
		if (r->s && !r->finished) {
			r->finished = true;
			an_stream_reset(r->s);
		}
		r->finished = true;
	}
	for (struct inbound *b = n->ins, *next; b; b = next) {
		next = b->next;
		an_stream_reset(b->s);
	}
	if (!n->cfg.client)
		an_host_unhandle(n->host, n->protocol);
	an_host_on_connection(n->host, NULL, NULL);
	an_host_on_identify_push(n->host, NULL, NULL);
	an_store_close(n->store);
	n->store = NULL;
	an_rt_free(&n->rt);
	node_unref(n);
}

struct an_store *an_kad_node_store(struct an_kad_node *n)
{
	return n->store;
}

const struct an_rt *an_kad_node_rt(const struct an_kad_node *n)
{
	return &n->rt;
}

const char *an_kad_node_protocol(const struct an_kad_node *n)
{
	return n->protocol;
}

static void wait_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	*(bool *)w->data = true;
}

int an_kad_node_wait(struct an_kad_node *n, const bool *op_done, int timeout_ms)
{
	ev_timer t;
	bool expired = false;
	ev_timer_init(&t, wait_timeout, timeout_ms / 1000.0, 0);
	t.data = &expired;
	ev_timer_start(n->loop, &t);
	while (!*op_done && !expired)
		ev_run(n->loop, EVRUN_ONCE);
	ev_timer_stop(n->loop, &t);
	return *op_done ? 0 : -ETIMEDOUT;
}

int an_kad_node_drain(struct an_kad_node *n, int timeout_ms)
{
	ev_timer t;
	bool expired = false;
	ev_timer_init(&t, wait_timeout, timeout_ms / 1000.0, 0);
	t.data = &expired;
	ev_timer_start(n->loop, &t);
	for (;;) {
		bool busy = false;
		for (struct kreq *r = n->reqs; r; r = r->next)
			if (!r->finished)
				busy = true;
		if (!busy || expired)
			break;
		ev_run(n->loop, EVRUN_ONCE);
	}
	ev_timer_stop(n->loop, &t);
	return expired ? -ETIMEDOUT : 0;
}

/* ---- bootstrap lists ---- */

static int boot_add(const char *s, size_t len, char ***list, size_t *count)
{
	struct an_multiaddr ma;
	char text[AN_MULTIADDR_TEXT_MAX];
	char **grown;
	if (len >= sizeof(text))
		return AN_EMALFORMED;
	memcpy(text, s, len);
	text[len] = 0;
	if (an_multiaddr_parse(text, &ma) < 0)
		return AN_EMALFORMED;
	if (*count >= AN_KAD_NODE_BOOTSTRAP_MAX)
		return 0;
	grown = realloc(*list, (*count + 1) * sizeof(char *));
	if (!grown)
		return -ENOMEM;
	*list = grown;
	if (!(grown[*count] = strdup(text)))
		return -ENOMEM;
	(*count)++;
	return 0;
}

int an_kad_bootstrap_parse(const char *s, char ***list, size_t *count)
{
	const char *sep = ", \t\r\n";
	while (s && *s) {
		size_t skip = strspn(s, sep), len;
		s += skip;
		len = strcspn(s, sep);
		if (len) {
			int rc = boot_add(s, len, list, count);
			if (rc < 0)
				return rc;
		}
		s += len;
	}
	return 0;
}

int an_kad_bootstrap_config(const char *dir, char ***list, size_t *count)
{
	char path[4200];
	struct an_buf b;
	int rc;
	snprintf(path, sizeof(path), "%s/config", dir);
	an_buf_init(&b, 1 << 16);
	rc = an_read_file(path, &b);
	if (rc == -ENOENT) {
		an_buf_free(&b);
		return 0;
	}
	for (char *line = (char *)b.data, *next; rc == 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		line += strspn(line, " \t");
		if (strncmp(line, "bootstrap", 9) == 0 && (line[9] == ' ' || line[9] == '\t'))
			rc = an_kad_bootstrap_parse(line + 10, list, count);
	}
	an_buf_free(&b);
	return rc;
}

void an_kad_bootstrap_free(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}
