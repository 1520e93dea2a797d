#include "transport/host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoding/multiaddr.h"
#include "transport/conn.h"
#include "transport/mss.h"
#include "transport/noise.h"
#include "util/accept.h"
#include "util/error.h"

#define READ_CHUNK 65536
#define STREAM_OUT_MAX (1024 * 1024) /* queued writes per stream */
/*
 * Reading stops above this much queued output: twice the writers' mark, so a
 * writer that honours on_writable (and so stays near AN_STREAM_QUEUE_HIGH)
 * never stops its own reading - that would deadlock against peers whose
 * echo waits for us to read (js-libp2p grants window as data arrives and
 * aborts the stream at a 4 MiB read buffer instead).  Handlers that write
 * from on_data without looking (echo) get backpressure here.
 */
#define READ_BLOCK_MARK (2 * AN_STREAM_QUEUE_HIGH)
#define PEERSTORE_MAX 1024
#define PEERSTORE_ADDRS 4

struct handler_entry {
	char *proto;
	struct an_stream_handler h;
	void *arg;
};

struct conn_observer {
	an_host_conn_fn fn;
	void *arg;
};

struct listener {
	ev_io io;
	ev_timer pause; /* out of descriptors without a reserve (util/accept.h) */
	struct an_host *host;
	int fd;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[AN_HOST_ADDR_TEXT_MAX];
};

struct dial_waiter {
	ev_timer t; /* deadline, or 0 s to report an existing connection */
	struct an_host *host;
	struct an_host_conn *conn; /* referenced */
	an_host_dial_fn cb;
	void *arg;
	struct dial_waiter *next;
	bool immediate;
};

struct an_stream {
	ev_timer neg_timer; /* multistream-select deadline; first for the cast */
	struct an_host_conn *c;
	struct an_stream *next;
	uint32_t id;
	bool inbound, negotiating, opened, fin_wanted, fin_sent, remote_fin;
	bool read_blocked;  /* stopped reading: our queue is above the high mark */
	bool fin_deferred;  /* the peer's FIN, held until blocked data is read */
	bool paused;        /* an_stream_pause: the application holds reading */
	bool want_writable; /* a write left the queue above the high mark */
	bool deferred;      /* outbound, waiting for the peer to serve streams (id 0) */
	char proto[AN_MSS_PROTO_MAX + 1];
	const char *proposal[1];
	struct an_mss mss;
	const struct an_stream_handler *h;
	/* inbound: h points here, a copy of the registration (an_host_unhandle
	   compacts the table, so open streams must not point into it) */
	struct an_stream_handler h_copy;
	void *arg;
	void *user;
	struct an_buf out;     /* bytes for the yamux stream (mss answers, data) */
	size_t out_off;        /* out[0..out_off) already went to yamux */
	struct an_buf pending; /* application writes before negotiation ends */
};

struct an_host_conn {
	ev_io io;
	ev_timer hs_timer;
	ev_timer idle_timer;
	ev_timer ping_timer; /* yamux keep-alive and RTT (window auto-tuning) */
	ev_timer fail_timer; /* destroys a connection conn_write found dead (see there) */
	struct an_host *host;
	struct an_host_conn *next, *prev;
	int fd;
	int refs;
	bool inbound, connecting, established, alive, closing;
	bool dispatching; /* inside conn_handle_events: callbacks must not recurse */
	bool failing;     /* fail_timer runs: no more I/O, destroyed from the loop */
	int fail_err;
	char fail_reason[128];
	bool peer_ready;  /* the peer answered or opened a stream (early-stream rule) */
	size_t n_streams_total; /* struct an_stream objects on this connection */
	size_t n_streams_in;    /* ... of them opened by the peer */
	bool has_key;           /* key is the remote's address (TCP, not relayed) */
	bool stream_limit_logged;
	struct an_host_addr_key key;
	ev_tstamp last_activity;
	struct an_conn *conn;
	char remote_text[AN_HOST_ADDR_TEXT_MAX];
	uint8_t remote_bin[64];
	size_t remote_bin_len;
	struct an_peerid peer;
	uint8_t *pubkey_pb; /* malloc'd at its size (36 bytes for Ed25519, not the 1.1 KB cap) */
	size_t pubkey_len;
	struct an_stream *streams;
	struct dial_waiter *waiters; /* dials waiting for this connection */
	/* Relayed (an_host_conn_over_stream): the stream of another connection
	   that carries this one's bytes, instead of fd. */
	struct an_stream *carrier;
	struct an_buf carrier_in; /* carrier bytes the conn could not take yet */
	bool carrier_draining;
	ev_timer carrier_kick;    /* re-kick after output waited for room (as EV_WRITE) */
	bool relayed;             /* made by an_host_conn_over_stream; never cleared */
	/* A stream's on_data is reading bytes in place (stream_readable). */
	uint32_t delivering;
	bool reset_delivered; /* ... and the handler reset that stream */
	/* In the host's flush queue (conn_kick): holds a reference while there. */
	bool flush_queued;
	struct an_host_conn *flush_next;
};

