/*
 * test_autonat.c - the reachability tracker (nat/reach.h), the allow list
 * and the AutoNAT v1/v2 client and server (nat/autonat.h) on 127.0.0.1:
 * hosts in one libev loop, every run bounded by a deadline.  The servers
 * allow 127.0.0.0/8 (loopback is not public otherwise).
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "encoding/protobuf.h"
#include "nat/autonat.h"
#include "nat/autonat_msg.h"
#include "nat/reach.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"
#include "relay_fixtures.h"

/* ---- the tracker ---- */

static void test_reach_confidence(void)
{
	struct an_reach r;
	an_reach_init(&r, 2);
	CHECK_EQ_INT(an_reach_add(&r, "/ip4/1.2.3.4/tcp/1", false, 1), 0);
	CHECK_EQ_INT(an_reach_overall(&r), AN_REACH_UNKNOWN);
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", true, 2), 0);
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", true, 3), 1); /* 2 - 0 >= 2 */
	CHECK_EQ_INT(an_reach_find(&r, "/ip4/1.2.3.4/tcp/1")->state, AN_REACH_PUBLIC);
	CHECK_EQ_INT(an_reach_overall(&r), AN_REACH_PUBLIC);
	/* failures pull it back through unknown to private */
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", false, 4), 1); /* 2-1: unknown */
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", false, 5), 0);
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", false, 6), 0); /* 2-3 */
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/1.2.3.4/tcp/1", false, 7), 1); /* window 5: 1-4 */
	CHECK_EQ_INT(an_reach_overall(&r), AN_REACH_PRIVATE);
	CHECK_EQ_INT(an_reach_result(&r, "/ip4/9.9.9.9/tcp/1", true, 8), AN_ENOTFOUND);
}

static void test_reach_overall_and_bounds(void)
{
	struct an_reach r;
	char text[64];
	an_reach_init(&r, 1);
	CHECK_EQ_INT(an_reach_add(&r, "/ip4/1.1.1.1/tcp/1", false, 1), 0);
	CHECK_EQ_INT(an_reach_add(&r, "/ip4/2.2.2.2/tcp/1", true, 1), 0);
	an_reach_result(&r, "/ip4/2.2.2.2/tcp/1", false, 2);
	CHECK_EQ_INT(an_reach_overall(&r), AN_REACH_PRIVATE);
	an_reach_result(&r, "/ip4/1.1.1.1/tcp/1", true, 3);
	CHECK_EQ_INT(an_reach_overall(&r), AN_REACH_PUBLIC); /* any public address */
	/* full of our own addresses: a new observed one cannot get in */
	for (int i = 2; i < AN_REACH_MAX_ADDRS; i++) {
		snprintf(text, sizeof(text), "/ip4/3.3.3.%d/tcp/1", i);
		CHECK_EQ_INT(an_reach_add(&r, text, false, 10 + (uint64_t)i), 0);
	}
	CHECK_EQ_INT(r.n, AN_REACH_MAX_ADDRS);
	/* the one observed (private) entry is replaced by a newer observed one */
	CHECK_EQ_INT(an_reach_add(&r, "/ip4/4.4.4.4/tcp/1", true, 100), 0);
	CHECK(an_reach_find(&r, "/ip4/2.2.2.2/tcp/1") == NULL);
	CHECK_EQ_INT(r.n, AN_REACH_MAX_ADDRS);
	/* ... and now the observed one is the only one that can go */
	CHECK_EQ_INT(an_reach_add(&r, "/ip4/5.5.5.5/tcp/1", true, 101), 0);
	CHECK(an_reach_find(&r, "/ip4/4.4.4.4/tcp/1") == NULL);
	CHECK_EQ_INT(an_reach_add(&r, "", false, 1), -EINVAL);
}

