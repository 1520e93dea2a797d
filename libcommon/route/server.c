#include "route/server.h"

#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/peerid.h"
#include "record/record.h"
#include "util/error.h"

struct site {
	char host[AN_ROUTE_HOST_MAX + 1];
	char did[AN_RECORD_DID_MAX];
	const struct an_route_responder *r;
	void *arg;
};

struct an_route_server {
	struct an_host *host;
	struct an_route_server_config cfg;
	struct site sites[AN_ROUTE_SERVER_SITES_MAX];
	size_t n_sites;
	bool registered;
	struct an_route_exchange *list;
	size_t active;
};

struct an_route_exchange {
	struct an_route_server *srv;
	struct an_stream *stream; /* NULL once the host reported it gone */
	struct an_route_exchange *next, **pprev;
	struct an_route_parser parser;
	struct an_route_body body;
	const struct site *site;
	void *ctx;
	ev_timer head_timer, idle_timer, defer;
	int depth;          /* inside one of our calls: finish waits for the way out */
	bool closed;        /* the stream is gone; finalize pending */
	int close_err;
	int why;            /* our reason for a reset (idle timeout), kept over AN_ERESET */
	bool held;          /* idle timer stopped (an_route_exchange_hold) */
	bool head_done, started, responded, ended, body_done, ignore_input, head_request;
	struct an_route_writer w;
	int status;
	uint64_t bytes, t0;
	char peer[AN_PEERID_TEXT_MAX];
	bool keyed;                  /* key holds the client's address (not relayed) */
	struct an_host_addr_key key;
};

