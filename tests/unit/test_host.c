/*
 * test_host.c - the connection pipeline and the libev host.
 *
 * Two an_conn wired back to back in memory (no socket: the byte-stream
 * abstraction relay will use), explicit roles, junk at each layer, and two
 * hosts in one libev loop on 127.0.0.1 (dial, ping, identify, limits,
 * shutdown).
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "transport/conn.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/mss.h"
#include "transport/noise.h"
#include "transport/ping.h"
#include "transport/yamux.h"
#include "util/buf.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static struct an_privkey *ka, *kb;

/* ---- in memory ---- */

struct pair {
	struct an_conn *a, *b;
	bool ready_a, ready_b;
	int err_a, err_b;
	const char *reason_b;
};

/* Move bytes both ways and poll events until nothing moves (bounded). */
static void pump(struct pair *p)
{
	for (int i = 0; i < 200; i++) {
		bool moved = false;
		struct an_conn *from[2] = {p->a, p->b}, *to[2] = {p->b, p->a};
		for (int d = 0; d < 2; d++) {
			const uint8_t *out;
			size_t len, used;
			an_conn_flush(from[d], 0);
			an_conn_output(from[d], &out, &len);
			if (len) {
				an_conn_feed(to[d], out, len, &used, 0);
				an_conn_output_consume(from[d], used);
				moved |= used > 0;
			}
		}
		struct an_conn_event ev;
		while (an_conn_next_event(p->a, &ev)) {
			if (ev.type == AN_CONN_EV_READY)
				p->ready_a = true;
			if (ev.type == AN_CONN_EV_ERROR)
				p->err_a = ev.err;
		}
		while (an_conn_next_event(p->b, &ev)) {
			if (ev.type == AN_CONN_EV_READY)
				p->ready_b = true;
			if (ev.type == AN_CONN_EV_ERROR) {
				p->err_b = ev.err;
				p->reason_b = ev.reason;
			}
		}
		if (!moved)
			return;
	}
}

static int pair_new(struct pair *p, bool a_yamux_client, bool early_muxer)
{
	struct an_conn_config ca = {.key = ka, .initiator = true, .yamux_client = a_yamux_client,
				    .no_early_muxer = !early_muxer};
	struct an_conn_config cb = {.key = kb, .initiator = false, .yamux_client = !a_yamux_client,
				    .no_early_muxer = !early_muxer};
	memset(p, 0, sizeof(*p));
	if (an_conn_new(&ca, &p->a) < 0 || an_conn_new(&cb, &p->b) < 0)
		return -1;
	an_conn_start(p->a, 0);
	pump(p);
	return 0;
}

static void pair_free(struct pair *p)
{
	an_conn_free(p->a);
	an_conn_free(p->b);
}

static void test_conn_upgrades_in_memory(void)
{
	struct pair p;
	struct an_pubkey pk;
	struct an_peerid ida;
	CHECK_EQ_INT(pair_new(&p, true, true), 0);
	CHECK(p.ready_a && p.ready_b);
	an_privkey_public(ka, &pk);
	an_peerid_from_pubkey(&pk, &ida);
	CHECK(an_conn_peer(p.b) && an_peerid_equal(an_conn_peer(p.b), &ida));
	pair_free(&p);
}

static void test_conn_upgrades_with_multistream_muxer(void)
{
	struct pair p;
	CHECK_EQ_INT(pair_new(&p, true, false), 0); /* no early muxer: mss /yamux/1.0.0 */
	CHECK(p.ready_a && p.ready_b);
	pair_free(&p);
}

/* A stream from a to b carries bytes; ids follow the yamux role, not the dialer. */
static void check_stream(bool a_yamux_client)
{
	struct pair p;
	uint32_t id;
	size_t acc, got;
	uint8_t buf[16];
	CHECK_EQ_INT(pair_new(&p, a_yamux_client, true), 0);
	CHECK_EQ_INT(an_yamux_stream_open(an_conn_yamux(p.a), &id), 0);
	CHECK_EQ_INT(id % 2, a_yamux_client ? 1 : 0);
	CHECK_EQ_INT(an_conn_stream_write(p.a, id, (const uint8_t *)"hello", 5, &acc), 0);
	CHECK_EQ_INT(acc, 5);
	pump(&p);
	CHECK_EQ_INT(an_yamux_stream_read(an_conn_yamux(p.b), id, buf, sizeof(buf), &got, 0), 0);
	CHECK_EQ_INT(got, 5);
	CHECK_EQ_MEM(buf, "hello", 5);
	pair_free(&p);
}

