/*
 * test_relay_server.c - the Circuit Relay v2 hop service on three hosts in
 * one libev loop on 127.0.0.1: relay R, target A (reserves, answers stop
 * streams), source B (connects to A through R).  The relayed bytes are raw
 * here (no Noise inside): the relay does not look at them.
 *
 * Every run of the loop is bounded by a deadline timer.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "encoding/multiaddr.h"
#include "relay/circuit.h"
#include "relay/envelope.h"
#include "relay/relay_server.h"
#include "transport/host.h"
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
	struct an_host_conn *ca, *cb; /* A -> R, B -> R */
};

/* ---- a hop client: one request, the answer, then raw bytes ---- */

struct hop_client {
	struct an_stream *s;
	struct an_buf in;
	bool answered;
	int decode_err;
	uint32_t status;
	uint64_t expire;
	size_t naddrs;
	char addr0[256];
	uint8_t voucher[1024];
	size_t voucher_len;
	struct an_relay_limit limit;
	struct an_buf data; /* bytes after the answer */
	bool eof, closed;
	int close_err;
	/* bulk writer */
	size_t to_send, sent;
};

static void hc_write_more(struct hop_client *hc)
{
	static uint8_t chunk[65536];
	while (hc->sent < hc->to_send && an_stream_queued(hc->s) < AN_STREAM_QUEUE_HIGH) {
		size_t n = hc->to_send - hc->sent < sizeof(chunk) ? hc->to_send - hc->sent : sizeof(chunk);
		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((hc->sent + i) * 7);
		if (an_stream_write(hc->s, chunk, n) < 0)
			return;
		hc->sent += n;
	}
	if (hc->to_send && hc->sent == hc->to_send)
		an_stream_close_write(hc->s);
}

static void hc_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	struct hop_client *hc = arg;
	struct an_relay_msg m;
	size_t used;
	if (hc->answered) {
		an_buf_append(&hc->data, p, n);
		return;
	}
	an_buf_append(&hc->in, p, n);
	int rc = an_relay_msg_read(AN_RELAY_HOP, hc->in.data, hc->in.len, &m, &used);
	if (rc == AN_EAGAIN)
		return;
	hc->answered = true;
	hc->decode_err = rc;
	if (rc < 0)
		return;
	hc->status = m.status;
	hc->expire = m.rsv.expire;
	hc->naddrs = m.rsv.naddrs;
	if (m.rsv.naddrs) {
		struct an_multiaddr ma;
		if (an_multiaddr_from_bytes(m.rsv.addrs[0].p, m.rsv.addrs[0].len, &ma) == 0)
			an_multiaddr_format(&ma, hc->addr0, sizeof(hc->addr0));
	}
	if (m.rsv.voucher.len && m.rsv.voucher.len <= sizeof(hc->voucher)) {
		memcpy(hc->voucher, m.rsv.voucher.p, m.rsv.voucher.len);
		hc->voucher_len = m.rsv.voucher.len;
	}
	hc->limit = m.limit;
	an_buf_append(&hc->data, hc->in.data + used, hc->in.len - used);
	if (hc->to_send)
		hc_write_more(hc);
}

static void hc_eof(struct an_stream *s, void *arg)
{
	(void)s;
	((struct hop_client *)arg)->eof = true;
}

static void hc_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct hop_client *hc = arg;
	hc->closed = true;
	hc->close_err = err;
	hc->s = NULL;
}

static void hc_writable(struct an_stream *s, void *arg)
{
	(void)s;
	struct hop_client *hc = arg;
	if (hc->answered && hc->to_send)
		hc_write_more(hc);
}

static const struct an_stream_handler hc_handler = {
	.on_data = hc_data,
	.on_eof = hc_eof,
	.on_close = hc_close,
	.on_writable = hc_writable,
};

/* ---- the target's stop handler ---- */

static struct stop_srv {
	uint32_t answer;   /* status to answer CONNECT with */
	bool echo;         /* echo (else count and check the bulk pattern) */
	bool connected;
	struct an_peerid from;
	struct an_relay_limit limit;
	struct an_buf in;
	size_t got;        /* relayed bytes seen */
	bool pattern_ok;
	bool eof, closed;
	int close_err;
	struct an_stream *s;
} stop;