static void start_timers(struct an_route_exchange *x, struct ev_loop *loop);
static void xlog(struct an_route_exchange *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xlog(struct an_route_exchange *x, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (!x->srv->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->srv->cfg.log(x->srv->cfg.log_arg, msg);
}

static struct ev_loop *xloop(const struct an_route_exchange *x)
{
	return an_host_loop(x->srv->host);
}

/* ---- lifetime ---- */

static void finalize(struct an_route_exchange *x)
{
	struct an_route_server *s = x->srv;
	struct ev_loop *loop = xloop(x);
	const struct an_route_head *h = x->head_done ? an_route_parser_head(&x->parser) : NULL;
	int err = x->why ? x->why : x->close_err;
	ev_timer_stop(loop, &x->head_timer);
	ev_timer_stop(loop, &x->idle_timer);
	ev_timer_stop(loop, &x->defer);
	if (x->stream) { /* server shutdown: the stream is still there */
		an_stream_set_user(x->stream, NULL);
		an_stream_reset(x->stream);
		x->stream = NULL;
	}
	if (err == 0 && !x->ended)
		err = AN_ECLOSED;
	if (s->cfg.access) {
		struct an_route_access a = {
			.peer = x->peer,
			.host = h && h->host ? h->host : "-",
			.method = h ? h->method : "-",
			.target = h ? h->target : "-",
			.status = x->status,
			.bytes = x->bytes,
			.duration_ms = an_host_now_ms(s->host) - x->t0,
			.err = err,
		};
		s->cfg.access(s->cfg.access_arg, &a);
	}
	if (x->started && x->site->r->finish)
		x->site->r->finish(x, err);
	*x->pprev = x->next;
	if (x->next)
		x->next->pprev = x->pprev;
	s->active--;
	an_route_parser_free(&x->parser);
	free(x);
}

static void defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	finalize(w->data);
}

static void enter(struct an_route_exchange *x)
{
	x->depth++;
}

/* Leaving one of our calls: a stream that went meanwhile is finalized from the loop. */
static void leave(struct an_route_exchange *x)
{
	if (--x->depth == 0 && x->closed && !ev_is_active(&x->defer))
		ev_timer_start(xloop(x), &x->defer);
}

static void touch(struct an_route_exchange *x)
{
	if (!x->closed && !x->held)
		ev_timer_again(xloop(x), &x->idle_timer);
}

/* ---- writing ---- */

static int stream_put(struct an_route_exchange *x, const struct an_buf *b)
{
	if (!x->stream)
		return AN_ECLOSED;
	touch(x);
	return b->len ? an_stream_write(x->stream, b->data, b->len) : 0;
}

static void reset(struct an_route_exchange *x, int why, const char *reason)
{
	if (!x->stream || x->closed)
		return;
	if (why && !x->why)
		x->why = why;
	if (reason)
		xlog(x, "route: %s: stream reset: %s", x->peer, reason);
	x->ignore_input = true;
	an_stream_reset(x->stream);
}

/*
 * The request is not read any more after an error answer: a client that
 * keeps its side open (one trickling a head, one sending a body we refused)
 * is reset after AN_ROUTE_LINGER_MS, time to read the answer, instead of
 * holding the stream for the idle timeout.
 */
static void linger(struct an_route_exchange *x)
{
	double t = AN_ROUTE_LINGER_MS / 1000.0;
	if (x->closed || x->held)
		return;
	if (x->idle_timer.repeat > t)
		x->idle_timer.repeat = t;
	ev_timer_again(xloop(x), &x->idle_timer);
}

/* A complete error response, then half-close; after a head, a reset. */
static int send_error(struct an_route_exchange *x, int status)
{
	struct an_buf b;
	int rc;
	x->ignore_input = true;
	if (x->responded) {
		reset(x, 0, "error after the response head");
		return -EINVAL;
	}
	an_buf_init(&b, 1024);
	rc = an_route_error_write(&b, status);
	if (rc == 0)
		rc = stream_put(x, &b);
	an_buf_free(&b);
	x->responded = x->ended = true;
	x->status = status;
	if (rc == 0 && x->stream)
		rc = an_stream_close_write(x->stream);
	linger(x);
	return rc;
}

/* ---- reading ---- */

static const struct site *site_find(const struct an_route_server *s, const char *host)
{
	for (size_t i = 0; host && i < s->n_sites; i++)
		if (strcmp(s->sites[i].host, host) == 0)
			return &s->sites[i];
	return NULL;
}

static void body_complete(struct an_route_exchange *x)
{
	x->body_done = true;
	if (x->site->r->body_end)
		x->site->r->body_end(x);
}

static void feed_body(struct an_route_exchange *x, const uint8_t *p, size_t n)
{
	while (n > 0 && !x->ignore_input && !x->closed) {
		const uint8_t *data;
		size_t used, dlen;
		int rc;
		if (x->body_done) {
			/* one request per stream: bytes after its body are a protocol error */
			reset(x, AN_EPROTO, "bytes after the request");
			return;
		}
		rc = an_route_body_decode(&x->body, p, n, &used, &data, &dlen);
		if (rc < 0) {
			send_error(x, an_route_body_status(&x->body) ? an_route_body_status(&x->body) : 400);
			return;
		}
		if (dlen && x->site->r->body)
			x->site->r->body(x, data, dlen);
		p += used;
		n -= used;
		if (rc == 1 && !x->body_done)
			body_complete(x);
	}
}

/* The head is complete: route it, start the responder. */
static void dispatch(struct an_route_exchange *x)
{
	const struct an_route_head *h = an_route_parser_head(&x->parser);
	const struct site *site = site_find(x->srv, h->host);
	int rc;
	x->head_done = true;
	ev_timer_stop(xloop(x), &x->head_timer);
	if (!site || !h->did || strcmp(site->did, h->did) != 0) {
		send_error(x, 421);
		return;
	}
	x->site = site;
	x->head_request = strcmp(h->method, "HEAD") == 0;
	an_route_body_init(&x->body, h->framing, h->content_length, x->srv->cfg.max_body);
	x->started = true;
	rc = site->r->start(site->arg, x, h);
	if (rc < 0) {
		if (!x->responded)
			send_error(x, 500);
		else
			reset(x, rc, "responder failed");
		return;
	}
	if (h->framing == AN_ROUTE_BODY_NONE && !x->closed)
		body_complete(x);
}

/*
 * Would one more request from this client go over its share of the pool?
 * Requests under way from its address (or, relayed, from its peer ID) and
 * from its /24 (/64; all relayed clients together) are counted.
 */
static bool over_share(const struct an_route_server *s, bool keyed, const struct an_host_addr_key *k,
		       const char *peer)
{
	size_t n_addr = 0, n_net = 0;
	for (const struct an_route_exchange *x = s->list; x; x = x->next) {
		if (x->keyed != keyed)
			continue;
		if (keyed ? memcmp(x->key.net, k->net, sizeof(k->net)) == 0 : true)
			n_net++;
		if (keyed ? memcmp(x->key.ip, k->ip, sizeof(k->ip)) == 0 : strcmp(x->peer, peer) == 0)
			n_addr++;
	}
	return n_addr >= s->cfg.max_streams_per_addr || n_net >= s->cfg.max_streams_per_net;
}

static void on_open(struct an_stream *st, void *arg)
{
	struct an_route_server *s = arg;
	struct an_route_exchange *x;
	struct ev_loop *loop = an_host_loop(s->host);
	struct an_host_addr_key key;
	char peer[AN_PEERID_TEXT_MAX];
	bool keyed = an_host_conn_addr_key(an_stream_conn(st), &key);
	an_peerid_format(an_host_conn_peer(an_stream_conn(st)), peer, sizeof(peer));
	if (s->active >= s->cfg.max_streams || over_share(s, keyed, &key, peer) ||
	    !(x = calloc(1, sizeof(*x)))) {
		an_stream_reset(st);
		return;
	}
	x->srv = s;
	x->stream = st;
	x->t0 = an_host_now_ms(s->host);
	x->keyed = keyed;
	x->key = key;
	memcpy(x->peer, peer, sizeof(peer));
	an_route_parser_init_request(&x->parser, s->cfg.max_body, 0);
	ev_init(&x->head_timer, NULL);
	ev_init(&x->defer, defer_cb);
	ev_timer_set(&x->defer, 0, 0);
	x->defer.data = x;
	x->next = s->list;
	if (s->list)
		s->list->pprev = &x->next;
	x->pprev = &s->list;
	s->list = x;
	s->active++;
	an_stream_set_user(st, x);
	start_timers(x, loop);
}

static void on_data(struct an_stream *st, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct an_route_exchange *x = an_stream_user(st);
	size_t used = 0;
	if (!x || x->ignore_input)
		return;
	enter(x);
	touch(x);
	if (!x->head_done) {
		int rc = an_route_parse(&x->parser, p, n, &used);
		if (rc < 0) {
			x->head_done = false;
			ev_timer_stop(xloop(x), &x->head_timer);
			send_error(x, an_route_parser_status(&x->parser));
			goto out;
		}
		if (rc == 1)
			dispatch(x);
	}
	if (x->head_done && x->started && used < n)
		feed_body(x, p + used, n - used);
out:
	leave(x);
}

static void on_eof(struct an_stream *st, void *arg)
{
	(void)arg;
	struct an_route_exchange *x = an_stream_user(st);
	if (!x || x->ignore_input)
		return;
	enter(x);
	if (!x->head_done) {
		ev_timer_stop(xloop(x), &x->head_timer);
		send_error(x, 400); /* the request ended inside its head */
	} else if (x->started && !x->body_done) {
		if (an_route_body_eof(&x->body) < 0)
			send_error(x, an_route_body_status(&x->body) ? an_route_body_status(&x->body) : 400);
		else
			body_complete(x);
	}
	leave(x);
}

static void on_writable(struct an_stream *st, void *arg)
{
	(void)arg;
	struct an_route_exchange *x = an_stream_user(st);
	if (!x || !x->started || x->ended || x->closed)
		return;
	enter(x);
	touch(x);
	if (x->site->r->writable)
		x->site->r->writable(x);
	leave(x);
}

static void on_close(struct an_stream *st, int err, void *arg)
{
	(void)arg;
	struct an_route_exchange *x = an_stream_user(st);
	if (!x)
		return;
	x->stream = NULL;
	x->closed = true;
	x->close_err = err;
	if (x->depth == 0)
		finalize(x);
	else if (!ev_is_active(&x->defer))
		ev_timer_start(xloop(x), &x->defer);
}

static void head_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_route_exchange *x = w->data;
	if (x->head_done || x->closed)
		return;
	enter(x);
	xlog(x, "route: %s: request head not complete in time", x->peer);
	x->why = -ETIMEDOUT;
	send_error(x, 408);
	leave(x);
}

