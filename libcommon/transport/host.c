/*
 * host.c - the host: config and limits, the listen and dial API over its
 * transports (host_tcp.c; relayed connections from host_relayed.c),
 * connection lifecycle and timers, output batching, the handler registry,
 * connection observers, per-address limits, the peer store and shutdown.
 * Streams are host_stream.c's.  See host_priv.h for the layout.
 */
#include "transport/host.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/host_priv.h"
#include "transport/noise.h"
#include "util/error.h"

/* The transports an address can name (relayed connections are made by
   an_host_conn_over_stream, not dialed by address). */
static const struct an_transport *const transports[AN_HOST_N_TRANSPORTS] = {
	&host_tcp_transport,
};

void host_log(struct an_host *h, const char *fmt, ...)
{
	if (!h->log)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h->log(h->log_arg, msg);
}

uint64_t an_host_now_ms(const struct an_host *h)
{
	return (uint64_t)(ev_now(h->loop) * 1000.0);
}

/* ---- multiaddrs (encoding/multiaddr.h) ---- */

int an_host_maddr_split(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
			struct an_peerid *id, bool *has_id)
{
	struct an_multiaddr ma, rest;
	*has_id = false;
	if (!text || an_multiaddr_parse(text, &ma) < 0)
		return AN_EMALFORMED;
	if (an_multiaddr_split_p2p(&ma, &rest, id) == 0)
		*has_id = true;
	if (an_multiaddr_has(&rest, AN_MA_P2P) || an_multiaddr_has(&rest, AN_MA_P2P_CIRCUIT))
		return AN_EMALFORMED; /* relayed addresses: a later issue */
	if (an_multiaddr_to_sockaddr(&rest, ss, sslen) < 0)
		return AN_EMALFORMED;
	return 0;
}

int an_host_maddr_encode(const char *text, uint8_t *out, size_t cap, size_t *len)
{
	struct an_multiaddr ma;
	int rc = an_multiaddr_parse(text, &ma);
	if (rc < 0)
		return rc;
	if (ma.len > cap)
		return AN_ETOOBIG;
	memcpy(out, ma.bytes, ma.len);
	*len = ma.len;
	return 0;
}

int an_host_maddr_format(const uint8_t *bin, size_t len, char *out, size_t cap)
{
	struct an_multiaddr ma;
	int rc = an_multiaddr_from_bytes(bin, len, &ma);
	if (rc == 0)
		rc = an_multiaddr_format(&ma, out, cap);
	return rc;
}

/* ---- host ---- */

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void flush_again_cb(struct ev_loop *loop, ev_idle *w, int revents);

int an_host_new(struct ev_loop *loop, const struct an_host_config *cfg, struct an_host **out)
{
	struct an_pubkey pk;
	struct an_host *h = NULL;
	int rc;

	*out = NULL;
	if (!cfg->key)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->key = cfg->key;
	an_privkey_public(cfg->key, &pk);
	rc = an_peerid_from_pubkey(&pk, &h->id);
	if (rc < 0)
		goto out;
	h->lim = cfg->limits;
	if (!h->lim.max_conns)
		h->lim.max_conns = AN_HOST_DEFAULT_MAX_CONNS;
	if (!h->lim.max_pending)
		h->lim.max_pending = AN_HOST_DEFAULT_MAX_PENDING;
	if (!h->lim.max_per_peer)
		h->lim.max_per_peer = AN_HOST_DEFAULT_MAX_PER_PEER;
	if (!h->lim.max_streams_per_conn)
		h->lim.max_streams_per_conn = AN_HOST_DEFAULT_MAX_STREAMS;
	if (!h->lim.handshake_timeout_ms)
		h->lim.handshake_timeout_ms = AN_HOST_DEFAULT_HANDSHAKE_MS;
	if (!h->lim.idle_timeout_ms)
		h->lim.idle_timeout_ms = AN_HOST_DEFAULT_IDLE_MS;
	if (!h->lim.negotiate_timeout_ms)
		h->lim.negotiate_timeout_ms = AN_HOST_DEFAULT_NEGOTIATE_MS;
	if (!h->lim.inbound_handshake_timeout_ms)
		h->lim.inbound_handshake_timeout_ms = cfg->limits.handshake_timeout_ms
			? cfg->limits.handshake_timeout_ms : AN_HOST_DEFAULT_INBOUND_HANDSHAKE_MS;
	if (!h->lim.max_pending_per_addr)
		h->lim.max_pending_per_addr = AN_HOST_DEFAULT_MAX_PENDING_PER_ADDR;
	if (!h->lim.max_pending_per_net)
		h->lim.max_pending_per_net = AN_HOST_DEFAULT_MAX_PENDING_PER_NET;
	if (!h->lim.max_conns_per_addr)
		h->lim.max_conns_per_addr = AN_HOST_DEFAULT_MAX_CONNS_PER_ADDR;
	if (!h->lim.max_conns_per_net)
		h->lim.max_conns_per_net = AN_HOST_DEFAULT_MAX_CONNS_PER_NET;
	if (!h->lim.max_streams_per_addr)
		h->lim.max_streams_per_addr = AN_HOST_DEFAULT_MAX_STREAMS_PER_ADDR;
	if (!h->lim.max_streams_per_net)
		h->lim.max_streams_per_net = AN_HOST_DEFAULT_MAX_STREAMS_PER_NET;
	h->agent = cfg->agent_version;
	h->dial_tls = cfg->dial_tls;
	h->log = cfg->log;
	h->log_arg = cfg->log_arg;
	ev_timer_init(&h->shutdown_timer, NULL, 0, 0);
	ev_prepare_init(&h->flush_watcher, flush_cb);
	ev_idle_init(&h->flush_again, flush_again_cb);
	/* always on, but it must not keep the loop alive by itself */
	ev_prepare_start(loop, &h->flush_watcher);
	ev_unref(loop);
	*out = h;
	h = NULL;
out:
	free(h);
	return rc;
}