struct peer_entry {
	struct an_peerid id;
	size_t n;
	char addrs[PEERSTORE_ADDRS][AN_HOST_ADDR_TEXT_MAX];
};

struct an_host {
	struct ev_loop *loop;
	const struct an_privkey *key;
	struct an_peerid id;
	struct an_host_limits lim;
	const char *agent; /* borrowed from the config */
	an_host_log_fn log;
	void *log_arg;
	struct listener listeners[AN_HOST_MAX_LISTENERS];
	size_t n_listeners;
	char *announce[AN_HOST_MAX_ANNOUNCE];
	size_t n_announce;
	struct handler_entry handlers[AN_HOST_MAX_PROTOCOLS];
	size_t n_handlers;
	an_host_changed_fn changed;
	void *changed_arg;
	an_host_conn_fn on_conn; /* an_host_on_connection's one slot */
	void *on_conn_arg;
	struct conn_observer observers[AN_HOST_MAX_OBSERVERS];
	size_t n_observers;
	an_host_identify_push_fn on_push;
	void *on_push_arg;
	struct an_host_conn *conns;
	size_t n_conns, n_pending;
	struct dial_waiter *loose_waiters; /* immediate reports not tied to a dialing conn */
	struct peer_entry *peers;
	size_t n_peers;
	bool shutting_down;
	ev_timer shutdown_timer;
	/* Connections with output to seal and send before the loop blocks
	   (conn_kick); flush_watcher empties the queue each loop iteration. */
	struct an_host_conn *flush_head, *flush_tail;
	ev_prepare flush_watcher;
	ev_tstamp refusal_logged; /* log_refusal: one line a second */
	size_t refusals_quiet;
	ev_idle flush_again; /* the queue outgrew one pass: do not block yet */
};

static void hlog(struct an_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hlog(struct an_host *h, const char *fmt, ...)
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

static size_t sockaddr_to_bin(const struct sockaddr_storage *ss, uint8_t *out, size_t cap)
{
	struct an_multiaddr ma;
	if (an_multiaddr_from_sockaddr((const struct sockaddr *)ss, sizeof(*ss), &ma) < 0 ||
	    ma.len > cap)
		return 0;
	memcpy(out, ma.bytes, ma.len);
	return ma.len;
}

static void sockaddr_to_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	struct an_multiaddr ma;
	if (an_multiaddr_from_sockaddr((const struct sockaddr *)ss, sizeof(*ss), &ma) < 0 ||
	    an_multiaddr_format(&ma, out, cap) < 0)
		snprintf(out, cap, "?");
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

static void conn_destroy(struct an_host_conn *c, int err, const char *reason);

static void conn_unref(struct an_host_conn *c)
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
		conn_unref(w->conn);
	free(w);
}

static void flush_run(struct an_host *h, size_t max);

void an_host_free(struct an_host *h)
{
	if (!h)
		return;
	while (h->conns)
		conn_destroy(h->conns, AN_ECLOSED, "host shut down");
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

static void notify_changed(struct an_host *h)
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

static int set_reuse(int fd)
{
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/*
 * A port already in use is an error (issue 11).  The listener needs
 * SO_REUSEPORT so that our dials can bind its port, but with it Linux lets
 * a second SO_REUSEPORT listener of the same user share the port, and the
 * kernel then splits the connections between two nodes.  So the address is
 * first bound without SO_REUSEPORT (SO_REUSEADDR only, so that our own
 * earlier dial sockets and TIME_WAIT leftovers do not count): that fails
 * with EADDRINUSE while anything listens there.  Port 0 becomes the port
 * the probe got.  Between the probe's close and the listener's bind another
 * process could take the port; it would have to skip the probe itself.
 */
static int probe_port(struct sockaddr_storage *ss, socklen_t sl)
{
	int one = 1, rc = 0;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)ss, sl) < 0) {
		rc = -errno;
		goto out;
	}
	struct sockaddr_storage got;
	socklen_t gl = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0) {
		rc = -errno;
		goto out;
	}
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = ((struct sockaddr_in *)&got)->sin_port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = ((struct sockaddr_in6 *)&got)->sin6_port;
out:
	close(fd);
	return rc;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

