/*
 * test_route_server: route/server on a real host pair over loopback.  The
 * client side is a raw stream (any bytes, FIN or not), so the server's
 * answers to well-formed and misbehaving requests are checked byte for
 * byte: static files, 421, head timeout 408, 413, bytes after the request,
 * idle reset, responder finish, server shutdown.
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/key.h"
#include "record/record.h"
#include "route/server.h"
#include "route/static_site.h"
#include "route/upstream.h"
#include "transport/host.h"
#include "util/error.h"

static struct an_privkey *ka, *kb;
static char dir[128];

struct rig {
	struct ev_loop *loop;
	struct an_host *a, *b;
	struct an_route_server *srv;
	struct an_static_site site;
	ev_timer deadline;
	/* client stream */
	const char *req;
	size_t req_len;
	bool fin;
	bool stop_on_eof; /* stop once the response ended (the stream may stay half-open) */
	double trickle;   /* > 0: write the request one byte per this many seconds */
	size_t sent;
	ev_timer trickle_timer;
	bool keep_open;   /* never close our side, even after the response (a slowloris) */
	double t_open, t_eof, t_close; /* ev_now at stream open, response end, stream gone */
	struct an_stream *st;
	struct an_buf got;
	bool closed, eof;
	int close_err;
	/* server side */
	int access_calls, access_status, access_err;
	int finish_calls, finish_err;
	struct an_route_access last;
};

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w; (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void trickle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct rig *r = w->data;
	if (!r->st || r->sent == r->req_len) {
		ev_timer_stop(loop, w);
		return;
	}
	an_stream_write(r->st, (const uint8_t *)r->req + r->sent++, 1);
}

static void c_open(struct an_stream *s, void *arg)
{
	struct rig *r = arg;
	r->t_open = ev_now(r->loop);
	if (r->trickle > 0) {
		ev_timer_init(&r->trickle_timer, trickle_cb, 0, r->trickle);
		r->trickle_timer.data = r;
		ev_timer_start(r->loop, &r->trickle_timer);
		return;
	}
	an_stream_write(s, (const uint8_t *)r->req, r->req_len);
	if (r->fin)
		an_stream_close_write(s);
}

static void c_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	struct rig *r = arg;
	an_buf_append(&r->got, p, n);
}

static void c_eof(struct an_stream *s, void *arg)
{
	struct rig *r = arg;
	r->eof = true;
	r->t_eof = ev_now(r->loop);
	if (r->stop_on_eof)
		ev_break(r->loop, EVBREAK_ALL);
	if (!r->fin && !r->keep_open)
		an_stream_close_write(s);
}

static void c_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct rig *r = arg;
	r->closed = true;
	r->close_err = err;
	r->t_close = ev_now(r->loop);
	r->st = NULL;
	ev_break(r->loop, EVBREAK_ALL);
}

static const struct an_stream_handler client_handler = {
	.on_open = c_open, .on_data = c_data, .on_eof = c_eof, .on_close = c_close,
};

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct rig *r = arg;
	if (err < 0 || an_host_stream_open(c, AN_ROUTE_PROTOCOL, &client_handler, r, &r->st) < 0)
		ev_break(r->loop, EVBREAK_ALL);
}

static void access_cb(void *arg, const struct an_route_access *a)
{
	struct rig *r = arg;
	r->access_calls++;
	r->access_status = a->status;
	r->access_err = a->err;
}

static int rig_new(struct rig *r, const struct an_route_server_config *cfg_in)
{
	struct an_host_config ca = {.key = ka}, cb = {.key = kb};
	struct an_route_server_config cfg = {0};
	memset(r, 0, sizeof(*r));
	if (cfg_in)
		cfg = *cfg_in;
	cfg.access = access_cb;
	cfg.access_arg = r;
	r->loop = ev_loop_new(0);
	an_buf_init(&r->got, 4 << 20);
	if (an_host_new(r->loop, &ca, &r->a) < 0 || an_host_new(r->loop, &cb, &r->b) < 0)
		return -1;
	if (an_route_server_new(r->a, &cfg, &r->srv) < 0 || an_static_site_init(&r->site, dir) < 0)
		return -1;
	if (an_route_server_add_site(r->srv, "site", &an_static_responder, &r->site) < 0)
		return -1;
	ev_timer_init(&r->deadline, deadline_cb, 10, 0);
	ev_timer_start(r->loop, &r->deadline);
	return an_host_listen(r->a, "/ip4/127.0.0.1/tcp/0");
}

