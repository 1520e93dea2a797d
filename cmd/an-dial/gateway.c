/*
 * gateway.c - an-dial's HTTP/1.1 gateway for browsers (see dial.h and
 * man/an-route.7, Gateways).
 *
 * Every site has an origin of its own, http://NAME.PEERHASH.localhost:PORT/
 * (browsers resolve *.localhost to loopback), so cookies, storage, service
 * workers and the same-origin policy keep sites apart; /an/PEERHASH@NAME/path
 * redirects there.  A request on a site's origin becomes a /an/route/1.0.0
 * request to that site on a cached connection; the response streams back
 * with its status and fields, hop-by-hop fields dropped and the body framed
 * again for the browser's connection.  One request at a time per browser
 * connection (keep-alive, no pipelining: bytes after a request head are
 * kept until its response is done).  The browser's requests are parsed by
 * the route codec's strict HTTP parser.
 *
 * Backpressure: a browser that reads slowly fills our output buffer; above
 * OUT_HIGH the route call is paused, below OUT_LOW resumed.
 *
 * Any web page can send requests here, so (man/an-dial.1, GATEWAY):
 * only Host values that name the gateway are answered (421 otherwise: DNS
 * rebinding); pins change only on a navigation the user made (Sec-Fetch-*);
 * response fields that reach across origins (Set-Cookie's Domain,
 * Clear-Site-Data) are dropped; a request head has one deadline from its
 * first byte, a body one from the head; each client address holds at most
 * GW_PER_ADDR_MAX connections; the site cache and lookups are capped
 * (site.c).
 */
#include "dial.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "route/client.h"
#include "util/accept.h"
#include "util/error.h"

#define GW_MAX_CLIENTS 256
#define GW_IN_MAX (AN_ROUTE_HEAD_MAX + 65536)
#define GW_BODY_MAX (1024 * 1024)         /* request bodies forwarded (buffered) */
#define GW_OUT_MAX (8u * 1024 * 1024)     /* hard cap of a browser's output */
#define GW_OUT_HIGH (512 * 1024)          /* pause the route call above */
#define GW_OUT_LOW (128 * 1024)           /* resume below */
#define GW_KEEPALIVE_S 60.0               /* idle browser connection */
#define GW_HEAD_S 10.0                    /* a whole request head, from its first byte */
#define GW_BODY_S 30.0                    /* a whole request body, from its head */
#define GW_PER_ADDR_MAX 64                /* connections of one client address */
#define GW_READ_CHUNK 16384

struct gateway;

enum cstate { C_HEAD, C_BODY, C_WAIT_SITE, C_CALL, C_DONE };

struct client {
	struct client *next, *prev;
	struct gateway *g;
	int fd;
	ev_io rio, wio;
	ev_timer timer;
	char peer[64];
	struct an_buf in, out;
	enum cstate state;
	struct an_route_parser parser;
	struct an_route_body reqbody_dec;
	struct an_buf reqbody;
	/* the request being served */
	char method[32];
	char target[AN_ROUTE_LINE_MAX + 1];
	char path[AN_ROUTE_LINE_MAX + 1]; /* the site's target */
	char host[AN_RECORD_FQDN_MAX + 48];  /* the browser's Host, lowercase, no port */
	char host_port[16];                  /* ":PORT" of that Host, or "" */
	const char *base;                    /* the gateway name Host ends in: "localhost" or a --gateway-host */
	bool intent;         /* a navigation the user made (Sec-Fetch-*): may pin */
	bool started;        /* the request's first byte arrived (its head deadline runs) */
	bool admitted;       /* counted against GW_PER_ADDR_MAX */
	bool refused;        /* over GW_PER_ADDR_MAX: closed at once */
	struct an_name name;
	struct an_route_field fields[AN_ROUTE_FIELDS_MAX];
	char *field_store;   /* copies of the fields' strings */
	size_t n_fields;
	bool keep_alive;
	bool head_method;
	struct site_wait wait;
	struct an_route_call *call;
	bool call_paused;
	bool resp_started;
	struct an_route_writer wr;
	int status;
	uint64_t bytes;
	ev_tstamp t0;
	bool by_host;        /* routed by Host (a site's own origin) */
	bool closing;        /* close once out is flushed */
	bool dead;           /* freed once the call reports */
	int processing;      /* client_process calls under way (nested through request_done) */
	bool close_pending;  /* closed while processing: freed when the outer call returns */
};

struct gateway {
	struct dial *d;
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	ev_signal sigint, sigterm;
	struct client *clients;
	size_t n_clients;
	char listen_text[128];
	char listen_host[INET6_ADDRSTRLEN + 2]; /* the bound address as a Host ("[::1]" for v6) */
	const struct gateway_opts *o;
};

/* ---- small helpers ---- */