static void test_conn_stream_dialer_is_yamux_client(void)
{
	check_stream(true);
}

static void test_conn_roles_set_apart_from_dialing(void)
{
	check_stream(false); /* the Noise initiator is the yamux server (DCUtR) */
}

static void test_conn_wrong_expected_peer(void)
{
	struct an_pubkey pk;
	struct an_peerid ida;
	an_privkey_public(ka, &pk);
	an_peerid_from_pubkey(&pk, &ida); /* a expects itself: b is someone else */
	struct an_conn_config ca = {.key = ka, .initiator = true, .yamux_client = true, .expected = &ida};
	struct an_conn_config cb = {.key = kb};
	struct pair p;
	memset(&p, 0, sizeof(p));
	an_conn_new(&ca, &p.a);
	an_conn_new(&cb, &p.b);
	an_conn_start(p.a, 0);
	pump(&p);
	CHECK_EQ_INT(p.err_a, AN_EMISMATCH);
	CHECK(!p.ready_a);
	pair_free(&p);
}

/* Feed raw junk to a responder; it must fail with a reason, not crash. */
static int junk_into_responder(const uint8_t *junk, size_t len, const char **reason)
{
	static char saved[160];
	struct an_conn_config cb = {.key = kb};
	struct an_conn *b;
	struct an_conn_event ev;
	size_t used;
	int err = 0;
	an_conn_new(&cb, &b);
	an_conn_feed(b, junk, len, &used, 0);
	while (an_conn_next_event(b, &ev))
		if (ev.type == AN_CONN_EV_ERROR) {
			err = ev.err;
			snprintf(saved, sizeof(saved), "%s", ev.reason);
		}
	*reason = saved;
	an_conn_free(b);
	return err;
}

static void test_conn_junk_multistream(void)
{
	const char *why;
	/* a whole message without its '\n' terminator */
	const uint8_t no_newline[] = {0x05, 'h', 'e', 'l', 'l', 'o'};
	const uint8_t oversized[] = {0x80, 0x7d, 'A', 'A'};
	CHECK(junk_into_responder(no_newline, sizeof(no_newline), &why) < 0);
	CHECK(strncmp(why, "multistream", 11) == 0);
	CHECK(junk_into_responder(oversized, sizeof(oversized), &why) < 0);
}

static void test_conn_junk_noise(void)
{
	struct an_buf b;
	const char *why;
	const char *protos[] = {AN_NOISE_PROTOCOL};
	struct an_mss m;
	an_buf_init(&b, 4096);
	an_mss_dialer_init(&m, protos, 1);
	an_mss_start(&m, &b);
	const uint8_t bad_msg1[] = {0x00, 0x05, 1, 2, 3, 4, 5}; /* msg 1 must be 32 bytes */
	an_buf_append(&b, bad_msg1, sizeof(bad_msg1));
	CHECK(junk_into_responder(b.data, b.len, &why) < 0);
	CHECK(strncmp(why, "noise", 5) == 0);
	an_buf_free(&b);
}

/*
 * A hand-driven initiator (mss + Noise, no muxer mss thanks to the early
 * negotiation) that then sends yamux junk through the encrypted channel.
 */