/* A port another listener holds is -EADDRINUSE (probe_port). */
int an_host_listen(struct an_host *h, const char *maddr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	int fd = -1, rc;

	if (h->n_listeners >= AN_HOST_MAX_LISTENERS)
		return AN_ELIMIT;
	rc = an_host_maddr_split(maddr, &ss, &sl, &id, &has_id);
	if (rc < 0)
		return rc;
	if (has_id)
		return AN_EMALFORMED;
	rc = probe_port(&ss, sl);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT on the listener too, so dials can bind the same port. */
	rc = set_reuse(fd);
	if (rc < 0)
		goto out;
	if (ss.ss_family == AF_INET6) {
		int one = 1;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		goto out;
	}
	struct listener *l = &h->listeners[h->n_listeners];
	l->sslen = sizeof(l->ss);
	if (getsockname(fd, (struct sockaddr *)&l->ss, &l->sslen) < 0) {
		rc = -errno;
		goto out;
	}
	sockaddr_to_text(&l->ss, l->text, sizeof(l->text));
	l->fd = fd;
	l->host = h;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	an_accept_pause_init(&l->pause, &l->io);
	ev_io_start(h->loop, &l->io);
	h->n_listeners++;
	fd = -1;
	notify_changed(h);
out:
	if (fd >= 0)
		close(fd);
	return rc;
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
	notify_changed(h);
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

static struct handler_entry *find_handler(const struct an_host *h, const char *proto)
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
	struct handler_entry *e = find_handler(h, proto);
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
	notify_changed(h);
	return 0;
}

void an_host_unhandle(struct an_host *h, const char *proto)
{
	struct handler_entry *e = find_handler(h, proto);
	if (!e)
		return;
	free(e->proto);
	*e = h->handlers[--h->n_handlers];
	notify_changed(h);
}

size_t an_host_protocols(const struct an_host *h, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_handlers && n < max; i++)
		out[n++] = h->handlers[i].proto;
	return n;
}

static bool registry_supported(void *ctx, const char *proto)
{
	return find_handler(ctx, proto) != NULL;
}

/* ---- streams ---- */

static struct an_stream *find_stream(const struct an_host_conn *c, uint32_t id)
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
static void stream_finish(struct an_stream *s, int err)
{
	ev_timer_stop(s->c->host->loop, &s->neg_timer);
	stream_unlink(s);
	if (s->h && s->h->on_close)
		s->h->on_close(s, err, s->arg);
	an_buf_free(&s->out);
	an_buf_free(&s->pending);
	free(s);
}

static void conn_kick(struct an_host_conn *c);

/* A stream still negotiating its protocol when the deadline passes is reset. */
static void negotiate_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_stream *s = (struct an_stream *)w;
	struct an_host_conn *c = s->c;
	hlog(c->host, "%s: stream %u: protocol negotiation timed out", c->remote_text, s->id);
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (y && !s->deferred)
		an_yamux_stream_reset(y, s->id);
	c->refs++;
	stream_finish(s, -ETIMEDOUT);
	conn_kick(c);
	conn_unref(c);
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
static int stream_flush(struct an_stream *s)
{
	struct an_host_conn *c = s->c;
	while (out_len(s) > 0) {
		size_t acc = 0;
		int rc = an_conn_stream_write(c->conn, s->id, s->out.data + s->out_off, out_len(s),
					      &acc);
		if (rc < 0)
			return rc;
		if (acc == 0)
			break;
		out_consume(s, acc);
	}
	if (s->fin_wanted && !s->fin_sent && !s->negotiating && out_len(s) == 0) {
		struct an_yamux *y = an_conn_yamux(c->conn);
		if (y && an_yamux_stream_close(y, s->id) == 0)
			s->fin_sent = true;
	}
	return 0;
}

/* Both directions done: the stream ends cleanly. */
static void stream_maybe_done(struct an_host_conn *c, uint32_t id)
{
	struct an_stream *s = find_stream(c, id);
	if (s && s->fin_sent && s->remote_fin)
		stream_finish(s, 0);
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
		rc = an_conn_stream_write(s->c->conn, s->id, p, n, &acc);
		if (rc < 0)
			acc = 0;
	}
	if (rc == 0 && acc < n) {
		rc = out_append(s, p + acc, n - acc);
		if (rc < 0)
			return rc;
		rc = stream_flush(s);
	}
	if (out_len(s) >= AN_STREAM_QUEUE_HIGH)
		s->want_writable = true;
	conn_kick(s->c);
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
	int rc = stream_flush(s);
	c->refs++;
	conn_kick(c);
	if (c->alive)
		stream_maybe_done(c, id);
	conn_unref(c);
	return rc;
}

void an_stream_reset(struct an_stream *s)
{
	struct an_host_conn *c = s->c;
	struct an_yamux *y = c->alive ? an_conn_yamux(c->conn) : NULL;
	if (y && !s->deferred && c->delivering == s->id)
		c->reset_delivered = true; /* its on_data still reads yamux's bytes */
	else if (y && !s->deferred)
		an_yamux_stream_reset(y, s->id);
	stream_finish(s, AN_ERESET);
	if (c->alive)
		conn_kick(c);
}