static void rig_free(struct rig *r)
{
	ev_timer_stop(r->loop, &r->trickle_timer);
	an_route_server_free(r->srv);
	an_static_site_free(&r->site);
	an_host_free(r->a);
	an_host_free(r->b);
	ev_loop_destroy(r->loop);
	an_buf_free(&r->got);
}

/* Run one request (bytes req, FIN after it when fin) until the stream closes. */
static void rig_run(struct rig *r, const char *req, size_t len, bool fin)
{
	const char *addrs[1];
	char id[AN_PEERID_TEXT_MAX], addr[512];
	r->req = req;
	r->req_len = len;
	r->fin = fin;
	an_host_addrs(r->a, addrs, 1);
	an_peerid_format(an_host_peer_id(r->a), id, sizeof(id));
	snprintf(addr, sizeof(addr), "%s/p2p/%s", addrs[0], id);
	if (an_host_dial(r->b, addr, 5000, dial_cb, r) < 0)
		return;
	ev_run(r->loop, 0);
	/* let the server side see the close too */
	ev_timer t;
	ev_timer_init(&t, deadline_cb, 0.05, 0);
	ev_timer_start(r->loop, &t);
	ev_run(r->loop, 0);
	ev_timer_stop(r->loop, &t);
}

/* The route line + GET head for host on r's server. */
static void request(struct rig *r, const char *host, const char *method, const char *target,
		    const char *extra, char *out, size_t cap)
{
	char ph[AN_PEERHASH_LEN + 1], lookup[300], did[AN_RECORD_DID_MAX];
	an_peerhash(an_host_peer_id(r->a), ph);
	snprintf(lookup, sizeof(lookup), "an://%s@%s", ph, host);
	an_record_did(lookup, did);
	snprintf(out, cap, "AN-ROUTE/1.0 %s %s\r\n%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", did, host,
		 method, target, host, extra ? extra : "");
}

static bool starts(const struct rig *r, const char *prefix)
{
	return r->got.len >= strlen(prefix) && memcmp(r->got.data, prefix, strlen(prefix)) == 0;
}

/* The body after the head. */
static const char *body_of(const struct rig *r, size_t *len)
{
	const uint8_t *p = r->got.data;
	for (size_t i = 0; i + 4 <= r->got.len; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
			*len = r->got.len - i - 4;
			return (const char *)p + i + 4;
		}
	*len = 0;
	return "";
}

static void test_get_file(void)
{
	struct rig r;
	char req[512];
	size_t n;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "GET", "/f.txt", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 OK\r\n"));
	const char *b = body_of(&r, &n);
	CHECK(n == 5 && memcmp(b, "hello", 5) == 0);
	CHECK_EQ_INT(r.close_err, 0);
	CHECK_EQ_INT(r.access_calls, 1);
	CHECK_EQ_INT(r.access_status, 200);
	CHECK_EQ_INT(r.access_err, 0);
	rig_free(&r);
}

static void test_large_file_streams_whole(void)
{
	struct rig r;
	char req[512];
	size_t n;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "GET", "/big.bin", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 OK\r\n"));
	const char *b = body_of(&r, &n);
	CHECK_EQ_INT(n, 3 << 20);
	bool same = n == 3 << 20;
	for (size_t i = 0; same && i < n; i++)
		same = (uint8_t)b[i] == (uint8_t)(i * 7);
	CHECK(same);
	rig_free(&r);
}

static void test_wrong_did_is_421(void)
{
	struct rig r;
	const char *req = "AN-ROUTE/1.0 dns:Y9BBkshepgRUAmC91ZtHpc site\r\nGET / HTTP/1.1\r\nHost: site\r\n\r\n";
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 421 "));
	rig_free(&r);
}

static void test_unserved_host_is_421(void)
{
	struct rig r;
	char req[512];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "other", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 421 "));
	rig_free(&r);
}