static int junk_yamux(const uint8_t *frame, size_t len, const char **reason)
{
	static char saved[160];
	const char *protos[] = {AN_NOISE_PROTOCOL};
	struct an_conn_config cb = {.key = kb};
	struct an_noise_config nc;
	struct an_conn *b;
	struct an_noise *n;
	struct an_mss m;
	struct an_buf out, in, plain;
	struct an_conn_event ev;
	int err = 0;
	an_buf_init(&out, 1 << 20);
	an_buf_init(&in, 1 << 20);
	an_buf_init(&plain, 1 << 20);
	an_conn_new(&cb, &b);
	an_noise_config_init(&nc);
	nc.identity = ka;
	an_noise_new(&nc, &n);
	an_mss_dialer_init(&m, protos, 1);
	an_mss_start(&m, &out);
	bool mss_done = false, noise_done = false;
	for (int i = 0; i < 20 && !noise_done; i++) {
		size_t used;
		an_conn_feed(b, out.data, out.len, &used, 0);
		an_buf_consume(&out, used);
		const uint8_t *p;
		size_t plen;
		an_conn_output(b, &p, &plen);
		an_buf_append(&in, p, plen);
		an_conn_output_consume(b, plen);
		if (!mss_done) {
			if (an_mss_recv(&m, in.data, in.len, &used, &out) == 1) {
				mss_done = true;
				an_noise_start(n, &out);
			}
			an_buf_consume(&in, used);
		} else if (in.len) {
			int rc = an_noise_recv(n, in.data, in.len, &used, &out);
			an_buf_consume(&in, used);
			noise_done = rc == 1;
		}
	}
	an_noise_encrypt(n, frame, len, &out);
	size_t used;
	an_conn_feed(b, out.data, out.len, &used, 0);
	while (an_conn_next_event(b, &ev))
		if (ev.type == AN_CONN_EV_ERROR) {
			err = ev.err;
			snprintf(saved, sizeof(saved), "%s", ev.reason);
		}
	*reason = saved;
	/* the GoAway the responder sends on a protocol error decrypts fine */
	const uint8_t *p;
	size_t plen;
	an_conn_output(b, &p, &plen);
	an_buf_reset(&plain);
	if (plen)
		an_noise_decrypt(n, p, plen, &used, &plain);
	if (err && plain.len >= AN_YAMUX_HEADER_SIZE) {
		struct an_yamux_header h;
		an_yamux_header_decode(plain.data + plain.len - AN_YAMUX_HEADER_SIZE, &h);
		if (h.type != AN_YAMUX_TYPE_GO_AWAY)
			err = -1000; /* not what we expect */
	}
	an_noise_free(n);
	an_conn_free(b);
	an_buf_free(&out);
	an_buf_free(&in);
	an_buf_free(&plain);
	return err;
}

static void test_conn_junk_yamux_bad_version(void)
{
	uint8_t f[AN_YAMUX_HEADER_SIZE];
	const char *why;
	an_yamux_header_encode(f, AN_YAMUX_TYPE_PING, AN_YAMUX_FLAG_SYN, 0, 1);
	f[0] = 7;
	CHECK_EQ_INT(junk_yamux(f, sizeof(f), &why), AN_EPROTO);
	CHECK(strncmp(why, "yamux", 5) == 0);
}

static void test_conn_junk_yamux_oversized_data(void)
{
	uint8_t f[AN_YAMUX_HEADER_SIZE];
	const char *why;
	/* a data frame announcing 2 MiB: over the 1 MiB frame cap and the window */
	an_yamux_header_encode(f, AN_YAMUX_TYPE_DATA, AN_YAMUX_FLAG_SYN, 1, 2u << 20);
	CHECK(junk_yamux(f, sizeof(f), &why) < 0);
	CHECK(strncmp(why, "yamux", 5) == 0);
}

static void test_conn_junk_yamux_wrong_parity(void)
{
	uint8_t f[AN_YAMUX_HEADER_SIZE];
	const char *why;
	/* the initiator is the yamux client: odd ids; 2 is the responder's */
	an_yamux_header_encode(f, AN_YAMUX_TYPE_WINDOW_UPDATE, AN_YAMUX_FLAG_SYN, 2, 0);
	CHECK_EQ_INT(junk_yamux(f, sizeof(f), &why), AN_EPROTO);
}

/* ---- hosts on loopback ---- */

struct run {
	struct ev_loop *loop;
	struct an_host *a, *b;
	int dial_err, ping_err, id_err;
	bool pinged, identified;
	char id_agent[64];
	size_t id_protocols;
	ev_timer deadline;
};

static void id_cb(void *arg, int err, const struct an_identify *m)
{
	struct run *r = arg;
	r->id_err = err;
	r->identified = true;
	if (m) {
		snprintf(r->id_agent, sizeof(r->id_agent), "%s", m->agent_version ? m->agent_version : "");
		r->id_protocols = m->n_protocols;
	}
	an_host_shutdown(r->b, 1000);
	an_host_shutdown(r->a, 1000);
}

static void ping_cb(void *arg, int err, uint64_t rtt)
{
	(void)rtt;
	struct run *r = arg;
	r->ping_err = err;
	r->pinged = true;
}