void an_stream_pause(struct an_stream *s, bool paused)
{
	struct an_host_conn *c = s->c;
	s->paused = paused;
	if (paused || !s->read_blocked || !c->alive)
		return;
	conn_kick(c); /* its conn_handle_events resumes the reading */
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
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (!y)
		return AN_ECLOSED;
	int rc = an_yamux_stream_open(y, &id);
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
		rc = stream_flush(s);
	if (rc < 0)
		an_yamux_stream_reset(y, id);
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
			stream_finish(s, rc);
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
	if (!an_conn_yamux(c->conn))
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
		stream_finish(s, rc);
		return rc;
	}
	/* before the kick: should it end s, on_close sees the caller's pointer set */
	if (out)
		*out = s;
	conn_kick(c);
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
	if (!c->alive || !(s = find_stream(c, id)))
		return;
	if (s->inbound) {
		snprintf(s->proto, sizeof(s->proto), "%s", an_mss_selected(&s->mss));
		struct handler_entry *e = find_handler(c->host, s->proto);
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
	stream_flush(s);
	if (s->h->on_open)
		s->h->on_open(s, s->arg);
	if (!c->alive || !(s = find_stream(c, id)))
		return;
	if (s->fin_wanted)
		stream_flush(s);
}

/* Read everything buffered on id and hand it up. */
static void stream_readable(struct an_host_conn *c, uint32_t id)
{
	struct an_host *h = c->host;
	for (;;) {
		struct an_stream *s = find_stream(c, id);
		struct an_yamux *y = an_conn_yamux(c->conn);
		if (!s || !y || !c->alive)
			return;
		if (s->negotiating) {
			const uint8_t *p;
			size_t len, used = 0;
			if (an_yamux_stream_peek(y, id, &p, &len) < 0 || len == 0)
				return;
			int rc = an_mss_recv(&s->mss, p, len, &used, &s->out);
			an_yamux_stream_consume(y, id, used, an_host_now_ms(h));
			stream_flush(s);
			if (rc == 0)
				return;
			if (rc < 0) {
				hlog(h, "%s: stream %u: negotiation failed: %s", c->remote_text, id,
				     an_mss_reason(&s->mss)[0] ? an_mss_reason(&s->mss) : an_strerror(rc));
				an_yamux_stream_reset(y, id);
				stream_finish(s, rc);
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
		if (an_yamux_stream_peek(y, id, &p, &got) < 0 || got == 0)
			return;
		if (got > READ_CHUNK)
			got = READ_CHUNK;
		if (s->h->on_data) {
			c->delivering = id;
			s->h->on_data(s, p, got, s->arg);
			c->delivering = 0;
		}
		if (!(y = an_conn_yamux(c->conn)))
			return; /* the connection failed meanwhile */
		if (c->reset_delivered) {
			c->reset_delivered = false;
			an_yamux_stream_reset(y, id); /* the handler reset the stream */
			return;
		}
		if (an_yamux_stream_consume(y, id, got, an_host_now_ms(h)) < 0)
			return;
	}
}

static void stream_peer_fin(struct an_host_conn *c, uint32_t id)
{
	stream_readable(c, id);
	struct an_stream *s = find_stream(c, id);
	if (!s || !c->alive)
		return;
	if (s->read_blocked) {
		s->fin_deferred = true; /* after the data still buffered */
		return;
	}
	s->fin_deferred = false;
	s->remote_fin = true;
	if (s->negotiating) {
		struct an_yamux *y = an_conn_yamux(c->conn);
		if (y)
			an_yamux_stream_reset(y, id);
		stream_finish(s, AN_ECLOSED);
		return;
	}
	if (s->h->on_eof)
		s->h->on_eof(s, s->arg);
	if (c->alive)
		stream_maybe_done(c, id);
}

/* ---- connections ---- */

static void conn_log_close(struct an_host_conn *c, const char *reason)
{
	char id[AN_PEERID_TEXT_MAX] = "";
	if (c->established)
		an_peerid_format(&c->peer, id, sizeof(id));
	hlog(c->host, "connection %s%s%s closed: %s", c->remote_text, *id ? " " : "", id, reason);
}

static void waiter_report(struct dial_waiter *w, struct an_host_conn *c, int err)
{
	an_host_dial_fn cb = w->cb;
	void *arg = w->arg;
	struct an_host *h = w->host;
	waiter_free(h, w);
	cb(h, c, err, arg);
}

static void conn_destroy(struct an_host_conn *c, int err, const char *reason)
{
	struct an_host *h = c->host;
	if (!c->alive)
		return;
	c->alive = false;
	/* The host's own reference goes at the end; callers that use c after
	 * this hold one of their own. */
	conn_log_close(c, reason);
	ev_io_stop(h->loop, &c->io);
	ev_timer_stop(h->loop, &c->hs_timer);
	ev_timer_stop(h->loop, &c->idle_timer);
	ev_timer_stop(h->loop, &c->ping_timer);
	ev_timer_stop(h->loop, &c->fail_timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	ev_timer_stop(h->loop, &c->carrier_kick);
	if (c->carrier) {
		struct an_stream *s = c->carrier;
		c->carrier = NULL; /* so its on_close does not come back here */
		an_stream_reset(s);
	}
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
		stream_finish(c->streams, AN_ECLOSED);
	while (c->waiters) {
		struct dial_waiter *w = c->waiters;
		c->waiters = w->next;
		waiter_report(w, NULL, err ? err : AN_ECLOSED);
	}
	conn_unref(c);
	if (h->shutting_down && !h->conns) {
		ev_timer_stop(h->loop, &h->shutdown_timer);
		ev_break(h->loop, EVBREAK_ALL);
	}
}

static void conn_handle_events(struct an_host_conn *c);

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
	conn_destroy(c, c->fail_err, c->fail_reason);
}

static void conn_destroy_later(struct an_host_conn *c, int err, const char *reason)
{
	if (c->failing)
		return;
	c->failing = true;
	c->fail_err = err;
	snprintf(c->fail_reason, sizeof(c->fail_reason), "%s", reason);
	ev_io_stop(c->host->loop, &c->io);
	ev_timer_start(c->host->loop, &c->fail_timer);
}

/* ---- relayed connections: the byte stream is another connection's stream ---- */

#define CARRIER_IN_MAX (4 * 1024 * 1024) /* held input; the carrier pauses far below */

static void conn_write(struct an_host_conn *c);

/* The relayed twin of the socket write below: output into the carrier. */
static void carrier_write(struct an_host_conn *c)
{
	const uint8_t *p;
	size_t len;
	an_conn_output(c->conn, &p, &len);
	while (len > 0 && c->carrier && an_stream_queued(c->carrier) < AN_STREAM_QUEUE_HIGH) {
		if (an_stream_write(c->carrier, p, len) < 0) {
			conn_destroy_later(c, AN_ECLOSED, "relayed stream closed");
			return;
		}
		an_conn_output_consume(c->conn, len);
		c->last_activity = ev_now(c->host->loop);
		an_conn_output(c->conn, &p, &len);
	}
	bool blocked = an_conn_output_blocked(c->conn);
	if (len == 0 && !blocked &&
	    ((c->closing && !c->streams) || an_conn_state(c->conn) == AN_CONN_FAILED)) {
		const char *why = "closed";
		int err = an_conn_error(c->conn, &why);
		conn_destroy_later(c, err ? err : AN_ECLOSED, *why ? why : "closed");
		return;
	}
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
		conn_handle_events(c);
		if (!c->alive)
			break;
		an_conn_flush(c->conn, an_host_now_ms(c->host));
		conn_write(c);
		if (used == 0 && an_conn_input_room(c->conn) == 0)
			break; /* the conn is full until its streams are read */
	}
	if (c->alive && c->carrier)
		an_stream_pause(c->carrier, c->carrier_in.len >= AN_STREAM_QUEUE_HIGH);
	c->carrier_draining = false;
	conn_unref(c);
}

static void carrier_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier != s || !c->alive || c->failing)
		return;
	if (an_buf_append(&c->carrier_in, p, n) < 0) {
		conn_destroy_later(c, AN_ELIMIT, "relayed input over its cap");
		return;
	}
	carrier_drain(c);
}

