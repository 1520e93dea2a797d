/*
 * test_route_server: route/server on a real host pair over loopback.  The
 * client side is a raw stream (any bytes, FIN or not), so the server's
 * answers to well-formed and misbehaving requests are checked byte for
 * byte: static files, 421, head timeout 408, 413, bytes after the request,
 * idle reset, responder finish, server shutdown.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/key.h"
#include "record/record.h"
#include "route/server.h"
#include "route/static_site.h"
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

static void c_open(struct an_stream *s, void *arg)
{
	struct rig *r = arg;
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
	if (r->stop_on_eof)
		ev_break(r->loop, EVBREAK_ALL);
	if (!r->fin)
		an_stream_close_write(s);
}

static void c_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct rig *r = arg;
	r->closed = true;
	r->close_err = err;
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
	RUN(test_body_over_cap_is_413);
	RUN(test_static_post_is_405_before_its_body);
	RUN(test_body_cut_short_is_400);
	RUN(test_bytes_after_request_reset_the_stream);
	RUN(test_idle_stream_is_reset);
	RUN(test_server_free_ends_requests_under_way);
	RUN(test_add_site_refusals);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
