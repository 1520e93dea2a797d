/*
 * test_dcutr_service.c - DCUtR hole punching (relay/dcutr_service.h) on
 * 127.0.0.1, four hosts in one libev loop: relay R; L (DCUtR's B: keeps a
 * reservation on R and so receives the relayed connection, drives the
 * punch); D (DCUtR's A: dials L through R); X (a spare peer).  L and D
 * listen on TCP so each has an address to send.  Every run of the loop is
 * bounded by a deadline.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "relay/dcutr.h"
#include "relay/dcutr_service.h"
#include "relay/relay_dial.h"
#include "relay/relay_server.h"
#include "relay/reservation.h"
#include "transport/host.h"
#include "transport/ping.h"
#include "util/error.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"

#include "check.h"
#include "fixtures.h"
#include "relay_fixtures.h"

static struct an_privkey *kr, *kl, *kd, *kx;

/* What one side's reports said. */
struct side {
	int reports;
	int ok;                    /* reports with a direct connection */
	int last_err;
	struct an_host_conn *direct; /* the last one (borrowed) */
	struct an_peerid peer;
	bool done;                 /* at least one report */
};

static void report(void *arg, const struct an_peerid *peer, struct an_host_conn *direct, int err)
{
	struct side *s = arg;
	s->reports++;
	s->done = true;
	s->last_err = err;
	s->peer = *peer;
	if (direct) {
		s->ok++;
		s->direct = direct;
	}
}

struct world {
	struct ev_loop *loop;
	struct an_host *r, *l, *d;
	struct an_relay_server *relay;
	struct an_rsv *rsv;
	struct an_dcutr_service *dl, *dd;
	struct side sl, sd;
	char relay_addr[512];
	bool reserved;
	struct an_host_conn *relayed_l; /* L's side of the relayed connection */
	struct an_host_conn *relayed_d; /* D's side */
};

static void rsv_report(void *arg, const struct an_rsv_report *rep)
{
	struct world *w = arg;
	if (rep->event == AN_RSV_RESERVED)
		w->reserved = true;
}

/*
 * R, L and D; L keeps a reservation on R.  L and D listen on
 * 127.0.0.1 and run the service when serve_* (attempts of attempt_ms;
 * L primes with prime_ttl).
 */