static void carrier_eof(struct an_stream *s, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier == s && c->alive)
		conn_destroy_later(c, AN_ECLOSED, "relayed stream ended");
}

static void carrier_close(struct an_stream *s, int err, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier != s)
		return; /* reset by conn_destroy */
	c->carrier = NULL; /* s is freed when this returns */
	if (c->alive)
		conn_destroy_later(c, err ? err : AN_ECLOSED, "relayed stream closed");
}

static void carrier_writable(struct an_stream *s, void *arg)
{
	struct an_host_conn *c = arg;
	if (c->carrier == s && c->alive)
		conn_kick(c);
}

static void carrier_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, carrier_kick));
	c->refs++;
	if (c->carrier_in.len)
		carrier_drain(c);
	conn_kick(c);
	conn_unref(c);
}

static const struct an_stream_handler carrier_handler = {
	.on_data = carrier_data,
	.on_eof = carrier_eof,
	.on_close = carrier_close,
	.on_writable = carrier_writable,
};

/* Flush the conn's output to the socket; close when finished closing. */
static void conn_write(struct an_host_conn *c)
{
	const uint8_t *p;
	size_t len;
	if (!c->alive || c->connecting || c->failing)
		return;
	if (c->carrier) {
		carrier_write(c);
		return;
	}
	an_conn_output(c->conn, &p, &len);
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			an_conn_output_consume(c->conn, (size_t)n);
			c->last_activity = ev_now(c->host->loop);
			an_conn_output(c->conn, &p, &len);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		conn_destroy_later(c, -errno, "write failed");
		return;
	}
	/* Output the conn could not seal for lack of room (and the stream
	 * bytes queued behind it) goes on once the socket has taken the rest:
	 * keep waiting for writability, whose callback kicks the conn again.
	 * Nothing else would: a peer with a wide-open window sends us nothing. */
	bool blocked = an_conn_output_blocked(c->conn);
	int want = EV_READ | (len > 0 || blocked ? EV_WRITE : 0);
	/* A graceful close waits for open streams to finish (identify answers
	 * in flight, a peer's last reads); the shutdown deadline bounds it. */
	if (len == 0 && !blocked &&
	    ((c->closing && !c->streams) || an_conn_state(c->conn) == AN_CONN_FAILED)) {
		const char *why = "closed";
		int err = an_conn_error(c->conn, &why);
		conn_destroy_later(c, err ? err : AN_ECLOSED, *why ? why : "closed");
		return;
	}
	if ((ev_is_active(&c->io) ? c->io.events & (EV_READ | EV_WRITE) : 0) != want) {
		ev_io_stop(c->host->loop, &c->io);
		ev_io_set(&c->io, c->fd, want);
		ev_io_start(c->host->loop, &c->io);
	}
}

