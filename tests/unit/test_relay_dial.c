/*
 * test_relay_dial.c - dialing through a relay (relay/relay_dial.h) and
 * keeping reservations (relay/reservation.h), on three hosts in one libev
 * loop on 127.0.0.1: relay R (our hop service), target A (keeps a
 * reservation on R, accepts circuits), dialer B.  Every run of the loop is
 * bounded by a deadline.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/kad_node.h"
#include "relay/circuit.h"
#include "relay/relay_dial.h"
#include "relay/relay_server.h"
#include "relay/reservation.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixtures.h"
#include "relay_fixtures.h"

static struct an_privkey *kr, *ka, *kb, *kx;

static void key_peerid(const struct an_privkey *k, struct an_peerid *id)
{
	struct an_pubkey pk;
	an_privkey_public(k, &pk);
	an_peerid_from_pubkey(&pk, id);
}

struct world {
	struct ev_loop *loop;
	struct an_host *r, *a, *b;
	struct an_relay_server *relay;
	struct an_rsv *rsv;
	char relay_addr[512];
	int reserved, refreshed, lost, failed; /* reports seen */
	uint32_t ttl_s; /* the relay's reservation lifetime, 0 = its default */
	bool got_report;
};

static void rsv_report(void *arg, const struct an_rsv_report *rep)
{
	struct world *w = arg;
	w->got_report = true;
	if (rep->event == AN_RSV_RESERVED)
		w->reserved++;
	else if (rep->event == AN_RSV_REFRESHED)
		w->refreshed++;
	else if (rep->event == AN_RSV_LOST)
		w->lost++;
	else if (rep->event == AN_RSV_FAILED)
		w->failed++;
}

static int relay_start(struct world *w, const char *listen)
{
	struct an_host_config cr = {.key = kr};
	struct an_relay_config rc;
	an_relay_config_init(&rc);
	if (w->ttl_s)
		rc.reservation_ttl_s = w->ttl_s;
	if (an_host_new(w->loop, &cr, &w->r) < 0 || an_host_listen(w->r, listen) < 0 ||
	    an_relay_server_new(w->r, &rc, &w->relay) < 0)
		return -1;
	rfx_host_addr(w->r, w->relay_addr, sizeof(w->relay_addr));
	return 0;
}

static void relay_stop(struct world *w)
{
	an_relay_server_free(w->relay);
	an_host_free(w->r);
	w->relay = NULL;
	w->r = NULL;
}

/* R, A and B; A keeps a reservation on R when reserve (fast retries). */
static int world_new_ttl(struct world *w, bool reserve, uint32_t ttl_s);

static int world_new(struct world *w, bool reserve)
{
	return world_new_ttl(w, reserve, 0);
}

static int world_new_ttl(struct world *w, bool reserve, uint32_t ttl_s)
{
	struct an_host_config ca = {.key = ka}, cb = {.key = kb};
	struct an_rsv_config rc = {.timeout_ms = 3000, .retry_min_ms = 100, .retry_max_ms = 400,
				   .check_ms = 100, .report = rsv_report, .arg = w};
	memset(w, 0, sizeof(*w));
	w->ttl_s = ttl_s;
	w->loop = ev_loop_new(0);
	if (relay_start(w, "/ip4/127.0.0.1/tcp/0") < 0 || an_host_new(w->loop, &ca, &w->a) < 0 ||
	    an_host_new(w->loop, &cb, &w->b) < 0)
		return -1;
	an_ping_service_register(w->a);
	if (an_rsv_new(w->a, &rc, &w->rsv) < 0)
		return -1;
	if (reserve && an_rsv_add(w->rsv, w->relay_addr) < 0)
		return -1;
	return 0;
}

static void world_free(struct world *w)
{
	an_rsv_free(w->rsv);
	relay_stop(w);
	an_host_free(w->a);
	an_host_free(w->b);
	ev_loop_destroy(w->loop);
}

/* A's circuit address through R, with /p2p/<A>. */
static void circuit_addr(struct world *w, const struct an_peerid *target, char *out, size_t cap)
{
	char id[AN_PEERID_TEXT_MAX];
	an_peerid_format(target, id, sizeof(id));
	if ((size_t)snprintf(out, cap, "%s/p2p-circuit/p2p/%s", w->relay_addr, id) >= cap)
		out[0] = '\0'; /* the dial then fails as malformed */
}

/*
 * Run the loop in 50 ms steps, at most steps of them, until *count (one of
 * w's report counters) reaches n; whether it did.
 */
static bool wait_count(struct world *w, const int *count, int n, int steps)
{
	for (int i = 0; i < steps && *count < n; i++) {
		bool never = false;
		fx_run_until(w->loop, &never, 0.05);
	}
	return *count >= n;
}