static void test_reach_next(void)
{
	struct an_reach r;
	an_reach_init(&r, 1);
	an_reach_add(&r, "/ip4/1.1.1.1/tcp/1", false, 1);
	an_reach_add(&r, "/ip4/2.2.2.2/tcp/1", false, 1);
	const struct an_reach_addr *a = an_reach_next(&r, 1000, 100, 10000);
	const struct an_reach_addr *b = an_reach_next(&r, 1000, 100, 10000);
	CHECK(a && b && a != b);
	CHECK(an_reach_next(&r, 1050, 100, 10000) == NULL); /* both asked < gap ago */
	an_reach_result(&r, a->text, true, 1100);
	an_reach_result(&r, a->text, true, 1100);
	an_reach_result(&r, b->text, true, 1100);
	an_reach_result(&r, b->text, true, 1100);
	CHECK(an_reach_next(&r, 2000, 100, 10000) == NULL); /* decided, not due again */
	CHECK(an_reach_next(&r, 20000, 100, 10000) != NULL);
}

static void test_ip_public_and_allow(void)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	static const char *priv[] = {"127.0.0.1", "10.1.2.3", "192.168.1.1", "172.20.0.1",
				     "198.18.0.1", "198.19.2.2", "100.64.0.1", "169.254.1.1",
				     "0.0.0.0", "224.0.0.1", "203.0.113.5"};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		inet_pton(AF_INET, priv[i], &v4.sin_addr);
		CHECK(!an_autonat_ip_public((struct sockaddr *)&v4));
	}
	inet_pton(AF_INET, "1.2.3.4", &v4.sin_addr);
	CHECK(an_autonat_ip_public((struct sockaddr *)&v4));
	inet_pton(AF_INET6, "2606:4700::1", &v6.sin6_addr);
	CHECK(an_autonat_ip_public((struct sockaddr *)&v6));
	static const char *priv6[] = {"::1", "fe80::1", "fd00::1", "2001:db8::1", "::ffff:10.0.0.1"};
	for (size_t i = 0; i < sizeof(priv6) / sizeof(priv6[0]); i++) {
		inet_pton(AF_INET6, priv6[i], &v6.sin6_addr);
		CHECK(!an_autonat_ip_public((struct sockaddr *)&v6));
	}
}

static struct an_privkey *ks, *kc, *kx;

