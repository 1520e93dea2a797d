/*
 * test_relay_client.c - the relay client (RESERVE, CONNECT, the stop
 * service) against our relay server, on three hosts in one libev loop on
 * 127.0.0.1: relay R, target A (reserves, serves stop), source B.  Every
 * run of the loop is bounded by a deadline timer.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "relay/circuit.h"
#include "relay/relay_client.h"
#include "relay/relay_server.h"
#include "transport/host.h"
#include "transport/ping.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fixtures.h"
#include "relay_fixtures.h"

static struct an_privkey *kr, *ka, *kb;

struct world {
	struct ev_loop *loop;
	struct an_host *r, *a, *b;
	struct an_relay_server *relay;
	struct an_host_conn *ca, *cb;
	struct an_relay_stop_service stop;
};

/* Run the loop until *flag or seconds pass. */
static bool run_until(struct world *w, const bool *flag, double seconds)
{
	return fx_run_until(w->loop, flag, seconds);
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	if (err == 0)
		*(struct an_host_conn **)arg = c;
}

/* ---- A's side: accept every circuit (unless told not to) and echo ---- */

static struct {
	bool refuse;
	bool upgrade;          /* run a relayed libp2p connection over accepted circuits */
	struct an_host *host;  /* A */
	bool accepted;
	struct an_peerid src;
	struct an_relay_limit limit;
} target;

static void echo_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	an_stream_write(s, p, n);
}

static void echo_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static const struct an_stream_handler echo_handler = {
	.on_data = echo_data,
	.on_eof = echo_eof,
};

static bool accept_cb(void *arg, struct an_stream *s, const struct an_peerid *src,
		      const struct an_relay_limit *limit, const struct an_stream_handler **handler,
		      void **handler_arg)
{
	(void)arg, (void)s;
	target.src = *src;
	target.limit = *limit;
	if (target.refuse)
		return false;
	target.accepted = true;
	if (target.upgrade)
		return an_host_conn_over_stream(target.host, s, false, src, "/p2p-circuit", 0, NULL, NULL,
						handler, handler_arg) == 0;
	*handler = &echo_handler;
	*handler_arg = NULL;
	return true;
}