static struct an_host_conn *dialed;

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct run *r = arg;
	r->dial_err = err;
	if (err < 0) {
		ev_break(r->loop, EVBREAK_ALL);
		return;
	}
	dialed = c;
	an_ping_once(c, 5000, ping_cb, r);
	an_identify_request(c, 5000, id_cb, r);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents; (void)w;
	ev_break(loop, EVBREAK_ALL);
}

static int two_hosts(struct run *r, const struct an_host_limits *la)
{
	struct an_host_config ca = {.key = ka, .agent_version = "host-a"};
	struct an_host_config cb = {.key = kb, .agent_version = "host-b"};
	memset(r, 0, sizeof(*r));
	if (la)
		ca.limits = *la;
	r->loop = ev_loop_new(0);
	if (an_host_new(r->loop, &ca, &r->a) < 0 || an_host_new(r->loop, &cb, &r->b) < 0)
		return -1;
	an_ping_service_register(r->a);
	an_identify_service_register(r->a);
	an_ping_service_register(r->b);
	ev_timer_init(&r->deadline, deadline_cb, 10, 0);
	ev_timer_start(r->loop, &r->deadline);
	return an_host_listen(r->a, "/ip4/127.0.0.1/tcp/0");
}

static void two_hosts_free(struct run *r)
{
	an_host_free(r->a);
	an_host_free(r->b);
	ev_loop_destroy(r->loop);
}

static void a_addr(struct run *r, char *out, size_t cap)
{
	const char *addrs[1];
	char id[AN_PEERID_TEXT_MAX];
	an_host_addrs(r->a, addrs, 1);
	an_peerid_format(an_host_peer_id(r->a), id, sizeof(id));
	snprintf(out, cap, "%s/p2p/%s", addrs[0], id);
}

static void test_host_dial_ping_identify(void)
{
	struct run r;
	char addr[512];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	a_addr(&r, addr, sizeof(addr));
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(r.dial_err, 0);
	CHECK(r.pinged);
	CHECK_EQ_INT(r.ping_err, 0);
	CHECK(r.identified);
	CHECK_EQ_INT(r.id_err, 0);
	CHECK_EQ_STR(r.id_agent, "host-a");
	CHECK_EQ_INT(r.id_protocols, 3); /* ping, id, id/push */
	CHECK(ev_is_active(&r.deadline)); /* the shutdown ended the loop, not the deadline */
	two_hosts_free(&r);
}

static int noproto_err = 1;

static void noproto_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct run *r = arg;
	noproto_err = err;
	an_host_shutdown(r->b, 500);
	an_host_shutdown(r->a, 500);
}

static const struct an_stream_handler noproto_handler = {.on_close = noproto_close};

static void noproto_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	if (err < 0 || an_host_stream_open(c, "/not/served/1.0.0", &noproto_handler, arg, NULL) < 0)
		ev_break(((struct run *)arg)->loop, EVBREAK_ALL);
}

static void test_host_stream_unsupported_protocol(void)
{
	struct run r;
	char addr[512];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	a_addr(&r, addr, sizeof(addr));
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, noproto_dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(noproto_err, AN_ENOPROTO);
	two_hosts_free(&r);
}

/* Data written and FIN asked for while the stream still negotiates. */
static size_t early_got;
static bool early_eof_after_data;

static void early_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s; (void)p; (void)arg;
	early_got += n;
}

static void early_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	early_eof_after_data = early_got == 5;
	an_stream_close_write(s);
}

static void early_close(struct an_stream *s, int err, void *arg)
{
	(void)s; (void)err;
	struct run *r = arg;
	an_host_shutdown(r->b, 500);
	an_host_shutdown(r->a, 500);
}

static const struct an_stream_handler early_server = {
	.on_data = early_data, .on_eof = early_eof, .on_close = early_close};
static const struct an_stream_handler early_client = {.on_close = NULL};

static void early_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct an_stream *s = NULL;
	if (err < 0 || an_host_stream_open(c, "/early/1.0.0", &early_client, arg, &s) < 0 || !s) {
		ev_break(((struct run *)arg)->loop, EVBREAK_ALL);
		return;
	}
	/* Both before the peer has agreed to the protocol. */
	an_stream_write(s, (const uint8_t *)"hello", 5);
	an_stream_close_write(s);
}

static void test_host_fin_during_negotiation_follows_the_data(void)
{
	struct run r;
	char addr[512];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_handle(r.a, "/early/1.0.0", &early_server, &r), 0);
	a_addr(&r, addr, sizeof(addr));
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, early_dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT((int)early_got, 5);
	CHECK(early_eof_after_data);
	two_hosts_free(&r);
}