static void stop_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	if (!stop.connected) {
		struct an_relay_msg m;
		size_t used;
		an_buf_append(&stop.in, p, n);
		if (an_relay_msg_read(AN_RELAY_STOP, stop.in.data, stop.in.len, &m, &used) < 0)
			return;
		stop.connected = true;
		stop.from = m.peer.id;
		stop.limit = m.limit;
		an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_STATUS);
		m.has_status = true;
		m.status = stop.answer;
		struct an_buf b;
		an_buf_init(&b, 64);
		an_relay_msg_encode(&m, &b);
		an_stream_write(s, b.data, b.len);
		an_buf_free(&b);
		if (stop.answer != AN_RELAY_OK)
			an_stream_close_write(s);
		return;
	}
	if (stop.echo) {
		an_stream_write(s, p, n);
	} else {
		for (size_t i = 0; i < n; i++)
			if (p[i] != (uint8_t)((stop.got + i) * 7))
				stop.pattern_ok = false;
	}
	stop.got += n;
}

static void stop_open(struct an_stream *s, void *arg)
{
	(void)arg;
	stop.s = s;
}

static void stop_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	stop.eof = true;
	an_stream_close_write(s);
}

static void stop_close(struct an_stream *s, int err, void *arg)
{
	(void)s, (void)arg;
	stop.closed = true;
	stop.close_err = err;
	stop.s = NULL;
}

static const struct an_stream_handler stop_handler = {
	.on_open = stop_open,
	.on_data = stop_data,
	.on_eof = stop_eof,
	.on_close = stop_close,
};

/* ---- the world ---- */

/* Run the loop until *flag or seconds pass. */
static bool run_until(struct world *w, const bool *flag, double seconds)
{
	return fx_run_until(w->loop, flag, seconds);
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct an_host_conn **out = arg;
	if (err == 0)
		*out = c;
}

static int world_new(struct world *w, const struct an_relay_config *cfg, bool stop_service)
{
	struct an_host_config cr = {.key = kr}, ca = {.key = ka}, cb = {.key = kb};
	char addr[512];
	bool dialed = false;
	memset(w, 0, sizeof(*w));
	memset(&stop, 0, sizeof(stop));
	stop.answer = AN_RELAY_OK;
	stop.echo = true;
	stop.pattern_ok = true;
	an_buf_init(&stop.in, 8192);
	w->loop = ev_loop_new(0);
	if (an_host_new(w->loop, &cr, &w->r) < 0 || an_host_new(w->loop, &ca, &w->a) < 0 ||
	    an_host_new(w->loop, &cb, &w->b) < 0)
		return -1;
	if (an_host_listen(w->r, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	if (an_relay_server_new(w->r, cfg, &w->relay) < 0)
		return -1;
	if (stop_service && an_host_handle(w->a, AN_RELAY_STOP_PROTOCOL, &stop_handler, NULL) < 0)
		return -1;
	rfx_host_addr(w->r, addr, sizeof(addr));
	if (an_host_dial(w->a, addr, 5000, dial_cb, &w->ca) < 0 ||
	    an_host_dial(w->b, addr, 5000, dial_cb, &w->cb) < 0)
		return -1;
	for (int i = 0; i < 1000 && !(w->ca && w->cb); i++) {
		dialed = false;
		run_until(w, &dialed, 0.01);
	}
	return w->ca && w->cb ? 0 : -1;
}

static void world_free(struct world *w)
{
	an_relay_server_free(w->relay);
	an_host_free(w->a);
	an_host_free(w->b);
	an_host_free(w->r);
	ev_loop_destroy(w->loop);
	an_buf_free(&stop.in);
}

static void hc_init(struct hop_client *hc)
{
	memset(hc, 0, sizeof(*hc));
	an_buf_init(&hc->in, 8192);
	an_buf_init(&hc->data, 8 * 1024 * 1024);
}

static void hc_free(struct hop_client *hc)
{
	an_buf_free(&hc->in);
	an_buf_free(&hc->data);
}

/* Open a hop stream on c, send m, run until the answer. */
static bool hop_request(struct world *w, struct an_host_conn *c, const struct an_relay_msg *m,
			struct hop_client *hc)
{
	struct an_buf b;
	an_buf_init(&b, 8192);
	an_relay_msg_encode(m, &b);
	if (an_host_stream_open(c, AN_RELAY_HOP_PROTOCOL, &hc_handler, hc, &hc->s) < 0 ||
	    an_stream_write(hc->s, b.data, b.len) < 0) {
		an_buf_free(&b);
		return false;
	}
	an_buf_free(&b);
	return run_until(w, &hc->answered, 5);
}

static bool reserve(struct world *w, struct an_host_conn *c, struct hop_client *hc)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_RESERVE);
	return hop_request(w, c, &m, hc);
}

