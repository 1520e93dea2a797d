/*
 * test_host_dial.c - what issue 12 needs from the host: more than one
 * connection observer, a dial that never reuses a connection
 * (AN_HOST_DIAL_FRESH), and a dial to /p2p/PEER that never reuses a
 * relayed one (AN_HOST_DIAL_DIRECT).
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "relay/relay_dial.h"
#include "relay/relay_server.h"
#include "relay/reservation.h"
#include "transport/host.h"
#include "transport/ping.h"
#include "util/error.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"
#include "relay_fixtures.h"

static struct an_privkey *kr, *ka, *kb;

/* r: a relay; a: listens, reserves on r; b: dials. */
struct world {
	struct ev_loop *loop;
	struct an_host *r, *a, *b;
	struct an_relay_server *relay;
	struct an_rsv *rsv;
	char relay_addr[512], a_addr[512];
	int reserved;
};

static void rsv_report(void *arg, const struct an_rsv_report *rep)
{
	struct world *w = arg;
	if (rep->event == AN_RSV_RESERVED)
		w->reserved++;
}

static int world_new(struct world *w, bool relay)
{
	struct an_host_config cr = {.key = kr}, ca = {.key = ka}, cb = {.key = kb};
	memset(w, 0, sizeof(*w));
	w->loop = ev_loop_new(0);
	if (an_host_new(w->loop, &ca, &w->a) < 0 || an_host_new(w->loop, &cb, &w->b) < 0 ||
	    an_host_listen(w->a, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	an_ping_service_register(w->a);
	rfx_host_addr(w->a, w->a_addr, sizeof(w->a_addr));
	if (!relay)
		return 0;
	struct an_relay_config rc;
	struct an_rsv_config sc = {.timeout_ms = 3000, .retry_min_ms = 100, .retry_max_ms = 400,
				   .check_ms = 100, .report = rsv_report, .arg = w};
	an_relay_config_init(&rc);
	if (an_host_new(w->loop, &cr, &w->r) < 0 || an_host_listen(w->r, "/ip4/127.0.0.1/tcp/0") < 0 ||
	    an_relay_server_new(w->r, &rc, &w->relay) < 0)
		return -1;
	rfx_host_addr(w->r, w->relay_addr, sizeof(w->relay_addr));
	if (an_rsv_new(w->a, &sc, &w->rsv) < 0 || an_rsv_add(w->rsv, w->relay_addr) < 0)
		return -1;
	for (int i = 0; i < 60 && !w->reserved; i++) {
		bool never = false;
		fx_run_until(w->loop, &never, 0.05);
	}
	return w->reserved ? 0 : -1;
}

static void world_free(struct world *w)
{
	an_rsv_free(w->rsv);
	an_relay_server_free(w->relay);
	an_host_free(w->r);
	an_host_free(w->a);
	an_host_free(w->b);
	ev_loop_destroy(w->loop);
}

static int dial(struct world *w, const char *addr, unsigned flags, struct rfx_dial *d)
{
	memset(d, 0, sizeof(*d));
	int rc = an_host_dial_ex(w->b, addr, 5000, flags, rfx_dial_cb, d);
	if (rc == 0 && !fx_run_until(w->loop, &d->done, 6))
		return -ETIMEDOUT;
	return rc ? rc : d->err;
}

/* ---- observers ---- */

struct seen {
	int calls;
	struct world *w;
	void *remove_fn_arg; /* an observer to remove from inside the call */
};

static void observe(struct an_host_conn *c, void *arg)
{
	(void)c;
	struct seen *s = arg;
	s->calls++;
	if (s->remove_fn_arg)
		an_host_remove_conn_observer(s->w->a, observe, s->remove_fn_arg);
}

static void test_observers_all_called(void)
{
	struct world w;
	struct rfx_dial d;
	struct seen legacy = {0}, one = {0}, two = {0}, gone = {0};
	CHECK_EQ_INT(world_new(&w, false), 0);
	an_host_on_connection(w.a, observe, &legacy);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &one), 0);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &one), 0); /* the same: one */
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &two), 0);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &gone), 0);
	an_host_remove_conn_observer(w.a, observe, &gone);
	CHECK_EQ_INT(dial(&w, w.a_addr, 0, &d), 0);
	bool never = false;
	fx_run_until(w.loop, &never, 0.2);
	CHECK_EQ_INT(legacy.calls, 1);
	CHECK_EQ_INT(one.calls, 1);
	CHECK_EQ_INT(two.calls, 1);
	CHECK_EQ_INT(gone.calls, 0);
	/* the old call still replaces and empties its one slot */
	an_host_on_connection(w.a, NULL, NULL);
	CHECK_EQ_INT(dial(&w, w.a_addr, AN_HOST_DIAL_FRESH, &d), 0);
	fx_run_until(w.loop, &never, 0.2);
	CHECK_EQ_INT(legacy.calls, 1);
	CHECK_EQ_INT(one.calls, 2);
	CHECK_EQ_INT(two.calls, 2);
	world_free(&w);
}