static bool hop_by_hop(const char *name, const char *connection)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te",
					  "trailer", "upgrade", "transfer-encoding", "content-length",
					  "host"};
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strcasecmp(name, hop[i]) == 0)
			return true;
	/* and the fields Connection names */
	if (connection) {
		size_t n = strlen(name);
		for (const char *p = connection; *p;) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			const char *e = p;
			while (*e && *e != ',' && *e != ' ' && *e != '\t')
				e++;
			if ((size_t)(e - p) == n && strncasecmp(p, name, n) == 0)
				return true;
			p = e;
		}
	}
	return false;
}

static bool has_token(const char *value, const char *token)
{
	size_t n = strlen(token);
	for (const char *p = value; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		p = e;
	}
	return false;
}

static void html_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 7 < cap; s++) {
		const char *r = NULL;
		switch (*s) {
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '&': r = "&amp;"; break;
		case '"': r = "&quot;"; break;
		case '\'': r = "&#39;"; break;
		}
		if (r) {
			size_t n = strlen(r);
			memcpy(out + o, r, n);
			o += n;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = 0;
}

/* ---- browser connection I/O ---- */

static void client_free(struct client *c);
static void client_process(struct client *c);

static void client_log(struct client *c)
{
	ev_tstamp ms = (ev_now(c->g->loop) - c->t0) * 1000.0;
	cli_warn("%s %s %s%s %d %llu %.0fms", c->peer, c->method[0] ? c->method : "-",
		 c->by_host ? c->host : "", c->target[0] ? c->target : "-", c->status,
		 (unsigned long long)c->bytes, ms);
}

static void want_write(struct client *c)
{
	if (c->out.len && !ev_is_active(&c->wio))
		ev_io_start(c->g->loop, &c->wio);
}

static void restart_timer(struct client *c, ev_tstamp after)
{
	ev_timer_stop(c->g->loop, &c->timer);
	ev_timer_set(&c->timer, after, 0.);
	ev_timer_start(c->g->loop, &c->timer);
}

/* Write what we can now; true if the client is still usable. */
static bool flush_out(struct client *c)
{
	while (c->out.len) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return false;
		}
		an_buf_consume(&c->out, (size_t)n);
		if (c->state == C_CALL && c->call_paused)
			restart_timer(c, GW_KEEPALIVE_S); /* the browser reads: not stalled */
	}
	if (c->out.len == 0)
		ev_io_stop(c->g->loop, &c->wio);
	else
		want_write(c);
	if (c->call && c->call_paused && c->out.len < GW_OUT_LOW) {
		c->call_paused = false;
		ev_timer_stop(c->g->loop, &c->timer); /* the call's own idle timer runs again */
		an_route_call_resume(c->call);
	}
	return true;
}

static void client_close(struct client *c)
{
	if (c->dead)
		return;
	ev_io_stop(c->g->loop, &c->rio);
	ev_io_stop(c->g->loop, &c->wio);
	ev_timer_stop(c->g->loop, &c->timer);
	if (c->processing) {
		/* client_process still reads c: it frees c when it returns */
		c->close_pending = true;
		return;
	}
	site_wait_cancel(&c->wait);
	if (c->call) {
		c->dead = true;
		an_route_call_abort(c->call); /* client_free from on_done */
		return;
	}
	client_free(c);
}

/* c's address without its port ("127.0.0.2", "[::1]"). */
static size_t addr_len(const struct client *c)
{
	const char *colon = strrchr(c->peer, ':');
	return colon ? (size_t)(colon - c->peer) : strlen(c->peer);
}

/*
 * A new connection (reset_request's first call, before accept_cb starts
 * the timer): over GW_PER_ADDR_MAX connections from its address it is
 * refused - its timer fires at once and closes it; else the first request
 * head has GW_HEAD_S from now.
 */
static void admit(struct client *c)
{
	size_t n = 0, len = addr_len(c);
	c->admitted = true;
	for (struct client *o = c->g->clients; o; o = o->next)
		if (o != c && !o->refused && addr_len(o) == len && memcmp(o->peer, c->peer, len) == 0)
			n++;
	c->refused = n >= GW_PER_ADDR_MAX;
	if (!ev_is_active(&c->timer))
		ev_timer_set(&c->timer, c->refused ? 0. : GW_HEAD_S, 0.);
}

static void reset_request(struct client *c)
{
	an_route_parser_free(&c->parser);
	an_route_parser_init_http_request(&c->parser, GW_BODY_MAX,
					  (uint64_t)((ev_now(c->g->loop) + GW_HEAD_S) * 1000.0));
	an_buf_free(&c->reqbody);
	an_buf_init(&c->reqbody, GW_BODY_MAX);
	free(c->field_store);
	c->field_store = NULL;
	c->n_fields = 0;
	c->method[0] = c->target[0] = c->path[0] = 0;
	c->state = C_HEAD;
	c->by_host = false;
	c->status = 0;
	c->bytes = 0;
	c->resp_started = false;
	c->call_paused = false;
	c->started = false;
	c->intent = false;
	c->base = NULL;
	c->wait.pin = false;
	c->t0 = ev_now(c->g->loop);
	if (!c->admitted)
		admit(c);
}