static bool connect_to(struct world *w, struct an_host_conn *c, struct an_host *target,
		       struct hop_client *hc)
{
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	m.peer.present = true;
	m.peer.has_id = true;
	m.peer.id = *an_host_peer_id(target);
	return hop_request(w, c, &m, hc);
}

/* ---- tests ---- */

static void test_reserve_ok(void)
{
	struct world w;
	struct hop_client hc;
	struct an_voucher v;
	struct an_relay_stats st;
	char want_suffix[AN_PEERID_TEXT_MAX + 8], id[AN_PEERID_TEXT_MAX];
	uint64_t now = (uint64_t)time(NULL);
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &hc));
	CHECK_EQ_INT(hc.decode_err, 0);
	CHECK_EQ_INT(hc.status, AN_RELAY_OK);
	CHECK(hc.expire >= now + AN_RELAY_DEFAULT_TTL_S && hc.expire <= now + AN_RELAY_DEFAULT_TTL_S + 5);
	CHECK_EQ_INT(hc.naddrs, 1);
	an_peerid_format(an_host_peer_id(w.r), id, sizeof(id));
	snprintf(want_suffix, sizeof(want_suffix), "/p2p/%s", id);
	CHECK(strncmp(hc.addr0, "/ip4/127.0.0.1/tcp/", 19) == 0);
	CHECK(strlen(hc.addr0) > strlen(want_suffix) &&
	      strcmp(hc.addr0 + strlen(hc.addr0) - strlen(want_suffix), want_suffix) == 0);
	CHECK(strstr(hc.addr0, "p2p-circuit") == NULL);
	CHECK_EQ_INT(an_voucher_open(hc.voucher, hc.voucher_len, &v), 0);
	CHECK(an_peerid_equal(&v.relay, an_host_peer_id(w.r)));
	CHECK(an_peerid_equal(&v.peer, an_host_peer_id(w.a)));
	CHECK_EQ_INT(v.expiration, hc.expire);
	CHECK(hc.limit.present);
	CHECK_EQ_INT(hc.limit.duration, AN_RELAY_DEFAULT_DURATION_S);
	CHECK_EQ_INT(hc.limit.data, AN_RELAY_DEFAULT_DATA);
	CHECK(run_until(&w, &hc.eof, 5)); /* the relay half-closes after answering */
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.reservations, 1);
	CHECK_EQ_INT(st.reservations_accepted, 1);
	hc_free(&hc);
	world_free(&w);
}

static void test_reserve_unlimited_sends_no_limit(void)
{
	struct world w;
	struct hop_client hc;
	struct an_relay_config cfg;
	an_relay_config_init(&cfg);
	cfg.circuit_duration_s = 0;
	cfg.circuit_data = 0;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_OK);
	CHECK(!hc.limit.present);
	hc_free(&hc);
	world_free(&w);
}

static void test_reserve_refresh_keeps_one(void)
{
	struct world w;
	struct hop_client h1, h2;
	struct an_relay_stats st;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&h1);
	hc_init(&h2);
	CHECK(reserve(&w, w.ca, &h1));
	CHECK(reserve(&w, w.ca, &h2));
	CHECK_EQ_INT(h2.status, AN_RELAY_OK);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.reservations, 1);
	CHECK_EQ_INT(st.reservations_accepted, 2);
	hc_free(&h1);
	hc_free(&h2);
	world_free(&w);
}