void an_host_config_log(struct an_host *h, an_host_log_fn log, void *arg)
{
	h->log = log;
	h->log_arg = arg;
}

const struct an_peerid *an_host_peer_id(const struct an_host *h)
{
	return &h->id;
}

struct ev_loop *an_host_loop(const struct an_host *h)
{
	return h->loop;
}

void host_conn_unref(struct an_host_conn *c)
{
	if (--c->refs > 0)
		return;
	an_conn_free(c->conn);
	an_buf_free(&c->carrier_in);
	free(c->pubkey_pb);
	free(c);
}

static void waiter_free(struct an_host *h, struct dial_waiter *w)
{
	ev_timer_stop(h->loop, &w->t);
	if (w->conn)
		host_conn_unref(w->conn);
	free(w);
}

static void flush_run(struct an_host *h, size_t max);

void an_host_free(struct an_host *h)
{
	if (!h)
		return;
	while (h->conns)
		host_conn_destroy(h->conns, AN_ECLOSED, "host shut down");
	while (h->loose_waiters) {
		struct dial_waiter *w = h->loose_waiters;
		h->loose_waiters = w->next;
		waiter_free(h, w);
	}
	for (size_t i = 0; i < h->n_listeners; i++) {
		ev_io_stop(h->loop, &h->listeners[i].io);
		ev_timer_stop(h->loop, &h->listeners[i].pause);
		if (h->listeners[i].fd >= 0)
			close(h->listeners[i].fd);
	}
	for (size_t i = 0; i < h->n_announce; i++)
		free(h->announce[i]);
	for (size_t i = 0; i < h->n_handlers; i++)
		free(h->handlers[i].proto);
	ev_timer_stop(h->loop, &h->shutdown_timer);
	flush_run(h, SIZE_MAX); /* drops the queue's references */
	ev_idle_stop(h->loop, &h->flush_again);
	ev_ref(h->loop);
	ev_prepare_stop(h->loop, &h->flush_watcher);
	free(h->peers);
	free(h);
}

void host_notify_changed(struct an_host *h)
{
	if (h->changed)
		h->changed(h, h->changed_arg);
}

void an_host_on_changed(struct an_host *h, an_host_changed_fn fn, void *arg)
{
	h->changed = fn;
	h->changed_arg = arg;
}

void an_host_on_connection(struct an_host *h, an_host_conn_fn fn, void *arg)
{
	h->on_conn = fn;
	h->on_conn_arg = arg;
}

int an_host_add_conn_observer(struct an_host *h, an_host_conn_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	for (size_t i = 0; i < h->n_observers; i++)
		if (h->observers[i].fn == fn && h->observers[i].arg == arg)
			return 0;
	if (h->n_observers >= AN_HOST_MAX_OBSERVERS)
		return AN_ELIMIT;
	h->observers[h->n_observers].fn = fn;
	h->observers[h->n_observers].arg = arg;
	h->n_observers++;
	return 0;
}

void an_host_remove_conn_observer(struct an_host *h, an_host_conn_fn fn, void *arg)
{
	for (size_t i = 0; i < h->n_observers; i++) {
		if (h->observers[i].fn == fn && h->observers[i].arg == arg) {
			/* keep the order: observers run in registration order */
			memmove(&h->observers[i], &h->observers[i + 1],
				(h->n_observers - i - 1) * sizeof(h->observers[0]));
			h->n_observers--;
			return;
		}
	}
}

static bool observer_registered(const struct an_host *h, an_host_conn_fn fn, void *arg)
{
	for (size_t i = 0; i < h->n_observers; i++)
		if (h->observers[i].fn == fn && h->observers[i].arg == arg)
			return true;
	return false;
}

/*
 * Every observer of a new connection, the an_host_on_connection slot first.
 * An observer may remove others (or itself) or close c: each is looked up
 * again before its call, from a copy of the list taken at the start.
 */
static void notify_connection(struct an_host *h, struct an_host_conn *c)
{
	struct conn_observer snap[AN_HOST_MAX_OBSERVERS];
	size_t n = h->n_observers;
	memcpy(snap, h->observers, n * sizeof(snap[0]));
	if (h->on_conn)
		h->on_conn(c, h->on_conn_arg);
	for (size_t i = 0; i < n && c->alive; i++)
		if (observer_registered(h, snap[i].fn, snap[i].arg))
			snap[i].fn(c, snap[i].arg);
}