/* The response is complete: log, then the next request or close. */
static void request_done(struct client *c)
{
	client_log(c);
	if (!c->keep_alive) {
		c->closing = true;
		c->state = C_DONE;
		restart_timer(c, GW_KEEPALIVE_S); /* bounds a browser that never reads */
		if (!flush_out(c) || c->out.len == 0)
			client_close(c);
		return;
	}
	reset_request(c);
	ev_timer_stop(c->g->loop, &c->timer);
	ev_timer_set(&c->timer, GW_KEEPALIVE_S, 0.);
	ev_timer_start(c->g->loop, &c->timer);
	if (!flush_out(c)) {
		client_close(c);
		return;
	}
	if (!ev_is_active(&c->rio))
		ev_io_start(c->g->loop, &c->rio);
	if (c->in.len) {
		c->started = true; /* the next head is here already: its deadline runs */
		restart_timer(c, GW_HEAD_S);
		client_process(c);
	}
}

/* A complete response of the gateway's own (errors, redirects, the index). */
static void respond_own(struct client *c, int status, const char *ctype, const char *body,
			const char *location)
{
	struct an_route_field f[2];
	size_t nf = 0;
	size_t blen = strlen(body);
	f[nf++] = (struct an_route_field){"Content-Type", ctype};
	if (location)
		f[nf++] = (struct an_route_field){"Location", location};
	struct an_route_response r = {
		.status = status,
		.fields = f,
		.n_fields = nf,
		.framing = AN_ROUTE_BODY_LENGTH,
		.content_length = blen,
	};
	c->status = status;
	if (an_route_response_write(&c->out, &r) < 0 ||
	    (!c->head_method && an_buf_append(&c->out, body, blen) < 0)) {
		c->keep_alive = false;
	}
	c->bytes = c->head_method ? 0 : blen;
	request_done(c);
}

static void respond_error(struct client *c, int status, const char *detail)
{
	char esc[1024], body[2048];
	html_escape(detail, esc, sizeof(esc));
	snprintf(body, sizeof(body),
		 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n"
		 "<body><h1>%d %s</h1>\n<p>%s</p>\n<hr><p>an-dial gateway</p></body></html>\n",
		 status, an_route_status_reason(status), status, an_route_status_reason(status), esc);
	respond_own(c, status, "text/html; charset=utf-8", body, NULL);
}

/* ---- the route call ---- */

/*
 * Set-Cookie without its Domain attribute (a host-only cookie of the
 * site's origin: Domain=localhost would reach every site).  out holds
 * 2 * strlen(v) + 1.
 */
static void cookie_without_domain(const char *v, char *out)
{
	size_t o = 0;
	bool first = true;
	for (const char *p = v; *p;) {
		const char *e = p + strcspn(p, ";");
		const char *a = p, *z = e;
		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		size_t kn = strcspn(a, "=;");
		while (kn && (a[kn - 1] == ' ' || a[kn - 1] == '\t'))
			kn--;
		bool domain = !first && kn == 6 && strncasecmp(a, "domain", 6) == 0;
		if (!domain && (first || z > a)) {
			if (!first) {
				memcpy(out + o, "; ", 2);
				o += 2;
			}
			memcpy(out + o, a, (size_t)(z - a));
			o += (size_t)(z - a);
		}
		first = false;
		p = *e ? e + 1 : e;
	}
	out[o] = 0;
}

/* A response field that reaches across sites: dropped. */
static bool cross_site_field(const struct client *c, const char *name)
{
	if (strcasecmp(name, "clear-site-data") == 0)
		return true; /* clears a whole registrable domain's cookies, other sites' too */
	if (strcasecmp(name, "service-worker-allowed") == 0 || strcasecmp(name, "set-cookie") == 0)
		return !c->by_host; /* never on the shared origin (the path form only redirects) */
	return false;
}

