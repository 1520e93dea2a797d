#include "route/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/error.h"

int an_upstream_init(struct an_upstream *u, const char *url)
{
	char host[64];
	const char *p, *colon;
	char *end;
	unsigned long port;
	memset(u, 0, sizeof(*u));
	if (strncmp(url, "http://", 7) != 0)
		return AN_EMALFORMED;
	p = url + 7;
	if (*p == '[') {
		const char *close = strchr(p, ']');
		if (!close || close[1] != ':' || (size_t)(close - p - 1) >= sizeof(host))
			return AN_EMALFORMED;
		memcpy(host, p + 1, (size_t)(close - p - 1));
		host[close - p - 1] = 0;
		colon = close + 1;
	} else {
		colon = strchr(p, ':');
		if (!colon || (size_t)(colon - p) >= sizeof(host))
			return AN_EMALFORMED;
		memcpy(host, p, (size_t)(colon - p));
		host[colon - p] = 0;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return AN_EMALFORMED;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || port == 0 || port > 65535 || (*end && strcmp(end, "/") != 0))
		return AN_EMALFORMED;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&u->addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&u->addr;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		u->addrlen = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		u->addrlen = sizeof(*v6);
	} else {
		return AN_EMALFORMED;
	}
	return 0;
}

/* One proxied request. */
struct ureq {
	struct an_route_exchange *x;
	const struct an_upstream *u;
	int fd;
	bool connected, head_done, paused, done;
	ev_io rio, wio;
	ev_timer head_timer;
	struct an_buf out; /* request bytes not yet sent */
	struct an_route_writer w;
	struct an_route_parser parser;
	struct an_route_body body;
};

static struct ev_loop *uloop(const struct ureq *q)
{
	return an_host_loop(an_route_exchange_host(q->x));
}

/* Stop talking to the upstream (the exchange goes on to its finish). */
static void up_close(struct ureq *q)
{
	struct ev_loop *loop = uloop(q);
	ev_io_stop(loop, &q->rio);
	ev_io_stop(loop, &q->wio);
	ev_timer_stop(loop, &q->head_timer);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	q->done = true;
}

/* Before the response head: answer status; after it: reset. */
static void up_fail(struct ureq *q, int status)
{
	up_close(q);
	an_route_exchange_hold(q->x, false);
	if (q->head_done)
		an_route_exchange_abort(q->x);
	else
		an_route_exchange_error(q->x, status);
}

/* Fields named by Connection, and the fixed hop-by-hop set. */
static bool hop_by_hop(const struct an_route_head *h, const char *name)
{
	static const char *const fixed[] = {"Connection", "Keep-Alive", "Proxy-Connection", "TE",
					    "Trailer", "Upgrade", "Transfer-Encoding",
					    "Content-Length"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcasecmp(name, fixed[i]) == 0)
			return true;
	for (size_t i = 0; i < h->n_fields; i++) {
		if (strcasecmp(h->fields[i].name, "Connection") != 0)
			continue;
		const char *p = h->fields[i].value;
		size_t n = strlen(name);
		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			size_t len = strcspn(p, " \t,");
			if (len == n && strncasecmp(p, name, n) == 0)
				return true;
			p += len;
		}
	}
	return false;
}

/*
 * "Expect: 100-continue" is not forwarded: the body is sent to the upstream
 * as it comes, without waiting for a 100 (the client has sent it already:
 * the route protocol has no interim responses).  Another expectation is
 * forwarded, for the upstream to answer 417.
 */
static bool expect_continue(const struct an_route_field *f)
{
	return strcasecmp(f->name, "Expect") == 0 && strcasecmp(f->value, "100-continue") == 0;
}

static void up_send(struct ureq *q)
{
	if (q->fd >= 0 && q->connected && q->out.len && !ev_is_active(&q->wio))
		ev_io_start(uloop(q), &q->wio);
}