static void test_allow_list(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct an_host_config hc = {.key = ks};
	struct an_host *h = NULL;
	struct an_autonat *a = NULL;
	struct an_autonat_config cfg = {.allow = "198.18.0.0/15, 127.0.0.0/8", .no_client = true};
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	CHECK_EQ_INT(an_host_new(loop, &hc, &h), 0);
	CHECK_EQ_INT(an_autonat_new(h, &cfg, &a), 0);
	inet_pton(AF_INET, "198.19.1.2", &v4.sin_addr);
	CHECK(an_autonat_addr_allowed(a, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "127.5.5.5", &v4.sin_addr);
	CHECK(an_autonat_addr_allowed(a, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr);
	CHECK(!an_autonat_addr_allowed(a, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "8.8.8.8", &v4.sin_addr);
	CHECK(an_autonat_addr_allowed(a, (struct sockaddr *)&v4));
	CHECK_EQ_INT(an_autonat_set_allow(a, "10.0.0.0/33"), AN_EMALFORMED);
	CHECK_EQ_INT(an_autonat_set_allow(a, "nonsense"), AN_EMALFORMED);
	CHECK_EQ_INT(an_autonat_set_allow(a, "10.0.0.0/8"), 0);
	inet_pton(AF_INET, "10.9.9.9", &v4.sin_addr);
	CHECK(an_autonat_addr_allowed(a, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
	CHECK(!an_autonat_addr_allowed(a, (struct sockaddr *)&v4)); /* replaced */
	CHECK_EQ_INT(an_autonat_set_allow(a, ""), 0);
	an_autonat_free(a);
	cfg.allow = "1.2.3.4/40";
	CHECK_EQ_INT(an_autonat_new(h, &cfg, &a), AN_EMALFORMED);
	an_host_free(h);
	ev_loop_destroy(loop);
}

/* ---- client and server on loopback ---- */

struct world {
	struct ev_loop *loop;
	struct an_host *s, *c;
	struct an_autonat *as, *ac;
	char server_addr[512];
	int changes;
	enum an_reach_state overall;
	bool decided;
};

static void on_change(void *arg, const char *addr, enum an_reach_state st)
{
	struct world *w = arg;
	w->changes++;
	if (!addr) {
		w->overall = st;
		w->decided = st != AN_REACH_UNKNOWN;
	}
}

static void test_log(void *arg, const char *msg)
{
	fprintf(stderr, "# %s: %s\n", (const char *)arg, msg);
}

/*
 * Server S (allow: 127.0.0.0/8 unless sallow given) and client C; C
 * listens when c_listen; announce (may be NULL) is announced by C instead
 * of its listen address.  C dials S.
 */
static int world_new(struct world *w, const char *sallow, bool c_listen, const char *announce,
		     const struct an_autonat_config *ccfg_in)
{
	struct an_host_config hs = {.key = ks}, hcc = {.key = kc};
	struct an_autonat_config scfg = {.allow = sallow ? sallow : "127.0.0.0/8", .no_client = true,
					 .server_global_per_min = -1, .server_peer_per_min = -1};
	struct an_autonat_config ccfg = {.allow = "127.0.0.0/8", .no_server = true, .probe_ms = 50,
					 .server_gap_ms = 50, .timeout_ms = 4000};
	if (ccfg_in)
		ccfg = *ccfg_in;
	ccfg.on_change = on_change;
	ccfg.change_arg = w;
	if (getenv("TEST_AUTONAT_LOG")) {
		ccfg.log = scfg.log = test_log;
		ccfg.log_arg = (void *)"client";
		scfg.log_arg = (void *)"server";
	}
	memset(w, 0, sizeof(*w));
	w->loop = ev_loop_new(0);
	if (an_host_new(w->loop, &hs, &w->s) < 0 || an_host_listen(w->s, "/ip4/127.0.0.1/tcp/0") < 0 ||
	    an_identify_service_register(w->s) < 0 || an_autonat_new(w->s, &scfg, &w->as) < 0)
		return -1;
	rfx_host_addr(w->s, w->server_addr, sizeof(w->server_addr));
	if (an_host_new(w->loop, &hcc, &w->c) < 0 || an_identify_service_register(w->c) < 0)
		return -1;
	if (c_listen && an_host_listen(w->c, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	if (announce && an_host_announce(w->c, announce) < 0)
		return -1;
	struct rfx_dial d = {0};
	if (an_host_dial(w->c, w->server_addr, 3000, rfx_dial_cb, &d) < 0 ||
	    !fx_run_until(w->loop, &d.done, 5) || d.err < 0)
		return -1;
	if (an_autonat_new(w->c, &ccfg, &w->ac) < 0)
		return -1;
	return 0;
}

static void world_free(struct world *w)
{
	an_autonat_free(w->ac);
	an_autonat_free(w->as);
	an_host_free(w->c);
	an_host_free(w->s);
	ev_loop_destroy(w->loop);
}

/* Run until the client decided on addr (state want) or 10 s. */
static bool wait_state(struct world *w, const char *addr, enum an_reach_state want)
{
	bool timed_out = false;
	ev_timer deadline;
	ev_timer_init(&deadline, fx_deadline_cb, 10, 0);
	deadline.data = &timed_out;
	ev_timer_start(w->loop, &deadline);
	for (;;) {
		const struct an_reach_addr *e = an_reach_find(an_autonat_table(w->ac), addr);
		if ((e && e->state == want) || timed_out)
			break;
		ev_run(w->loop, EVRUN_ONCE);
	}
	ev_timer_stop(w->loop, &deadline);
	return !timed_out;
}

/* The client's own listen address as text. */
static void client_addr(struct world *w, char *out, size_t cap)
{
	const char *addrs[1] = {""};
	an_host_addrs(w->c, addrs, 1);
	snprintf(out, cap, "%s", addrs[0]);
}

static void test_v2_listening_client_is_public(void)
{
	struct world w;
	char addr[256];
	CHECK_EQ_INT(world_new(&w, NULL, true, NULL, NULL), 0);
	client_addr(&w, addr, sizeof(addr));
	CHECK(wait_state(&w, addr, AN_REACH_PUBLIC));
	CHECK_EQ_INT(an_autonat_reachability(w.ac), AN_REACH_PUBLIC);
	CHECK_EQ_INT(w.overall, AN_REACH_PUBLIC);
	world_free(&w);
}

static void test_v2_unreachable_address_is_private(void)
{
	struct world w;
	/* announced 127.0.0.2:1 (nobody listens): another IP than the observed
	   one, so the client pays dial data, then the dial-back fails */
	CHECK_EQ_INT(world_new(&w, NULL, false, "/ip4/127.0.0.2/tcp/1", NULL), 0);
	CHECK(wait_state(&w, "/ip4/127.0.0.2/tcp/1", AN_REACH_PRIVATE));
	CHECK_EQ_INT(an_autonat_reachability(w.ac), AN_REACH_PRIVATE);
	world_free(&w);
}

static void test_server_refuses_private_addresses(void)
{
	struct world w;
	char addr[256];
	/* the server allows nothing extra: loopback is not public, no outcome */
	CHECK_EQ_INT(world_new(&w, "", true, NULL, NULL), 0);
	client_addr(&w, addr, sizeof(addr));
	bool never = false;
	fx_run_until(w.loop, &never, 1.5);
	const struct an_reach_addr *e = an_reach_find(an_autonat_table(w.ac), addr);
	CHECK(e != NULL);
	CHECK(e && e->probes >= 2);
	CHECK(e && e->n == 0);
	CHECK_EQ_INT(an_autonat_reachability(w.ac), AN_REACH_UNKNOWN);
	world_free(&w);
}

static void test_v1_client(void)
{
	struct world w;
	char addr[256];
	struct an_autonat_config ccfg = {.allow = "127.0.0.0/8", .no_server = true, .no_v2 = true,
					 .probe_ms = 50, .server_gap_ms = 50, .timeout_ms = 4000};
	CHECK_EQ_INT(world_new(&w, NULL, true, NULL, &ccfg), 0);
	client_addr(&w, addr, sizeof(addr));
	CHECK(wait_state(&w, addr, AN_REACH_PUBLIC));
	world_free(&w);
	/* v1 never dials an IP other than the observed one: refused, no outcome */
	CHECK_EQ_INT(world_new(&w, NULL, false, "/ip4/127.0.0.2/tcp/1", &ccfg), 0);
	bool never = false;
	fx_run_until(w.loop, &never, 1.0);
	const struct an_reach_addr *e = an_reach_find(an_autonat_table(w.ac), "/ip4/127.0.0.2/tcp/1");
	CHECK(e && e->probes >= 1 && e->n == 0);
	world_free(&w);
}

/* ---- a misbehaving client loses its stream only ---- */

struct raw {
	bool open, closed;
	int err;
	struct an_buf in;
};

static void raw_open(struct an_stream *s, void *arg)
{
	(void)s;
	((struct raw *)arg)->open = true;
}
static void raw_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	an_buf_append(&((struct raw *)arg)->in, p, n);
}
static void raw_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}
static void raw_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct raw *r = arg;
	r->closed = true;
	r->err = err;
}
static const struct an_stream_handler raw_handler = {raw_open, raw_data, raw_eof, raw_close, NULL};

/* Open proto from C to S, write bytes, run until the stream ends (5 s). */
static void raw_exchange(struct world *w, const char *proto, const uint8_t *p, size_t n,
			 struct raw *r, bool to_end)
{
	struct an_host_conn *conns[4];
	struct an_stream *st = NULL;
	memset(r, 0, sizeof(*r));
	an_buf_init(&r->in, 65536);
	CHECK_EQ_INT(an_host_conns(w->c, conns, 4), 1);
	CHECK_EQ_INT(an_host_stream_open(conns[0], proto, &raw_handler, r, &st), 0);
	CHECK(fx_run_until(w->loop, &r->open, 5));
	if (n)
		an_stream_write(st, p, n);
	if (to_end) {
		CHECK(fx_run_until(w->loop, &r->closed, 5));
		return;
	}
	for (int i = 0; i < 500 && r->in.len == 0 && !r->closed; i++) {
		bool never = false;
		fx_run_until(w->loop, &never, 0.01);
	}
	CHECK(r->in.len > 0);
	an_stream_reset(st); /* the client walks away: the server's state goes */
	bool never = false;
	fx_run_until(w->loop, &never, 0.1);
}

static void test_garbage_resets_stream_only(void)
{
	struct world w;
	struct raw r;
	struct an_autonat_config ccfg = {.no_server = true, .no_client = true};
	static const uint8_t garbage[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t huge[16];
	size_t hn = 0;
	CHECK_EQ_INT(world_new(&w, NULL, true, NULL, &ccfg), 0);
	raw_exchange(&w, AN_AUTONAT2_PROTO_REQUEST, garbage, sizeof(garbage), &r, true);
	CHECK_EQ_INT(r.err, AN_ERESET);
	/* a frame announced over the cap */
	hn = 0;
	huge[hn++] = 0x81;
	huge[hn++] = 0x80;
	huge[hn++] = 0x01; /* 16385 */
	raw_exchange(&w, AN_AUTONAT1_PROTOCOL, huge, hn, &r, true);
	CHECK_EQ_INT(r.err, AN_ERESET);
	an_buf_free(&r.in);
	/* the connection is still there and the server still answers */
	struct an_host_conn *conns[4];
	CHECK_EQ_INT(an_host_conns(w.c, conns, 4), 1);
	CHECK(an_host_conn_alive(conns[0]));
	struct an_autonat2_msg m;
	struct an_buf req;
	static const uint8_t a[] = {0x04, 127, 0, 0, 3, 0x06, 0x00, 0x01};
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_REQUEST);
	m.naddrs = 1;
	m.addrs[0].p = a;
	m.addrs[0].len = sizeof(a);
	m.nonce = 7;
	an_buf_init(&req, 1024);
	an_autonat2_encode(&m, &req);
	raw_exchange(&w, AN_AUTONAT2_PROTO_REQUEST, req.data, req.len, &r, false);
	/* another IP than observed: the server asks for dial data first */
	const uint8_t *msg;
	size_t mlen, used;
	CHECK_EQ_INT(an_lp_get(r.in.data, r.in.len, 8192, &msg, &mlen, &used), 0);
	struct an_autonat2_msg ans;
	CHECK_EQ_INT(an_autonat2_decode(msg, mlen, &ans), 0);
	CHECK_EQ_INT(ans.kind, AN_AUTONAT2_DIAL_DATA_REQUEST);
	CHECK(ans.num_bytes >= AN_AUTONAT_DIAL_DATA_MIN && ans.num_bytes <= AN_AUTONAT_DIAL_DATA_MAX);
	an_buf_free(&r.in);
	an_buf_free(&req);
	CHECK_EQ_INT(an_autonat_serving(w.as), 0);
	world_free(&w);
}

static void test_rate_limit_rejects(void)
{
	struct world w;
	struct raw r;
	struct an_autonat_config ccfg = {.no_server = true, .no_client = true};
	CHECK_EQ_INT(world_new(&w, NULL, true, NULL, &ccfg), 0);
	an_autonat_free(w.as);
	struct an_autonat_config scfg = {.allow = "127.0.0.0/8", .no_client = true,
					 .server_global_per_min = 100, .server_peer_per_min = 2};
	CHECK_EQ_INT(an_autonat_new(w.s, &scfg, &w.as), 0);
	static const uint8_t a[] = {0x04, 127, 0, 0, 1, 0x06, 0x00, 0x01}; /* nobody listens on 1 */
	struct an_autonat2_msg m;
	struct an_buf req;
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_REQUEST);
	m.naddrs = 1;
	m.addrs[0].p = a;
	m.addrs[0].len = sizeof(a);
	m.nonce = 9;
	an_buf_init(&req, 1024);
	an_autonat2_encode(&m, &req);
	uint32_t statuses[3];
	for (int i = 0; i < 3; i++) {
		raw_exchange(&w, AN_AUTONAT2_PROTO_REQUEST, req.data, req.len, &r, true);
		const uint8_t *msg;
		size_t mlen, used;
		struct an_autonat2_msg ans;
		statuses[i] = 999;
		if (an_lp_get(r.in.data, r.in.len, 8192, &msg, &mlen, &used) == 0 &&
		    an_autonat2_decode(msg, mlen, &ans) == 0 && ans.kind == AN_AUTONAT2_DIAL_RESPONSE)
			statuses[i] = ans.status;
		an_buf_free(&r.in);
	}
	CHECK_EQ_INT(statuses[0], AN_AUTONAT2_OK); /* answered: E_DIAL_ERROR inside */
	CHECK_EQ_INT(statuses[1], AN_AUTONAT2_OK);
	CHECK_EQ_INT(statuses[2], AN_AUTONAT2_E_REQUEST_REJECTED);
	an_buf_free(&req);
	world_free(&w);
}

/* ---- a lying server: OK without ever dialing back ---- */

static void liar_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)p;
	(void)n;
	(void)arg;
	struct an_autonat2_msg m;
	struct an_buf b;
	if (an_stream_user(s))
		return;
	an_stream_set_user(s, s);
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_RESPONSE);
	m.status = AN_AUTONAT2_OK;
	m.dial_status = AN_AUTONAT2_DIAL_OK;
	an_buf_init(&b, 64);
	an_autonat2_encode(&m, &b);
	an_stream_write(s, b.data, b.len);
	an_stream_close_write(s);
	an_buf_free(&b);
}
static void liar_eof(struct an_stream *s, void *arg)
{
	(void)s;
	(void)arg;
}
static void liar_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	(void)err;
	(void)arg;
}
static const struct an_stream_handler liar_handler = {NULL, liar_data, liar_eof, liar_close, NULL};