static void call_head(struct an_route_call *call, const struct an_route_head *h, void *arg)
{
	struct client *c = arg;
	struct an_route_field f[AN_ROUTE_FIELDS_MAX];
	char location[AN_ROUTE_LINE_MAX + 8];
	const char *conn = an_route_head_get(h, "connection");
	size_t nf = 0;
	(void)call;
	if (c->dead)
		return;
	size_t need = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		if (strcasecmp(h->fields[i].name, "set-cookie") == 0)
			need += 2 * strlen(h->fields[i].value) + 1;
	char *cookies = need ? malloc(need) : NULL, *cp = cookies;
	if (need && !cookies) {
		c->keep_alive = false;
		an_route_call_abort(c->call);
		return;
	}
	for (size_t i = 0; i < h->n_fields && nf < AN_ROUTE_FIELDS_MAX; i++) {
		if (hop_by_hop(h->fields[i].name, conn) || cross_site_field(c, h->fields[i].name))
			continue;
		f[nf] = h->fields[i];
		if (strcasecmp(f[nf].name, "set-cookie") == 0) {
			cookie_without_domain(f[nf].value, cp);
			f[nf].value = cp;
			cp += strlen(cp) + 1;
		}
		/* an://PEERHASH@NAME/path in a redirect: that site's own origin here */
		if (strcasecmp(f[nf].name, "location") == 0 && strncmp(f[nf].value, "an://", 5) == 0) {
			struct an_name ln;
			const char *v = f[nf].value, *at = strchr(v, '@');
			const char *path = at ? at + strcspn(at, "/?#") : NULL;
			char lname[AN_ROUTE_LINE_MAX + 8];
			if (path && (size_t)(path - v) < sizeof(lname) && c->base) {
				snprintf(lname, sizeof(lname), "%.*s", (int)(path - v), v);
				if (an_name_parse(lname, false, &ln) == 0 &&
				    (size_t)snprintf(location, sizeof(location), "http://%s.%s.%s%s%s%s", ln.fqdn,
						     ln.peerhash, c->base, c->host_port, *path == '/' ? "" : "/",
						     path) < sizeof(location))
					f[nf].value = location;
			}
		}
		nf++;
	}
	struct an_route_response r = {.status = h->status, .reason = h->reason, .fields = f, .n_fields = nf};
	if (c->head_method || h->status == 204 || h->status == 304) {
		r.framing = h->framing == AN_ROUTE_BODY_LENGTH ? AN_ROUTE_BODY_LENGTH : AN_ROUTE_BODY_NONE;
		r.content_length = h->content_length;
		an_route_writer_init(&c->wr, AN_ROUTE_BODY_NONE, 0);
	} else if (h->framing == AN_ROUTE_BODY_LENGTH) {
		r.framing = AN_ROUTE_BODY_LENGTH;
		r.content_length = h->content_length;
		an_route_writer_init(&c->wr, AN_ROUTE_BODY_LENGTH, h->content_length);
	} else if (h->framing == AN_ROUTE_BODY_NONE) {
		r.framing = AN_ROUTE_BODY_LENGTH;
		r.content_length = 0;
		an_route_writer_init(&c->wr, AN_ROUTE_BODY_LENGTH, 0);
	} else {
		r.framing = AN_ROUTE_BODY_CHUNKED;
		an_route_writer_init(&c->wr, AN_ROUTE_BODY_CHUNKED, 0);
	}
	c->status = h->status;
	int wrc = an_route_response_write(&c->out, &r);
	free(cookies);
	if (wrc < 0) {
		/* a head our writer refuses (should not happen: the parser is as strict) */
		c->keep_alive = false;
		an_route_call_abort(c->call);
		return;
	}
	c->resp_started = true;
	flush_out(c);
}

static void call_body(struct an_route_call *call, const uint8_t *p, size_t n, void *arg)
{
	struct client *c = arg;
	if (c->dead || !c->resp_started)
		return;
	if (c->head_method)
		return;
	if (an_route_writer_write(&c->wr, &c->out, p, n) < 0) {
		c->keep_alive = false;
		an_route_call_abort(call);
		return;
	}
	c->bytes += n;
	if (!flush_out(c)) {
		client_close(c);
		return;
	}
	if (c->out.len >= GW_OUT_HIGH && !c->call_paused) {
		c->call_paused = true;
		an_route_call_pause(call);
		/* the call's idle timer stops while paused: a browser that
		 * neither reads nor closes is ended by this one */
		restart_timer(c, GW_KEEPALIVE_S);
	}
}

static void call_done(struct an_route_call *call, int err, void *arg)
{
	struct client *c = arg;
	(void)call;
	c->call = NULL;
	if (c->dead) {
		if (c->status == 0)
			c->status = 499; /* the browser went away */
		client_log(c);
		client_free(c);
		return;
	}
	if (err == 0) {
		if (!c->head_method && c->status != 204 && c->status != 304 &&
		    an_route_writer_end(&c->wr, &c->out) < 0)
			c->keep_alive = false;
		request_done(c);
		return;
	}
	if (!c->resp_started) {
		char why[640];
		snprintf(why, sizeof(why), "%s@%s did not answer: %s", c->name.peerhash, c->name.fqdn,
			 err == -ETIMEDOUT ? "timed out" : an_strerror(err));
		site_forget(c->g->d, &c->name);
		respond_error(c, err == -ETIMEDOUT ? 504 : 502, why);
		return;
	}
	/* a body cut short: end the browser's connection without completing it */
	client_log(c);
	c->state = C_DONE;
	c->keep_alive = false;
	client_close(c);
}

static const struct an_route_call_handler call_handler = {
	.on_head = call_head,
	.on_body = call_body,
	.on_done = call_done,
	.on_writable = NULL,
};

static void gw_call_writable(struct an_route_call *call, void *arg)
{
	struct client *c = arg;
	int rc = 0;
	if (c->reqbody.len) {
		rc = an_route_call_write(call, c->reqbody.data, c->reqbody.len);
		an_buf_reset(&c->reqbody);
	}
	if (rc == 0)
		rc = an_route_call_end(call);
	if (rc < 0)
		an_route_call_abort(call);
}