static int world_new(struct world *w, const struct an_relay_config *cfg, bool relay)
{
	struct an_host_config cr = {.key = kr}, ca = {.key = ka}, cb = {.key = kb};
	char addr[512];
	bool never = false;
	memset(w, 0, sizeof(*w));
	memset(&target, 0, sizeof(target));
	w->loop = ev_loop_new(0);
	if (an_host_new(w->loop, &cr, &w->r) < 0 || an_host_new(w->loop, &ca, &w->a) < 0 ||
	    an_host_new(w->loop, &cb, &w->b) < 0)
		return -1;
	if (an_host_listen(w->r, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	if (relay && an_relay_server_new(w->r, cfg, &w->relay) < 0)
		return -1;
	w->stop.accept = accept_cb;
	target.host = w->a;
	an_ping_service_register(w->a);
	if (an_relay_stop_serve(w->a, &w->stop) < 0)
		return -1;
	rfx_host_addr(w->r, addr, sizeof(addr));
	if (an_host_dial(w->a, addr, 5000, dial_cb, &w->ca) < 0 ||
	    an_host_dial(w->b, addr, 5000, dial_cb, &w->cb) < 0)
		return -1;
	for (int i = 0; i < 500 && !(w->ca && w->cb); i++)
		run_until(w, &never, 0.01);
	return w->ca && w->cb ? 0 : -1;
}

static void world_free(struct world *w)
{
	an_relay_server_free(w->relay);
	an_host_free(w->a);
	an_host_free(w->b);
	an_host_free(w->r);
	ev_loop_destroy(w->loop);
}

/* ---- B's side ---- */

struct reserve_result {
	bool done;
	int err;
	struct an_relay_reservation_info info;
};

static void reserve_cb(void *arg, int err, const struct an_relay_reservation_info *info)
{
	struct reserve_result *r = arg;
	r->done = true;
	r->err = err;
	if (info)
		r->info = *info;
}

struct circuit_client {
	bool done;
	int err;
	uint32_t status;
	struct an_stream *s;
	struct an_relay_limit limit;
	struct an_buf data;
	bool eof, closed;
};

static void cc_connect_cb(void *arg, int err, uint32_t status, struct an_stream *s,
			  const struct an_relay_limit *limit)
{
	struct circuit_client *cc = arg;
	cc->done = true;
	cc->err = err;
	cc->status = status;
	cc->s = s;
	if (limit)
		cc->limit = *limit;
}

static void cc_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	an_buf_append(&((struct circuit_client *)arg)->data, p, n);
}

static void cc_eof(struct an_stream *s, void *arg)
{
	(void)s;
	((struct circuit_client *)arg)->eof = true;
}

static void cc_close(struct an_stream *s, int err, void *arg)
{
	(void)s, (void)err;
	struct circuit_client *cc = arg;
	cc->closed = true;
	cc->s = NULL;
}

static const struct an_stream_handler cc_handler = {
	.on_data = cc_data,
	.on_eof = cc_eof,
	.on_close = cc_close,
};

static bool do_reserve(struct world *w, struct an_host_conn *c, struct reserve_result *r)
{
	memset(r, 0, sizeof(*r));
	if (an_relay_reserve(c, 5000, reserve_cb, r) < 0)
		return false;
	return run_until(w, &r->done, 6);
}

static bool do_connect(struct world *w, struct circuit_client *cc)
{
	memset(cc, 0, sizeof(*cc));
	an_buf_init(&cc->data, 65536);
	if (an_relay_connect(w->cb, an_host_peer_id(w->a), 5000, cc_connect_cb, cc, &cc_handler, cc) < 0)
		return false;
	return run_until(w, &cc->done, 6);
}

/* ---- tests ---- */

static void test_reserve_accepted(void)
{
	struct world w;
	struct reserve_result r;
	char suffix[AN_PEERID_TEXT_MAX + 8], id[AN_PEERID_TEXT_MAX];
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	CHECK(do_reserve(&w, w.ca, &r));
	CHECK_EQ_INT(r.err, 0);
	CHECK_EQ_INT(r.info.status, AN_RELAY_OK);
	CHECK(r.info.expire > (uint64_t)time(NULL));
	CHECK_EQ_INT(r.info.naddrs, 1);
	an_peerid_format(an_host_peer_id(w.r), id, sizeof(id));
	snprintf(suffix, sizeof(suffix), "/p2p/%s", id);
	CHECK(strlen(r.info.addrs[0]) > strlen(suffix) &&
	      strcmp(r.info.addrs[0] + strlen(r.info.addrs[0]) - strlen(suffix), suffix) == 0);
	CHECK(r.info.has_voucher && r.info.voucher_ok);
	CHECK(r.info.limit.present);
	world_free(&w);
}

static void test_reserve_refused_status(void)
{
	struct world w;
	struct reserve_result r1, r2;
	struct an_relay_config cfg;
	an_relay_config_init(&cfg);
	cfg.max_reservations = 1;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	CHECK(do_reserve(&w, w.ca, &r1));
	CHECK_EQ_INT(r1.info.status, AN_RELAY_OK);
	CHECK(do_reserve(&w, w.cb, &r2));
	CHECK_EQ_INT(r2.err, 0);
	CHECK_EQ_INT(r2.info.status, AN_RELAY_RESOURCE_LIMIT_EXCEEDED);
	world_free(&w);
}

static void test_reserve_without_relay_service(void)
{
	struct world w;
	struct reserve_result r;
	CHECK_EQ_INT(world_new(&w, NULL, false), 0);
	CHECK(do_reserve(&w, w.ca, &r));
	CHECK_EQ_INT(r.err, AN_ENOPROTO);
	world_free(&w);
}

static void test_connect_and_echo(void)
{
	struct world w;
	struct reserve_result r;
	struct circuit_client cc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	CHECK(do_reserve(&w, w.ca, &r));
	CHECK(do_connect(&w, &cc));
	CHECK_EQ_INT(cc.err, 0);
	CHECK_EQ_INT(cc.status, AN_RELAY_OK);
	CHECK(cc.s != NULL);
	CHECK_EQ_INT(cc.limit.duration, AN_RELAY_DEFAULT_DURATION_S);
	CHECK(target.accepted);
	CHECK(an_peerid_equal(&target.src, an_host_peer_id(w.b)));
	CHECK_EQ_INT(target.limit.data, AN_RELAY_DEFAULT_DATA);
	if (cc.s) {
		CHECK_EQ_INT(an_stream_write(cc.s, (const uint8_t *)"through the relay", 17), 0);
		an_stream_close_write(cc.s);
	}
	CHECK(run_until(&w, &cc.eof, 5));
	CHECK_EQ_INT(cc.data.len, 17);
	CHECK(cc.data.len == 17 && memcmp(cc.data.data, "through the relay", 17) == 0);
	CHECK(run_until(&w, &cc.closed, 5));
	an_buf_free(&cc.data);
	world_free(&w);
}

static void test_connect_no_reservation(void)
{
	struct world w;
	struct circuit_client cc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	CHECK(do_connect(&w, &cc));
	CHECK_EQ_INT(cc.err, 0);
	CHECK_EQ_INT(cc.status, AN_RELAY_NO_RESERVATION);
	CHECK(cc.s == NULL);
	an_buf_free(&cc.data);
	world_free(&w);
}

static void test_target_refuses(void)
{
	struct world w;
	struct reserve_result r;
	struct circuit_client cc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	target.refuse = true;
	CHECK(do_reserve(&w, w.ca, &r));
	CHECK(do_connect(&w, &cc));
	CHECK_EQ_INT(cc.status, AN_RELAY_CONNECTION_FAILED);
	CHECK(!target.accepted);
	an_buf_free(&cc.data);
	world_free(&w);
}

/* ---- a libp2p connection over the circuit ---- */

struct relayed {
	struct world *w;
	struct rfx_dial d; /* the connection over the circuit, and a ping on it */
};

static void relayed_connect_cb(void *arg, int err, uint32_t status, struct an_stream *s,
			       const struct an_relay_limit *limit)
{
	(void)limit;
	struct relayed *r = arg;
	const struct an_stream_handler *h;
	void *harg;
	if (err || status != AN_RELAY_OK) {
		r->d.done = true;
		r->d.err = err ? err : AN_EPROTO;
		return;
	}
	if (an_host_conn_over_stream(r->w->b, s, true, an_host_peer_id(r->w->a), "/p2p-circuit", 5000,
				     rfx_dial_cb, &r->d, &h, &harg) < 0) {
		r->d.done = true;
		r->d.err = AN_EPROTO;
		an_stream_reset(s);
		return;
	}
	an_relay_stream_redirect(s, h, harg);
}

static void test_relayed_connection_ping(void)
{
	struct world w;
	struct reserve_result rr;
	struct relayed r = {0};
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	target.upgrade = true;
	r.w = &w;
	CHECK(do_reserve(&w, w.ca, &rr));
	CHECK_EQ_INT(an_relay_connect(w.cb, an_host_peer_id(w.a), 5000, relayed_connect_cb, &r, NULL,
				      NULL), 0);
	CHECK(run_until(&w, &r.d.done, 8));
	CHECK_EQ_INT(r.d.err, 0);
	CHECK(r.d.conn != NULL);
	if (r.d.conn) {
		CHECK(an_peerid_equal(an_host_conn_peer(r.d.conn), an_host_peer_id(w.a)));
		CHECK(strstr(an_host_conn_remote_addr(r.d.conn), "p2p-circuit") != NULL);
		CHECK(an_host_conn_relayed(r.d.conn));
		CHECK(!an_host_conn_relayed(w.cb)); /* the TCP connection to the relay */
		CHECK_EQ_INT(an_ping_once(r.d.conn, 5000, rfx_ping_cb, &r.d), 0);
		CHECK(run_until(&w, &r.d.pinged, 6));
		CHECK_EQ_INT(r.d.ping_err, 0);
	}
	world_free(&w);
}

/* A relay refuses reservations and connects that come over a relayed connection. */
static void test_hop_over_relayed_connection_denied(void)
{
	struct world w;
	struct reserve_result rr, denied;
	struct relayed r = {0};
	struct an_relay_server *a_relay = NULL;
	struct circuit_client cc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	CHECK_EQ_INT(an_relay_server_new(w.a, NULL, &a_relay), 0); /* A is a relay too */
	target.upgrade = true;
	r.w = &w;
	CHECK(do_reserve(&w, w.ca, &rr));
	CHECK_EQ_INT(an_relay_connect(w.cb, an_host_peer_id(w.a), 5000, relayed_connect_cb, &r, NULL,
				      NULL), 0);
	CHECK(run_until(&w, &r.d.done, 8));
	CHECK(r.d.conn != NULL);
	if (r.d.conn) {
		CHECK(do_reserve(&w, r.d.conn, &denied));
		CHECK_EQ_INT(denied.err, 0);
		CHECK_EQ_INT(denied.info.status, AN_RELAY_PERMISSION_DENIED);
		memset(&cc, 0, sizeof(cc));
		an_buf_init(&cc.data, 1024);
		CHECK_EQ_INT(an_relay_connect(r.d.conn, an_host_peer_id(w.r), 5000, cc_connect_cb, &cc,
					      &cc_handler, &cc), 0);
		CHECK(run_until(&w, &cc.done, 6));
		CHECK_EQ_INT(cc.status, AN_RELAY_PERMISSION_DENIED);
		an_buf_free(&cc.data);
	}
	an_relay_server_free(a_relay);
	world_free(&w);
}

/* ---- a bulk echo over a relayed connection (carrier backpressure) ---- */

struct bulk {
	struct an_stream *s;
	size_t total, sent, got;
	bool ok, eof, closed;
	int close_err;
};

static void bulk_write(struct bulk *b)
{
	static uint8_t chunk[32768];
	while (b->s && b->sent < b->total && an_stream_queued(b->s) < AN_STREAM_QUEUE_HIGH) {
		size_t n = b->total - b->sent < sizeof(chunk) ? b->total - b->sent : sizeof(chunk);
		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((b->sent + i) * 13);
		if (an_stream_write(b->s, chunk, n) < 0)
			return;
		b->sent += n;
	}
	if (b->s && b->sent == b->total)
		an_stream_close_write(b->s);
}

static void bulk_open(struct an_stream *s, void *arg)
{
	struct bulk *b = arg;
	b->s = s;
	bulk_write(b);
}

static void bulk_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	struct bulk *b = arg;
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)((b->got + i) * 13))
			b->ok = false;
	b->got += n;
}