/* an_host_unhandle compacts the registry: an open inbound stream keeps the
   handler it was opened with, not whatever moved into its slot. */
static int one_calls, two_calls;

static void unhandled_shutdown(struct run *r)
{
	an_host_shutdown(r->b, 500);
	an_host_shutdown(r->a, 500);
}

static void one_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)p; (void)n;
	struct run *r = arg;
	one_calls++;
	an_host_unhandle(r->a, "/one/1.0.0"); /* "/two/1.0.0" moves into its slot */
	an_stream_close_write(s);
}

static void one_close(struct an_stream *s, int err, void *arg)
{
	(void)s; (void)err;
	one_calls++;
	unhandled_shutdown(arg);
}

static void two_close(struct an_stream *s, int err, void *arg)
{
	(void)s; (void)err;
	two_calls++;
	unhandled_shutdown(arg);
}

static const struct an_stream_handler one_server = {.on_data = one_data, .on_close = one_close};
static const struct an_stream_handler two_server = {.on_close = two_close};

static void one_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct an_stream *s = NULL;
	if (err < 0 || an_host_stream_open(c, "/one/1.0.0", &early_client, arg, &s) < 0 || !s) {
		ev_break(((struct run *)arg)->loop, EVBREAK_ALL);
		return;
	}
	an_stream_write(s, (const uint8_t *)"x", 1);
	an_stream_close_write(s);
}

static void test_host_unhandle_keeps_open_streams_handler(void)
{
	struct run r;
	char addr[512];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_handle(r.a, "/one/1.0.0", &one_server, &r), 0);
	CHECK_EQ_INT(an_host_handle(r.a, "/two/1.0.0", &two_server, &r), 0);
	a_addr(&r, addr, sizeof(addr));
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, one_dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(one_calls, 2); /* its data, then its close */
	CHECK_EQ_INT(two_calls, 0);
	two_hosts_free(&r);
}

static char last_log[256];
static int refusal_logs;

static void capture_log(void *arg, const char *msg)
{
	(void)arg;
	if (strstr(msg, " refused: "))
		refusal_logs++;
	if (strstr(msg, "too many") || strstr(msg, "at their limit"))
		snprintf(last_log, sizeof(last_log), "%s", msg);
}

static void ignore_dial(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)arg; (void)c; (void)err; (void)h;
}

static void test_host_per_peer_limit(void)
{
	struct run r;
	struct an_host_limits lim = {.max_per_peer = 1};
	const char *addrs[1];
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	an_host_config_log(r.a, capture_log, NULL);
	an_host_addrs(r.a, addrs, 1);
	/* without /p2p/ the dialer cannot reuse its connection: two arrive */
	CHECK_EQ_INT(an_host_dial(r.b, addrs[0], 5000, ignore_dial, NULL), 0);
	CHECK_EQ_INT(an_host_dial(r.b, addrs[0], 5000, ignore_dial, NULL), 0);
	ev_timer_stop(r.loop, &r.deadline);
	ev_timer_set(&r.deadline, 1.0, 0);
	ev_timer_start(r.loop, &r.deadline);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(an_host_conn_count(r.a), 1);
	CHECK(strstr(last_log, "too many connections from this peer") != NULL);
	two_hosts_free(&r);
}


/* ---- per-address limits (host.h) ---- */

static void ignore_dial_keep(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h, (void)arg;
	if (err == 0)
		dialed = c;
}

