/*
 * test_kad_teardown.c - the kad service when peers vanish mid-exchange.
 *
 * The scale test's crash (a daemon that was not killed died while 30% of
 * the network was SIGKILLed) came from a send failing inside a handler:
 * kad answered two requests that arrived in one read, the peer was gone,
 * the second answer's send failed and the host destroyed the connection -
 * running the stream's on_close, which freed kad's inbound state - while
 * kad's on_data was still on the stack and went on using it.
 *
 * Here host A runs a kad node and host B, in a loop of its own, sends two
 * FIND_NODE requests in one write and disappears at once (its host freed,
 * its socket closed), so A's first answer draws a RST and the second send
 * fails.  Under ASan (the san suite) a use after free aborts the test;
 * everywhere the connection must end and the node stay usable.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/kad_msg.h"
#include "dht/kad_node.h"
#include "encoding/protobuf.h"
#include "transport/host.h"
#include "util/buf.h"
#include "util/error.h"

#include <ev.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static struct an_privkey *ka, *kb;

struct side_b {
	struct an_host_conn *conn;
	int dial_err;
	bool dialed, sent, closed;
	int requests;
};

static void b_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct side_b *b = arg;
	b->dialed = true;
	b->dial_err = err;
	if (err == 0) {
		an_host_conn_ref(c);
		b->conn = c;
	}
}

/* requests FIND_NODE, LP-framed, back to back into out */
static int find_node_requests(int count, struct an_buf *out)
{
	for (int i = 0; i < count; i++) {
		struct an_kad_msg m;
		struct an_buf body;
		uint8_t key[32];
		int rc;
		memset(key, 'k' + i, sizeof(key));
		an_kad_msg_init(&m);
		m.type = AN_KAD_FIND_NODE;
		m.has_key = true;
		m.key.p = key;
		m.key.len = sizeof(key);
		an_buf_init(&body, 4096);
		rc = an_kad_msg_encode(&m, &body);
		if (rc == 0)
			rc = an_lp_put(out, body.data, body.len);
		an_buf_free(&body);
		an_kad_msg_free(&m);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void b_open(struct an_stream *s, void *arg)
{
	struct side_b *b = arg;
	struct an_buf reqs;
	an_buf_init(&reqs, 1 << 16);
	if (find_node_requests(b->requests, &reqs) == 0 && an_stream_write(s, reqs.data, reqs.len) == 0)
		b->sent = true;
	an_buf_free(&reqs);
}

static void b_close(struct an_stream *s, int err, void *arg)
{
	(void)s; (void)err;
	struct side_b *b = arg;
	b->closed = true;
}

static const struct an_stream_handler b_handler = {
	.on_open = b_open,
	.on_close = b_close,
};

/* Run both loops (without blocking) until *flag or about ms milliseconds. */
static void pump_until(struct ev_loop *la, struct ev_loop *lb, const bool *flag, int ms)
{
	for (int i = 0; i < ms && !*flag; i++) {
		ev_run(la, EVRUN_NOWAIT);
		if (lb)
			ev_run(lb, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* A's kad node answers `requests` requests from a B that is gone. */
static void vanish_after(int requests)
{
	char dir[] = "/tmp/test_kad_teardown.XXXXXX";
	struct ev_loop *la = ev_loop_new(0), *lb = ev_loop_new(0);
	struct an_host_config ca = {.key = ka}, cb = {.key = kb};
	struct an_host *a = NULL, *hb = NULL;
	struct an_kad_node *node = NULL;
	struct an_kad_node_config kc = {0};
	struct side_b b = {.requests = requests};
	const char *addrs[1];
	char text[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8], id[AN_PEERID_TEXT_MAX];
	bool gone = false;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ_INT(an_host_new(la, &ca, &a), 0);
	CHECK_EQ_INT(an_host_new(lb, &cb, &hb), 0);
	if (!a || !hb)
		goto out;
	CHECK_EQ_INT(an_host_listen(a, "/ip4/127.0.0.1/tcp/0"), 0);
	kc.state_dir = dir;
	CHECK_EQ_INT(an_kad_node_new(a, &kc, &node), 0);
	if (!node || an_host_addrs(a, addrs, 1) != 1)
		goto out;
	an_peerid_format(an_host_peer_id(a), id, sizeof(id));
	snprintf(text, sizeof(text), "%s/p2p/%s", addrs[0], id);
	CHECK_EQ_INT(an_host_dial(hb, text, 5000, b_dial_cb, &b), 0);
	pump_until(la, lb, &b.dialed, 5000);
	CHECK_EQ_INT(b.dial_err, 0);
	if (!b.conn)
		goto out;
	CHECK_EQ_INT(an_host_stream_open(b.conn, AN_KAD_PROTOCOL_DEFAULT, &b_handler, &b, NULL), 0);
	pump_until(la, lb, &b.sent, 5000);
	CHECK(b.sent);
	/* B vanishes with its requests in A's socket, unread */
	an_host_conn_unref(b.conn);
	b.conn = NULL;
	an_host_free(hb);
	hb = NULL;
	/* A reads them, answers, finds the peer gone: the connection must end */
	for (int i = 0; i < 5000 && !gone; i++) {
		ev_run(la, EVRUN_NOWAIT);
		gone = an_host_conn_count(a) == 0;
		usleep(1000);
	}
	CHECK(gone);
	/* and the node is still whole: its table and store answer */
	CHECK_EQ_INT(an_kad_node_rt(node)->size, 0);
	CHECK(an_kad_node_store(node) != NULL);
out:
	an_kad_node_free(node);
	an_host_free(a);
	an_host_free(hb);
	ev_loop_destroy(la);
	ev_loop_destroy(lb);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK_EQ_INT(system(cmd), 0);
	}
}

static void test_kad_answers_two_requests_to_a_vanished_peer(void)
{
	vanish_after(2);
}

static void test_kad_answers_many_requests_to_a_vanished_peer(void)
{
	vanish_after(16);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0)
		return 1;
	RUN(test_kad_answers_two_requests_to_a_vanished_peer);
	RUN(test_kad_answers_many_requests_to_a_vanished_peer);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