static void test_head_timeout_is_408(void)
{
	struct rig r;
	struct an_route_server_config cfg = {.head_timeout_ms = 200};
	char req[512];
	CHECK_EQ_INT(rig_new(&r, &cfg), 0);
	request(&r, "site", "GET", "/f.txt", NULL, req, sizeof(req));
	r.stop_on_eof = true;
	rig_run(&r, req, strlen(req) - 2, false); /* no final CRLF, no FIN */
	CHECK(starts(&r, "HTTP/1.1 408 "));
	CHECK(r.eof);
	rig_free(&r);
	CHECK_EQ_INT(r.access_status, 408);
	CHECK_EQ_INT(r.access_err, -ETIMEDOUT);
}

/* The deadline covers the whole head: bytes trickling in do not push it back. */
static void test_trickled_head_is_408_at_the_deadline(void)
{
	struct rig r;
	struct an_route_server_config cfg = {.head_timeout_ms = 300};
	char req[512];
	CHECK_EQ_INT(rig_new(&r, &cfg), 0);
	request(&r, "site", "GET", "/f.txt", "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", req,
		sizeof(req));
	r.stop_on_eof = true;
	r.trickle = 0.01; /* one byte every 10 ms: the head would take > 1.5 s */
	rig_run(&r, req, strlen(req), false);
	CHECK(starts(&r, "HTTP/1.1 408 "));
	CHECK(r.eof);
	CHECK(r.sent < strlen(req));
	CHECK(r.t_eof - r.t_open < 1.0);
	rig_free(&r);
	CHECK_EQ_INT(r.access_status, 408);
	CHECK_EQ_INT(r.access_err, -ETIMEDOUT);
}

/* After the 408 a client that goes on trickling holds its stream a short linger, not the idle timeout. */
static void test_trickling_client_is_reset_after_the_408(void)
{
	struct rig r;
	struct an_route_server_config cfg = {.head_timeout_ms = 300};
	char req[4096] = "", pad[3000];
	CHECK_EQ_INT(rig_new(&r, &cfg), 0);
	memset(pad, 'a', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = 0;
	snprintf(req, sizeof(req), "AN-ROUTE/1.0 dns:Y9BBkshepgRUAmC91ZtHpc site\r\nGET / HTTP/1.1\r\nX-Pad: %s", pad);
	r.keep_open = true;
	r.trickle = 0.01; /* 30 s of head: past the linger, never past the idle timeout */
	rig_run(&r, req, strlen(req), false);
	CHECK(starts(&r, "HTTP/1.1 408 "));
	CHECK(r.closed);
	CHECK_EQ_INT(r.close_err, AN_ERESET);
	CHECK(r.t_close - r.t_open < 0.3 + AN_ROUTE_LINGER_MS / 1000.0 + 1.0);
	CHECK_EQ_INT(an_route_server_active(r.srv), 0);
	rig_free(&r);
	CHECK_EQ_INT(r.access_status, 408);
	CHECK_EQ_INT(r.access_err, -ETIMEDOUT);
}

/* A dotfile is 404 as if absent, a dot directory too (no 301 that would say it exists). */
static void test_dotfiles_are_404(void)
{
	static const char *const targets[] = {"/.env", "/.git", "/.git/", "/.git/config", "/%2eenv",
					      "/dir/.hidden", "/.well-known/.x"};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct rig r;
		char req[512];
		CHECK_EQ_INT(rig_new(&r, NULL), 0);
		request(&r, "site", "GET", targets[i], NULL, req, sizeof(req));
		rig_run(&r, req, strlen(req), true);
		if (!starts(&r, "HTTP/1.1 404 ")) {
			printf("#   %s: %.*s\n", targets[i], (int)(r.got.len < 40 ? r.got.len : 40),
			       (const char *)r.got.data);
			CHECK(0);
		}
		rig_free(&r);
	}
}