static const struct an_route_call_handler call_handler_body = {
	.on_head = call_head,
	.on_body = call_body,
	.on_done = call_done,
	.on_writable = gw_call_writable,
};

static void site_ready(struct site_wait *w, int err, struct an_host_conn *conn)
{
	struct client *c = (struct client *)((char *)w - offsetof(struct client, wait));
	if (err < 0) {
		char detail[DIAL_WHY_MAX];
		int status = err == AN_ENOTFOUND ? 404 : err == AN_EPINNED ? 403
			   : err == AN_ELIMIT ? 503 : err == -ETIMEDOUT ? 504 : 502;
		/* this request's own error (w->why is the wait's copy) */
		snprintf(detail, sizeof(detail), "%s", w->why[0] ? w->why : an_strerror(err));
		respond_error(c, status, detail);
		return;
	}
	bool body = c->reqbody.len > 0;
	if (!c->by_host) {
		/* never the shared origin's credentials (the path form redirects, so this is a guard) */
		size_t k = 0;
		for (size_t i = 0; i < c->n_fields; i++)
			if (strcasecmp(c->fields[i].name, "cookie") != 0 &&
			    strcasecmp(c->fields[i].name, "authorization") != 0)
				c->fields[k++] = c->fields[i];
		c->n_fields = k;
	}
	struct an_route_call_opts o = {
		.peerhash = c->name.peerhash,
		.host = c->name.fqdn,
		.method = c->method,
		.target = c->path,
		.fields = c->fields,
		.n_fields = c->n_fields,
		.framing = body ? AN_ROUTE_BODY_LENGTH : AN_ROUTE_BODY_NONE,
		.content_length = c->reqbody.len,
		.response_timeout_ms = c->g->d->cfg.timeout_ms,
		.idle_timeout_ms = c->g->d->cfg.timeout_ms,
	};
	c->state = C_CALL;
	int rc = an_route_call_start(conn, &o, body ? &call_handler_body : &call_handler, c, &c->call);
	if (rc < 0) {
		site_forget(c->g->d, &c->name);
		respond_error(c, 502, an_strerror(rc));
	}
}

/* ---- requests ---- */

static const char INDEX_PAGE[] =
	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>an-dial gateway</title></head>\n"
	"<body><h1>an-dial gateway</h1>\n"
	"<p>Open an Alternet site as <code>http://NAME.PEERHASH.localhost:PORT/</code> (or "
	"<code>/an/PEERHASH@NAME/</code>, which redirects there).</p></body></html>\n";

/* Copy the browser's end-to-end fields (the parser's strings die with it at the next request). */
static int keep_fields(struct client *c, const struct an_route_head *h)
{
	const char *conn = an_route_head_get(h, "connection");
	size_t total = 0, off = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		total += strlen(h->fields[i].name) + strlen(h->fields[i].value) + 2;
	c->field_store = malloc(total + 1);
	if (!c->field_store)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_fields; i++) {
		if (hop_by_hop(h->fields[i].name, conn))
			continue;
		size_t a = strlen(h->fields[i].name) + 1, b = strlen(h->fields[i].value) + 1;
		memcpy(c->field_store + off, h->fields[i].name, a);
		memcpy(c->field_store + off + a, h->fields[i].value, b);
		c->fields[c->n_fields].name = c->field_store + off;
		c->fields[c->n_fields].value = c->field_store + off + a;
		c->n_fields++;
		off += a + b;
	}
	return 0;
}

/* true if host is name or a subdomain of it (both lowercase). */
static bool host_under(const char *host, const char *name)
{
	size_t h = strlen(host), n = strlen(name);
	return strcmp(host, name) == 0 || (h > n + 1 && host[h - n - 1] == '.' && strcmp(host + h - n, name) == 0);
}

/*
 * The gateway name the browser's Host ends in ("localhost" for loopback
 * literals, localhost and *.localhost; or a --gateway-host), NULL if the
 * Host names something else: a page on another name (DNS rebinding) is
 * not answered.
 */