/* Let yamux speak, move streams' queued bytes, write: now.  The second
   flush seals what the handlers caused (window updates of resumed reading,
   answers), so it leaves with the rest. */
static void conn_kick_now(struct an_host_conn *c)
{
	if (!c->alive || c->connecting)
		return;
	an_conn_flush(c->conn, an_host_now_ms(c->host));
	conn_handle_events(c);
	if (!c->alive)
		return;
	an_conn_flush(c->conn, an_host_now_ms(c->host));
	conn_write(c);
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
static void conn_kick(struct an_host_conn *c)
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
		conn_unref(c);
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
	an_yamux_ping(an_conn_yamux(c->conn), an_host_now_ms(h));
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
	conn_unref(c);
}

static bool addr_stream_allowed(struct an_host_conn *c);

static void inbound_stream(struct an_host_conn *c, uint32_t id)
{
	peer_is_ready(c);
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (!addr_stream_allowed(c)) {
		an_yamux_stream_reset(y, id);
		return;
	}
	struct an_stream *s = stream_new(c, id, true);
	if (!s) {
		an_yamux_stream_reset(y, id);
		return;
	}
	if (an_mss_listener_init(&s->mss, NULL, 0, registry_supported, c->host) < 0) {
		an_yamux_stream_reset(y, id);
		stream_finish(s, AN_EPROTO);
	}
}

