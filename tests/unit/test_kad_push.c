/*
 * test_kad_push.c - identify push and the kad routing table.
 *
 * Host A runs a kad node; host B connects without serving kad (a DHT
 * client), then starts serving it (server mode: its identify push lists
 * the protocol) and stops again (client mode: the push drops it).  A's
 * table must follow: B joins on the first push and leaves on the second,
 * as js-libp2p's registrar/topology does.  One loop, bounded waits.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/kad_node.h"
#include "transport/host.h"
#include "transport/identify.h"

#include <ev.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static struct an_privkey *ka, *kb;

struct net {
	struct ev_loop *loop;
	struct an_host *a, *b;
	struct an_kad_node *node;
	struct an_host_conn *conn; /* B's, referenced */
	bool dialed;
	char dir[64];
};

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct net *t = arg;
	t->dialed = true;
	if (err == 0) {
		an_host_conn_ref(c);
		t->conn = c;
	}
}

static void kad_open(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_reset(s);
}

static const struct an_stream_handler kad_stub = {.on_open = kad_open};

/* Run the loop until B's presence in A's table is `want`, at most ms. */
static bool wait_in_table(struct net *t, bool want, int ms)
{
	for (int i = 0; i < ms; i++) {
		if ((an_rt_find(an_kad_node_rt(t->node), an_host_peer_id(t->b)) != NULL) == want)
			return true;
		ev_run(t->loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	return false;
}

static void run_for(struct net *t, int ms)
{
	for (int i = 0; i < ms; i++) {
		ev_run(t->loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* A (kad node) and B (identify only, listening) connected; 0 or -1. */
static int net_new(struct net *t)
{
	struct an_host_config ca = {.key = ka}, cb = {.key = kb};
	struct an_kad_node_config kc = {0};
	const char *addrs[1];
	char text[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8], id[AN_PEERID_TEXT_MAX];
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_kad_push.XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	t->loop = ev_loop_new(0);
	if (an_host_new(t->loop, &ca, &t->a) < 0 || an_host_new(t->loop, &cb, &t->b) < 0 ||
	    an_identify_service_register(t->a) < 0 || an_identify_service_register(t->b) < 0 ||
	    an_host_listen(t->a, "/ip4/127.0.0.1/tcp/0") < 0 ||
	    an_host_listen(t->b, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	kc.state_dir = t->dir;
	if (an_kad_node_new(t->a, &kc, &t->node) < 0 || an_host_addrs(t->a, addrs, 1) != 1)
		return -1;
	an_peerid_format(an_host_peer_id(t->a), id, sizeof(id));
	snprintf(text, sizeof(text), "%s/p2p/%s", addrs[0], id);
	if (an_host_dial(t->b, text, 5000, dial_cb, t) < 0)
		return -1;
	for (int i = 0; i < 5000 && !t->dialed; i++) {
		ev_run(t->loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	/* A's identify of B (no kad yet) is over well before this */
	run_for(t, 300);
	return t->conn ? 0 : -1;
}

static void net_free(struct net *t)
{
	char cmd[128];
	if (t->conn)
		an_host_conn_unref(t->conn);
	an_kad_node_free(t->node);
	an_host_free(t->a);
	an_host_free(t->b);
	if (t->loop)
		ev_loop_destroy(t->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", t->dir);
}

static void test_client_peer_stays_out_of_the_table(void)
{
	struct net t;
	CHECK_EQ_INT(net_new(&t), 0);
	if (t.node) {
		CHECK_EQ_INT(an_kad_node_rt(t.node)->size, 0);
		CHECK(an_rt_find(an_kad_node_rt(t.node), an_host_peer_id(t.b)) == NULL);
	}
	net_free(&t);
}

static void test_push_gaining_kad_adds_the_peer(void)
{
	struct net t;
	CHECK_EQ_INT(net_new(&t), 0);
	if (t.node) {
		CHECK(wait_in_table(&t, false, 10));
		/* server mode: B serves kad, its push lists the protocol */
		CHECK_EQ_INT(an_host_handle(t.b, AN_KAD_PROTOCOL_DEFAULT, &kad_stub, NULL), 0);
		CHECK(wait_in_table(&t, true, 3000));
	}
	net_free(&t);
}

static void test_push_dropping_kad_removes_the_peer(void)
{
	struct net t;
	CHECK_EQ_INT(net_new(&t), 0);
	if (t.node) {
		CHECK_EQ_INT(an_host_handle(t.b, AN_KAD_PROTOCOL_DEFAULT, &kad_stub, NULL), 0);
		CHECK(wait_in_table(&t, true, 3000));
		/* client mode again: the push no longer lists it */
		an_host_unhandle(t.b, AN_KAD_PROTOCOL_DEFAULT);
		CHECK(wait_in_table(&t, false, 3000));
	}
	net_free(&t);
}

static void test_push_of_another_protocol_changes_nothing(void)
{
	struct net t;
	CHECK_EQ_INT(net_new(&t), 0);
	if (t.node) {
		CHECK_EQ_INT(an_host_handle(t.b, "/other/1.0.0", &kad_stub, NULL), 0);
		run_for(&t, 300);
		CHECK(an_rt_find(an_kad_node_rt(t.node), an_host_peer_id(t.b)) == NULL);
	}
	net_free(&t);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0)
		return 1;
	RUN(test_client_peer_stays_out_of_the_table);
	RUN(test_push_gaining_kad_adds_the_peer);
	RUN(test_push_dropping_kad_removes_the_peer);
	RUN(test_push_of_another_protocol_changes_nothing);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