static const char *host_base(const struct client *c)
{
	struct in_addr a4;
	const struct gateway *g = c->g;
	if (!c->host[0])
		return NULL;
	if (inet_pton(AF_INET, c->host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 || strcmp(c->host, g->listen_host) == 0 ? "localhost" : NULL;
	if (c->host[0] == '[')
		return strcmp(c->host, "[::1]") == 0 || strcmp(c->host, g->listen_host) == 0 ? "localhost" : NULL;
	if (host_under(c->host, "localhost"))
		return "localhost";
	for (size_t i = 0; i < g->o->n_hosts; i++)
		if (host_under(c->host, g->o->hosts[i]))
			return g->o->hosts[i];
	return NULL;
}

/*
 * A site by its own origin: Host FQDN.PEERHASH.BASE (browsers resolve
 * every *.localhost name to loopback), so each site gets its own cookies,
 * storage and same-origin policy, and absolute paths ("/img/a.png") work.
 * true if the Host named a site (the request is then under way).
 */
static bool host_route(struct client *c)
{
	char name[AN_RECORD_FQDN_MAX + 48];
	size_t n = strlen(c->host), sl = strlen(c->base) + 1;
	if (n <= sl + AN_PEERHASH_LEN + 2 || !host_under(c->host, c->base))
		return false;
	n -= sl;
	const char *ph = c->host + n - AN_PEERHASH_LEN;
	if (ph[-1] != '.')
		return false;
	snprintf(name, sizeof(name), "an://%.*s@%.*s", AN_PEERHASH_LEN, ph,
		 (int)(n - AN_PEERHASH_LEN - 1), c->host);
	if (an_name_parse(name, false, &c->name) < 0)
		return false; /* not a site name: the gateway's own pages */
	snprintf(c->path, sizeof(c->path), "%s", c->target);
	c->by_host = true;
	c->wait.cb = site_ready;
	c->wait.pin = c->intent;
	site_get(c->g->d, &c->name, &c->wait);
	return true;
}

/* The request head and body are in: route it. */
static void request_route(struct client *c)
{
	char name[AN_ROUTE_LINE_MAX + 8], loc[AN_ROUTE_LINE_MAX + AN_RECORD_FQDN_MAX + 128];
	const char *t = c->target;
	c->state = C_WAIT_SITE;
	ev_timer_stop(c->g->loop, &c->timer);
	c->base = host_base(c);
	if (!c->base) {
		c->keep_alive = false;
		respond_error(c, 421, "This gateway answers only for its own names: 127.0.0.1, localhost, "
				      "*.localhost and those given with --gateway-host.");
		return;
	}
	if (host_route(c))
		return;
	if (strcmp(t, "/") == 0) {
		respond_own(c, 200, "text/html; charset=utf-8", INDEX_PAGE, NULL);
		return;
	}
	if (strncmp(t, "/an/", 4) != 0) {
		respond_error(c, 404, "Not an Alternet path: open http://NAME.PEERHASH.localhost:PORT/ or /an/PEERHASH@NAME/.");
		return;
	}
	const char *n = t + 4, *end = n + strcspn(n, "/?");
	if ((size_t)(end - n) >= sizeof(name) - 8) {
		respond_error(c, 400, "Malformed gateway path.");
		return;
	}
	snprintf(name, sizeof(name), "an://%.*s", (int)(end - n), n);
	if (!memchr(n, '@', (size_t)(end - n)) || an_name_parse(name, false, &c->name) < 0) {
		respond_error(c, 400, "Malformed gateway path: expected /an/PEERHASH@NAME/.");
		return;
	}
	/* the site's own origin, path and query kept: sites never share the gateway's origin */
	if ((size_t)snprintf(loc, sizeof(loc), "http://%s.%s.%s%s%s%s", c->name.fqdn, c->name.peerhash,
			     c->base, c->host_port, *end == '/' ? "" : "/", end) >= sizeof(loc)) {
		respond_error(c, 414, "The address is too long.");
		return;
	}
	respond_own(c, 302, "text/html; charset=utf-8", "<!DOCTYPE html>\n<p>Moved to the site's own origin.</p>\n",
		    loc);
}

static void head_complete(struct client *c)
{
	const struct an_route_head *h = an_route_parser_head(&c->parser);
	const char *conn = an_route_head_get(h, "connection");
	snprintf(c->method, sizeof(c->method), "%s", h->method);
	snprintf(c->target, sizeof(c->target), "%s", h->target);
	c->head_method = strcmp(h->method, "HEAD") == 0;
	c->keep_alive = !(conn && has_token(conn, "close"));
	const char *host = an_route_head_get(h, "host");
	c->host[0] = c->host_port[0] = 0;
	if (host) {
		/* [v6]:port or name:port; lowercase, a trailing dot dropped */
		size_t hl = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
		if (hl > strlen(host))
			hl = 0; /* "[" without "]" */
		if (hl < sizeof(c->host) && (!host[hl] || host[hl] == ':')) {
			size_t cl = hl;
			for (size_t i = 0; i < hl; i++)
				c->host[i] = (char)tolower((unsigned char)host[i]);
			if (cl > 1 && c->host[cl - 1] == '.')
				cl--;
			c->host[cl] = 0;
			if (host[hl] == ':' && strlen(host + hl) < sizeof(c->host_port) &&
			    strspn(host + hl + 1, "0123456789") == strlen(host + hl + 1))
				snprintf(c->host_port, sizeof(c->host_port), "%s", host + hl);
		}
	}
	/* a navigation the user made: typed, bookmarked (pages cannot forge Sec-Fetch-*) */
	const char *mode = an_route_head_get(h, "sec-fetch-mode");
	const char *user = an_route_head_get(h, "sec-fetch-user");
	const char *site = an_route_head_get(h, "sec-fetch-site");
	c->intent = mode && user && site && strcmp(mode, "navigate") == 0 && strcmp(user, "?1") == 0 &&
		    strcmp(site, "none") == 0;
	if (keep_fields(c, h) < 0) {
		respond_error(c, 500, "Out of memory.");
		return;
	}
	if (h->framing == AN_ROUTE_BODY_NONE) {
		request_route(c);
		return;
	}
	an_route_body_init(&c->reqbody_dec, h->framing, h->content_length, GW_BODY_MAX);
	c->state = C_BODY;
	restart_timer(c, GW_BODY_S); /* the whole body, not each byte */
}

/* Run the parser over the input we have. */
static void client_process_once(struct client *c);

static void client_process(struct client *c)
{
	c->processing++;
	client_process_once(c);
	if (--c->processing == 0 && c->close_pending) {
		c->close_pending = false;
		client_close(c);
	}
}

static void client_process_once(struct client *c)
{
	while (c->in.len && !c->close_pending && (c->state == C_HEAD || c->state == C_BODY)) {
		size_t used = 0;
		if (c->state == C_HEAD) {
			int rc = an_route_parse(&c->parser, c->in.data, c->in.len, &used);
			an_buf_consume(&c->in, used);
			if (rc < 0) {
				int st = an_route_parser_status(&c->parser);
				c->keep_alive = false;
				respond_error(c, st ? st : 400, an_route_parser_why(&c->parser));
				return;
			}
			if (rc == 0)
				return;
			head_complete(c);
			continue;
		}
		const uint8_t *data;
		size_t n = 0;
		int rc = an_route_body_decode(&c->reqbody_dec, c->in.data, c->in.len, &used, &data, &n);
		if (rc >= 0 && n && an_buf_append(&c->reqbody, data, n) < 0)
			rc = AN_ETOOBIG;
		an_buf_consume(&c->in, used);
		if (rc < 0) {
			int st = an_route_body_status(&c->reqbody_dec);
			c->keep_alive = false;
			respond_error(c, st ? st : 400, "Malformed or too large request body.");
			return;
		}
		if (rc == 1)
			request_route(c);
	}
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = (struct client *)((char *)w - offsetof(struct client, rio));
	uint8_t *p;
	(void)loop;
	(void)revents;
	if (c->refused) {
		client_close(c);
		return;
	}
	if (an_buf_reserve(&c->in, GW_READ_CHUNK, &p) < 0) {
		/* the browser sends more than one request ahead: stop reading */
		ev_io_stop(c->g->loop, &c->rio);
		return;
	}
	ssize_t n = recv(c->fd, p, GW_READ_CHUNK, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* the browser closed (or failed): a request under way is abandoned */
		if (c->state == C_CALL || c->state == C_WAIT_SITE) {
			c->status = c->status ? c->status : 499;
		}
		client_close(c);
		return;
	}
	c->in.len += (size_t)n;
	if (c->state == C_HEAD && !c->started) {
		/* one deadline for the whole head, from its first byte (not renewed by each byte) */
		c->started = true;
		restart_timer(c, GW_HEAD_S);
	}
	if (c->state == C_HEAD || c->state == C_BODY)
		client_process(c);
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = (struct client *)((char *)w - offsetof(struct client, wio));
	(void)loop;
	(void)revents;
	if (!flush_out(c)) {
		client_close(c);
		return;
	}
	if (c->closing && c->out.len == 0)
		client_close(c);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = (struct client *)((char *)w - offsetof(struct client, timer));
	(void)loop;
	(void)revents;
	if (c->refused) {
		client_close(c);
		return;
	}
	if (c->state == C_HEAD && (c->started || c->in.len || c->parser.buf.len)) {
		c->keep_alive = false;
		respond_error(c, 408, "The request head did not arrive in time.");
		return;
	}
	if (c->state == C_BODY) {
		c->keep_alive = false;
		respond_error(c, 408, "The request body did not arrive in time.");
		return;
	}
	if (c->state == C_CALL) {
		c->keep_alive = false; /* a browser that stopped reading mid-body */
		client_close(c);
		return;
	}
	if (c->state == C_HEAD || c->state == C_DONE)
		client_close(c); /* idle keep-alive connection, or a close that never flushed */
}

static void client_free(struct client *c)
{
	struct gateway *g = c->g;
	ev_io_stop(g->loop, &c->rio);
	ev_io_stop(g->loop, &c->wio);
	ev_timer_stop(g->loop, &c->timer);
	site_wait_cancel(&c->wait);
	if (c->fd >= 0)
		close(c->fd);
	an_route_parser_free(&c->parser);
	an_buf_free(&c->in);
	an_buf_free(&c->out);
	an_buf_free(&c->reqbody);
	free(c->field_store);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->n_clients--;
	free(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gateway *g = (struct gateway *)((char *)w - offsetof(struct gateway, accept_io));
	/* out of descriptors without a reserve: the listener rests (util/accept.h);
	   one gateway a process, and the process ends with it */
	static ev_timer pause;
	(void)revents;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = an_accept(g->fd, &ss, &sl);
		if (fd == AN_ELIMIT) {
			if (!ev_is_active(&pause))
				an_accept_pause_init(&pause, w);
			an_accept_pause(loop, &pause, w);
		}
		if (an_accept_should_stop(fd))
			return;
		if (fd < 0)
			continue;
		struct client *c = NULL;
		if (g->n_clients >= GW_MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->g = g;
		c->fd = fd;
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
			snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
			snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host, port);
		}
		an_buf_init(&c->in, GW_IN_MAX);
		an_buf_init(&c->out, GW_OUT_MAX);
		an_buf_init(&c->reqbody, GW_BODY_MAX);
		ev_io_init(&c->rio, client_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
		ev_timer_init(&c->timer, client_timer_cb, GW_KEEPALIVE_S, 0.);
		c->next = g->clients;
		if (g->clients)
			g->clients->prev = c;
		g->clients = c;
		g->n_clients++;
		reset_request(c);
		ev_io_start(g->loop, &c->rio);
		ev_timer_start(g->loop, &c->timer);
	}
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* "[ADDR:]PORT" (ADDR may be [v6]) into a socket address; loopback check. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl, bool *loopback)
{
	char host[128] = "127.0.0.1";
	const char *port;
	const char *colon = strrchr(s, ':');
	char *end;
	memset(ss, 0, sizeof(*ss));
	if (colon) {
		size_t n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = 0;
		port = colon + 1;
	} else {
		port = s;
	}
	long p = strtol(port, &end, 10);
	if (!*port || *end || p < 0 || p > 65535)
		return -EINVAL;
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = 0;
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		*sl = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)p);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	*loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	*sl = sizeof(*a);
	return 0;
}