static void deliver_head(struct ureq *q)
{
	const struct an_route_head *h = an_route_parser_head(&q->parser);
	struct an_route_field fields[AN_ROUTE_FIELDS_MAX];
	struct an_route_response r = {.status = h->status, .reason = h->reason, .fields = fields};
	const char *cl = an_route_head_get(h, "Content-Length");
	size_t nf = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		if (!hop_by_hop(h, h->fields[i].name))
			fields[nf++] = h->fields[i];
	/* as the static server does; an upstream's own value is kept (it may say more) */
	if (!an_route_head_get(h, "X-Content-Type-Options") && nf < AN_ROUTE_FIELDS_MAX)
		fields[nf++] = (struct an_route_field){"X-Content-Type-Options", "nosniff"};
	r.n_fields = nf;
	r.framing = h->framing;
	r.content_length = h->content_length;
	/* a HEAD or 304 answer keeps the length the upstream announced */
	if (h->framing == AN_ROUTE_BODY_NONE && cl && h->status != 204 && h->status >= 200) {
		char *end;
		unsigned long long v = strtoull(cl, &end, 10);
		if (!*end && (h->status != 304)) {
			r.framing = AN_ROUTE_BODY_LENGTH;
			r.content_length = v;
		}
	}
	q->head_done = true;
	ev_timer_stop(uloop(q), &q->head_timer);
	an_route_exchange_hold(q->x, false);
	if (an_route_exchange_respond(q->x, &r) < 0) {
		up_fail(q, 502);
		return;
	}
	an_route_body_init(&q->body, h->framing, h->content_length, 0);
	if (h->framing == AN_ROUTE_BODY_NONE || (r.framing == AN_ROUTE_BODY_LENGTH && r.content_length == 0 &&
						 h->framing != AN_ROUTE_BODY_CHUNKED)) {
		up_close(q);
		an_route_exchange_end(q->x);
	}
}

static void on_upstream_bytes(struct ureq *q, const uint8_t *p, size_t n)
{
	size_t used = 0;
	if (!q->head_done) {
		int rc = an_route_parse(&q->parser, p, n, &used);
		if (rc < 0) {
			up_fail(q, 502);
			return;
		}
		if (rc == 0)
			return;
		deliver_head(q);
		if (q->done)
			return;
		p += used;
		n -= used;
	}
	while (n > 0 && !q->done) {
		const uint8_t *data;
		size_t dlen;
		int rc = an_route_body_decode(&q->body, p, n, &used, &data, &dlen);
		if (rc < 0 || (dlen && an_route_exchange_write(q->x, data, dlen) < 0)) {
			up_fail(q, 502);
			return;
		}
		p += used;
		n -= used;
		if (rc == 1) { /* complete; anything after it is ignored (Connection: close) */
			up_close(q);
			an_route_exchange_end(q->x);
			return;
		}
	}
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct ureq *q = w->data;
	static uint8_t buf[AN_UPSTREAM_READ];
	ssize_t r = recv(q->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0) {
		up_fail(q, 502);
		return;
	}
	if (r == 0) {
		if (!q->head_done) {
			up_fail(q, 502);
		} else if (an_route_body_eof(&q->body) == 0) {
			up_close(q);
			an_route_exchange_end(q->x);
		} else {
			up_fail(q, 502);
		}
		return;
	}
	on_upstream_bytes(q, buf, (size_t)r);
	/* backpressure: stop reading while the stream cannot take more */
	if (!q->done && q->head_done && !an_route_exchange_writable(q->x)) {
		ev_io_stop(loop, &q->rio);
		q->paused = true;
	}
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct ureq *q = w->data;
	if (!q->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			up_fail(q, 502);
			return;
		}
		q->connected = true;
		ev_io_start(loop, &q->rio);
	}
	if (q->out.len) {
		ssize_t r = send(q->fd, q->out.data, q->out.len, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r < 0) {
			/* an upstream that answered early and closed still gets read */
			ev_io_stop(loop, &q->wio);
			an_buf_reset(&q->out);
			return;
		}
		an_buf_consume(&q->out, (size_t)r);
	}
	if (!q->out.len)
		ev_io_stop(loop, &q->wio);
}

static void head_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct ureq *q = w->data;
	up_fail(q, 504);
}