static void test_well_known_and_allowed_dotfiles_are_served(void)
{
	struct rig r;
	char req[512];
	size_t n;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "GET", "/.well-known/security.txt", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 "));
	rig_free(&r);
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	r.site.dotfiles = true;
	request(&r, "site", "GET", "/.env", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 "));
	const char *b = body_of(&r, &n);
	CHECK(n == 7 && memcmp(b, "SECRET\n", 7) == 0);
	rig_free(&r);
}

/* The value of field name in the response head, into out; false if absent. */
static bool field_of(const struct rig *r, const char *name, char *out, size_t cap)
{
	char pat[80];
	const char *head = (const char *)r->got.data, *p, *end;
	size_t hl;
	body_of(r, &hl);
	hl = r->got.len - hl;
	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	p = memmem(head, hl, pat, strlen(pat));
	if (!p)
		return false;
	p += strlen(pat);
	end = memmem(p, hl - (size_t)(p - head), "\r\n", 2);
	if (!end || (size_t)(end - p) >= cap)
		return false;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = 0;
	return true;
}

static void test_directory_redirect_is_never_protocol_relative(void)
{
	static const struct {
		const char *target, *location;
	} cases[] = {
		{"//dir", "/dir/"}, {"/dir", "/dir/"}, {"///dir?a=b", "/dir/?a=b"}, {"/.//dir", "/dir/"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig r;
		char req[512], loc[256] = "";
		CHECK_EQ_INT(rig_new(&r, NULL), 0);
		request(&r, "site", "GET", cases[i].target, NULL, req, sizeof(req));
		rig_run(&r, req, strlen(req), true);
		CHECK(starts(&r, "HTTP/1.1 301 "));
		CHECK(field_of(&r, "Location", loc, sizeof(loc)));
		CHECK_EQ_STR(loc, cases[i].location);
		rig_free(&r);
	}
}

/* nosniff on a file, an error of the site, a 304 and an error of the server itself. */
static void test_every_response_says_nosniff(void)
{
	static const char *const targets[] = {"/f.txt", "/missing", "/dir"};
	char v[64];
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct rig r;
		char req[512];
		CHECK_EQ_INT(rig_new(&r, NULL), 0);
		request(&r, "site", "GET", targets[i], NULL, req, sizeof(req));
		rig_run(&r, req, strlen(req), true);
		CHECK(field_of(&r, "X-Content-Type-Options", v, sizeof(v)) && strcmp(v, "nosniff") == 0);
		rig_free(&r);
	}
	struct rig r;
	char req[512], etag[64] = "", extra[128];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "GET", "/f.txt", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(field_of(&r, "ETag", etag, sizeof(etag)));
	rig_free(&r);
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	snprintf(extra, sizeof(extra), "If-None-Match: %s\r\n", etag);
	request(&r, "site", "GET", "/f.txt", extra, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 304 "));
	CHECK(field_of(&r, "X-Content-Type-Options", v, sizeof(v)) && strcmp(v, "nosniff") == 0);
	rig_free(&r);
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "other", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 421 "));
	CHECK(field_of(&r, "X-Content-Type-Options", v, sizeof(v)) && strcmp(v, "nosniff") == 0);
	rig_free(&r);
}

/* ---- the upstream proxy against a scripted upstream in the same loop ---- */

enum up_mode {
	UP_CONTINUE,  /* 100 Continue after the head, 200 after the body */
	UP_TRICKLE,   /* the response head one byte every 10 ms */
	UP_NO_NOSNIFF /* a 200 without X-Content-Type-Options */
};

struct fake_up {
	struct ev_loop *loop;
	enum up_mode mode;
	int lfd, fd;
	ev_io lio, rio;
	ev_timer tick;
	char got[4096];
	size_t got_len, sent;
	bool saw_expect, sent_100, answered;
	struct an_upstream u;
};

static const char trickled_head[] = "HTTP/1.1 200 OK\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 0\r\n\r\n";

static void up_put(struct fake_up *f, const char *s)
{
	if (write(f->fd, s, strlen(s)) != (ssize_t)strlen(s))
		printf("# fake upstream: short write\n");
}

static void up_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct fake_up *f = w->data;
	if (f->fd < 0 || f->sent == sizeof(trickled_head) - 1) {
		ev_timer_stop(loop, w);
		return;
	}
	if (write(f->fd, trickled_head + f->sent, 1) == 1)
		f->sent++;
}

static void up_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct fake_up *f = w->data;
	ssize_t n = read(f->fd, f->got + f->got_len, sizeof(f->got) - 1 - f->got_len);
	if (n <= 0) {
		ev_io_stop(loop, w);
		close(f->fd);
		f->fd = -1;
		return;
	}
	f->got_len += (size_t)n;
	f->got[f->got_len] = 0;
	const char *end = strstr(f->got, "\r\n\r\n");
	if (!end || f->answered)
		return;
	f->saw_expect = strcasestr(f->got, "\r\nExpect:") != NULL;
	if (f->mode == UP_TRICKLE) {
		f->answered = true;
		ev_timer_init(&f->tick, up_tick, 0, 0.01);
		f->tick.data = f;
		ev_timer_start(loop, &f->tick);
	} else if (f->mode == UP_NO_NOSNIFF) {
		f->answered = true;
		up_put(f, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
	} else {
		/* an upstream honouring Expect (python's http.server does): 100 first, and always
		 * before the body, as a server may send 100 unasked */
		if (!f->sent_100) {
			f->sent_100 = true;
			up_put(f, "HTTP/1.1 100 Continue\r\n\r\n");
		}
		if (strcmp(end + 4, "hi") == 0) {
			f->answered = true;
			up_put(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		}
	}
}

static void up_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct fake_up *f = w->data;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0 || f->fd >= 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	f->fd = fd;
	ev_io_init(&f->rio, up_read, fd, EV_READ);
	f->rio.data = f;
	ev_io_start(loop, &f->rio);
}

static int fake_up_start(struct fake_up *f, struct ev_loop *loop, enum up_mode mode)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	char url[64];
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->mode = mode;
	f->fd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(f->lfd, 4) < 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	ev_io_init(&f->lio, up_accept, f->lfd, EV_READ);
	f->lio.data = f;
	ev_io_start(loop, &f->lio);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(a.sin_port));
	return an_upstream_init(&f->u, url);
}