static void test_reserve_table_full(void)
{
	struct world w;
	struct hop_client h1, h2;
	struct an_relay_config cfg;
	an_relay_config_init(&cfg);
	cfg.max_reservations = 1;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	hc_init(&h1);
	hc_init(&h2);
	CHECK(reserve(&w, w.ca, &h1));
	CHECK_EQ_INT(h1.status, AN_RELAY_OK);
	CHECK(reserve(&w, w.cb, &h2));
	CHECK_EQ_INT(h2.status, AN_RELAY_RESOURCE_LIMIT_EXCEEDED);
	hc_free(&h1);
	hc_free(&h2);
	world_free(&w);
}

static void test_reserve_per_ip_limit(void)
{
	struct world w;
	struct hop_client h1, h2;
	struct an_relay_config cfg;
	struct an_relay_stats st;
	an_relay_config_init(&cfg);
	cfg.max_reservations_per_ip = 1; /* A and B both come from 127.0.0.1 */
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	hc_init(&h1);
	hc_init(&h2);
	CHECK(reserve(&w, w.ca, &h1));
	CHECK_EQ_INT(h1.status, AN_RELAY_OK);
	CHECK(reserve(&w, w.cb, &h2));
	CHECK_EQ_INT(h2.status, AN_RELAY_RESOURCE_LIMIT_EXCEEDED);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.reservations_refused, 1);
	hc_free(&h1);
	hc_free(&h2);
	world_free(&w);
}

static void test_connect_without_reservation(void)
{
	struct world w;
	struct hop_client hc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&hc);
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_NO_RESERVATION);
	CHECK(!stop.connected);
	hc_free(&hc);
	world_free(&w);
}

static void test_connect_without_peer_is_malformed(void)
{
	struct world w;
	struct hop_client hc;
	struct an_relay_msg m;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&hc);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	CHECK(hop_request(&w, w.cb, &m, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_MALFORMED_MESSAGE);
	hc_free(&hc);
	world_free(&w);
}

static void test_garbage_request_is_malformed(void)
{
	struct world w;
	struct hop_client hc;
	static const uint8_t junk[] = {0x03, 0xff, 0xff, 0xff};
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&hc);
	CHECK_EQ_INT(an_host_stream_open(w.cb, AN_RELAY_HOP_PROTOCOL, &hc_handler, &hc, &hc.s), 0);
	CHECK_EQ_INT(an_stream_write(hc.s, junk, sizeof(junk)), 0);
	CHECK(run_until(&w, &hc.answered, 5));
	CHECK_EQ_INT(hc.status, AN_RELAY_MALFORMED_MESSAGE);
	hc_free(&hc);
	world_free(&w);
}

static void test_status_request_is_unexpected(void)
{
	struct world w;
	struct hop_client hc;
	struct an_relay_msg m;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&hc);
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	CHECK(hop_request(&w, w.cb, &m, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_UNEXPECTED_MESSAGE);
	hc_free(&hc);
	world_free(&w);
}