static int world_new(struct world *w, bool serve_l, bool serve_d, int attempt_ms, int prime_ttl)
{
	struct an_host_config cr = {.key = kr}, cl = {.key = kl}, cd = {.key = kd};
	struct an_relay_config rc;
	struct an_rsv_config sc = {.timeout_ms = 3000, .retry_min_ms = 100, .retry_max_ms = 400,
				   .check_ms = 100, .report = rsv_report, .arg = w};
	memset(w, 0, sizeof(*w));
	w->loop = ev_loop_new(0);
	an_relay_config_init(&rc);
	if (an_host_new(w->loop, &cr, &w->r) < 0 || an_host_listen(w->r, "/ip4/127.0.0.1/tcp/0") < 0 ||
	    an_relay_server_new(w->r, &rc, &w->relay) < 0)
		return -1;
	rfx_host_addr(w->r, w->relay_addr, sizeof(w->relay_addr));
	if (an_host_new(w->loop, &cl, &w->l) < 0 || an_host_listen(w->l, "/ip4/127.0.0.1/tcp/0") < 0 ||
	    an_host_new(w->loop, &cd, &w->d) < 0 || an_host_listen(w->d, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	an_ping_service_register(w->l);
	an_ping_service_register(w->d);
	struct an_dcutr_config dc = {.attempt_ms = attempt_ms, .prime_ttl = prime_ttl, .report = report,
				     .arg = &w->sl};
	if (serve_l && an_dcutr_service_new(w->l, &dc, &w->dl) < 0)
		return -1;
	dc.arg = &w->sd;
	dc.prime_ttl = 0;
	if (serve_d && an_dcutr_service_new(w->d, &dc, &w->dd) < 0)
		return -1;
	if (an_rsv_new(w->l, &sc, &w->rsv) < 0 || an_rsv_add(w->rsv, w->relay_addr) < 0)
		return -1;
	return 0;
}

static void world_free(struct world *w)
{
	if (w->relayed_l)
		an_host_conn_unref(w->relayed_l);
	an_dcutr_service_free(w->dl);
	an_dcutr_service_free(w->dd);
	an_rsv_free(w->rsv);
	an_relay_server_free(w->relay);
	an_host_free(w->l);
	an_host_free(w->d);
	an_host_free(w->r);
	ev_loop_destroy(w->loop);
}

/* L's relayed connection to D, once it is established (or NULL). */
static struct an_host_conn *relayed_from(struct an_host *h, const struct an_peerid *peer)
{
	struct an_host_conn *conns[16];
	size_t n = an_host_conns(h, conns, 16);
	for (size_t i = 0; i < n; i++)
		if (an_host_conn_relayed(conns[i]) && an_peerid_equal(an_host_conn_peer(conns[i]), peer))
			return conns[i];
	return NULL;
}

/*
 * Wait for L's reservation, dial L from D through R, wait until L has its
 * side of the relayed connection (referenced in w->relayed_l).  Whether
 * all of that happened within its deadlines.
 */
static bool world_relay(struct world *w)
{
	struct rfx_dial dd = {0};
	char a[700], id[AN_PEERID_TEXT_MAX];
	if (!fx_run_until(w->loop, &w->reserved, 5))
		return false;
	an_peerid_format(an_host_peer_id(w->l), id, sizeof(id));
	snprintf(a, sizeof(a), "%s/p2p-circuit/p2p/%s", w->relay_addr, id);
	if (an_relay_dial(w->d, a, 5000, rfx_dial_cb, &dd) < 0 || !fx_run_until(w->loop, &dd.done, 6) ||
	    dd.err < 0)
		return false;
	w->relayed_d = dd.conn;
	for (int i = 0; i < 100 && !w->relayed_l; i++) {
		bool never = false;
		fx_run_until(w->loop, &never, 0.02);
		w->relayed_l = relayed_from(w->l, an_host_peer_id(w->d));
	}
	if (w->relayed_l)
		an_host_conn_ref(w->relayed_l);
	return w->relayed_l != NULL;
}

/*
 * world_relay, then L (B) starts the upgrade and the loop runs until *done
 * (a side's report) or secs pass.  Whether all of it happened.
 */
static bool relay_and_upgrade(struct world *w, const bool *done, double secs)
{
	return world_relay(w) && an_dcutr_upgrade(w->dl, w->relayed_l) == 0 &&
	       fx_run_until(w->loop, done, secs);
}

static void test_upgrade_gives_direct_connection_to_same_peer(void)
{
	struct world w;
	struct rfx_dial ping = {0};
	CHECK_EQ_INT(world_new(&w, true, true, 2000, 0), 0);
	CHECK(world_relay(&w));
	if (!w.relayed_l)
		goto out;
	CHECK(!an_host_conn_inbound(w.relayed_d));
	CHECK(an_host_conn_inbound(w.relayed_l)); /* L is B: it received the relayed connection */
	CHECK_EQ_INT(an_dcutr_upgrade(w.dl, w.relayed_l), 0);
	CHECK(!w.sl.done); /* never from inside the call */
	CHECK(fx_run_until(w.loop, &w.sl.done, 8));
	CHECK_EQ_INT(w.sl.last_err, 0);
	CHECK_EQ_INT(w.sl.ok, 1);
	CHECK(an_peerid_equal(&w.sl.peer, an_host_peer_id(w.d)));
	if (w.sl.direct) {
		CHECK(!an_host_conn_relayed(w.sl.direct));
		CHECK(an_peerid_equal(an_host_conn_peer(w.sl.direct), an_host_peer_id(w.d)));
		CHECK_EQ_INT(an_ping_once(w.sl.direct, 3000, rfx_ping_cb, &ping), 0);
		CHECK(fx_run_until(w.loop, &ping.pinged, 4));
		CHECK_EQ_INT(ping.ping_err, 0);
	}
	CHECK_EQ_INT((int)an_dcutr_active(w.dl), 0);
out:
	world_free(&w);
}

/* A's side (D) reports the direct connection too, to L. */
static void test_responder_reports_direct_connection(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, true, 2000, 0), 0);
	CHECK(relay_and_upgrade(&w, &w.sd.done, 8));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sd.last_err, 0);
	CHECK(w.sd.direct != NULL);
	if (w.sd.direct) {
		CHECK(!an_host_conn_relayed(w.sd.direct));
		CHECK(an_peerid_equal(an_host_conn_peer(w.sd.direct), an_host_peer_id(w.l)));
	}