static void fake_up_stop(struct fake_up *f)
{
	ev_io_stop(f->loop, &f->lio);
	ev_io_stop(f->loop, &f->rio);
	ev_timer_stop(f->loop, &f->tick);
	close(f->lfd);
	if (f->fd >= 0)
		close(f->fd);
}

static void test_upstream_100_continue_is_not_502(void)
{
	struct rig r;
	struct fake_up f;
	char req[512];
	size_t n;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	CHECK_EQ_INT(fake_up_start(&f, r.loop, UP_CONTINUE), 0);
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "up", &an_upstream_responder, &f.u), 0);
	request(&r, "up", "POST", "/", "Expect: 100-continue\r\nContent-Length: 2\r\n", req, sizeof(req));
	strcat(req, "hi");
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 OK\r\n"));
	const char *b = body_of(&r, &n);
	CHECK(n == 2 && memcmp(b, "ok", 2) == 0);
	CHECK(f.answered);
	CHECK(!f.saw_expect); /* the body is sent without waiting for the 100 */
	fake_up_stop(&f);
	rig_free(&r);
}

/* The upstream's response head has a deadline of its own, not restarted per byte. */
static void test_upstream_trickled_head_is_504_at_the_deadline(void)
{
	struct rig r;
	struct fake_up f;
	char req[512];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	CHECK_EQ_INT(fake_up_start(&f, r.loop, UP_TRICKLE), 0);
	f.u.timeout_ms = 300; /* the head would take > 1 s */
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "up", &an_upstream_responder, &f.u), 0);
	request(&r, "up", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 504 "));
	CHECK(f.sent > 0 && f.sent < sizeof(trickled_head) - 1);
	CHECK(r.t_eof - r.t_open < 1.0);
	fake_up_stop(&f);
	rig_free(&r);
}

static void test_upstream_answer_gets_nosniff(void)
{
	struct rig r;
	struct fake_up f;
	char req[512], v[64];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	CHECK_EQ_INT(fake_up_start(&f, r.loop, UP_NO_NOSNIFF), 0);
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "up", &an_upstream_responder, &f.u), 0);
	request(&r, "up", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 200 "));
	CHECK(field_of(&r, "X-Content-Type-Options", v, sizeof(v)) && strcmp(v, "nosniff") == 0);
	fake_up_stop(&f);
	rig_free(&r);
}

static void test_body_over_cap_is_413(void)
{
	struct rig r;
	struct an_route_server_config cfg = {.max_body = 10};
	char req[512];
	CHECK_EQ_INT(rig_new(&r, &cfg), 0);
	request(&r, "site", "POST", "/f.txt", "Content-Length: 100\r\n", req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 413 "));
	rig_free(&r);
}

static void test_static_post_is_405_before_its_body(void)
{
	struct rig r;
	char req[512];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "POST", "/f.txt", "Content-Length: 10\r\n", req, sizeof(req));
	strcat(req, "abc");
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 405 "));
	rig_free(&r);
}