static void bulk_eof(struct an_stream *s, void *arg)
{
	(void)s;
	((struct bulk *)arg)->eof = true;
}

static void bulk_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct bulk *b = arg;
	b->closed = true;
	b->close_err = err;
	b->s = NULL;
}

static void bulk_writable(struct an_stream *s, void *arg)
{
	(void)s;
	bulk_write(arg);
}

static const struct an_stream_handler bulk_handler = {
	.on_open = bulk_open,
	.on_data = bulk_data,
	.on_eof = bulk_eof,
	.on_close = bulk_close,
	.on_writable = bulk_writable,
};

static void test_relayed_connection_bulk_echo(void)
{
	struct world w;
	struct reserve_result rr;
	struct relayed r = {0};
	struct an_relay_config cfg;
	struct bulk b = {.total = 3 * 1024 * 1024, .ok = true};
	an_relay_config_init(&cfg);
	cfg.circuit_data = 0;
	cfg.circuit_duration_s = 0;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	CHECK_EQ_INT(an_host_handle(w.a, "/test/echo", &echo_handler, NULL), 0);
	target.upgrade = true;
	r.w = &w;
	CHECK(do_reserve(&w, w.ca, &rr));
	CHECK_EQ_INT(an_relay_connect(w.cb, an_host_peer_id(w.a), 5000, relayed_connect_cb, &r, NULL,
				      NULL), 0);
	CHECK(run_until(&w, &r.d.done, 8));
	CHECK(r.d.conn != NULL);
	if (r.d.conn) {
		CHECK_EQ_INT(an_host_stream_open(r.d.conn, "/test/echo", &bulk_handler, &b, NULL), 0);
		CHECK(run_until(&w, &b.eof, 30));
		CHECK_EQ_INT(b.sent, b.total);
		CHECK_EQ_INT(b.got, b.total);
		CHECK(b.ok);
		CHECK(run_until(&w, &b.closed, 5));
		CHECK_EQ_INT(b.close_err, 0);
	}
	world_free(&w);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	an_privkey_generate(&kr);
	an_privkey_generate(&ka);
	an_privkey_generate(&kb);
	RUN(test_reserve_accepted);
	RUN(test_reserve_refused_status);
	RUN(test_reserve_without_relay_service);
	RUN(test_connect_and_echo);
	RUN(test_connect_no_reservation);
	RUN(test_target_refuses);
	RUN(test_relayed_connection_ping);
	RUN(test_hop_over_relayed_connection_denied);
	RUN(test_relayed_connection_bulk_echo);
	an_privkey_free(kr);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