void an_host_on_identify_push(struct an_host *h, an_host_identify_push_fn fn, void *arg)
{
	h->on_push = fn;
	h->on_push_arg = arg;
}

void an_host_identify_pushed(struct an_host_conn *c, const struct an_identify *m)
{
	struct an_host *h = c->host;
	if (h->on_push && c->alive)
		h->on_push(c, m, h->on_push_arg);
}

int an_host_announce(struct an_host *h, const char *maddr)
{
	if (h->n_announce >= AN_HOST_MAX_ANNOUNCE)
		return AN_ELIMIT;
	if (!maddr || maddr[0] != '/' || strlen(maddr) >= AN_HOST_ADDR_TEXT_MAX)
		return AN_EMALFORMED;
	char *s = strdup(maddr);
	if (!s)
		return -ENOMEM;
	h->announce[h->n_announce++] = s;
	host_notify_changed(h);
	return 0;
}

size_t an_host_addrs(const struct an_host *h, const char **out, size_t max)
{
	size_t n = 0;
	if (h->n_announce) {
		for (size_t i = 0; i < h->n_announce && n < max; i++)
			out[n++] = h->announce[i];
		return n;
	}
	for (size_t i = 0; i < h->n_listeners && n < max; i++)
		out[n++] = h->listeners[i].text;
	return n;
}

/* ---- registry ---- */

struct handler_entry *host_find_handler(const struct an_host *h, const char *proto)
{
	for (size_t i = 0; i < h->n_handlers; i++)
		if (strcmp(h->handlers[i].proto, proto) == 0)
			return (struct handler_entry *)&h->handlers[i];
	return NULL;
}

int an_host_handle(struct an_host *h, const char *proto, const struct an_stream_handler *handler,
		   void *arg)
{
	if (!proto || proto[0] != '/' || strlen(proto) > AN_MSS_PROTO_MAX || strchr(proto, '\n'))
		return -EINVAL;
	struct handler_entry *e = host_find_handler(h, proto);
	if (!e) {
		if (h->n_handlers >= AN_HOST_MAX_PROTOCOLS)
			return AN_ELIMIT;
		char *p = strdup(proto);
		if (!p)
			return -ENOMEM;
		e = &h->handlers[h->n_handlers++];
		e->proto = p;
	}
	e->h = *handler;
	e->arg = arg;
	host_notify_changed(h);
	return 0;
}

void an_host_unhandle(struct an_host *h, const char *proto)
{
	struct handler_entry *e = host_find_handler(h, proto);
	if (!e)
		return;
	free(e->proto);
	*e = h->handlers[--h->n_handlers];
	host_notify_changed(h);
}

size_t an_host_protocols(const struct an_host *h, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_handlers && n < max; i++)
		out[n++] = h->handlers[i].proto;
	return n;
}

/* ---- connections ---- */


static void conn_log_close(struct an_host_conn *c, const char *reason)
{
	char id[AN_PEERID_TEXT_MAX] = "";
	if (c->established)
		an_peerid_format(&c->peer, id, sizeof(id));
	host_log(c->host, "connection %s%s%s closed: %s", c->remote_text, *id ? " " : "", id, reason);
}

static void waiter_report(struct dial_waiter *w, struct an_host_conn *c, int err)
{
	an_host_dial_fn cb = w->cb;
	void *arg = w->arg;
	struct an_host *h = w->host;
	waiter_free(h, w);
	cb(h, c, err, arg);
}

void host_conn_destroy(struct an_host_conn *c, int err, const char *reason)
{
	struct an_host *h = c->host;
	if (!c->alive)
		return;
	c->alive = false;
	/* The host's own reference goes at the end; callers that use c after
	 * this hold one of their own. */
	conn_log_close(c, reason);
	ev_timer_stop(h->loop, &c->hs_timer);
	ev_timer_stop(h->loop, &c->idle_timer);
	ev_timer_stop(h->loop, &c->ping_timer);
	ev_timer_stop(h->loop, &c->fail_timer);
	c->tp->close(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->n_conns--;
	if (!c->established)
		h->n_pending--;
	while (c->streams)
		host_stream_finish(c->streams, AN_ECLOSED);
	while (c->waiters) {
		struct dial_waiter *w = c->waiters;
		c->waiters = w->next;
		waiter_report(w, NULL, err ? err : AN_ECLOSED);
	}
	host_conn_unref(c);
	if (h->shutting_down && !h->conns) {
		ev_timer_stop(h->loop, &h->shutdown_timer);
		ev_break(h->loop, EVBREAK_ALL);
	}
}


/*
 * conn_write runs inside handlers' calls (an_stream_write, close_write,
 * an_host_stream_open, ...), so a connection it finds dead (a send to a
 * peer that is gone: EPIPE/ECONNRESET) must not be destroyed there: that
 * would run every stream's on_close, and free the handler's state, while
 * the handler is still on the stack (the daemon crash seen when 30% of a
 * DHT's nodes were killed: kad's inbound_data used its freed state after
 * answering on a stream whose connection died in the write).  It is
 * destroyed from the loop instead, on a zero timer; until then no I/O.
 */
static void fail_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, fail_timer));
	host_conn_destroy(c, c->fail_err, c->fail_reason);
}