static bool wait_reserved(struct world *w, int n)
{
	return wait_count(w, &w->reserved, n, 60);
}

/*
 * B dials target through R (its circuit address, 5 s) and the loop runs
 * until the dial is answered (6 s at most; d->done says whether it was).
 * an_relay_dial's return code.
 */
static int dial_circuit(struct world *w, const struct an_peerid *target, struct rfx_dial *d)
{
	char a[600];
	int rc;
	circuit_addr(w, target, a, sizeof(a));
	if ((rc = an_relay_dial(w->b, a, 5000, rfx_dial_cb, d)) == 0)
		fx_run_until(w->loop, &d->done, 6);
	return rc;
}

/* ---- addresses ---- */

static void test_split_circuit_address(void)
{
	char relay[256], a[512], ida[AN_PEERID_TEXT_MAX], idr[AN_PEERID_TEXT_MAX];
	struct an_peerid t, pa, pr;
	key_peerid(ka, &pa);
	key_peerid(kr, &pr);
	an_peerid_format(&pa, ida, sizeof(ida));
	an_peerid_format(&pr, idr, sizeof(idr));
	snprintf(a, sizeof(a), "/ip4/198.18.0.1/tcp/4001/p2p/%s/p2p-circuit/p2p/%s", idr, ida);
	CHECK(an_relay_addr_is_circuit(a));
	CHECK_EQ_INT(an_relay_addr_split(a, relay, sizeof(relay), &t), 0);
	CHECK(strncmp(relay, "/ip4/198.18.0.1/tcp/4001/p2p/", 29) == 0);
	CHECK(strcmp(relay + 29, idr) == 0);
	CHECK(an_peerid_equal(&t, &pa));
}

static void test_split_rejects_incomplete_circuits(void)
{
	char relay[256], a[512], ida[AN_PEERID_TEXT_MAX];
	struct an_peerid t, pa;
	key_peerid(ka, &pa);
	an_peerid_format(&pa, ida, sizeof(ida));
	/* no relay peer ID before /p2p-circuit */
	snprintf(a, sizeof(a), "/ip4/198.18.0.1/tcp/4001/p2p-circuit/p2p/%s", ida);
	CHECK_EQ_INT(an_relay_addr_split(a, relay, sizeof(relay), &t), AN_EMALFORMED);
	/* no target */
	snprintf(a, sizeof(a), "/ip4/198.18.0.1/tcp/4001/p2p/%s/p2p-circuit", ida);
	CHECK_EQ_INT(an_relay_addr_split(a, relay, sizeof(relay), &t), AN_EMALFORMED);
	CHECK(!an_relay_addr_is_circuit("/ip4/198.18.0.1/tcp/4001"));
}

/* ---- reservations ---- */

static void test_reservation_gives_circuit_addresses(void)
{
	struct world w;
	const char *addrs[8];
	char want[600];
	CHECK_EQ_INT(world_new(&w, true), 0);
	CHECK(wait_reserved(&w, 1));
	CHECK_EQ_INT(an_rsv_active(w.rsv), 1);
	CHECK(an_rsv_settled(w.rsv));
	CHECK_EQ_INT(an_rsv_addrs(w.rsv, addrs, 8), 1);
	snprintf(want, sizeof(want), "%s/p2p-circuit", w.relay_addr);
	CHECK_EQ_STR(addrs[0], want);
	world_free(&w);
}

static void test_reservation_retried_when_relay_down(void)
{
	struct world w;
	char addr[512];
	CHECK_EQ_INT(world_new(&w, false), 0);
	snprintf(addr, sizeof(addr), "%s", w.relay_addr);
	relay_stop(&w); /* nothing listens there any more */
	CHECK_EQ_INT(an_rsv_add(w.rsv, addr), 0);
	/* a first failure, then a retry after the backoff */
	CHECK(wait_count(&w, &w.failed, 2, 40));
	CHECK(an_rsv_settled(w.rsv));
	CHECK_EQ_INT(an_rsv_active(w.rsv), 0);
	world_free(&w);
}

static void test_reservation_renewed_after_relay_restart(void)
{
	struct world w;
	char listen[256];
	const char *addrs[1];
	CHECK_EQ_INT(world_new(&w, true), 0);
	CHECK(wait_reserved(&w, 1));
	an_host_addrs(w.r, addrs, 1);
	snprintf(listen, sizeof(listen), "%s", addrs[0]);
	relay_stop(&w);
	CHECK_EQ_INT(relay_start(&w, listen), 0); /* same key, same port */
	CHECK(wait_reserved(&w, 2));
	CHECK(w.lost >= 1);
	CHECK_EQ_INT(an_rsv_active(w.rsv), 1);
	world_free(&w);
}