static void conn_handle_events(struct an_host_conn *c)
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
			hlog(c->host, "%s: %s", c->remote_text, ev.reason ? ev.reason : an_strerror(ev.err));
			/* The GoAway (if any) goes out, then conn_write closes. */
			c->closing = true;
			break;
		case AN_CONN_EV_YAMUX: {
			uint32_t id = ev.yamux.stream_id;
			struct an_stream *s;
			switch (ev.yamux.type) {
			case AN_YAMUX_EV_STREAM_NEW:
				if (c->closing) {
					an_yamux_stream_reset(an_conn_yamux(c->conn), id);
					break;
				}
				inbound_stream(c, id);
				break;
			case AN_YAMUX_EV_READABLE:
				stream_readable(c, id);
				break;
			case AN_YAMUX_EV_PEER_FIN:
				stream_peer_fin(c, id);
				break;
			case AN_YAMUX_EV_PEER_RST:
				if ((s = find_stream(c, id)))
					stream_finish(s, AN_ERESET);
				break;
			case AN_YAMUX_EV_WRITABLE:
				if ((s = find_stream(c, id))) {
					stream_flush(s);
					stream_maybe_done(c, id);
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
	/* Streams that were waiting for room in the output: flush them, resume
	 * reading where the queue drained, tell writers they may go on.  Any
	 * callback may change the list, so restart after each one (bounded). */
	for (int round = 0; c->alive && round < 4096; round++) {
		struct an_stream *s;
		bool again = false;
		for (s = c->streams; s; s = s->next) {
			if (out_len(s) || (s->fin_wanted && !s->fin_sent && !s->negotiating))
				stream_flush(s);
			if (!s->paused && (s->read_blocked || s->fin_deferred) && out_len(s) < READ_BLOCK_MARK) {
				uint32_t id = s->id;
				bool fin = s->fin_deferred;
				s->read_blocked = false;
				stream_readable(c, id);
				s = find_stream(c, id);
				if (fin && s && !s->read_blocked)
					stream_peer_fin(c, id);
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
	c->dispatching = false;
	conn_unref(c);
}

static void conn_read(struct an_host_conn *c)
{
	struct an_host *h = c->host;
	uint8_t *p;
	size_t room;
	/* straight into the conn's input buffer: no copy before decryption */
	if (an_conn_input_buffer(c->conn, &p, &room) < 0 || room == 0)
		return;
	ssize_t n = read(c->fd, p, room);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_destroy(c, -errno, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_destroy(c, AN_ECLOSED, "remote closed the connection");
		return;
	}
	c->last_activity = ev_now(h->loop);
	an_conn_input_commit(c->conn, (size_t)n, an_host_now_ms(h));
	conn_handle_events(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct an_host_conn *c = (struct an_host_conn *)w;
	c->refs++;
	if (c->connecting && (revents & EV_WRITE)) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			conn_destroy(c, -err, strerror(err));
			goto out;
		}
		c->connecting = false;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
			sockaddr_to_text(&ss, c->remote_text, sizeof(c->remote_text));
			c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
		}
		an_conn_start(c->conn, an_host_now_ms(c->host));
	}
	if (c->alive && (revents & EV_READ))
		conn_read(c);
	if (c->alive)
		conn_kick(c);
out:
	conn_unref(c);
}

static void hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_host_conn *c = (struct an_host_conn *)((char *)w - offsetof(struct an_host_conn, hs_timer));
	conn_destroy(c, -ETIMEDOUT, c->connecting ? "connect timed out" : "handshake timed out");
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
	conn_destroy(c, -ETIMEDOUT, "idle timeout");
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
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (!y)
		return;
	an_yamux_ping(y, an_host_now_ms(c->host));
	c->refs++;
	conn_kick(c);
	conn_unref(c);
}

static struct an_host_conn *conn_new(struct an_host *h, int fd, bool inbound,
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
	struct an_host_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (an_conn_new(&cc, &c->conn) < 0) {
		free(c);
		return NULL;
	}
	c->host = h;
	c->fd = fd;
	c->refs = 1;
	c->alive = true;
	c->inbound = inbound;
	c->last_activity = ev_now(h->loop);
	strcpy(c->remote_text, "?");
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	int hs_ms = inbound && fd >= 0 ? h->lim.inbound_handshake_timeout_ms : h->lim.handshake_timeout_ms;
	ev_timer_init(&c->hs_timer, hs_timeout_cb, hs_ms / 1000.0, 0);
	ev_timer_init(&c->idle_timer, idle_cb, 0, h->lim.idle_timeout_ms / 1000.0);
	ev_timer_init(&c->ping_timer, ping_timer_cb, KEEPALIVE_S, KEEPALIVE_S);
	ev_timer_init(&c->fail_timer, fail_timer_cb, 0, 0);
	ev_timer_init(&c->carrier_kick, carrier_kick_cb, 0, 0);
	an_buf_init(&c->carrier_in, CARRIER_IN_MAX);
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

static bool addr_key_from(const struct sockaddr_storage *ss, struct an_host_addr_key *k)
{
	bool loopback;
	size_t prefix; /* bytes of ip that make the network */
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		k->ip[10] = k->ip[11] = 0xff;
		memcpy(k->ip + 12, &a->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		memcpy(k->ip, &a->sin6_addr, 16);
	} else {
		return false;
	}
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (memcmp(k->ip, v4mapped, 12) == 0) {
		loopback = k->ip[12] == 127;
		prefix = 15; /* /24 */
	} else {
		loopback = memcmp(k->ip, v6loop, 16) == 0;
		prefix = 8; /* /64 */
	}
	memcpy(k->net, k->ip, loopback ? 16 : prefix);
	return true;
}

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
static void log_refusal(struct an_host *h, const char *text, const char *why)
{
	ev_tstamp now = ev_now(h->loop);
	if (h->refusal_logged && now - h->refusal_logged < 1.0) {
		h->refusals_quiet++;
		return;
	}
	h->refusal_logged = now;
	if (h->refusals_quiet)
		hlog(h, "connection %s refused: %s (and %zu more not logged)", text, why, h->refusals_quiet);
	else
		hlog(h, "connection %s refused: %s", text, why);
	h->refusals_quiet = 0;
}

/* Why a new inbound connection from k is refused, or NULL. */
static const char *addr_refusal(const struct an_host *h, const struct an_host_addr_key *k)
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
static bool addr_stream_allowed(struct an_host_conn *c)
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
		hlog(h, "%s: streams refused: streams of this %s at their limit", c->remote_text,
		     u.streams_addr >= h->lim.max_streams_per_addr ? "address" : "network");
	}
	return false;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct listener *l = (struct listener *)w;
	struct an_host *h = l->host;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = an_accept(l->fd, &ss, &sl);
		if (fd == AN_ELIMIT)
			an_accept_pause(loop, &l->pause, w);
		if (an_accept_should_stop(fd))
			return;
		if (fd < 0)
			continue;
		char text[AN_HOST_ADDR_TEXT_MAX];
		sockaddr_to_text(&ss, text, sizeof(text));
		if (h->shutting_down || h->n_conns >= h->lim.max_conns ||
		    h->n_pending >= h->lim.max_pending) {
			log_refusal(h, text,
				    h->shutting_down ? "shutting down"
				    : h->n_conns >= h->lim.max_conns ? "connection limit reached"
								      : "pending handshake limit reached");
			close(fd);
			continue;
		}
		struct an_host_addr_key key;
		bool has_key = addr_key_from(&ss, &key);
		const char *why = has_key ? addr_refusal(h, &key) : NULL;
		if (why) {
			log_refusal(h, text, why);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct an_host_conn *c = conn_new(h, fd, true, NULL);
		if (!c) {
			close(fd);
			continue;
		}
		c->has_key = has_key;
		c->key = key;
		strcpy(c->remote_text, text);
		c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
		ev_io_start(loop, &c->io);
	}
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
			conn_unref(c);
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

/* Bind a dial socket to our listen port (same family) for NAT port reuse. */
static void bind_listen_port(struct an_host *h, int fd, int family)
{
	for (size_t i = 0; i < h->n_listeners; i++) {
		struct listener *l = &h->listeners[i];
		if (l->ss.ss_family != family)
			continue;
		if (set_reuse(fd) < 0)
			return;
		if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) < 0)
			hlog(h, "dial: cannot reuse listen port of %s: %s", l->text, strerror(errno));
		return;
	}
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

static int dial_addr(struct an_host *h, const char *maddr, int timeout_ms, unsigned flags,
		     an_host_dial_fn cb, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	int rc = an_host_maddr_split(maddr, &ss, &sl, &id, &has_id);
	if (rc < 0)
		return rc;
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
	struct dial_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(w);
		return -errno;
	}
	bind_listen_port(h, fd, ss.ss_family);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		if (errno == EADDRNOTAVAIL || errno == EADDRINUSE) {
			/* the 4-tuple from our listen port is taken: use any port */
			close(fd);
			fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
				close(fd);
				fd = -1;
			}
		} else {
			rc = -errno;
			close(fd);
			fd = -1;
		}
		if (fd < 0) {
			free(w);
			return report_later(h, NULL, rc ? rc : -ECONNREFUSED, cb, arg);
		}
	}
	struct an_host_conn *c = conn_new(h, fd, false, has_id ? &id : NULL);
	if (!c) {
		close(fd);
		free(w);
		return -ENOMEM;
	}
	sockaddr_to_text(&ss, c->remote_text, sizeof(c->remote_text));
	c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
	c->has_key = addr_key_from(&ss, &c->key);
	c->connecting = true;
	ev_io_set(&c->io, fd, EV_WRITE);
	ev_io_start(h->loop, &c->io);
	if (timeout_ms <= 0)
		timeout_ms = h->lim.handshake_timeout_ms;
	w->host = h;
	w->cb = cb;
	w->arg = arg;
	w->conn = NULL; /* the waiter lives in c->waiters; no ref needed */
	ev_timer_init(&w->t, waiter_timer_cb, timeout_ms / 1000.0, 0);
	ev_timer_start(h->loop, &w->t);
	w->next = c->waiters;
	c->waiters = w;
	/* waiter_timer_cb needs the connection to unlink itself */
	w->conn = c;
	c->refs++;
	return 0;
}