void host_conn_destroy_later(struct an_host_conn *c, int err, const char *reason)
{
	if (c->failing)
		return;
	c->failing = true;
	c->fail_err = err;
	snprintf(c->fail_reason, sizeof(c->fail_reason), "%s", reason);
	c->tp->quiet(c);
	ev_timer_start(c->host->loop, &c->fail_timer);
}


/* Flush the conn's output to its byte stream; close when finished closing. */
void host_conn_write(struct an_host_conn *c)
{
	if (!c->alive || c->connecting || c->failing)
		return;
	c->tp->write(c);
}

/* A graceful close waits for open streams to finish (identify answers in
 * flight, a peer's last reads); the shutdown deadline bounds it. */
bool host_conn_finish_if_done(struct an_host_conn *c, size_t len, bool blocked)
{
	if (len == 0 && !blocked &&
	    ((c->closing && !c->streams) || an_conn_state(c->conn) == AN_CONN_FAILED)) {
		const char *why = "closed";
		int err = an_conn_error(c->conn, &why);
		host_conn_destroy_later(c, err ? err : AN_ECLOSED, *why ? why : "closed");
		return true;
	}
	return false;
}

static void conn_kick_now(struct an_host_conn *c)
{
	if (!c->alive || c->connecting)
		return;
	an_conn_flush(c->conn, an_host_now_ms(c->host));
	host_conn_handle_events(c);
	if (!c->alive)
		return;
	an_conn_flush(c->conn, an_host_now_ms(c->host));
	host_conn_write(c);
}

/*
 * After any change: the same, once the current callbacks are done.  Output
 * is sealed and sent once per loop iteration (flush_cb, an ev_prepare
 * watcher: it runs before the loop blocks, after every callback of the
 * iteration), so what one pass of the loop produces for a connection - the
 * last handshake message and the first streams' frames, an identify answer
 * and a pong, a window update and a reply - leaves in one Noise message and
 * one send() instead of one each, and the peer wakes up once.  A full Noise
 * message already waiting goes out at once: bulk output is not held back.
 */
void host_conn_kick(struct an_host_conn *c)
{
	if (!c->alive || c->connecting)
		return;
	const uint8_t *p;
	size_t len;
	an_conn_output(c->conn, &p, &len);
	if (len >= AN_NOISE_MSG_MAX && !c->delivering) {
		conn_kick_now(c);
		return;
	}
	if (c->flush_queued)
		return;
	struct an_host *h = c->host;
	c->flush_queued = true;
	c->flush_next = NULL;
	c->refs++;
	if (h->flush_tail)
		h->flush_tail->flush_next = c;
	else
		h->flush_head = c;
	h->flush_tail = c;
}

/* Kick at most max queued connections (those queued meanwhile included). */
static void flush_run(struct an_host *h, size_t max)
{
	for (size_t i = 0; i < max && h->flush_head; i++) {
		struct an_host_conn *c = h->flush_head;
		h->flush_head = c->flush_next;
		if (!h->flush_head)
			h->flush_tail = NULL;
		c->flush_queued = false;
		conn_kick_now(c);
		host_conn_unref(c);
	}
}

/* Bounds one pass; kicks can queue other connections (a relayed one's
   carrier), so the queue may not be empty after it. */
#define FLUSH_PASS_MAX 4096

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	struct an_host *h = (struct an_host *)((char *)w - offsetof(struct an_host, flush_watcher));
	flush_run(h, FLUSH_PASS_MAX);
	if (h->flush_head) {
		ev_idle_start(loop, &h->flush_again);
		return;
	}
	/* Everything is sent and the loop is about to wait, likely for a peer
	   that is now busy with what we sent: make the next handshake's
	   ephemeral key now (one a pass, ~32 us) rather than when it starts. */
	an_noise_prepare();
}

static void flush_again_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w); /* flush_cb runs before the next poll */
}

static void conn_ready(struct an_host_conn *c)
{
	struct an_host *h = c->host;
	const struct an_peerid *p = an_conn_peer(c->conn);
	const struct an_pubkey *k = an_conn_remote_key(c->conn);
	struct an_buf b;
	c->peer = *p;
	an_buf_init(&b, AN_PUBKEY_PB_MAX);
	if (an_pubkey_encode(k, &b) == 0 && b.len > 0)
		c->pubkey_pb = an_buf_steal(&b, &c->pubkey_len);
	an_buf_free(&b);
	c->established = true;
	h->n_pending--;
	ev_timer_stop(h->loop, &c->hs_timer);
	c->tp->ping(c);
	ev_timer_start(h->loop, &c->ping_timer);
	size_t same = 0;
	for (struct an_host_conn *o = h->conns; o; o = o->next)
		if (o->established && an_peerid_equal(&o->peer, &c->peer))
			same++;
	if (same > h->lim.max_per_peer) {
		an_conn_fail(c->conn, AN_ELIMIT, "too many connections from this peer");
		return;
	}
	c->refs++;
	/* The connection hook first (it may start identify), then the dialers. */
	notify_connection(h, c);
	while (c->waiters && c->alive) {
		struct dial_waiter *w = c->waiters;
		c->waiters = w->next;
		waiter_report(w, c, 0);
	}
	host_conn_unref(c);
}