/* A reserves, B connects: the stop handshake and an echo through the splice. */
static void test_connect_echo(void)
{
	struct world w;
	struct hop_client ra, hc;
	struct an_relay_stats st;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_OK);
	CHECK(hc.limit.present);
	CHECK_EQ_INT(hc.limit.duration, AN_RELAY_DEFAULT_DURATION_S);
	CHECK(stop.connected);
	CHECK(an_peerid_equal(&stop.from, an_host_peer_id(w.b)));
	CHECK_EQ_INT(stop.limit.data, AN_RELAY_DEFAULT_DATA);
	CHECK_EQ_INT(an_stream_write(hc.s, (const uint8_t *)"hello relay", 11), 0);
	an_stream_close_write(hc.s);
	CHECK(run_until(&w, &hc.eof, 5));
	CHECK_EQ_INT(hc.data.len, 11);
	CHECK(hc.data.len == 11 && memcmp(hc.data.data, "hello relay", 11) == 0);
	CHECK(stop.eof);
	CHECK(run_until(&w, &hc.closed, 5));
	CHECK_EQ_INT(hc.close_err, 0);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.circuits_opened, 1);
	CHECK_EQ_INT(st.bytes_relayed, 22);
	CHECK_EQ_INT(st.circuits, 0);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_target_refuses_stop(void)
{
	struct world w;
	struct hop_client ra, hc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	stop.answer = AN_RELAY_PERMISSION_DENIED;
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_CONNECTION_FAILED);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_target_without_stop_protocol(void)
{
	struct world w;
	struct hop_client ra, hc;
	struct an_relay_stats st;
	CHECK_EQ_INT(world_new(&w, NULL, false), 0);
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_CONNECTION_FAILED);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.circuits_refused, 1);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_max_circuits(void)
{
	struct world w;
	struct hop_client ra, h1, h2;
	struct an_relay_config cfg;
	an_relay_config_init(&cfg);
	cfg.max_circuits = 1;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	hc_init(&ra);
	hc_init(&h1);
	hc_init(&h2);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &h1));
	CHECK_EQ_INT(h1.status, AN_RELAY_OK);
	CHECK(connect_to(&w, w.cb, w.a, &h2));
	CHECK_EQ_INT(h2.status, AN_RELAY_RESOURCE_LIMIT_EXCEEDED);
	hc_free(&ra);
	hc_free(&h1);
	hc_free(&h2);
	world_free(&w);
}

static void test_data_limit_resets(void)
{
	struct world w;
	struct hop_client ra, hc;
	struct an_relay_config cfg;
	struct an_relay_stats st;
	an_relay_config_init(&cfg);
	cfg.circuit_data = 1000;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	stop.echo = false;
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	hc.to_send = 2000;
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.limit.data, 1000);
	CHECK(run_until(&w, &hc.closed, 5));
	CHECK_EQ_INT(hc.close_err, AN_ERESET);
	CHECK(stop.got <= 1000);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.circuits_limited, 1);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_duration_limit_resets(void)
{
	struct world w;
	struct hop_client ra, hc;
	struct an_relay_config cfg;
	an_relay_config_init(&cfg);
	cfg.circuit_duration_s = 1;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.limit.duration, 1);
	CHECK(!run_until(&w, &hc.closed, 0.5)); /* still open before the limit */
	CHECK(run_until(&w, &hc.closed, 3));
	CHECK_EQ_INT(hc.close_err, AN_ERESET);
	CHECK(run_until(&w, &stop.closed, 3));
	CHECK_EQ_INT(stop.close_err, AN_ERESET);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

/*
 * Backpressure: with no data limit, B sends 3 MiB while A holds its stop
 * stream; the relay must hold B (not buffer past its stream queue, which
 * would fail the write and reset the circuit), and everything arrives in
 * order once A reads again.
 */
static void test_splice_backpressure(void)
{
	struct world w;
	struct hop_client ra, hc;
	struct an_relay_config cfg;
	bool never = false;
	size_t total = 3 * 1024 * 1024;
	an_relay_config_init(&cfg);
	cfg.circuit_data = 0;
	cfg.circuit_duration_s = 0;
	CHECK_EQ_INT(world_new(&w, &cfg, true), 0);
	stop.echo = false;
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_OK);
	CHECK(stop.s != NULL);
	if (stop.s)
		an_stream_pause(stop.s, true);
	hc.to_send = total;
	hc_write_more(&hc);
	run_until(&w, &never, 1.0);
	CHECK(!hc.closed);
	CHECK(hc.sent < total); /* B is held by the windows */
	CHECK(stop.got < total);
	if (stop.s)
		an_stream_pause(stop.s, false);
	CHECK(run_until(&w, &stop.eof, 10));
	CHECK_EQ_INT(stop.got, total);
	CHECK(stop.pattern_ok);
	CHECK(run_until(&w, &hc.closed, 5));
	CHECK_EQ_INT(hc.close_err, 0);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_target_disconnect_drops_reservation(void)
{
	struct world w;
	struct hop_client ra, hc;
	bool never = false;
	struct an_relay_stats st;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&ra);
	hc_init(&hc);
	struct an_relay_msg m;
	CHECK(reserve(&w, w.ca, &ra));
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	m.peer.present = true;
	m.peer.has_id = true;
	m.peer.id = *an_host_peer_id(w.a);
	an_host_free(w.a); /* A's sockets close at once */
	w.a = NULL;
	run_until(&w, &never, 0.5);
	CHECK(hop_request(&w, w.cb, &m, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_NO_RESERVATION);
	an_relay_server_stats(w.relay, &st);
	CHECK_EQ_INT(st.reservations, 0);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}