out:
	world_free(&w);
}

/*
 * With prime_ttl L (B) does not dial: the direct connection is the one D
 * (A) dialed, inbound at L, so the upgrade had the spec's roles.
 */
static void test_primed_upgrade_is_dialed_by_responder(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, true, 2000, 2), 0);
	CHECK(relay_and_upgrade(&w, &w.sl.done, 8));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sl.last_err, 0);
	CHECK(w.sl.direct != NULL);
	if (w.sl.direct) {
		CHECK(!an_host_conn_relayed(w.sl.direct));
		CHECK(an_host_conn_inbound(w.sl.direct));
		CHECK(an_peerid_equal(an_host_conn_peer(w.sl.direct), an_host_peer_id(w.d)));
	}
out:
	world_free(&w);
}

static void test_upgrade_refuses_direct_connection(void)
{
	struct world w;
	struct rfx_dial d = {0};
	char a[600];
	CHECK_EQ_INT(world_new(&w, true, true, 2000, 0), 0);
	rfx_host_addr(w.d, a, sizeof(a));
	CHECK_EQ_INT(an_host_dial(w.l, a, 3000, rfx_dial_cb, &d), 0);
	CHECK(fx_run_until(w.loop, &d.done, 4));
	CHECK_EQ_INT(d.err, 0);
	if (d.conn)
		CHECK_EQ_INT(an_dcutr_upgrade(w.dl, d.conn), -EINVAL);
	world_free(&w);
}

/* D does not serve /libp2p/dcutr: L gives up with AN_ENOPROTO. */
static void test_peer_without_dcutr(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, false, 2000, 0), 0);
	CHECK(relay_and_upgrade(&w, &w.sl.done, 8));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sl.last_err, AN_ENOPROTO);
	CHECK(w.sl.direct == NULL);
out:
	world_free(&w);
}

/*
 * Both peers announce only an address where nothing listens: every
 * attempt times out, L makes exactly AN_DCUTR_DEFAULT_ATTEMPTS of them (D
 * answers each, so D reports one failure per attempt), then -ETIMEDOUT.
 */
static void test_unreachable_addresses_retried_three_times(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, true, 300, 0), 0);
	/* port 1 on loopback: refused at once */
	CHECK_EQ_INT(an_host_announce(w.l, "/ip4/127.0.0.1/tcp/1"), 0);
	CHECK_EQ_INT(an_host_announce(w.d, "/ip4/127.0.0.1/tcp/1"), 0);
	CHECK(relay_and_upgrade(&w, &w.sl.done, 5));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sl.last_err, -ETIMEDOUT);
	CHECK_EQ_INT(w.sl.reports, 1);
	CHECK_EQ_INT(w.sl.ok, 0);
	{ /* D's last attempt ends at its own deadline */
		bool never = false;
		fx_run_until(w.loop, &never, 0.5);
	}
	CHECK_EQ_INT(w.sd.reports, AN_DCUTR_DEFAULT_ATTEMPTS);
	CHECK_EQ_INT(w.sd.ok, 0);
out:
	world_free(&w);
}

/* A stand-in A that answers every message with a CONNECT holding no TCP address. */
static void bad_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)p;
	(void)n;
	(void)arg;
	static const uint8_t junk[] = {0xff, 0xff}; /* not a multiaddr */
	struct an_dcutr_msg m;
	struct an_buf out;
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	an_dcutr_msg_add_addr(&m, junk, sizeof(junk));
	an_buf_init(&out, 64);
	if (an_dcutr_msg_encode(&m, &out) == 0)
		an_stream_write(s, out.data, out.len);
	an_buf_free(&out);
}

static const struct an_stream_handler bad_handler = {.on_data = bad_data};