void host_conn_handle_events(struct an_host_conn *c)
{
	struct an_conn_event ev;
	/* Handlers call back into the host (write, open, reset); the outer
	 * loop picks up whatever events those calls cause. */
	if (c->dispatching)
		return;
	c->dispatching = true;
	c->refs++;
	while (c->alive && an_conn_next_event(c->conn, &ev)) {
		switch (ev.type) {
		case AN_CONN_EV_READY:
			conn_ready(c);
			break;
		case AN_CONN_EV_ERROR:
			host_log(c->host, "%s: %s", c->remote_text, ev.reason ? ev.reason : an_strerror(ev.err));
			/* The GoAway (if any) goes out, then conn_write closes. */
			c->closing = true;
			break;
		case AN_CONN_EV_YAMUX: {
			uint32_t id = ev.yamux.stream_id;
			struct an_stream *s;
			switch (ev.yamux.type) {
			case AN_YAMUX_EV_STREAM_NEW:
				if (c->closing) {
					c->tp->stream_reset(c, id);
					break;
				}
				host_inbound_stream(c, id);
				break;
			case AN_YAMUX_EV_READABLE:
				host_stream_readable(c, id);
				break;
			case AN_YAMUX_EV_PEER_FIN:
				host_stream_peer_fin(c, id);
				break;
			case AN_YAMUX_EV_PEER_RST:
				if ((s = host_find_stream(c, id)))
					host_stream_finish(s, AN_ERESET);
				break;
			case AN_YAMUX_EV_WRITABLE:
				if ((s = host_find_stream(c, id))) {
					host_stream_flush(s);
					host_stream_maybe_done(c, id);
				}
				break;
			case AN_YAMUX_EV_GOAWAY:
				/* no new streams; existing ones run on */
				break;
			default:
				break;
			}
			break;
		}
		default:
			break;
		}
	}
	host_streams_service(c);
	c->dispatching = false;
	host_conn_unref(c);
}


static void hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, hs_timer));
	host_conn_destroy(c, -ETIMEDOUT, c->connecting ? "connect timed out" : "handshake timed out");
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, idle_timer));
	ev_tstamp idle = c->host->lim.idle_timeout_ms / 1000.0;
	ev_tstamp left = c->last_activity + idle - ev_now(loop);
	if (left > 0) {
		w->repeat = left;
		ev_timer_again(loop, w);
		return;
	}
	host_conn_destroy(c, -ETIMEDOUT, "idle timeout");
}

/*
 * A yamux ping right after the upgrade and every 30 s (js does the same):
 * it keeps NATs and idle timers fed, and its RTT drives yamux's receive
 * window auto-tuning.  Without it our windows stay at 256 KiB while js
 * grants up to 16 MiB, and a fast js sender outruns its own echo.
 */
#define KEEPALIVE_S 30.0

static void ping_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, ping_timer));
	if (!c->tp->stream_ready(c))
		return;
	c->tp->ping(c);
	c->refs++;
	host_conn_kick(c);
	host_conn_unref(c);
}

struct an_host_conn *host_conn_new(struct an_host *h, const struct an_transport *tp, bool inbound,
				   const struct an_peerid *expected)
{
	struct an_conn_config cc = {0};
	struct an_yamux_config yc;
	an_yamux_config_default(&yc);
	yc.max_inbound_streams = (uint32_t)h->lim.max_streams_per_conn;
	yc.max_outbound_streams = (uint32_t)h->lim.max_streams_per_conn;
	/* js-libp2p-yamux splits data frames at the window it was granted, not
	 * at 16 KiB: once our window auto-tunes past 1 MiB its frames do too.
	 * A frame can never exceed the window we granted, which is bounded by
	 * max_window, so that is the frame cap that matters. */
	if (yc.max_frame_body < yc.max_window)
		yc.max_frame_body = yc.max_window;
	cc.key = h->key;
	cc.initiator = !inbound;
	cc.yamux_client = !inbound;
	cc.expected = expected;
	cc.yamux = &yc;
	cc.tls = !inbound && !tp->carried && h->dial_tls;
	struct an_host_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (an_conn_new(&cc, &c->conn) < 0) {
		free(c);
		return NULL;
	}
	c->host = h;
	c->tp = tp;
	c->fd = -1;
	c->refs = 1;
	c->alive = true;
	c->inbound = inbound;
	c->last_activity = ev_now(h->loop);
	strcpy(c->remote_text, "?");
	int hs_ms = inbound && !tp->carried ? h->lim.inbound_handshake_timeout_ms
					     : h->lim.handshake_timeout_ms;
	ev_timer_init(&c->hs_timer, hs_timeout_cb, hs_ms / 1000.0, 0);
	ev_timer_init(&c->idle_timer, idle_cb, 0, h->lim.idle_timeout_ms / 1000.0);
	ev_timer_init(&c->ping_timer, ping_timer_cb, KEEPALIVE_S, KEEPALIVE_S);
	ev_timer_init(&c->fail_timer, fail_timer_cb, 0, 0);
	ev_timer_start(h->loop, &c->hs_timer);
	ev_timer_again(h->loop, &c->idle_timer);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	h->n_pending++;
	return c;
}