static void test_bytes_after_request_reset_the_stream(void)
{
	struct rig r;
	char req[600];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	request(&r, "site", "GET", "/big.bin", NULL, req, sizeof(req));
	strcat(req, "GET /again HTTP/1.1\r\n\r\n");
	rig_run(&r, req, strlen(req), true);
	CHECK(r.closed);
	CHECK_EQ_INT(r.close_err, AN_ERESET);
	CHECK_EQ_INT(r.access_err, AN_EPROTO);
	rig_free(&r);
}

/* A responder that never answers. */
static int silent_start(void *arg, struct an_route_exchange *x, const struct an_route_head *h)
{
	(void)arg; (void)x; (void)h;
	return 0;
}

static struct rig *silent_rig;

static void count_finish(struct an_route_exchange *x, int err)
{
	(void)x;
	silent_rig->finish_calls++;
	silent_rig->finish_err = err;
}

static const struct an_route_responder silent = {.start = silent_start, .finish = count_finish};

static void test_idle_stream_is_reset(void)
{
	struct rig r;
	struct an_route_server_config cfg = {.idle_timeout_ms = 200};
	char req[512];
	CHECK_EQ_INT(rig_new(&r, &cfg), 0);
	silent_rig = &r;
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "quiet", &silent, NULL), 0);
	request(&r, "quiet", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK(r.closed);
	CHECK_EQ_INT(r.close_err, AN_ERESET);
	CHECK_EQ_INT(r.finish_calls, 1);
	CHECK_EQ_INT(r.finish_err, -ETIMEDOUT);
	CHECK_EQ_INT(r.access_status, 0);
	rig_free(&r);
}

/* ---- the pool's share per address ---- */

struct many {
	struct rig *r;
	char req[512];
	int opened, reset;
};

static void m_open(struct an_stream *s, void *arg)
{
	struct many *m = arg;
	m->opened++;
	an_stream_write(s, (const uint8_t *)m->req, strlen(m->req));
	an_stream_close_write(s);
}

static void m_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct many *m = arg;
	if (err == AN_ERESET)
		m->reset++;
}

static const struct an_stream_handler many_handler = {.on_open = m_open, .on_close = m_close};

static void many_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct many *m = arg;
	for (int i = 0; err == 0 && i < 5; i++)
		an_host_stream_open(c, AN_ROUTE_PROTOCOL, &many_handler, m, NULL);
}

/* Five silent requests from one client against a share of limit: how many were reset at once. */
static int resets_of_five(const struct an_route_server_config *cfg, size_t *active)
{
	struct rig r;
	struct many m = {.r = &r};
	const char *addrs[1];
	char id[AN_PEERID_TEXT_MAX], addr[512];
	ev_timer t;
	if (rig_new(&r, cfg) < 0)
		return -1;
	silent_rig = &r;
	an_route_server_add_site(r.srv, "quiet", &silent, NULL);
	request(&r, "quiet", "GET", "/", NULL, m.req, sizeof(m.req));
	an_host_addrs(r.a, addrs, 1);
	an_peerid_format(an_host_peer_id(r.a), id, sizeof(id));
	snprintf(addr, sizeof(addr), "%s/p2p/%s", addrs[0], id);
	an_host_dial(r.b, addr, 5000, many_dial_cb, &m);
	ev_timer_init(&t, deadline_cb, 1.0, 0); /* the resets come at once; 1 s is plenty */
	ev_timer_start(r.loop, &t);
	ev_run(r.loop, 0);
	ev_timer_stop(r.loop, &t);
	*active = an_route_server_active(r.srv);
	int reset = m.opened == 5 ? m.reset : -1;
	rig_free(&r);
	return reset;
}

static void test_one_address_gets_its_share_of_the_pool(void)
{
	struct an_route_server_config cfg = {.max_streams_per_addr = 3};
	size_t active = 0;
	CHECK_EQ_INT(resets_of_five(&cfg, &active), 2);
	CHECK_EQ_INT(active, 3);
}

static void test_one_network_gets_its_share_of_the_pool(void)
{
	struct an_route_server_config cfg = {.max_streams_per_net = 2};
	size_t active = 0;
	CHECK_EQ_INT(resets_of_five(&cfg, &active), 3);
	CHECK_EQ_INT(active, 2);
}

static void test_default_share_takes_five(void)
{
	size_t active = 0;
	CHECK_EQ_INT(resets_of_five(NULL, &active), 0);
	CHECK_EQ_INT(active, 5);
}