static void test_free_with_live_circuit(void)
{
	struct world w;
	struct hop_client ra, hc;
	CHECK_EQ_INT(world_new(&w, NULL, true), 0);
	hc_init(&ra);
	hc_init(&hc);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK(connect_to(&w, w.cb, w.a, &hc));
	CHECK_EQ_INT(hc.status, AN_RELAY_OK);
	an_relay_server_free(w.relay); /* resets both spliced streams */
	w.relay = NULL;
	CHECK(run_until(&w, &hc.closed, 5));
	CHECK_EQ_INT(hc.close_err, AN_ERESET);
	hc_free(&ra);
	hc_free(&hc);
	world_free(&w);
}


/* ---- per-address circuit limits ---- */

/* A stop service that answers OK on every stream and then holds it. */
struct hold {
	struct an_buf in;
	bool answered;
};

static void hold_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct hold *h = an_stream_user(s);
	struct an_relay_msg m;
	size_t used;
	if (!h) {
		if (!(h = calloc(1, sizeof(*h))))
			return;
		an_buf_init(&h->in, 8192);
		an_stream_set_user(s, h);
	}
	if (h->answered)
		return;
	an_buf_append(&h->in, p, n);
	if (an_relay_msg_read(AN_RELAY_STOP, h->in.data, h->in.len, &m, &used) < 0)
		return;
	h->answered = true;
	an_relay_msg_init(&m, AN_RELAY_STOP, AN_STOP_STATUS);
	m.has_status = true;
	m.status = AN_RELAY_OK;
	struct an_buf b;
	an_buf_init(&b, 64);
	an_relay_msg_encode(&m, &b);
	an_stream_write(s, b.data, b.len);
	an_buf_free(&b);
}

static void hold_close(struct an_stream *s, int err, void *arg)
{
	(void)err, (void)arg;
	struct hold *h = an_stream_user(s);
	if (h) {
		an_buf_free(&h->in);
		free(h);
	}
}

static const struct an_stream_handler hold_handler = {
	.on_data = hold_data,
	.on_close = hold_close,
};

#define FRESH_PEERS 4

/*
 * Four fresh peer IDs at 127.0.0.2 ask for four circuits each (each within
 * max_circuits_per_peer): together they get max_circuits_per_ip, and B at
 * 127.0.0.1 still gets one.  Before the per-address limit they took all 16
 * and B was refused.
 */