/* ---- per-address limits (host.h) ---- */

bool an_host_conn_addr_key(const struct an_host_conn *c, struct an_host_addr_key *out)
{
	if (!c->has_key) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	*out = c->key;
	return true;
}

struct addr_use {
	size_t pending_addr, pending_net; /* inbound, in their handshake */
	size_t conns_addr, conns_net;     /* inbound, all */
	size_t streams_addr, streams_net; /* opened by the peers, open now */
};

static void addr_use(const struct an_host *h, const struct an_host_addr_key *k, struct addr_use *u)
{
	memset(u, 0, sizeof(*u));
	for (const struct an_host_conn *o = h->conns; o; o = o->next) {
		if (!o->has_key || memcmp(o->key.net, k->net, 16) != 0)
			continue;
		bool same = memcmp(o->key.ip, k->ip, 16) == 0;
		if (o->inbound) {
			u->conns_net++;
			u->conns_addr += same;
			if (!o->established) {
				u->pending_net++;
				u->pending_addr += same;
			}
		}
		u->streams_net += o->n_streams_in;
		if (same)
			u->streams_addr += o->n_streams_in;
	}
}

/*
 * Refused connections are logged one a second, with the count of those not
 * logged: a flood of connections must not become a flood of log lines.
 */
void host_log_refusal(struct an_host *h, const char *text, const char *why)
{
	ev_tstamp now = ev_now(h->loop);
	if (h->refusal_logged && now - h->refusal_logged < 1.0) {
		h->refusals_quiet++;
		return;
	}
	h->refusal_logged = now;
	if (h->refusals_quiet)
		host_log(h, "connection %s refused: %s (and %zu more not logged)", text, why, h->refusals_quiet);
	else
		host_log(h, "connection %s refused: %s", text, why);
	h->refusals_quiet = 0;
}

/* Why a new inbound connection from k is refused, or NULL. */
const char *host_addr_refusal(const struct an_host *h, const struct an_host_addr_key *k)
{
	struct addr_use u;
	addr_use(h, k, &u);
	if (u.pending_addr >= h->lim.max_pending_per_addr)
		return "pending handshakes of this address at their limit";
	if (u.pending_net >= h->lim.max_pending_per_net)
		return "pending handshakes of this network at their limit";
	if (u.conns_addr >= h->lim.max_conns_per_addr)
		return "connections of this address at their limit";
	if (u.conns_net >= h->lim.max_conns_per_net)
		return "connections of this network at their limit";
	return NULL;
}

/* May the peer of c open one more stream (per-address stream limits)? */
bool host_addr_stream_allowed(struct an_host_conn *c)
{
	struct an_host *h = c->host;
	struct addr_use u;
	if (!c->has_key)
		return true;
	addr_use(h, &c->key, &u);
	if (u.streams_addr < h->lim.max_streams_per_addr && u.streams_net < h->lim.max_streams_per_net)
		return true;
	if (!c->stream_limit_logged) { /* once a connection: a flood must not flood the log */
		c->stream_limit_logged = true;
		host_log(h, "%s: streams refused: streams of this %s at their limit", c->remote_text,
		     u.streams_addr >= h->lim.max_streams_per_addr ? "address" : "network");
	}
	return false;
}


/* ---- dialing ---- */

static void waiter_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct dial_waiter *dw = (struct dial_waiter *)w;
	struct an_host *h = dw->host;
	if (dw->immediate) {
		/* report an existing connection, from the loop as promised */
		for (struct dial_waiter **pp = &h->loose_waiters; *pp; pp = &(*pp)->next)
			if (*pp == dw) {
				*pp = dw->next;
				break;
			}
		struct an_host_conn *c = dw->conn;
		bool ok = c && c->alive;
		if (c)
			c->refs++;
		waiter_report(dw, ok ? c : NULL, ok ? 0 : (c ? AN_ECLOSED : dw->t.data ? (int)(intptr_t)dw->t.data : AN_ECLOSED));
		if (c)
			host_conn_unref(c);
		return;
	}
	/* the dial's own deadline: the connection attempt goes on for others */
	struct an_host_conn *c = dw->conn;
	for (struct dial_waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
		if (*pp == dw) {
			*pp = dw->next;
			break;
		}
	waiter_report(dw, NULL, -ETIMEDOUT);
}

static int report_later(struct an_host *h, struct an_host_conn *c, int err, an_host_dial_fn cb,
			void *arg)
{
	struct dial_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->host = h;
	w->cb = cb;
	w->arg = arg;
	w->immediate = true;
	w->conn = c;
	if (c)
		c->refs++;
	ev_timer_init(&w->t, waiter_timer_cb, 0, 0);
	w->t.data = (void *)(intptr_t)err;
	ev_timer_start(h->loop, &w->t);
	w->next = h->loose_waiters;
	h->loose_waiters = w;
	return 0;
}