static void stop_loop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Run loop for about seconds (bounded). */
static void run_for(struct ev_loop *loop, double seconds)
{
	ev_timer t;
	ev_timer_init(&t, stop_loop_cb, seconds, 0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

/* A raw TCP socket from src (127.0.0.X) to host's first listen address; -1 on error. */
static int raw_connect(struct an_host *h, const char *src)
{
	const char *addrs[1];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	struct sockaddr_in from = {.sin_family = AF_INET};
	if (an_host_addrs(h, addrs, 1) != 1 || an_host_maddr_split(addrs[0], &ss, &sl, &id, &has_id) < 0)
		return -1;
	inet_pton(AF_INET, src, &from.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
	    (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The host closed fd (EOF or reset), without blocking. */
static bool raw_closed(int fd)
{
	char b[64];
	ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN);
}

static void test_host_pending_per_address(void)
{
	struct run r;
	struct an_host_limits lim = {.max_pending_per_addr = 2};
	int fd[4];
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	an_host_config_log(r.a, capture_log, NULL);
	refusal_logs = 0;
	fd[0] = raw_connect(r.a, "127.0.0.2");
	fd[1] = raw_connect(r.a, "127.0.0.2");
	fd[2] = raw_connect(r.a, "127.0.0.2");
	int more[4];
	for (int i = 0; i < 4; i++)
		more[i] = raw_connect(r.a, "127.0.0.2");
	run_for(r.loop, 0.3);
	CHECK_EQ_INT(an_host_pending_count(r.a), 2);
	CHECK(strstr(last_log, "pending handshakes of this address at their limit") != NULL);
	CHECK_EQ_INT(refusal_logs, 1); /* five refused, one line a second */
	for (int i = 0; i < 4; i++)
		if (more[i] >= 0)
			close(more[i]);
	/* another address still gets its handshake */
	fd[3] = raw_connect(r.a, "127.0.0.1");
	run_for(r.loop, 0.3);
	CHECK_EQ_INT(an_host_pending_count(r.a), 3);
	CHECK(!raw_closed(fd[3]));
	CHECK_EQ_INT(raw_closed(fd[0]) + raw_closed(fd[1]) + raw_closed(fd[2]), 1);
	CHECK(!raw_closed(fd[3]));
	for (int i = 0; i < 4; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	two_hosts_free(&r);
}

static void test_host_loopback_addresses_count_alone(void)
{
	struct run r;
	/* a /24 would put 127.0.0.2 and 127.0.0.3 together: loopback does not */
	struct an_host_limits lim = {.max_pending_per_addr = 10, .max_pending_per_net = 2};
	int fd[4];
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	fd[0] = raw_connect(r.a, "127.0.0.2");
	fd[1] = raw_connect(r.a, "127.0.0.2");
	fd[2] = raw_connect(r.a, "127.0.0.2");
	fd[3] = raw_connect(r.a, "127.0.0.3");
	run_for(r.loop, 0.3);
	CHECK_EQ_INT(an_host_pending_count(r.a), 3);
	CHECK(!raw_closed(fd[3]));
	for (int i = 0; i < 4; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	two_hosts_free(&r);
}

static void test_host_connections_per_address(void)
{
	struct run r;
	struct an_host_limits lim = {.max_conns_per_addr = 1};
	const char *addrs[1];
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	an_host_config_log(r.a, capture_log, NULL);
	an_host_addrs(r.a, addrs, 1);
	CHECK_EQ_INT(an_host_dial(r.b, addrs[0], 5000, ignore_dial, NULL), 0);
	run_for(r.loop, 0.5);
	CHECK_EQ_INT(an_host_conn_count(r.a), 1);
	int fd = raw_connect(r.a, "127.0.0.1");
	run_for(r.loop, 0.3);
	CHECK_EQ_INT(an_host_conn_count(r.a), 1);
	CHECK(raw_closed(fd));
	CHECK(strstr(last_log, "connections of this address at their limit") != NULL);
	close(fd);
	two_hosts_free(&r);
}

static void test_host_inbound_handshake_deadline(void)
{
	struct run r;
	struct an_host_limits lim = {.inbound_handshake_timeout_ms = 300};
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	int fd = raw_connect(r.a, "127.0.0.1");
	run_for(r.loop, 0.1);
	CHECK_EQ_INT(an_host_pending_count(r.a), 1);
	run_for(r.loop, 0.5);
	CHECK_EQ_INT(an_host_pending_count(r.a), 0);
	CHECK(raw_closed(fd));
	close(fd);
	two_hosts_free(&r);
	/* handshake_timeout_ms alone sets both (an-dht --handshake-timeout) */
	lim = (struct an_host_limits){.handshake_timeout_ms = 300};
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	fd = raw_connect(r.a, "127.0.0.1");
	run_for(r.loop, 0.6);
	CHECK_EQ_INT(an_host_pending_count(r.a), 0);
	close(fd);
	two_hosts_free(&r);
}

struct count_streams {
	int opened, reset;
};

static void cs_open(struct an_stream *s, void *arg)
{
	(void)s;
	((struct count_streams *)arg)->opened++;
}

static void cs_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	if (err == AN_ERESET)
		((struct count_streams *)arg)->reset++;
}

static const struct an_stream_handler cs_handler = {.on_open = cs_open, .on_close = cs_close};

static void test_host_streams_per_address(void)
{
	struct run r;
	struct an_host_limits lim = {.max_streams_per_addr = 3};
	struct count_streams cs = {0};
	char addr[512];
	CHECK_EQ_INT(two_hosts(&r, &lim), 0);
	a_addr(&r, addr, sizeof(addr));
	dialed = NULL;
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, ignore_dial_keep, NULL), 0);
	run_for(r.loop, 0.5);
	CHECK(dialed != NULL);
	if (!dialed) {
		two_hosts_free(&r);
		return;
	}
	/* identify may hold one of A's streams a moment: let it finish */
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(an_host_stream_open(dialed, AN_PING_PROTOCOL, &cs_handler, &cs, NULL), 0);
	run_for(r.loop, 0.5);
	CHECK_EQ_INT(cs.opened, 3);
	CHECK_EQ_INT(cs.reset, 2);
	two_hosts_free(&r);
}

static void test_host_dial_refused_port(void)
{
	struct run r;
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_dial(r.b, "/ip4/127.0.0.1/tcp/1", 5000, dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(r.dial_err, -ECONNREFUSED);
	two_hosts_free(&r);
}

static void test_host_dial_self_refused(void)
{
	struct run r;
	char addr[512], idb[AN_PEERID_TEXT_MAX];
	const char *addrs[1];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	an_host_addrs(r.a, addrs, 1);
	an_peerid_format(an_host_peer_id(r.b), idb, sizeof(idb));
	snprintf(addr, sizeof(addr), "%s/p2p/%s", addrs[0], idb); /* names b itself */
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, dial_cb, &r), -EINVAL);
	two_hosts_free(&r);
}

static void test_host_dial_wrong_peer(void)
{
	struct run r;
	char addr[512];
	const char *addrs[1];
	struct an_privkey *kc;
	struct an_pubkey pk;
	struct an_peerid idc;
	char idtext[AN_PEERID_TEXT_MAX];
	an_privkey_generate(&kc);
	an_privkey_public(kc, &pk);
	an_peerid_from_pubkey(&pk, &idc);
	an_peerid_format(&idc, idtext, sizeof(idtext));
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	an_host_addrs(r.a, addrs, 1);
	snprintf(addr, sizeof(addr), "%s/p2p/%s", addrs[0], idtext); /* a's address, c's ID */
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, dial_cb, &r), 0);
	ev_run(r.loop, 0);
	CHECK_EQ_INT(r.dial_err, AN_EMISMATCH);
	two_hosts_free(&r);
	an_privkey_free(kc);
}