int gateway_run(struct dial *d, const struct gateway_opts *o)
{
	struct gateway g = {.d = d, .loop = d->loop, .fd = -1, .o = o};
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	bool loopback = false;
	int one = 1;
	if (parse_listen(o->listen, &ss, &sl, &loopback) < 0) {
		cli_warn("invalid gateway address '%s'", o->listen);
		return AN_EXIT_USAGE;
	}
	if (!loopback && !o->public) {
		cli_warn("'%s' is not a loopback address: add --gateway-public to serve other hosts",
			 o->listen);
		return AN_EXIT_USAGE;
	}
	g.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g.fd < 0 || setsockopt(g.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(g.fd, (struct sockaddr *)&ss, sl) < 0 || listen(g.fd, 128) < 0) {
		cli_warn("unable to listen on '%s': %s", o->listen, strerror(errno));
		if (g.fd >= 0)
			close(g.fd);
		return AN_EXIT_SYSTEM;
	}
	/* the bound address, for port 0 and for scripts waiting on the gateway */
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	char host[INET6_ADDRSTRLEN] = "";
	int port = 0;
	if (getsockname(g.fd, (struct sockaddr *)&bound, &bl) == 0) {
		if (bound.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
			snprintf(g.listen_text, sizeof(g.listen_text), "%s:%d", host, port);
			snprintf(g.listen_host, sizeof(g.listen_host), "%s", host);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
			snprintf(g.listen_text, sizeof(g.listen_text), "[%s]:%d", host, port);
			snprintf(g.listen_host, sizeof(g.listen_host), "[%s]", host);
		}
	}
	cli_warn("gateway listening on http://%s/", g.listen_text);
	{
		/* the ready line on stdout, like an-dht daemon's and an-serve's */
		char url[sizeof(g.listen_text) + 16];
		snprintf(url, sizeof(url), "http://%s/", g.listen_text);
		json_t *ready = json_pack("{s:s,s:s,s:s}", "event", "ready", "listen", g.listen_text, "url", url);
		cli_print_json(ready);
		json_decref(ready);
		fflush(stdout);
		cli_log_timestamps();
	}
	ev_io_init(&g.accept_io, accept_cb, g.fd, EV_READ);
	ev_io_start(g.loop, &g.accept_io);
	ev_signal_init(&g.sigint, signal_cb, SIGINT);
	ev_signal_init(&g.sigterm, signal_cb, SIGTERM);
	ev_signal_start(g.loop, &g.sigint);
	ev_signal_start(g.loop, &g.sigterm);
	ev_run(g.loop, 0);
	ev_io_stop(g.loop, &g.accept_io);
	ev_signal_stop(g.loop, &g.sigint);
	ev_signal_stop(g.loop, &g.sigterm);
	close(g.fd);
	/* browsers still connected: drop them (calls abort; their on_done frees) */
	for (int round = 0; g.clients && round < 1000; round++) {
		struct client *c = g.clients;
		while (c && c->dead)
			c = c->next;
		if (!c) {
			/* waiting for its call's on_done: run the loop a little */
			ev_run(g.loop, EVRUN_ONCE);
			continue;
		}
		client_close(c);
	}
	return AN_EXIT_OK;
}