static void idle_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_route_exchange *x = w->data;
	ev_timer_stop(loop, w);
	enter(x);
	reset(x, -ETIMEDOUT, "idle timeout");
	leave(x);
}

static void start_timers(struct an_route_exchange *x, struct ev_loop *loop)
{
	const struct an_route_server_config *c = &x->srv->cfg;
	ev_timer_init(&x->head_timer, head_timeout, c->head_timeout_ms / 1000.0, 0);
	x->head_timer.data = x;
	ev_timer_start(loop, &x->head_timer);
	ev_init(&x->idle_timer, idle_timeout);
	x->idle_timer.repeat = c->idle_timeout_ms / 1000.0;
	x->idle_timer.data = x;
	ev_timer_again(loop, &x->idle_timer);
}

static const struct an_stream_handler handler = {
	.on_open = on_open,
	.on_data = on_data,
	.on_eof = on_eof,
	.on_close = on_close,
	.on_writable = on_writable,
};

/* ---- the server ---- */

int an_route_server_new(struct an_host *h, const struct an_route_server_config *cfg,
			struct an_route_server **out)
{
	struct an_route_server *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->host = h;
	if (cfg)
		s->cfg = *cfg;
	if (s->cfg.head_timeout_ms <= 0)
		s->cfg.head_timeout_ms = AN_ROUTE_HEAD_TIMEOUT_MS;
	if (s->cfg.idle_timeout_ms <= 0)
		s->cfg.idle_timeout_ms = AN_ROUTE_IDLE_TIMEOUT_MS;
	if (!s->cfg.max_body)
		s->cfg.max_body = AN_ROUTE_SERVER_BODY_MAX;
	if (!s->cfg.max_streams)
		s->cfg.max_streams = AN_ROUTE_SERVER_STREAMS_MAX;
	if (!s->cfg.max_streams_per_addr)
		s->cfg.max_streams_per_addr = AN_ROUTE_SERVER_STREAMS_PER_ADDR;
	if (!s->cfg.max_streams_per_net)
		s->cfg.max_streams_per_net = AN_ROUTE_SERVER_STREAMS_PER_NET;
	*out = s;
	return 0;
}