int an_host_conn_over_stream(struct an_host *h, struct an_stream *s, bool initiator,
			     const struct an_peerid *expected, const char *remote_text,
			     int timeout_ms, an_host_dial_fn cb, void *arg,
			     const struct an_stream_handler **handler, void **handler_arg)
{
	struct dial_waiter *w = NULL;
	if (h->shutting_down)
		return AN_ECLOSED;
	if (h->n_conns >= h->lim.max_conns || h->n_pending >= h->lim.max_pending)
		return AN_ELIMIT;
	if (cb && !(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	struct an_host_conn *c = conn_new(h, -1, !initiator, expected);
	if (!c) {
		free(w);
		return -ENOMEM;
	}
	snprintf(c->remote_text, sizeof(c->remote_text), "%s", remote_text ? remote_text : "/p2p-circuit");
	c->carrier = s;
	c->relayed = true;
	*handler = &carrier_handler;
	*handler_arg = c;
	if (w) {
		if (timeout_ms <= 0)
			timeout_ms = h->lim.handshake_timeout_ms;
		w->host = h;
		w->cb = cb;
		w->arg = arg;
		ev_timer_init(&w->t, waiter_timer_cb, timeout_ms / 1000.0, 0);
		ev_timer_start(h->loop, &w->t);
		w->next = c->waiters;
		c->waiters = w;
		w->conn = c;
		c->refs++;
	}
	if (initiator)
		an_conn_start(c->conn, an_host_now_ms(h));
	conn_kick(c);
	return 0;
}

void an_host_conn_ref(struct an_host_conn *c)
{
	c->refs++;
}

void an_host_conn_unref(struct an_host_conn *c)
{
	conn_unref(c);
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
	struct an_yamux *y = an_conn_yamux(c->conn);
	if (!y) {
		conn_destroy(c, AN_ECLOSED, "closed locally");
		return;
	}
	an_yamux_goaway(y, AN_YAMUX_GOAWAY_NORMAL);
	c->closing = true;
	conn_kick(c);
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
		conn_destroy(h->conns, AN_ECLOSED, "shutdown deadline");
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
			conn_destroy(c, AN_ECLOSED, "shutting down");
		c = next; /* conn_destroy unlinks only c */
	}
}