static void test_connect_without_tcp_address_is_protocol_error(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, false, 2000, 0), 0);
	CHECK_EQ_INT(an_host_handle(w.d, AN_DCUTR_PROTOCOL, &bad_handler, NULL), 0);
	CHECK(relay_and_upgrade(&w, &w.sl.done, 8));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sl.last_err, AN_EPROTO);
	CHECK_EQ_INT(w.sl.reports, 1);
	CHECK(w.sl.direct == NULL);
out:
	world_free(&w);
}

/*
 * D offers the address of another peer X (and L an address where nothing
 * listens): L's dial reaches X, whose key is not D's, so the punch must
 * not count it; it ends in -ETIMEDOUT.
 */
static void count_conn(struct an_host_conn *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
}

static void test_dial_answered_by_other_peer_not_accepted(void)
{
	int x_conns = 0;
	struct world w;
	struct an_host *x = NULL;
	struct an_host_config cx = {.key = kx};
	const char *xa[1] = {""};
	CHECK_EQ_INT(world_new(&w, true, true, 300, 0), 0);
	CHECK_EQ_INT(an_host_new(w.loop, &cx, &x), 0);
	CHECK_EQ_INT(an_host_listen(x, "/ip4/127.0.0.1/tcp/0"), 0);
	an_host_on_connection(x, count_conn, &x_conns);
	an_host_addrs(x, xa, 1);
	CHECK_EQ_INT(an_host_announce(w.d, xa[0]), 0);
	CHECK_EQ_INT(an_host_announce(w.l, "/ip4/127.0.0.1/tcp/1"), 0);
	CHECK(relay_and_upgrade(&w, &w.sl.done, 5));
	if (check_failures_in_test)
		goto out;
	CHECK_EQ_INT(w.sl.last_err, -ETIMEDOUT);
	CHECK_EQ_INT(w.sl.ok, 0);
	CHECK(x_conns > 0); /* L did reach X */
out:
	an_host_free(x);
	world_free(&w);
}

static void test_add_addr_rejects_non_tcp(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, false, 0, 0), 0);
	CHECK_EQ_INT(an_dcutr_service_add_addr(w.dl, "/ip4/198.18.0.2/tcp/4001"), 0);
	CHECK_EQ_INT(an_dcutr_service_add_addr(w.dl, "/ip4/198.18.0.2/udp/4001"), AN_EMALFORMED);
	CHECK_EQ_INT(an_dcutr_service_add_addr(w.dl, "/ip4/198.18.0.2/tcp/0"), AN_EMALFORMED);
	world_free(&w);
}

/* Freeing the service in the middle of a punch reports nothing and leaks nothing (SAN). */
static void test_free_during_punch(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, true, true, 2000, 0), 0);
	CHECK(world_relay(&w));
	if (!w.relayed_l)
		goto out;
	CHECK_EQ_INT(an_dcutr_upgrade(w.dl, w.relayed_l), 0);
	CHECK_EQ_INT((int)an_dcutr_active(w.dl), 1);
	an_dcutr_service_free(w.dl);
	w.dl = NULL;
	{
		bool never = false;
		fx_run_until(w.loop, &never, 0.3);
	}
	CHECK_EQ_INT(w.sl.reports, 0);
out:
	world_free(&w);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	an_privkey_generate(&kr);
	an_privkey_generate(&kl);
	an_privkey_generate(&kd);
	an_privkey_generate(&kx);
	RUN(test_upgrade_gives_direct_connection_to_same_peer);
	RUN(test_responder_reports_direct_connection);
	RUN(test_primed_upgrade_is_dialed_by_responder);
	RUN(test_upgrade_refuses_direct_connection);
	RUN(test_peer_without_dcutr);
	RUN(test_unreachable_addresses_retried_three_times);
	RUN(test_connect_without_tcp_address_is_protocol_error);
	RUN(test_dial_answered_by_other_peer_not_accepted);
	RUN(test_add_addr_rejects_non_tcp);
	RUN(test_free_during_punch);
	an_privkey_free(kr);
	an_privkey_free(kl);
	an_privkey_free(kd);
	an_privkey_free(kx);
	return check_done();
}