static int up_start(void *arg, struct an_route_exchange *x, const struct an_route_head *h)
{
	const struct an_upstream *u = arg;
	struct an_route_field fields[AN_ROUTE_FIELDS_MAX + 4];
	struct ureq *q = calloc(1, sizeof(*q));
	struct ev_loop *loop = an_host_loop(an_route_exchange_host(x));
	size_t nf = 0;
	int rc;
	if (!q)
		return -ENOMEM;
	q->x = x;
	q->u = u;
	q->fd = -1;
	an_route_exchange_set_ctx(x, q);
	/* the whole capped body may wait here, re-chunked: room for its framing too */
	an_buf_init(&q->out, AN_ROUTE_HEAD_MAX + 2 * (u->max_body ? u->max_body : AN_ROUTE_SERVER_BODY_MAX));
	an_route_parser_init_upstream_response(&q->parser, strcmp(h->method, "HEAD") == 0, 0);
	for (size_t i = 0; i < h->n_fields && nf < AN_ROUTE_FIELDS_MAX; i++) {
		const char *n = h->fields[i].name;
		if (hop_by_hop(h, n) || strcasecmp(n, "Host") == 0 ||
		    strcasecmp(n, "X-Forwarded-For") == 0 || strcasecmp(n, "X-Forwarded-Host") == 0 ||
		    strcasecmp(n, "X-Forwarded-Proto") == 0 || expect_continue(&h->fields[i]))
			continue;
		fields[nf++] = h->fields[i];
	}
	fields[nf++] = (struct an_route_field){"X-Forwarded-For", an_route_exchange_peer(x)};
	fields[nf++] = (struct an_route_field){"X-Forwarded-Host", h->host};
	fields[nf++] = (struct an_route_field){"X-Forwarded-Proto", "an"};
	fields[nf++] = (struct an_route_field){"Connection", "close"};
	struct an_route_request req = {
		.host = h->host, .method = h->method, .target = h->target, .fields = fields,
		.n_fields = nf, .framing = h->framing, .content_length = h->content_length,
	};
	rc = an_route_request_write(&q->out, &req);
	if (rc < 0)
		return rc == AN_ETOOBIG ? (an_route_exchange_error(x, 431), 0) : rc;
	an_route_writer_init(&q->w, h->framing, h->content_length);
	q->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return -errno;
	ev_io_init(&q->rio, rio_cb, q->fd, EV_READ);
	ev_io_init(&q->wio, wio_cb, q->fd, EV_WRITE);
	q->rio.data = q->wio.data = q;
	ev_timer_init(&q->head_timer, head_timeout,
		      (u->timeout_ms > 0 ? u->timeout_ms : AN_ROUTE_RESPONSE_TIMEOUT_MS) / 1000.0, 0);
	q->head_timer.data = q;
	if (connect(q->fd, (const struct sockaddr *)&u->addr, u->addrlen) < 0 && errno != EINPROGRESS) {
		up_fail(q, 502);
		return 0;
	}
	ev_io_start(loop, &q->wio);
	ev_timer_start(loop, &q->head_timer);
	/* the upstream's deadline is ours, not the stream's idle timeout */
	an_route_exchange_hold(x, true);
	return 0;
}

static void up_body(struct an_route_exchange *x, const uint8_t *p, size_t n)
{
	struct ureq *q = an_route_exchange_ctx(x);
	if (!q || q->done)
		return;
	if (an_route_writer_write(&q->w, &q->out, p, n) < 0) {
		up_fail(q, 413);
		return;
	}
	up_send(q);
}

static void up_body_end(struct an_route_exchange *x)
{
	struct ureq *q = an_route_exchange_ctx(x);
	if (!q || q->done)
		return;
	if (q->w.framing != AN_ROUTE_BODY_NONE && an_route_writer_end(&q->w, &q->out) < 0) {
		up_fail(q, 400);
		return;
	}
	up_send(q);
}

static void up_writable(struct an_route_exchange *x)
{
	struct ureq *q = an_route_exchange_ctx(x);
	if (q && q->paused && !q->done) {
		q->paused = false;
		ev_io_start(uloop(q), &q->rio);
	}
}

static void up_finish(struct an_route_exchange *x, int err)
{
	(void)err;
	struct ureq *q = an_route_exchange_ctx(x);
	if (!q)
		return;
	up_close(q);
	an_buf_free(&q->out);
	an_route_parser_free(&q->parser);
	free(q);
}

const struct an_route_responder an_upstream_responder = {
	.start = up_start,
	.body = up_body,
	.body_end = up_body_end,
	.writable = up_writable,
	.finish = up_finish,
};