static void test_host_bad_multiaddrs(void)
{
	struct run r;
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_dial(r.b, "/dns4/example.com/tcp/1", 1000, dial_cb, &r), AN_EMALFORMED);
	CHECK_EQ_INT(an_host_dial(r.b, "not an address", 1000, dial_cb, &r), AN_EMALFORMED);
	CHECK_EQ_INT(an_host_listen(r.b, "/ip4/127.0.0.1/udp/0"), AN_EMALFORMED);
	two_hosts_free(&r);
}

static void test_host_addrs_and_announce(void)
{
	struct run r;
	const char *addrs[4];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_addrs(r.a, addrs, 4), 1);
	CHECK(strncmp(addrs[0], "/ip4/127.0.0.1/tcp/", 19) == 0);
	CHECK(strcmp(addrs[0], "/ip4/127.0.0.1/tcp/0") != 0); /* port resolved */
	CHECK_EQ_INT(an_host_announce(r.a, "/dns4/node.example/tcp/4001"), 0);
	CHECK_EQ_INT(an_host_addrs(r.a, addrs, 4), 1);
	CHECK_EQ_STR(addrs[0], "/dns4/node.example/tcp/4001");
	two_hosts_free(&r);
}

static void test_host_registry(void)
{
	struct run r;
	const char *protos[AN_HOST_MAX_PROTOCOLS];
	static const struct an_stream_handler nothing = {0};
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_handle(r.a, "no-slash", &nothing, NULL), -EINVAL);
	CHECK_EQ_INT(an_host_handle(r.a, "/x/1", &nothing, NULL), 0);
	CHECK_EQ_INT(an_host_handle(r.a, "/x/1", &nothing, NULL), 0); /* replaces */
	CHECK_EQ_INT(an_host_protocols(r.a, protos, AN_HOST_MAX_PROTOCOLS), 4);
	an_host_unhandle(r.a, "/x/1");
	CHECK_EQ_INT(an_host_protocols(r.a, protos, AN_HOST_MAX_PROTOCOLS), 3);
	two_hosts_free(&r);
}