int host_waiter_add(struct an_host *h, struct an_host_conn *c, int timeout_ms, an_host_dial_fn cb,
		    void *arg)
{
	struct dial_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (timeout_ms <= 0)
		timeout_ms = h->lim.handshake_timeout_ms;
	w->host = h;
	w->cb = cb;
	w->arg = arg;
	ev_timer_init(&w->t, waiter_timer_cb, timeout_ms / 1000.0, 0);
	ev_timer_start(h->loop, &w->t);
	w->next = c->waiters;
	c->waiters = w;
	/* waiter_timer_cb needs the connection to unlink itself */
	w->conn = c;
	c->refs++;
	return 0;
}

/* An established connection to id a dial with flags may reuse, or NULL. */
static struct an_host_conn *reusable_conn(struct an_host *h, const struct an_peerid *id,
					  unsigned flags)
{
	if (flags & AN_HOST_DIAL_FRESH)
		return NULL;
	for (struct an_host_conn *c = h->conns; c; c = c->next)
		if (c->established && !c->closing && !c->failing && an_peerid_equal(&c->peer, id) &&
		    !((flags & AN_HOST_DIAL_DIRECT) && c->relayed))
			return c;
	return NULL;
}

static int dial_addr(struct an_host *h, const char *maddr, int timeout_ms, unsigned flags,
		     an_host_dial_fn cb, void *arg);

/* A bare /p2p/ID: its connection, else the peer store's first address. */
static int dial_peer_only(struct an_host *h, const struct an_peerid *id, int timeout_ms,
			  unsigned flags, an_host_dial_fn cb, void *arg)
{
	char text[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8], idt[AN_PEERID_TEXT_MAX];
	if (h->shutting_down)
		return AN_ECLOSED;
	if (an_peerid_equal(id, &h->id))
		return -EINVAL;
	struct an_host_conn *c = reusable_conn(h, id, flags);
	if (c)
		return report_later(h, c, 0, cb, arg);
	for (size_t i = 0; i < h->n_peers; i++) {
		const struct peer_entry *e = &h->peers[i];
		if (!an_peerid_equal(&e->id, id) || e->n == 0)
			continue;
		an_peerid_format(id, idt, sizeof(idt));
		snprintf(text, sizeof(text), "%s/p2p/%s", e->addrs[0], idt);
		return dial_addr(h, text, timeout_ms, flags, cb, arg);
	}
	return AN_ENOTFOUND;
}

int an_host_dial(struct an_host *h, const char *maddr, int timeout_ms, an_host_dial_fn cb, void *arg)
{
	return an_host_dial_ex(h, maddr, timeout_ms, 0, cb, arg);
}

int an_host_dial_ex(struct an_host *h, const char *maddr, int timeout_ms, unsigned flags,
		    an_host_dial_fn cb, void *arg)
{
	struct an_peerid id;
	struct an_multiaddr ma, rest;
	if (maddr && an_multiaddr_parse(maddr, &ma) == 0 &&
	    an_multiaddr_split_p2p(&ma, &rest, &id) == 0 && rest.len == 0)
		return dial_peer_only(h, &id, timeout_ms, flags, cb, arg);
	return dial_addr(h, maddr, timeout_ms, flags, cb, arg);
}


/* An address's transport (ma without /p2p), or NULL. */
static const struct an_transport *transport_for(const struct an_multiaddr *ma)
{
	if (an_multiaddr_has(ma, AN_MA_P2P) || an_multiaddr_has(ma, AN_MA_P2P_CIRCUIT))
		return NULL; /* relayed addresses: relay/relay_dial.h */
	for (size_t i = 0; i < AN_HOST_N_TRANSPORTS; i++)
		if (transports[i]->handles && transports[i]->handles(ma))
			return transports[i];
	return NULL;
}