static void test_fresh_peers_at_one_address_leave_circuits(void)
{
	struct world w;
	struct an_host *x[FRESH_PEERS] = {0};
	struct an_privkey *kx[FRESH_PEERS] = {0};
	struct an_host_conn *cx[FRESH_PEERS] = {0};
	struct hop_client ra, hb, hx[FRESH_PEERS][4];
	struct an_relay_msg m;
	struct an_buf b;
	char addr[512];
	size_t ok = 0, limited = 0;
	bool never = false;
	CHECK_EQ_INT(world_new(&w, NULL, false), 0);
	CHECK_EQ_INT(an_host_handle(w.a, AN_RELAY_STOP_PROTOCOL, &hold_handler, NULL), 0);
	hc_init(&ra);
	hc_init(&hb);
	CHECK(reserve(&w, w.ca, &ra));
	CHECK_EQ_INT(ra.status, AN_RELAY_OK);
	rfx_host_addr(w.r, addr, sizeof(addr));
	for (int i = 0; i < FRESH_PEERS; i++) {
		struct an_host_config cfg = {0};
		CHECK_EQ_INT(an_privkey_generate(&kx[i]), 0);
		cfg.key = kx[i];
		CHECK_EQ_INT(an_host_new(w.loop, &cfg, &x[i]), 0);
		/* dials leave from the listen address */
		CHECK_EQ_INT(an_host_listen(x[i], "/ip4/127.0.0.2/tcp/0"), 0);
		CHECK_EQ_INT(an_host_dial(x[i], addr, 5000, dial_cb, &cx[i]), 0);
	}
	for (int t = 0; t < 500; t++) {
		bool all = true;
		for (int i = 0; i < FRESH_PEERS; i++)
			all = all && cx[i];
		if (all)
			break;
		run_until(&w, &never, 0.01);
	}
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	m.peer.present = true;
	m.peer.has_id = true;
	m.peer.id = *an_host_peer_id(w.a);
	an_buf_init(&b, 8192);
	an_relay_msg_encode(&m, &b);
	for (int i = 0; i < FRESH_PEERS; i++) {
		CHECK(cx[i] != NULL);
		if (cx[i])
			CHECK(strncmp(an_host_conn_remote_addr(cx[i]), "/ip4/127.0.0.1/", 15) == 0);
		for (int j = 0; j < 4; j++) {
			hc_init(&hx[i][j]);
			if (cx[i] && an_host_stream_open(cx[i], AN_RELAY_HOP_PROTOCOL, &hc_handler, &hx[i][j],
							 &hx[i][j].s) == 0)
				an_stream_write(hx[i][j].s, b.data, b.len);
		}
	}
	an_buf_free(&b);
	for (int t = 0; t < 500; t++) {
		ok = limited = 0;
		for (int i = 0; i < FRESH_PEERS; i++)
			for (int j = 0; j < 4; j++) {
				ok += hx[i][j].answered && hx[i][j].status == AN_RELAY_OK;
				limited += hx[i][j].answered &&
					   hx[i][j].status == AN_RELAY_RESOURCE_LIMIT_EXCEEDED;
			}
		if (ok + limited == FRESH_PEERS * 4)
			break;
		run_until(&w, &never, 0.01);
	}
	CHECK_EQ_INT(ok, AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_IP);
	CHECK_EQ_INT(limited, FRESH_PEERS * 4 - AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_IP);
	CHECK(connect_to(&w, w.cb, w.a, &hb));
	CHECK_EQ_INT(hb.status, AN_RELAY_OK);
	an_relay_server_free(w.relay);
	w.relay = NULL;
	for (int i = 0; i < FRESH_PEERS; i++) {
		for (int j = 0; j < 4; j++)
			hc_free(&hx[i][j]);
		an_host_free(x[i]);
		an_privkey_free(kx[i]);
	}
	hc_free(&ra);
	hc_free(&hb);
	world_free(&w);
}

static struct an_privkey *key(void)
{
	struct an_privkey *k = NULL;
	an_privkey_generate(&k);
	return k;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	kr = key(), ka = key(), kb = key();
	RUN(test_reserve_ok);
	RUN(test_reserve_unlimited_sends_no_limit);
	RUN(test_reserve_refresh_keeps_one);
	RUN(test_reserve_table_full);
	RUN(test_reserve_per_ip_limit);
	RUN(test_connect_without_reservation);
	RUN(test_connect_without_peer_is_malformed);
	RUN(test_garbage_request_is_malformed);
	RUN(test_status_request_is_unexpected);
	RUN(test_connect_echo);
	RUN(test_target_refuses_stop);
	RUN(test_target_without_stop_protocol);
	RUN(test_max_circuits);
	RUN(test_data_limit_resets);
	RUN(test_duration_limit_resets);
	RUN(test_splice_backpressure);
	RUN(test_target_disconnect_drops_reservation);
	RUN(test_free_with_live_circuit);
	RUN(test_fresh_peers_at_one_address_leave_circuits);
	an_privkey_free(kr);
	an_privkey_free(ka);
	an_privkey_free(kb);
	return check_done();
}