static void test_v2_ok_without_dial_back_counts_nothing(void)
{
	struct world w;
	char addr[256];
	CHECK_EQ_INT(world_new(&w, NULL, true, NULL, NULL), 0);
	an_autonat_free(w.as);
	w.as = NULL;
	CHECK_EQ_INT(an_host_handle(w.s, AN_AUTONAT2_PROTO_REQUEST, &liar_handler, NULL), 0);
	client_addr(&w, addr, sizeof(addr));
	bool never = false;
	fx_run_until(w.loop, &never, 1.5);
	const struct an_reach_addr *e = an_reach_find(an_autonat_table(w.ac), addr);
	CHECK(e && e->probes >= 2);
	CHECK(e && e->n == 0);
	CHECK_EQ_INT(an_autonat_reachability(w.ac), AN_REACH_UNKNOWN);
	world_free(&w);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (an_privkey_generate(&ks) < 0 || an_privkey_generate(&kc) < 0 || an_privkey_generate(&kx) < 0)
		return 1;
	RUN(test_reach_confidence);
	RUN(test_reach_overall_and_bounds);
	RUN(test_reach_next);
	RUN(test_ip_public_and_allow);
	RUN(test_allow_list);
	RUN(test_v2_listening_client_is_public);
	RUN(test_v2_unreachable_address_is_private);
	RUN(test_server_refuses_private_addresses);
	RUN(test_v1_client);
	RUN(test_garbage_resets_stream_only);
	RUN(test_rate_limit_rejects);
	RUN(test_v2_ok_without_dial_back_counts_nothing);
	an_privkey_free(ks);
	an_privkey_free(kc);
	an_privkey_free(kx);
	return check_done();
}