int an_route_server_add_site(struct an_route_server *s, const char *fqdn,
			     const struct an_route_responder *r, void *arg)
{
	char ph[AN_PEERHASH_LEN + 1], lookup[AN_ROUTE_HOST_MAX + 32];
	struct site *site;
	int rc;
	if (!fqdn || !an_record_fqdn_valid(fqdn) || strlen(fqdn) > AN_ROUTE_HOST_MAX)
		return AN_EMALFORMED;
	for (const char *p = fqdn; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			return AN_EMALFORMED;
	if (site_find(s, fqdn))
		return -EEXIST;
	if (s->n_sites == AN_ROUTE_SERVER_SITES_MAX)
		return AN_ELIMIT;
	site = &s->sites[s->n_sites];
	an_peerhash(an_host_peer_id(s->host), ph);
	snprintf(lookup, sizeof(lookup), "an://%s@%s", ph, fqdn);
	rc = an_record_did(lookup, site->did);
	if (rc < 0)
		return rc;
	if (!s->registered) {
		rc = an_host_handle(s->host, AN_ROUTE_PROTOCOL, &handler, s);
		if (rc < 0)
			return rc;
		s->registered = true;
	}
	snprintf(site->host, sizeof(site->host), "%s", fqdn);
	site->r = r;
	site->arg = arg;
	s->n_sites++;
	return 0;
}

int an_route_server_did(const struct an_route_server *s, const char *fqdn, char *out, size_t cap)
{
	const struct site *site = site_find(s, fqdn);
	if (!site)
		return AN_ENOTFOUND;
	if (strlen(site->did) >= cap)
		return AN_ETOOBIG;
	strcpy(out, site->did);
	return 0;
}

size_t an_route_server_active(const struct an_route_server *s)
{
	return s->active;
}

void an_route_server_free(struct an_route_server *s)
{
	if (!s)
		return;
	if (s->registered)
		an_host_unhandle(s->host, AN_ROUTE_PROTOCOL);
	while (s->list) {
		struct an_route_exchange *x = s->list;
		if (!x->why)
			x->why = AN_ECLOSED;
		finalize(x); /* resets a live stream, detached from us first */
	}
	free(s);
}

/* ---- for responders ---- */

void an_route_exchange_set_ctx(struct an_route_exchange *x, void *ctx)
{
	x->ctx = ctx;
}

void *an_route_exchange_ctx(const struct an_route_exchange *x)
{
	return x->ctx;
}

struct an_host *an_route_exchange_host(const struct an_route_exchange *x)
{
	return x->srv->host;
}

const char *an_route_exchange_peer(const struct an_route_exchange *x)
{
	return x->peer;
}

const struct an_route_head *an_route_exchange_head(const struct an_route_exchange *x)
{
	return x->head_done ? an_route_parser_head(&x->parser) : NULL;
}

int an_route_exchange_respond(struct an_route_exchange *x, const struct an_route_response *r)
{
	struct an_buf b;
	int rc;
	if (x->responded)
		return -EINVAL;
	if (x->closed)
		return AN_ECLOSED;
	enter(x);
	an_buf_init(&b, AN_ROUTE_HEAD_MAX * 2);
	rc = an_route_response_write(&b, r);
	if (rc == 0)
		rc = stream_put(x, &b);
	an_buf_free(&b);
	if (rc == 0) {
		x->responded = true;
		x->status = r->status;
		an_route_writer_init(&x->w, x->head_request ? AN_ROUTE_BODY_NONE : r->framing,
				     r->content_length);
	}
	leave(x);
	return rc;
}

int an_route_exchange_error(struct an_route_exchange *x, int status)
{
	int rc;
	if (x->responded)
		return -EINVAL;
	if (x->closed)
		return AN_ECLOSED;
	enter(x);
	rc = send_error(x, status);
	leave(x);
	return rc;
}

int an_route_exchange_write(struct an_route_exchange *x, const void *p, size_t n)
{
	struct an_buf b;
	int rc;
	if (!x->responded || x->ended)
		return -EINVAL;
	if (x->closed)
		return AN_ECLOSED;
	if (n == 0)
		return 0;
	if (x->w.framing == AN_ROUTE_BODY_EOF || x->w.framing == AN_ROUTE_BODY_LENGTH) {
		/* no framing bytes: straight to the stream, no copy here */
		if (x->w.framing == AN_ROUTE_BODY_LENGTH && n > x->w.remaining)
			return AN_ETOOBIG;
		enter(x);
		touch(x);
		rc = an_stream_write(x->stream, p, n);
		if (rc == 0) {
			if (x->w.framing == AN_ROUTE_BODY_LENGTH)
				x->w.remaining -= n;
			x->bytes += n;
		}
		leave(x);
		return rc;
	}
	enter(x);
	an_buf_init(&b, n + 64);
	rc = an_route_writer_write(&x->w, &b, p, n);
	if (rc == 0)
		rc = stream_put(x, &b);
	if (rc == 0)
		x->bytes += n;
	an_buf_free(&b);
	leave(x);
	return rc;
}

bool an_route_exchange_writable(const struct an_route_exchange *x)
{
	return x->stream && !x->closed && an_stream_queued(x->stream) < AN_STREAM_QUEUE_HIGH;
}

int an_route_exchange_end(struct an_route_exchange *x)
{
	struct an_buf b;
	int rc;
	if (!x->responded || x->ended)
		return -EINVAL;
	if (x->closed)
		return AN_ECLOSED;
	enter(x);
	an_buf_init(&b, 64);
	rc = an_route_writer_end(&x->w, &b);
	if (rc == 0)
		rc = stream_put(x, &b);
	an_buf_free(&b);
	if (rc == 0) {
		x->ended = true;
		rc = an_stream_close_write(x->stream);
	} else {
		reset(x, rc, "response body cut short");
	}
	leave(x);
	return rc;
}

void an_route_exchange_hold(struct an_route_exchange *x, bool hold)
{
	x->held = hold;
	if (x->closed)
		return;
	if (hold)
		ev_timer_stop(xloop(x), &x->idle_timer);
	else
		ev_timer_again(xloop(x), &x->idle_timer);
}

void an_route_exchange_abort(struct an_route_exchange *x)
{
	if (x->closed)
		return;
	enter(x);
	reset(x, 0, NULL);
	leave(x);
}