static int dial_addr(struct an_host *h, const char *maddr, int timeout_ms, unsigned flags,
		     an_host_dial_fn cb, void *arg)
{
	struct an_multiaddr ma, rest;
	struct an_peerid id;
	bool has_id = false;
	const struct an_transport *tp;
	if (!maddr || an_multiaddr_parse(maddr, &ma) < 0)
		return AN_EMALFORMED;
	if (an_multiaddr_split_p2p(&ma, &rest, &id) == 0)
		has_id = true;
	if (!(tp = transport_for(&rest)))
		return AN_EMALFORMED;
	if (h->shutting_down)
		return AN_ECLOSED;
	if (has_id && an_peerid_equal(&id, &h->id))
		return -EINVAL; /* dialing ourselves */
	if (has_id) {
		struct an_host_conn *c = reusable_conn(h, &id, flags);
		if (c)
			return report_later(h, c, 0, cb, arg);
	}
	if (h->n_conns >= h->lim.max_conns || h->n_pending >= h->lim.max_pending)
		return AN_ELIMIT;
	struct an_host_conn *c = NULL;
	int late_err = 0;
	int rc = tp->dial(h, &rest, has_id ? &id : NULL, &c, &late_err);
	if (rc < 0)
		return rc;
	if (!c)
		return report_later(h, NULL, late_err, cb, arg);
	if (host_waiter_add(h, c, timeout_ms, cb, arg) < 0) {
		host_conn_destroy(c, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int an_host_listen(struct an_host *h, const char *maddr)
{
	struct an_multiaddr ma, rest;
	struct an_peerid id;
	const struct an_transport *tp;
	if (h->n_listeners >= AN_HOST_MAX_LISTENERS)
		return AN_ELIMIT;
	if (!maddr || an_multiaddr_parse(maddr, &ma) < 0)
		return AN_EMALFORMED;
	if (an_multiaddr_split_p2p(&ma, &rest, &id) == 0)
		return AN_EMALFORMED; /* ours is implied */
	if (!(tp = transport_for(&rest)) || !tp->listen)
		return AN_EMALFORMED;
	return tp->listen(h, &rest);
}

void an_host_conn_ref(struct an_host_conn *c)
{
	c->refs++;
}

void an_host_conn_unref(struct an_host_conn *c)
{
	host_conn_unref(c);
}

bool an_host_conn_inbound(const struct an_host_conn *c)
{
	return c->inbound;
}

bool an_host_conn_relayed(const struct an_host_conn *c)
{
	return c->relayed;
}

struct an_host *an_host_conn_host(const struct an_host_conn *c)
{
	return c->host;
}

bool an_host_conn_alive(const struct an_host_conn *c)
{
	return c->alive;
}

const struct an_peerid *an_host_conn_peer(const struct an_host_conn *c)
{
	return c->established ? &c->peer : NULL;
}

const char *an_host_conn_remote_addr(const struct an_host_conn *c)
{
	return c->remote_text;
}

size_t an_host_conn_remote_addr_bin(const struct an_host_conn *c, uint8_t *out, size_t cap)
{
	if (cap < c->remote_bin_len)
		return 0;
	memcpy(out, c->remote_bin, c->remote_bin_len);
	return c->remote_bin_len;
}

const uint8_t *an_host_conn_remote_pubkey(const struct an_host_conn *c, size_t *len)
{
	*len = c->pubkey_len;
	return c->pubkey_len ? c->pubkey_pb : NULL;
}

void an_host_conn_close(struct an_host_conn *c)
{
	if (!c->alive)
		return;
	if (!c->tp->stream_ready(c)) {
		host_conn_destroy(c, AN_ECLOSED, "closed locally");
		return;
	}
	c->tp->goaway(c);
	c->closing = true;
	host_conn_kick(c);
}

size_t an_host_conns(const struct an_host *h, struct an_host_conn **out, size_t max)
{
	size_t n = 0;
	for (struct an_host_conn *c = h->conns; c && n < max; c = c->next)
		if (c->established && !c->closing && !c->failing)
			out[n++] = c;
	return n;
}

const struct an_privkey *an_host_key(const struct an_host *h)
{
	return h->key;
}

const char *an_host_agent(const struct an_host *h)
{
	return h->agent;
}

size_t an_host_conn_count(const struct an_host *h)
{
	return h->n_conns;
}

size_t an_host_pending_count(const struct an_host *h)
{
	return h->n_pending;
}

/* ---- peer store ---- */

int an_host_peer_add_addr(struct an_host *h, const struct an_peerid *id, const char *maddr)
{
	if (strlen(maddr) >= AN_HOST_ADDR_TEXT_MAX)
		return AN_ETOOBIG;
	struct peer_entry *e = NULL;
	for (size_t i = 0; i < h->n_peers; i++)
		if (an_peerid_equal(&h->peers[i].id, id))
			e = &h->peers[i];
	if (!e) {
		if (!h->peers) {
			h->peers = calloc(PEERSTORE_MAX, sizeof(*h->peers));
			if (!h->peers)
				return -ENOMEM;
		}
		if (h->n_peers >= PEERSTORE_MAX)
			return AN_ELIMIT;
		e = &h->peers[h->n_peers++];
		e->id = *id;
		e->n = 0;
	}
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->addrs[i], maddr) == 0)
			return 0;
	if (e->n >= PEERSTORE_ADDRS)
		return AN_ELIMIT;
	strcpy(e->addrs[e->n++], maddr);
	return 0;
}

/* ---- shutdown ---- */

static void shutdown_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_host *h = (struct an_host *)((char *)w - offsetof(struct an_host, shutdown_timer));
	while (h->conns)
		host_conn_destroy(h->conns, AN_ECLOSED, "shutdown deadline");
	ev_break(loop, EVBREAK_ALL);
}

void an_host_shutdown(struct an_host *h, int timeout_ms)
{
	if (h->shutting_down)
		return;
	h->shutting_down = true;
	for (size_t i = 0; i < h->n_listeners; i++) {
		ev_io_stop(h->loop, &h->listeners[i].io);
		ev_timer_stop(h->loop, &h->listeners[i].pause);
	}
	if (!h->conns) {
		ev_break(h->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&h->shutdown_timer, shutdown_timeout_cb, timeout_ms / 1000.0, 0);
	ev_timer_start(h->loop, &h->shutdown_timer);
	struct an_host_conn *c = h->conns;
	while (c) {
		struct an_host_conn *next = c->next;
		if (c->established)
			an_host_conn_close(c);
		else
			host_conn_destroy(c, AN_ECLOSED, "shutting down");
		c = next; /* conn_destroy unlinks only c */
	}
}