static void test_reservation_refreshed_before_expiry(void)
{
	struct world w;
	CHECK_EQ_INT(world_new_ttl(&w, true, 2), 0); /* 2 s slots: refreshed every second */
	CHECK(wait_reserved(&w, 1));
	CHECK(wait_count(&w, &w.refreshed, 3, 100)); /* past the first slot's expiry, still held */
	CHECK_EQ_INT(w.reserved, 1);
	CHECK_EQ_INT(an_rsv_active(w.rsv), 1);
	world_free(&w);
}

static void test_add_rejects_address_without_relay_id(void)
{
	struct world w;
	CHECK_EQ_INT(world_new(&w, false), 0);
	CHECK_EQ_INT(an_rsv_add(w.rsv, "/ip4/127.0.0.1/tcp/1"), AN_EMALFORMED);
	world_free(&w);
}

/* ---- dialing ---- */

static void test_dial_through_relay_and_ping(void)
{
	struct world w;
	struct rfx_dial d = {0};
	char a[600];
	CHECK_EQ_INT(world_new(&w, true), 0);
	CHECK(wait_reserved(&w, 1));
	circuit_addr(&w, an_host_peer_id(w.a), a, sizeof(a));
	CHECK_EQ_INT(an_relay_dial(w.b, a, 5000, rfx_dial_cb, &d), 0);
	CHECK(!d.done); /* never from inside the call */
	CHECK(fx_run_until(w.loop, &d.done, 6));
	CHECK_EQ_INT(d.err, 0);
	CHECK(d.conn != NULL);
	if (d.conn) {
		CHECK(an_host_conn_relayed(d.conn));
		CHECK(an_peerid_equal(an_host_conn_peer(d.conn), an_host_peer_id(w.a)));
		CHECK(strstr(an_host_conn_remote_addr(d.conn), "/p2p-circuit") != NULL);
		CHECK_EQ_INT(an_ping_once(d.conn, 5000, rfx_ping_cb, &d), 0);
		CHECK(fx_run_until(w.loop, &d.pinged, 6));
		CHECK_EQ_INT(d.ping_err, 0);
	}
	world_free(&w);
}

static void test_dial_reuses_relayed_connection(void)
{
	struct world w;
	struct rfx_dial d1 = {0}, d2 = {0};
	char a[600];
	CHECK_EQ_INT(world_new(&w, true), 0);
	CHECK(wait_reserved(&w, 1));
	CHECK_EQ_INT(dial_circuit(&w, an_host_peer_id(w.a), &d1), 0);
	CHECK(d1.done);
	circuit_addr(&w, an_host_peer_id(w.a), a, sizeof(a));
	CHECK_EQ_INT(an_relay_dial(w.b, a, 5000, rfx_dial_cb, &d2), 0);
	CHECK(!d2.done);
	CHECK(fx_run_until(w.loop, &d2.done, 6));
	CHECK_EQ_INT(d2.err, 0);
	CHECK(d1.conn != NULL && d1.conn == d2.conn);
	world_free(&w);
}

static void test_dial_peer_without_reservation_refused(void)
{
	struct world w;
	struct rfx_dial d = {0};
	struct an_peerid x;
	CHECK_EQ_INT(world_new(&w, true), 0);
	CHECK(wait_reserved(&w, 1));
	key_peerid(kx, &x);
	CHECK_EQ_INT(dial_circuit(&w, &x, &d), 0);
	CHECK(d.done);
	CHECK_EQ_INT(d.err, -ECONNREFUSED);
	CHECK(d.conn == NULL);
	world_free(&w);
}

static void test_dial_relay_down_fails(void)
{
	struct world w;
	struct rfx_dial d = {0};
	char a[600];
	CHECK_EQ_INT(world_new(&w, false), 0);
	circuit_addr(&w, an_host_peer_id(w.a), a, sizeof(a));
	relay_stop(&w);
	CHECK_EQ_INT(an_relay_dial(w.b, a, 2000, rfx_dial_cb, &d), 0);
	CHECK(fx_run_until(w.loop, &d.done, 4));
	CHECK(d.err < 0);
	CHECK(d.conn == NULL);
	world_free(&w);
}

static void test_dial_plain_address_goes_direct(void)
{
	struct world w;
	struct rfx_dial d = {0};
	CHECK_EQ_INT(world_new(&w, false), 0);
	CHECK_EQ_INT(an_relay_dial(w.b, w.relay_addr, 5000, rfx_dial_cb, &d), 0);
	CHECK(fx_run_until(w.loop, &d.done, 6));
	CHECK_EQ_INT(d.err, 0);
	CHECK(d.conn && !an_host_conn_relayed(d.conn));
	world_free(&w);
}