/* Issue 11: a port something listens on is -EADDRINUSE, for another host
   of ours (both set SO_REUSEPORT) and for the same host. */
static void test_host_listen_port_in_use(void)
{
	struct run r;
	const char *addrs[1];
	char busy[AN_HOST_ADDR_TEXT_MAX];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	an_host_addrs(r.a, addrs, 1);
	snprintf(busy, sizeof(busy), "%s", addrs[0]);
	CHECK_EQ_INT(an_host_listen(r.b, busy), -EADDRINUSE);
	CHECK_EQ_INT(an_host_listen(r.a, busy), -EADDRINUSE);
	CHECK_EQ_INT(an_host_addrs(r.b, addrs, 1), 0); /* nothing half-made */
	two_hosts_free(&r);
}

static char seen_remote[AN_HOST_ADDR_TEXT_MAX];

static void remember_remote(struct an_host_conn *c, void *arg)
{
	(void)arg;
	snprintf(seen_remote, sizeof(seen_remote), "%s", an_host_conn_remote_addr(c));
}

/* Dials still leave from the listen port (DCUtR, identify's observed
   address), and a host freed with connections just closed (TIME_WAIT)
   frees its port for a restart. */
static void test_host_dial_from_listen_port_and_restart(void)
{
	struct run r;
	char addr[512], b_listen[AN_HOST_ADDR_TEXT_MAX];
	const char *addrs[1];
	CHECK_EQ_INT(two_hosts(&r, NULL), 0);
	CHECK_EQ_INT(an_host_listen(r.b, "/ip4/127.0.0.1/tcp/0"), 0);
	an_host_addrs(r.b, addrs, 1);
	snprintf(b_listen, sizeof(b_listen), "%s", addrs[0]);
	an_host_on_connection(r.a, remember_remote, NULL);
	seen_remote[0] = 0;
	dialed = NULL;
	a_addr(&r, addr, sizeof(addr));
	CHECK_EQ_INT(an_host_dial(r.b, addr, 5000, ignore_dial_keep, NULL), 0);
	run_for(r.loop, 0.5);
	CHECK(dialed != NULL);
	CHECK_EQ_STR(seen_remote, b_listen);
	/* b goes away with its connection open: its port is free again */
	an_host_free(r.b);
	CHECK_EQ_INT(an_host_new(r.loop, &(struct an_host_config){.key = kb}, &r.b), 0);
	CHECK_EQ_INT(an_host_listen(r.b, b_listen), 0);
	two_hosts_free(&r);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0)
		return 1;
	RUN(test_conn_upgrades_in_memory);
	RUN(test_conn_upgrades_with_multistream_muxer);
	RUN(test_conn_stream_dialer_is_yamux_client);
	RUN(test_conn_roles_set_apart_from_dialing);
	RUN(test_conn_wrong_expected_peer);
	RUN(test_conn_junk_multistream);
	RUN(test_conn_junk_noise);
	RUN(test_conn_junk_yamux_bad_version);
	RUN(test_conn_junk_yamux_oversized_data);
	RUN(test_conn_junk_yamux_wrong_parity);
	RUN(test_host_dial_ping_identify);
	RUN(test_host_stream_unsupported_protocol);
	RUN(test_host_fin_during_negotiation_follows_the_data);
	RUN(test_host_unhandle_keeps_open_streams_handler);
	RUN(test_host_per_peer_limit);
	RUN(test_host_pending_per_address);
	RUN(test_host_loopback_addresses_count_alone);
	RUN(test_host_connections_per_address);
	RUN(test_host_inbound_handshake_deadline);
	RUN(test_host_streams_per_address);
	RUN(test_host_dial_refused_port);
	RUN(test_host_dial_self_refused);
	RUN(test_host_dial_wrong_peer);
	RUN(test_host_bad_multiaddrs);
	RUN(test_host_addrs_and_announce);
	RUN(test_host_registry);
	RUN(test_host_listen_port_in_use);
	RUN(test_host_dial_from_listen_port_and_restart);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