static void test_observer_removed_by_another_is_skipped(void)
{
	struct world w;
	struct rfx_dial d;
	struct seen first = {0}, second = {0};
	CHECK_EQ_INT(world_new(&w, false), 0);
	first.w = &w;
	first.remove_fn_arg = &second;
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &first), 0);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &second), 0);
	CHECK_EQ_INT(dial(&w, w.a_addr, 0, &d), 0);
	bool never = false;
	fx_run_until(w.loop, &never, 0.2);
	CHECK_EQ_INT(first.calls, 1);
	CHECK_EQ_INT(second.calls, 0);
	world_free(&w);
}

static void test_observers_capped(void)
{
	struct world w;
	struct seen s[AN_HOST_MAX_OBSERVERS + 1];
	CHECK_EQ_INT(world_new(&w, false), 0);
	for (int i = 0; i < AN_HOST_MAX_OBSERVERS; i++)
		CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &s[i]), 0);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, observe, &s[AN_HOST_MAX_OBSERVERS]), AN_ELIMIT);
	CHECK_EQ_INT(an_host_add_conn_observer(w.a, NULL, NULL), -EINVAL);
	world_free(&w);
}

/* ---- dials ---- */

static void test_dial_reuses_unless_fresh(void)
{
	struct world w;
	struct rfx_dial d1, d2, d3;
	CHECK_EQ_INT(world_new(&w, false), 0);
	CHECK_EQ_INT(dial(&w, w.a_addr, 0, &d1), 0);
	CHECK_EQ_INT(dial(&w, w.a_addr, 0, &d2), 0);
	CHECK(d1.conn && d1.conn == d2.conn);
	CHECK_EQ_INT(dial(&w, w.a_addr, AN_HOST_DIAL_FRESH, &d3), 0);
	CHECK(d3.conn && d3.conn != d1.conn);
	CHECK_EQ_INT(an_host_conn_count(w.b), 2);
	world_free(&w);
}

static void test_dial_bare_peer_id(void)
{
	struct world w;
	struct rfx_dial d1, d2;
	char bare[AN_PEERID_TEXT_MAX + 8], idt[AN_PEERID_TEXT_MAX];
	const char *addrs[1];
	CHECK_EQ_INT(world_new(&w, false), 0);
	an_peerid_format(an_host_peer_id(w.a), idt, sizeof(idt));
	snprintf(bare, sizeof(bare), "/p2p/%s", idt);
	CHECK_EQ_INT(an_host_dial_ex(w.b, bare, 5000, 0, rfx_dial_cb, &d1), AN_ENOTFOUND);
	an_host_addrs(w.a, addrs, 1);
	CHECK_EQ_INT(an_host_peer_add_addr(w.b, an_host_peer_id(w.a), addrs[0]), 0);
	CHECK_EQ_INT(dial(&w, bare, 0, &d1), 0); /* from the peer store */
	CHECK(d1.conn && an_peerid_equal(an_host_conn_peer(d1.conn), an_host_peer_id(w.a)));
	CHECK_EQ_INT(dial(&w, bare, 0, &d2), 0); /* its connection */
	CHECK(d2.conn == d1.conn);
	world_free(&w);
}

static void test_dial_direct_skips_relayed(void)
{
	struct world w;
	struct rfx_dial d, d2, d3;
	char circuit[700], idt[AN_PEERID_TEXT_MAX];
	CHECK_EQ_INT(world_new(&w, true), 0);
	an_peerid_format(an_host_peer_id(w.a), idt, sizeof(idt));
	snprintf(circuit, sizeof(circuit), "%s/p2p-circuit/p2p/%s", w.relay_addr, idt);
	memset(&d, 0, sizeof(d));
	CHECK_EQ_INT(an_relay_dial(w.b, circuit, 5000, rfx_dial_cb, &d), 0);
	CHECK(fx_run_until(w.loop, &d.done, 6));
	CHECK_EQ_INT(d.err, 0);
	CHECK(d.conn && an_host_conn_relayed(d.conn));
	/* without the flag the relayed connection is reused */
	CHECK_EQ_INT(dial(&w, w.a_addr, 0, &d2), 0);
	CHECK(d2.conn == d.conn);
	/* with it, a direct one is made */
	CHECK_EQ_INT(dial(&w, w.a_addr, AN_HOST_DIAL_DIRECT, &d3), 0);
	CHECK(d3.conn && d3.conn != d.conn && !an_host_conn_relayed(d3.conn));
	world_free(&w);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&kr) < 0 || an_privkey_generate(&ka) < 0 ||
	    an_privkey_generate(&kb) < 0)
		return 1;
	RUN(test_observers_all_called);
	RUN(test_observer_removed_by_another_is_skipped);
	RUN(test_observers_capped);
	RUN(test_dial_reuses_unless_fresh);
	RUN(test_dial_bare_peer_id);
	RUN(test_dial_direct_skips_relayed);
	an_privkey_free(kr);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