static void test_body_cut_short_is_400(void)
{
	struct rig r;
	char req[512];
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	silent_rig = &r;
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "quiet", &silent, NULL), 0);
	request(&r, "quiet", "POST", "/", "Content-Length: 10\r\n", req, sizeof(req));
	strcat(req, "abc"); /* then FIN: 7 bytes short */
	rig_run(&r, req, strlen(req), true);
	CHECK(starts(&r, "HTTP/1.1 400 "));
	CHECK_EQ_INT(r.finish_calls, 1);
	rig_free(&r);
}

static void stop_soon(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct rig *r = w->data;
	(void)loop;
	an_route_server_free(r->srv); /* the request under way is reset, its finish runs */
	r->srv = NULL;
}

static void test_server_free_ends_requests_under_way(void)
{
	struct rig r;
	char req[512];
	ev_timer t;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	silent_rig = &r;
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "quiet", &silent, NULL), 0);
	ev_timer_init(&t, stop_soon, 0.3, 0);
	t.data = &r;
	ev_timer_start(r.loop, &t);
	request(&r, "quiet", "GET", "/", NULL, req, sizeof(req));
	rig_run(&r, req, strlen(req), true);
	CHECK_EQ_INT(r.finish_calls, 1);
	CHECK_EQ_INT(r.finish_err, AN_ECLOSED);
	CHECK(r.closed);
	CHECK_EQ_INT(r.close_err, AN_ERESET);
	rig_free(&r);
}

static void test_add_site_refusals(void)
{
	struct rig r;
	CHECK_EQ_INT(rig_new(&r, NULL), 0);
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "site", &an_static_responder, &r.site), -EEXIST);
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "Site", &an_static_responder, &r.site), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_server_add_site(r.srv, "bad_name", &an_static_responder, &r.site), AN_EMALFORMED);
	char did[64];
	CHECK_EQ_INT(an_route_server_did(r.srv, "site", did, sizeof(did)), 0);
	CHECK(strncmp(did, "dns:", 4) == 0);
	CHECK_EQ_INT(an_route_server_did(r.srv, "nope", did, sizeof(did)), AN_ENOTFOUND);
	rig_free(&r);
}

static void make_dir(void)
{
	char p[256];
	int fd;
	snprintf(dir, sizeof(dir), "/tmp/test_route_server.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(p, sizeof(p), "%s/f.txt", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (write(fd, "hello", 5) != 5)
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/.env", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (write(fd, "SECRET\n", 7) != 7)
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/dir", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/dir/.hidden", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/.git", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.git/config", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/.well-known", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.well-known/security.txt", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/.well-known/.x", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/big.bin", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	uint8_t *big = malloc(3 << 20);
	for (size_t i = 0; i < 3 << 20; i++)
		big[i] = (uint8_t)(i * 7);
	if (write(fd, big, 3 << 20) != 3 << 20)
		abort();
	free(big);
	close(fd);
}

int main(void)
{
	char cmd[200];
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0)
		return 1;
	make_dir();
	RUN(test_get_file);
	RUN(test_large_file_streams_whole);
	RUN(test_wrong_did_is_421);
	RUN(test_unserved_host_is_421);
	RUN(test_head_timeout_is_408);
	RUN(test_trickled_head_is_408_at_the_deadline);
	RUN(test_trickling_client_is_reset_after_the_408);
	RUN(test_dotfiles_are_404);
	RUN(test_well_known_and_allowed_dotfiles_are_served);
	RUN(test_directory_redirect_is_never_protocol_relative);
	RUN(test_every_response_says_nosniff);
	RUN(test_upstream_100_continue_is_not_502);
	RUN(test_upstream_trickled_head_is_504_at_the_deadline);
	RUN(test_upstream_answer_gets_nosniff);
	RUN(test_body_over_cap_is_413);
	RUN(test_static_post_is_405_before_its_body);
	RUN(test_body_cut_short_is_400);
	RUN(test_bytes_after_request_reset_the_stream);
	RUN(test_idle_stream_is_reset);
	RUN(test_server_free_ends_requests_under_way);
	RUN(test_one_address_gets_its_share_of_the_pool);
	RUN(test_one_network_gets_its_share_of_the_pool);
	RUN(test_default_share_takes_five);
	RUN(test_add_site_refusals);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