static void test_dial_malformed_circuit_address(void)
{
	struct world w;
	struct rfx_dial d = {0};
	char a[600];
	CHECK_EQ_INT(world_new(&w, false), 0);
	snprintf(a, sizeof(a), "%s/p2p-circuit", w.relay_addr);
	CHECK_EQ_INT(an_relay_dial(w.b, a, 5000, rfx_dial_cb, &d), AN_EMALFORMED);
	world_free(&w);
}

/* ---- what runs over a relayed connection ---- */

struct idres {
	bool done;
	int err;
	size_t observed_len;
};

static void id_cb(void *arg, int err, const struct an_identify *m)
{
	struct idres *r = arg;
	r->done = true;
	r->err = err;
	r->observed_len = err == 0 ? m->observed_addr.len : 0;
}

/* Relayed, A sees only the relay: it sends no observedAddr (a direct peer gets one). */
static void test_identify_over_circuit_has_no_observed_addr(void)
{
	struct world w;
	struct rfx_dial d = {0}, dr = {0};
	struct idres relayed = {0}, direct = {0};
	CHECK_EQ_INT(world_new(&w, true), 0);
	an_identify_service_register(w.a);
	an_identify_service_register(w.r);
	CHECK(wait_reserved(&w, 1));
	CHECK_EQ_INT(dial_circuit(&w, an_host_peer_id(w.a), &d), 0);
	CHECK(d.done);
	CHECK_EQ_INT(an_relay_dial(w.b, w.relay_addr, 5000, rfx_dial_cb, &dr), 0);
	CHECK(fx_run_until(w.loop, &dr.done, 6));
	if (d.conn && dr.conn) {
		CHECK_EQ_INT(an_identify_request(d.conn, 5000, id_cb, &relayed), 0);
		CHECK_EQ_INT(an_identify_request(dr.conn, 5000, id_cb, &direct), 0);
		CHECK(fx_run_until(w.loop, &relayed.done, 6));
		CHECK(fx_run_until(w.loop, &direct.done, 6));
		CHECK_EQ_INT(relayed.err, 0);
		CHECK_EQ_INT((int)relayed.observed_len, 0);
		CHECK(direct.observed_len > 0);
	}
	world_free(&w);
}

struct kadstream {
	bool closed;
	int err;
};

static void ks_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct kadstream *k = arg;
	k->closed = true;
	k->err = err;
}

static const struct an_stream_handler ks_handler = {.on_close = ks_close};

/* A DHT server does not take kad streams over a relayed connection. */
static void test_kad_stream_over_circuit_reset(void)
{
	struct world w;
	struct rfx_dial d = {0};
	struct kadstream k = {0};
	struct an_kad_node *kad = NULL;
	struct an_kad_node_config kc = {0};
	char dir[] = "/tmp/test_relay_dial.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ_INT(world_new(&w, true), 0);
	kc.state_dir = dir;
	CHECK_EQ_INT(an_kad_node_new(w.a, &kc, &kad), 0);
	CHECK(wait_reserved(&w, 1));
	CHECK_EQ_INT(dial_circuit(&w, an_host_peer_id(w.a), &d), 0);
	CHECK(d.done);
	if (d.conn) {
		CHECK_EQ_INT(an_host_stream_open(d.conn, an_kad_node_protocol(kad), &ks_handler, &k, NULL), 0);
		CHECK(fx_run_until(w.loop, &k.closed, 3)); /* well before kad's 10 s idle limit */
		CHECK(k.err != 0);
	}
	an_kad_node_free(kad);
	world_free(&w);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	an_privkey_generate(&kr);
	an_privkey_generate(&ka);
	an_privkey_generate(&kb);
	an_privkey_generate(&kx);
	RUN(test_split_circuit_address);
	RUN(test_split_rejects_incomplete_circuits);
	RUN(test_reservation_gives_circuit_addresses);
	RUN(test_reservation_retried_when_relay_down);
	RUN(test_reservation_renewed_after_relay_restart);
	RUN(test_reservation_refreshed_before_expiry);
	RUN(test_add_rejects_address_without_relay_id);
	RUN(test_dial_through_relay_and_ping);
	RUN(test_dial_reuses_relayed_connection);
	RUN(test_dial_peer_without_reservation_refused);
	RUN(test_dial_relay_down_fails);
	RUN(test_dial_plain_address_goes_direct);
	RUN(test_dial_malformed_circuit_address);
	RUN(test_identify_over_circuit_has_no_observed_addr);
	RUN(test_kad_stream_over_circuit_reset);
	an_privkey_free(kr);
	an_privkey_free(ka);
	an_privkey_free(kb);
	an_privkey_free(kx);
	return check_done();
}
