/*
 * an-testpeer: the C half of the interop tests.  Takes the flags of
 * tests/interop/js/peer.mjs and prints the same JSON lines (see
 * tests/interop/README.md): listen, dial, identify, ping, echo, concurrent
 * streams, half-close, resets both ways, discard, and the three test
 * protocols /an/test/{echo,discard,reset}/1.0.0.  Every action has a
 * deadline and the whole run a hard one.
 *
 * It is also the raw C kad client of the DHT interop tests (--kad-put-raw,
 * --kad-get-raw): PUT_VALUE and GET_VALUE written with the kad_msg codec on
 * one outbound stream each, with no validation, so a test can offer a node
 * records that an-dht put would refuse to send, and ask a node over the wire
 * what it serves under a key.
 *
 * Circuit Relay v2 (the client side, relay/relay_client.h): --reserve
 * RELAYADDR keeps a reservation on a relay and accepts circuits from it as
 * inbound relayed connections (Noise responder, yamux server over the stop
 * stream); --dial .../p2p/RELAY/p2p-circuit/p2p/TARGET connects through the
 * relay and upgrades over the hop stream as initiator.  The actions then run
 * on that relayed connection as on a direct one.
 *
 * DCUtR (relay/dcutr_service.h): --dcutr serves /libp2p/dcutr and, on every
 * inbound relayed connection (we are DCUtR's B), starts the upgrade to a
 * direct connection; each punch's end is a "dcutr" line.  --dcutr-addr adds
 * an address to our CONNECT (a NAT's predicted public address),
 * --dcutr-prime TTL makes B prime its NAT instead of dialing.
 */
#include "cli.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/kad_msg.h"
#include "encoding/protobuf.h"
#include "relay/dcutr_service.h"
#include "relay/relay_client.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROTO_ECHO "/an/test/echo/1.0.0"
#define PROTO_DISCARD "/an/test/discard/1.0.0"
#define PROTO_RESET "/an/test/reset/1.0.0"
#define RESET_AFTER (64 * 1024)
#define CHUNK (64 * 1024)
#define MAX_CONNS 64
#define MAX_TEST_STREAMS 1024
#define PROTO_KAD "/an/kad/1.0.0"
/* What --kad-value may hold: a record is capped far below this, but the
 * point is to send oversized ones too (js accepts 4 MiB messages, K6). */
#define KAD_VALUE_MAX (1024 * 1024)

static const char USAGE[] =
	"Usage: an-testpeer [options]\n"
	"  --key FILE          libp2p PrivateKey protobuf; created (Ed25519) if absent\n"
	"  --listen MA         listen on MA (repeatable)\n"
	"  --dial MA|@FILE     dial MA, or wait for FILE and dial its contents; MA may be\n"
	"                      RELAYADDR/p2p/RELAY/p2p-circuit/p2p/PEER (through a relay)\n"
	"  --reserve RELAYADDR reserve a slot on the relay, accept relayed connections\n"
	"  --dcutr             serve DCUtR; upgrade inbound relayed connections to direct\n"
	"  --dcutr-addr MA     also offer MA (/ip4|ip6/A/tcp/P) in DCUtR CONNECT (repeatable)\n"
	"  --dcutr-prime TTL   as DCUtR's B, prime our NAT with a TTL-limited SYN, do not dial\n"
	"  --ping N            N pings on the dialed connection\n"
	"  --identify          print the dialed peer's identify\n"
	"  --echo BYTES        echo BYTES of random data over " PROTO_ECHO "\n"
	"  --streams N         N concurrent echo streams of --stream-bytes each\n"
	"  --stream-bytes B    size of each --streams stream (default 4096)\n"
	"  --stream-protocol P protocol of the --streams streams (default " PROTO_ECHO "; any echoing one)\n"
	"  --half-close        write 64 KiB, close the write side, then read the echo\n"
	"  --reset             reset an echo stream mid-transfer, then check the connection\n"
	"  --remote-reset      have the remote reset a " PROTO_RESET " stream, then check\n"
	"  --discard BYTES     send BYTES over " PROTO_DISCARD "\n"
	"  --kad-put-raw KEY   send PUT_VALUE of --kad-value's bytes under KEY, unvalidated\n"
	"  --kad-value FILE    the record value of --kad-put-raw (exact bytes)\n"
	"  --kad-get-raw KEY   send GET_VALUE for KEY; print the value the node returned\n"
	"  --kad-protocol P    kad protocol of the raw actions (default " PROTO_KAD ")\n"
	"  --serve-for SECS    stay up answering for SECS (listener 60; after actions 0)\n"
	"  --timeout SECS      deadline of each action (default 30)\n"
	"  --agent STRING      identify agentVersion\n"
	"  --quiet             no served/connection/peer-identify lines\n"
	"  --max-conns N, --max-streams N, --max-pending N  host limits (C peer only)\n"
	"  --help              this text\n";

struct opts {
	const char *key, *dial, *agent, *stream_protocol, *reserve;
	const char *kad_put, *kad_value, *kad_get, *kad_protocol;
	long max_conns, max_streams, max_pending;
	const char *listen[8];
	int n_listen;
	bool dcutr;
	const char *dcutr_addr[AN_DCUTR_MAX_EXTRA_ADDRS];
	int n_dcutr_addr;
	long dcutr_prime;
	long ping, streams, stream_bytes;
	long long echo, discard;
	bool identify, half_close, reset, remote_reset, quiet;
	double serve_for, timeout;
	bool serve_for_set;
};

static struct opts O;
static struct ev_loop *loop;
static struct an_host *host;
static struct an_host_conn *dialed;
static char self_id[AN_PEERID_TEXT_MAX];
static int exit_status = 0;
static ev_timer action_timer, serve_timer, dial_file_timer, hard_timer;
static double t_dial;
static const char *current_action = "dial";

/* identify results per connection (js identifies every connection itself) */
struct conn_info {
	struct an_host_conn *c;
	json_t *identify; /* formatted, or NULL while pending */
	bool failed;
};
static struct conn_info conns[MAX_CONNS];

static void emit(json_t *o)
{
	/* our own dump: short decimals for the timings (js rounds to 3 digits) */
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (s) {
		puts(s);
		free(s);
	}
	fflush(stdout);
	json_decref(o);
}

static void next_action(void);

static void fail_action(const char *msg)
{
	emit(json_pack("{s:s,s:s,s:s}", "event", "error", "action", current_action, "message", msg));
	exit_status = AN_EXIT_SYSTEM;
	ev_break(loop, EVBREAK_ALL);
}

static double round3(double x)
{
	return (double)(long long)(x * 1000 + 0.5) / 1000;
}

static double now_ms(void)
{
	return ev_time() * 1000.0;
}

static void peer_text(const struct an_peerid *id, char *out)
{
	if (!id || an_peerid_format(id, out, AN_PEERID_TEXT_MAX) < 0)
		strcpy(out, "?");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *format_identify(const char *peer, const struct an_identify *m)
{
	json_t *o = json_object(), *addrs = json_array(), *protos = json_array();
	char text[AN_HOST_ADDR_TEXT_MAX];
	const char *sorted[AN_IDENTIFY_MAX_PROTOCOLS];
	json_object_set_new(o, "peerId", json_string(peer));
	for (size_t i = 0; i < m->n_protocols; i++)
		sorted[i] = m->protocols[i];
	qsort(sorted, m->n_protocols, sizeof(sorted[0]), cmp_str);
	for (size_t i = 0; i < m->n_protocols; i++)
		json_array_append_new(protos, json_string(sorted[i]));
	json_object_set_new(o, "protocols", protos);
	for (size_t i = 0; i < m->n_addrs; i++)
		if (an_host_maddr_format(m->addrs[i].data, m->addrs[i].len, text, sizeof(text)) == 0)
			json_array_append_new(addrs, json_string(text));
	json_object_set_new(o, "listenAddrs", addrs);
	json_object_set_new(o, "agentVersion", m->agent_version ? json_string(m->agent_version) : json_null());
	json_object_set_new(o, "protocolVersion",
			    m->protocol_version ? json_string(m->protocol_version) : json_null());
	if (m->observed_addr.len &&
	    an_host_maddr_format(m->observed_addr.data, m->observed_addr.len, text, sizeof(text)) == 0)
		json_object_set_new(o, "observedAddr", json_string(text));
	else
		json_object_set_new(o, "observedAddr", json_null());
	return o;
}

static struct conn_info *info_of(struct an_host_conn *c)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (conns[i].c == c)
			return &conns[i];
	return NULL;
}

/* ---------------------------------------------------------------- serving */

struct served {
	const char *proto;
	char peer[AN_PEERID_TEXT_MAX];
	long long bytes;
	bool reset_sent;
};

static void served_open(struct an_stream *s, void *arg)
{
	struct served *v = calloc(1, sizeof(*v));
	if (!v) {
		an_stream_reset(s);
		return;
	}
	v->proto = arg;
	peer_text(an_host_conn_peer(an_stream_conn(s)), v->peer);
	an_stream_set_user(s, v);
}

static void served_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	struct served *v = an_stream_user(s);
	if (!v)
		return;
	const char *result;
	if (v->proto == (const char *)PROTO_RESET)
		result = v->reset_sent ? "reset-sent" : "closed";
	else
		result = err ? "reset" : "ok";
	if (!O.quiet)
		emit(json_pack("{s:s,s:s,s:s,s:I,s:s}", "event", "served", "protocol", v->proto, "peerId",
			       v->peer, "bytes", (json_int_t)v->bytes, "result", result));
	free(v);
}

static void echo_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct served *v = an_stream_user(s);
	v->bytes += (long long)n;
	if (an_stream_write(s, p, n) < 0)
		an_stream_reset(s);
}

static void echo_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static void discard_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg; (void)p;
	struct served *v = an_stream_user(s);
	v->bytes += (long long)n;
}

static void discard_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	struct served *v = an_stream_user(s);
	char line[32];
	int len = snprintf(line, sizeof(line), "%lld\n", v->bytes);
	an_stream_write(s, (const uint8_t *)line, (size_t)len);
	an_stream_close_write(s);
}

static void reset_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg; (void)p;
	struct served *v = an_stream_user(s);
	v->bytes += (long long)n;
	if (v->bytes >= RESET_AFTER) {
		v->reset_sent = true;
		an_stream_reset(s);
	}
}

static void reset_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	struct served *v = an_stream_user(s);
	v->reset_sent = true;
	an_stream_reset(s);
}

static const struct an_stream_handler echo_handler = {
	.on_open = served_open, .on_data = echo_data, .on_eof = echo_eof, .on_close = served_close};
static const struct an_stream_handler discard_handler = {
	.on_open = served_open, .on_data = discard_data, .on_eof = discard_eof, .on_close = served_close};
static const struct an_stream_handler reset_handler = {
	.on_open = served_open, .on_data = reset_data, .on_eof = reset_eof, .on_close = served_close};

/* ---------------------------------------------------------------- connections */

static bool identify_waiting;
static void identify_action(void);

static void identify_done(void *arg, int err, const struct an_identify *m)
{
	struct an_host_conn *c = arg;
	struct conn_info *ci = info_of(c);
	char peer[AN_PEERID_TEXT_MAX];
	peer_text(an_host_conn_alive(c) ? an_host_conn_peer(c) : NULL, peer);
	if (ci) {
		if (err < 0) {
			ci->failed = true;
		} else {
			ci->identify = format_identify(peer, m);
			if (!O.quiet) {
				json_t *o = json_pack("{s:s,s:s}", "event", "peer-identify", "direction",
						      c == dialed ? "outbound" : "inbound");
				json_object_update(o, ci->identify);
				emit(o);
			}
		}
	}
	an_host_conn_unref(c);
	if (c == dialed && identify_waiting) {
		identify_waiting = false;
		identify_action(); /* the identify action was waiting for this */
	}
}

/* ---------------------------------------------------------------- DCUtR */

static struct an_dcutr_service *dcutr_svc;

static void dcutr_report(void *arg, const struct an_peerid *peer, struct an_host_conn *direct, int err)
{
	(void)arg;
	char id[AN_PEERID_TEXT_MAX];
	peer_text(peer, id);
	if (direct)
		emit(json_pack("{s:s,s:s,s:b,s:s,s:s}", "event", "dcutr", "peerId", id, "ok", 1,
			       "direction", an_host_conn_inbound(direct) ? "inbound" : "outbound",
			       "remoteAddr", an_host_conn_remote_addr(direct)));
	else
		emit(json_pack("{s:s,s:s,s:b,s:s}", "event", "dcutr", "peerId", id, "ok", 0, "message",
			       an_strerror(err)));
}

/* We are DCUtR's B on a connection someone opened to us through a relay. */
static void dcutr_maybe_upgrade(struct an_host_conn *c)
{
	if (!dcutr_svc || !an_host_conn_relayed(c) || !an_host_conn_inbound(c))
		return;
	int rc = an_dcutr_upgrade(dcutr_svc, c);
	if (rc < 0)
		emit(json_pack("{s:s,s:s,s:s}", "event", "error", "action", "dcutr", "message",
			       an_strerror(rc)));
}

static void on_connection(struct an_host_conn *c, void *arg)
{
	(void)arg;
	char peer[AN_PEERID_TEXT_MAX], ma[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8];
	peer_text(an_host_conn_peer(c), peer);
	snprintf(ma, sizeof(ma), "%s/p2p/%s", an_host_conn_remote_addr(c), peer);
	struct conn_info *ci = info_of(NULL);
	if (ci) {
		ci->c = c;
		an_host_conn_ref(c); /* kept for the table */
	}
	if (!O.quiet)
		emit(json_pack("{s:s,s:s,s:s,s:s,s:b}", "event", "connection", "direction",
			       an_host_conn_inbound(c) ? "inbound" : "outbound", "peerId", peer,
			       "remoteAddr", ma, "relayed", an_host_conn_relayed(c)));
	dcutr_maybe_upgrade(c);
	an_host_conn_ref(c);
	if (an_identify_request(c, (int)(O.timeout * 1000), identify_done, c) < 0) {
		if (ci)
			ci->failed = true;
		an_host_conn_unref(c);
	}
}

/* ---------------------------------------------------------------- actions */

static enum {
	A_IDENTIFY, A_PING, A_ECHO, A_STREAMS, A_HALF, A_RESET, A_RRESET, A_DISCARD,
	A_KAD_PUT, A_KAD_GET, A_DONE
} stage;
static bool all_ok = true;

/* An echo (or discard) transfer of `total` random bytes on one stream. */
struct xfer {
	struct an_stream *s;
	long long total, sent, recv;
	crypto_hash_sha256_state sh, rh;
	double t0;
	bool closed_write, done, discard;
	char reply[32];
	size_t reply_len;
	long long reset_after_recv; /* --reset: reset when this much came back */
	bool want_reset;
	void (*finish)(struct xfer *x, int err);
	int err;
};

/*
 * An echo client keeps at most this much unanswered: js-libp2p's echo
 * server stops reading while its replies wait for our window, but its
 * yamux keeps granting us window (up to 16 MiB) and aborts the stream once
 * 4 MiB sit unread (StreamBufferError).  So the window alone does not
 * bound what a fast sender may have in flight toward js.
 */
#define ECHO_AHEAD (1024 * 1024)

static void xfer_pump(struct xfer *x)
{
	static uint8_t block[CHUNK];
	while (x->sent < x->total && an_stream_queued(x->s) < AN_STREAM_QUEUE_HIGH &&
	       (x->discard || x->want_reset || x->sent - x->recv < ECHO_AHEAD)) {
		size_t n = (size_t)(x->total - x->sent < CHUNK ? x->total - x->sent : CHUNK);
		if (x->discard) {
			if (block[0] == 0 && block[1] == 0)
				randombytes_buf(block, sizeof(block));
		} else {
			randombytes_buf(block, n);
			crypto_hash_sha256_update(&x->sh, block, n);
		}
		if (an_stream_write(x->s, block, n) < 0) {
			an_stream_reset(x->s);
			return;
		}
		x->sent += (long long)n;
	}
	if (x->sent >= x->total && !x->closed_write && !x->want_reset) {
		x->closed_write = true;
		an_stream_close_write(x->s);
	}
}

static void xfer_open(struct an_stream *s, void *arg)
{
	(void)s;
	struct xfer *x = arg;
	xfer_pump(x);
}

static void xfer_writable(struct an_stream *s, void *arg)
{
	(void)s;
	xfer_pump(arg);
}

static void xfer_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct xfer *x = arg;
	if (x->discard) {
		size_t k = n < sizeof(x->reply) - 1 - x->reply_len ? n : sizeof(x->reply) - 1 - x->reply_len;
		memcpy(x->reply + x->reply_len, p, k);
		x->reply_len += k;
		return;
	}
	crypto_hash_sha256_update(&x->rh, p, n);
	x->recv += (long long)n;
	if (x->want_reset && x->recv >= x->reset_after_recv) {
		x->want_reset = false;
		an_stream_reset(s); /* s and x are gone now */
		return;
	}
	if (x->sent < x->total)
		xfer_pump(x); /* the echo caught up: send on */
}

static void xfer_eof(struct an_stream *s, void *arg)
{
	(void)arg; (void)s;
}

static void xfer_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct xfer *x = arg;
	x->s = NULL;
	x->done = true;
	x->finish(x, err);
}

static const struct an_stream_handler xfer_handler = {
	.on_open = xfer_open, .on_data = xfer_data, .on_eof = xfer_eof,
	.on_close = xfer_close, .on_writable = xfer_writable};

static struct xfer *xfer_start(const char *proto, long long total, void (*finish)(struct xfer *, int))
{
	struct xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->total = total;
	x->finish = finish;
	x->discard = !strcmp(proto, PROTO_DISCARD);
	crypto_hash_sha256_init(&x->sh);
	crypto_hash_sha256_init(&x->rh);
	x->t0 = now_ms();
	if (an_host_stream_open(dialed, proto, &xfer_handler, x, &x->s) < 0) {
		free(x);
		return NULL;
	}
	return x;
}

static void hex32(crypto_hash_sha256_state *st, char out[65])
{
	uint8_t d[32];
	crypto_hash_sha256_final(st, d);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* --ping */
static long ping_seq;
static double ping_rtts[100000];
static double ping_t0;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void ping_next(void);

static void ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	(void)arg; (void)rtt_ms;
	if (err < 0) {
		fail_action(an_strerror(err));
		return;
	}
	double rtt = now_ms() - ping_t0; /* finer than the codec's ms clock */
	ping_rtts[ping_seq] = rtt;
	emit(json_pack("{s:s,s:i,s:f}", "event", "ping", "seq", (int)ping_seq, "rttMs", round3(rtt)));
	ping_seq++;
	ping_next();
}

static void ping_next(void)
{
	if (ping_seq >= O.ping) {
		qsort(ping_rtts, (size_t)O.ping, sizeof(double), cmp_double);
		emit(json_pack("{s:s,s:i,s:i,s:f,s:f,s:f}", "event", "ping-summary", "count", (int)O.ping,
			       "ok", (int)O.ping, "minMs", round3(ping_rtts[0]), "medianMs",
			       round3(ping_rtts[(O.ping - 1) / 2]), "maxMs", round3(ping_rtts[O.ping - 1])));
		next_action();
		return;
	}
	ping_t0 = now_ms();
	int rc = an_ping_once(dialed, (int)(O.timeout * 1000), ping_cb, NULL);
	if (rc < 0)
		fail_action(an_strerror(rc));
}

/* --echo */
static void echo_finish(struct xfer *x, int err)
{
	char sh[65], rh[65];
	hex32(&x->sh, sh);
	hex32(&x->rh, rh);
	double ms = now_ms() - x->t0;
	bool ok = !err && x->recv == x->total && !strcmp(sh, rh);
	json_t *o = json_pack("{s:s,s:I,s:I,s:s,s:s,s:f,s:b}", "event", "echo", "bytes", (json_int_t)x->total,
			      "recvBytes", (json_int_t)x->recv, "sentSha256", sh, "recvSha256", rh, "ms",
			      round3(ms), "ok", ok);
	json_object_set_new(o, "MBps", ms > 0 ? json_real(round3(x->total / 1e6 / (ms / 1000))) : json_null());
	emit(o);
	all_ok &= ok;
	free(x);
	next_action();
}

/* --streams */
static long streams_left, streams_ok;
static double streams_t0;
static json_t *streams_errors;

static void streams_finish(struct xfer *x, int err)
{
	char sh[65], rh[65];
	hex32(&x->sh, sh);
	hex32(&x->rh, rh);
	if (!err && x->recv == x->total && !strcmp(sh, rh))
		streams_ok++;
	else if (json_array_size(streams_errors) < 5)
		json_array_append_new(streams_errors, json_string(err ? an_strerror(err) : "mismatch"));
	free(x);
	if (--streams_left > 0)
		return;
	emit(json_pack("{s:s,s:i,s:i,s:i,s:i,s:f,s:o}", "event", "streams", "count", (int)O.streams,
		       "bytesEach", (int)O.stream_bytes, "ok", (int)streams_ok, "failed",
		       (int)(O.streams - streams_ok), "ms", round3(now_ms() - streams_t0), "errors",
		       streams_errors));
	streams_errors = NULL;
	all_ok &= streams_ok == O.streams;
	next_action();
}

/* --half-close */
static void half_finish(struct xfer *x, int err)
{
	char sh[65], rh[65];
	hex32(&x->sh, sh);
	hex32(&x->rh, rh);
	bool ok = !err && x->recv == x->total && !strcmp(sh, rh);
	emit(json_pack("{s:s,s:I,s:s,s:I,s:s,s:s,s:b}", "event", "half-close", "bytes", (json_int_t)x->total,
		       "writeStatusAfterClose", "closed", "recvAfterClose", (json_int_t)x->recv,
		       "sentSha256", sh, "recvSha256", rh, "ok", ok));
	all_ok &= ok;
	free(x);
	next_action();
}

/* --reset / --remote-reset: then an echo and a ping on the same connection */
static const char *check_event;
static long long check_recv;
static bool check_saw_reset;
static bool check_echo_ok;

static void check_ping_cb(void *arg, int err, uint64_t rtt)
{
	(void)arg; (void)rtt;
	bool ping_ok = err == 0;
	bool alive = an_host_conn_alive(dialed);
	json_t *o;
	bool ok;
	if (!strcmp(check_event, "reset")) {
		ok = alive && check_echo_ok && ping_ok;
		o = json_pack("{s:s,s:I,s:s,s:s,s:b,s:b,s:b}", "event", "reset", "recvBeforeReset",
			      (json_int_t)check_recv, "streamStatus", "reset", "connectionStatus",
			      alive ? "open" : "closed", "echoAfter", check_echo_ok, "pingAfter", ping_ok, "ok", ok);
	} else {
		ok = check_saw_reset && alive && check_echo_ok && ping_ok;
		o = json_pack("{s:s,s:b,s:s,s:s,s:b,s:b,s:b}", "event", "remote-reset", "sawReset",
			      check_saw_reset, "streamStatus", check_saw_reset ? "reset" : "closed",
			      "connectionStatus", alive ? "open" : "closed", "echoAfter", check_echo_ok,
			      "pingAfter", ping_ok, "ok", ok);
	}
	emit(o);
	all_ok &= ok;
	next_action();
}

static void check_echo_finish(struct xfer *x, int err)
{
	char sh[65], rh[65];
	hex32(&x->sh, sh);
	hex32(&x->rh, rh);
	check_echo_ok = !err && x->recv == x->total && !strcmp(sh, rh);
	free(x);
	if (!an_host_conn_alive(dialed) || an_ping_once(dialed, (int)(O.timeout * 1000), check_ping_cb, NULL) < 0)
		check_ping_cb(NULL, AN_ECLOSED, 0);
}

static void check_connection(void)
{
	if (!an_host_conn_alive(dialed) || !xfer_start(PROTO_ECHO, 4096, check_echo_finish)) {
		check_echo_ok = false;
		check_ping_cb(NULL, AN_ECLOSED, 0);
	}
}

static void reset_finish(struct xfer *x, int err)
{
	(void)err;
	check_recv = x->recv;
	free(x);
	check_connection();
}

static void rreset_finish(struct xfer *x, int err)
{
	check_saw_reset = err == AN_ERESET;
	free(x);
	check_connection();
}

/* --discard */
static void discard_finish(struct xfer *x, int err)
{
	double ms = now_ms() - x->t0, secs = ms / 1000;
	long long acked = strtoll(x->reply, NULL, 10);
	bool ok = !err && acked == x->total;
	emit(json_pack("{s:s,s:I,s:I,s:f,s:f,s:f,s:b}", "event", "discard", "bytes", (json_int_t)x->total,
		       "acked", (json_int_t)acked, "ms", round3(ms), "MBps", round3(x->total / 1e6 / secs),
		       "Gbps", round3(x->total * 8 / 1e9 / secs), "ok", ok));
	all_ok &= ok;
	free(x);
	next_action();
}

/* --kad-put-raw / --kad-get-raw: one request on a fresh kad stream, no validation */
static struct an_buf kad_value; /* --kad-value's bytes, read at start */

struct kad_rpc {
	enum an_kad_type type;
	const char *key;
	struct an_buf req;   /* the LP-framed request */
	struct an_buf in;    /* the reply as it arrives (capped) */
	struct an_buf value; /* the reply's record value (copied) */
	bool have_reply, has_record, finished;
	size_t ncloser;
	int reply_err;       /* a reply that did not decode */
};

static void kad_rpc_free(struct kad_rpc *r)
{
	if (!r)
		return;
	an_buf_free(&r->req);
	an_buf_free(&r->in);
	an_buf_free(&r->value);
	free(r);
}

static void kad_finish(struct kad_rpc *r, int err)
{
	const char *reply, *error = NULL;
	json_t *o;
	r->finished = true;
	if (r->have_reply)
		reply = "message";
	else if (r->reply_err)
		reply = "malformed", error = an_strerror(r->reply_err);
	else if (err == AN_ERESET)
		reply = "reset";
	else if (err)
		reply = "error", error = an_strerror(err);
	else
		reply = "none";
	if (r->type == AN_KAD_PUT_VALUE) {
		/* a node that stored the record echoes it (K8); one that refuses resets */
		if (r->have_reply)
			reply = r->has_record && r->value.len == kad_value.len &&
						(!kad_value.len || !memcmp(r->value.data, kad_value.data, kad_value.len))
					? "echo"
					: "other";
		o = json_pack("{s:s,s:s,s:I,s:b,s:s,s:s?}", "event", "kad-put-raw", "key", r->key, "bytes",
			      (json_int_t)kad_value.len, "accepted", !strcmp(reply, "echo"), "reply", reply,
			      "error", error);
	} else {
		json_t *v = r->has_record ? json_stringn((const char *)r->value.data, r->value.len) : NULL;
		o = json_pack("{s:s,s:s,s:o,s:I,s:I,s:s,s:s?}", "event", "kad-get-raw", "key", r->key, "value",
			      v ? v : json_null(), "valueBytes", (json_int_t)(r->has_record ? r->value.len : 0),
			      "closerPeers", (json_int_t)r->ncloser, "reply", reply, "error", error);
	}
	emit(o);
	next_action();
}

/*
 * The request goes out without a FIN: we end the stream only once the reply
 * is in.  js kad-dht's stream loop reads the next request right after
 * writing a reply; a FIN read there is an "unexpected EOF" and it aborts the
 * stream, dropping a reply still queued (a quarter of GET_VALUE answers on
 * a busy node).  kad_node's requests also close only after the reply.
 */
static void kad_open(struct an_stream *s, void *arg)
{
	struct kad_rpc *r = arg;
	if (an_stream_write(s, r->req.data, r->req.len) < 0)
		an_stream_reset(s);
}

static void kad_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct kad_rpc *r = arg;
	const uint8_t *msg;
	size_t msg_len, used;
	struct an_kad_msg m;
	int rc;
	if (r->finished)
		return;
	if (an_buf_append(&r->in, p, n) < 0) {
		r->reply_err = AN_ETOOBIG;
		an_stream_reset(s); /* kad_close reports it */
		return;
	}
	rc = an_lp_get(r->in.data, r->in.len, AN_KAD_MSG_MAX_DEFAULT, &msg, &msg_len, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc == 0)
		rc = an_kad_msg_decode(msg, msg_len, AN_KAD_MSG_MAX_DEFAULT, &m);
	if (rc < 0) {
		r->reply_err = rc;
		an_stream_reset(s);
		return;
	}
	r->have_reply = true;
	r->ncloser = m.ncloser;
	if (m.has_record) {
		r->has_record = true;
		rc = an_buf_append(&r->value, m.record.value.p, m.record.value.len);
	}
	an_kad_msg_free(&m);
	if (rc < 0) {
		r->have_reply = false;
		r->reply_err = rc;
		an_stream_reset(s);
		return;
	}
	/* One reply is all we asked for: drop the stream (a js server may take
	 * up to a second to close its side, and a graceful shutdown would wait
	 * for it); kad_close reports the reply. */
	an_stream_reset(s);
}

static void kad_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct kad_rpc *r = arg;
	if (!r->finished)
		kad_finish(r, err);
	kad_rpc_free(r);
}

static const struct an_stream_handler kad_handler = {
	.on_open = kad_open, .on_data = kad_data, .on_close = kad_close};

/* Build the request of a raw kad action and open its stream; false on failure. */
static bool kad_start(enum an_kad_type type, const char *key)
{
	struct kad_rpc *r = calloc(1, sizeof(*r));
	struct an_kad_msg m;
	struct an_buf body;
	char when[AN_KAD_TIME_LEN + 1];
	struct timespec ts;
	int rc;
	if (!r)
		return false;
	r->type = type;
	r->key = key;
	an_buf_init(&r->req, KAD_VALUE_MAX + 4096);
	an_buf_init(&r->in, AN_KAD_MSG_MAX_DEFAULT + 16);
	an_buf_init(&r->value, AN_KAD_MSG_MAX_DEFAULT);
	an_buf_init(&body, KAD_VALUE_MAX + 4096);
	an_kad_msg_init(&m);
	m.type = type;
	m.has_key = true;
	m.key.p = (const uint8_t *)key;
	m.key.len = strlen(key);
	if (type == AN_KAD_PUT_VALUE) {
		/* K19: timeReceived with a 9-digit fraction, as js writes it */
		clock_gettime(CLOCK_REALTIME, &ts);
		rc = an_kad_time_format((int64_t)ts.tv_sec, (uint32_t)ts.tv_nsec, when);
		if (rc < 0)
			goto out;
		m.has_record = true;
		m.record.key = m.key;
		m.record.value.p = kad_value.data;
		m.record.value.len = kad_value.len;
		m.record.time_received.p = (const uint8_t *)when;
		m.record.time_received.len = strlen(when);
	}
	rc = an_kad_msg_encode(&m, &body);
	if (rc == 0)
		rc = an_lp_put(&r->req, body.data, body.len);
	if (rc == 0)
		rc = an_host_stream_open(dialed, O.kad_protocol, &kad_handler, r, NULL);
out:
	an_kad_msg_free(&m);
	an_buf_free(&body);
	if (rc < 0) {
		/* an_host_stream_open failed before taking r: no on_close follows */
		kad_rpc_free(r);
		return false;
	}
	return true;
}

static void identify_action(void)
{
	struct conn_info *ci = info_of(dialed);
	if (ci && ci->identify) {
		json_t *o = json_pack("{s:s}", "event", "identify");
		json_object_update(o, ci->identify);
		emit(o);
		next_action();
	} else if (!ci || ci->failed) {
		fail_action("identify failed");
	} else {
		identify_waiting = true; /* identify_done comes back here */
	}
}

static void action_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l; (void)revents; (void)w;
	fail_action("timeout");
}

static void serve_done(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l; (void)revents; (void)w;
	an_host_shutdown(host, 1000);
}

static void finish_actions(void)
{
	ev_timer_stop(loop, &action_timer);
	emit(json_pack("{s:s,s:b}", "event", "done", "ok", all_ok));
	if (!all_ok)
		exit_status = AN_EXIT_NEGATIVE;
	/* Without --serve-for, linger a moment: the remote identifies every
	 * new connection itself and its request may still be on the way (js
	 * reports nothing about us if we hang up first). */
	double serve = O.serve_for_set ? O.serve_for : 1.0;
	if (serve <= 0) {
		an_host_shutdown(host, 1000);
		return;
	}
	ev_timer_init(&serve_timer, serve_done, serve, 0);
	ev_timer_start(loop, &serve_timer);
}

static void next_action(void)
{
	ev_timer_stop(loop, &action_timer);
	ev_timer_set(&action_timer, O.timeout, 0);
	ev_timer_start(loop, &action_timer);
	for (;;) {
		int s = stage++;
		switch (s) {
		case A_IDENTIFY:
			if (!O.identify)
				continue;
			current_action = "identify";
			identify_action();
			return;
		case A_PING:
			if (O.ping <= 0)
				continue;
			current_action = "ping";
			ping_seq = 0;
			ping_next();
			return;
		case A_ECHO:
			if (O.echo <= 0)
				continue;
			current_action = "echo";
			if (!xfer_start(PROTO_ECHO, O.echo, echo_finish))
				fail_action("unable to open a stream");
			return;
		case A_STREAMS:
			if (O.streams <= 0)
				continue;
			current_action = "streams";
			streams_left = O.streams;
			streams_ok = 0;
			streams_errors = json_array();
			streams_t0 = now_ms();
			for (long i = 0; i < O.streams; i++) {
				if (!xfer_start(O.stream_protocol, O.stream_bytes, streams_finish)) {
					if (json_array_size(streams_errors) < 5)
						json_array_append_new(streams_errors, json_string("open failed"));
					streams_left--;
				}
			}
			if (streams_left == 0) { /* nothing could be opened */
				streams_left = 1;
				struct xfer *x = calloc(1, sizeof(*x));
				crypto_hash_sha256_init(&x->sh);
				crypto_hash_sha256_init(&x->rh);
				x->total = 1;
				streams_finish(x, AN_ECLOSED);
			}
			return;
		case A_HALF:
			if (!O.half_close)
				continue;
			current_action = "half-close";
			if (!xfer_start(PROTO_ECHO, 64 * 1024, half_finish))
				fail_action("unable to open a stream");
			return;
		case A_RESET: {
			if (!O.reset)
				continue;
			current_action = "reset";
			check_event = "reset";
			struct xfer *x = xfer_start(PROTO_ECHO, 4 * 1024 * 1024, reset_finish);
			if (!x) {
				fail_action("unable to open a stream");
				return;
			}
			x->want_reset = true;
			x->reset_after_recv = 128 * 1024;
			return;
		}
		case A_RRESET:
			if (!O.remote_reset)
				continue;
			current_action = "remote-reset";
			check_event = "remote-reset";
			check_saw_reset = false;
			if (!xfer_start(PROTO_RESET, 16 * 1024 * 1024, rreset_finish))
				fail_action("unable to open a stream");
			return;
		case A_DISCARD:
			if (O.discard <= 0)
				continue;
			current_action = "discard";
			if (!xfer_start(PROTO_DISCARD, O.discard, discard_finish))
				fail_action("unable to open a stream");
			return;
		case A_KAD_PUT:
			if (!O.kad_put)
				continue;
			current_action = "kad-put-raw";
			if (!kad_start(AN_KAD_PUT_VALUE, O.kad_put))
				fail_action("unable to open a stream");
			return;
		case A_KAD_GET:
			if (!O.kad_get)
				continue;
			current_action = "kad-get-raw";
			if (!kad_start(AN_KAD_GET_VALUE, O.kad_get))
				fail_action("unable to open a stream");
			return;
		default:
			finish_actions();
			return;
		}
	}
}

/* ---------------------------------------------------------------- dialing */

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)arg; (void)h;
	if (err < 0) {
		fail_action(err == AN_EMISMATCH ? "peer ID mismatch" : an_strerror(err));
		return;
	}
	an_host_conn_ref(c);
	dialed = c;
	char peer[AN_PEERID_TEXT_MAX], ma[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8];
	peer_text(an_host_conn_peer(c), peer);
	snprintf(ma, sizeof(ma), "%s/p2p/%s", an_host_conn_remote_addr(c), peer);
	emit(json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:b}", "event", "connected", "peerId", self_id, "remotePeer",
		       peer, "remoteAddr", ma, "direction", "outbound", "ms", round3(now_ms() - t_dial),
		       "relayed", an_host_conn_relayed(c)));
	stage = A_IDENTIFY;
	next_action();
}

/* ---------------------------------------------------------------- relaying */

#define CIRCUIT "/p2p-circuit"

static struct an_relay_stop_service stop_svc;
static struct an_host_conn *relay_conn; /* --reserve: the connection holding the slot */
static ev_timer refresh_timer;
static bool reserved_once;
static struct an_peerid circuit_target; /* dialing through a relay: the peer behind it */

/*
 * Name a relayed connection RELAYADDR/p2p/RELAY/p2p-circuit (host.h's
 * convention), from rc, the connection to the relay; AN_ETOOBIG if it does
 * not fit out.
 */
static int circuit_remote_text(struct an_host_conn *rc, char *out, size_t cap)
{
	char relay[AN_PEERID_TEXT_MAX];
	peer_text(an_host_conn_peer(rc), relay);
	int n = snprintf(out, cap, "%s/p2p/%s" CIRCUIT, an_host_conn_remote_addr(rc), relay);
	return n < 0 || (size_t)n >= cap ? AN_ETOOBIG : 0;
}

static void relay_fail(const char *action, const char *msg)
{
	current_action = action;
	fail_action(msg);
}

/* The stop service: every circuit the relay opens to us becomes an inbound
 * relayed connection (on_connection reports it and identifies the peer). */
static bool stop_accept(void *arg, struct an_stream *s, const struct an_peerid *src,
			const struct an_relay_limit *limit, const struct an_stream_handler **handler,
			void **handler_arg)
{
	(void)arg;
	char remote[AN_HOST_ADDR_TEXT_MAX], peer[AN_PEERID_TEXT_MAX];
	if (circuit_remote_text(an_stream_conn(s), remote, sizeof(remote)) < 0)
		return false;
	peer_text(src, peer);
	if (!O.quiet)
		emit(json_pack("{s:s,s:s,s:I,s:I}", "event", "circuit", "peerId", peer, "limitData",
			       (json_int_t)(limit->has_data ? limit->data : 0), "limitDurationS",
			       (json_int_t)(limit->has_duration ? limit->duration : 0)));
	return an_host_conn_over_stream(host, s, false, src, remote, (int)(O.timeout * 1000), NULL, NULL,
					handler, handler_arg) == 0;
}

static void reserve_cb(void *arg, int err, const struct an_relay_reservation_info *info);

static void refresh_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l; (void)w; (void)revents;
	if (!relay_conn || !an_host_conn_alive(relay_conn)) {
		relay_fail("reserve", "connection to the relay lost");
		return;
	}
	int rc = an_relay_reserve(relay_conn, (int)(O.timeout * 1000), reserve_cb, NULL);
	if (rc < 0)
		relay_fail("reserve", an_strerror(rc));
}

static void reserve_cb(void *arg, int err, const struct an_relay_reservation_info *info)
{
	(void)arg;
	if (err < 0) {
		relay_fail("reserve", an_strerror(err));
		return;
	}
	if (info->status != AN_RELAY_OK) {
		relay_fail("reserve", an_relay_status_name(info->status));
		return;
	}
	/* Refresh at three quarters of the slot's life (js: 5 min before expiry). */
	double left = (double)info->expire - ev_now(loop);
	ev_timer_stop(loop, &refresh_timer);
	ev_timer_set(&refresh_timer, left > 4 ? left * 3 / 4 : 1, 0);
	ev_timer_start(loop, &refresh_timer);
	if (reserved_once)
		return;
	reserved_once = true;
	json_t *a = json_array();
	for (size_t i = 0; i < info->naddrs; i++) {
		char full[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 32];
		snprintf(full, sizeof(full), "%s" CIRCUIT "/p2p/%s", info->addrs[i], self_id);
		json_array_append_new(a, json_string(full));
	}
	json_t *o = json_pack("{s:s,s:s,s:o,s:I}", "event", "reserved", "peerId", self_id, "addrs", a,
			      "expire", (json_int_t)info->expire);
	if (info->limit.present)
		json_object_set_new(o, "limit",
				    json_pack("{s:I,s:I}", "data",
					      (json_int_t)(info->limit.has_data ? info->limit.data : 0),
					      "durationS",
					      (json_int_t)(info->limit.has_duration ? info->limit.duration : 0)));
	emit(o);
}

static void reserve_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h; (void)arg;
	if (err < 0) {
		relay_fail("reserve", err == AN_EMISMATCH ? "peer ID mismatch" : an_strerror(err));
		return;
	}
	an_host_conn_ref(c);
	relay_conn = c;
	int rc = an_relay_reserve(c, (int)(O.timeout * 1000), reserve_cb, NULL);
	if (rc < 0)
		relay_fail("reserve", an_strerror(rc));
}

static void start_reserve(void)
{
	stop_svc.accept = stop_accept;
	stop_svc.timeout_ms = (int)(O.timeout * 1000);
	ev_timer_init(&refresh_timer, refresh_cb, 1, 0);
	int rc = an_relay_stop_serve(host, &stop_svc);
	if (rc == 0)
		rc = an_host_dial(host, O.reserve, (int)(O.timeout * 1000), reserve_dial_cb, NULL);
	if (rc < 0)
		relay_fail("reserve", an_strerror(rc));
}

/* The relay put us through: upgrade over the circuit as the dialer. */
static void circuit_connect_cb(void *arg, int err, uint32_t status, struct an_stream *s,
			       const struct an_relay_limit *limit)
{
	(void)arg; (void)limit;
	const struct an_stream_handler *handler;
	void *handler_arg;
	char remote[AN_HOST_ADDR_TEXT_MAX];
	int rc;
	if (err < 0) {
		fail_action(an_strerror(err));
		return;
	}
	if (status != AN_RELAY_OK) {
		fail_action(an_relay_status_name(status));
		return;
	}
	rc = circuit_remote_text(an_stream_conn(s), remote, sizeof(remote));
	if (rc == 0)
		rc = an_host_conn_over_stream(host, s, true, &circuit_target, remote, (int)(O.timeout * 1000),
					      dial_cb, NULL, &handler, &handler_arg);
	if (rc < 0) {
		an_stream_reset(s);
		fail_action(an_strerror(rc));
		return;
	}
	an_relay_stream_redirect(s, handler, handler_arg);
}

static void circuit_relay_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h; (void)arg;
	if (err < 0) {
		fail_action(err == AN_EMISMATCH ? "peer ID mismatch" : an_strerror(err));
		return;
	}
	int rc = an_relay_connect(c, &circuit_target, (int)(O.timeout * 1000), circuit_connect_cb, NULL,
				  NULL, NULL);
	if (rc < 0)
		fail_action(an_strerror(rc));
}

/*
 * Dial RELAYADDR/p2p/RELAY/p2p-circuit/p2p/TARGET: connect to the relay
 * (or reuse a connection to it), CONNECT to TARGET, then Noise + yamux over
 * the circuit; dial_cb reports the relayed connection.
 */
static int start_circuit_dial(const char *ma, const char *circuit)
{
	char relay[AN_HOST_ADDR_TEXT_MAX];
	const char *target = circuit + strlen(CIRCUIT);
	size_t n = (size_t)(circuit - ma);
	if (n >= sizeof(relay) || strncmp(target, "/p2p/", 5) != 0 ||
	    an_peerid_parse(target + 5, &circuit_target) < 0)
		return AN_EMALFORMED;
	memcpy(relay, ma, n);
	relay[n] = '\0';
	return an_host_dial(host, relay, (int)(O.timeout * 1000), circuit_relay_cb, NULL);
}

static void start_dial(const char *ma)
{
	current_action = "dial";
	t_dial = now_ms();
	ev_timer_set(&action_timer, O.timeout, 0);
	ev_timer_start(loop, &action_timer);
	const char *circuit = strstr(ma, CIRCUIT);
	int rc = circuit ? start_circuit_dial(ma, circuit)
			 : an_host_dial(host, ma, (int)(O.timeout * 1000), dial_cb, NULL);
	if (rc < 0)
		fail_action(an_strerror(rc));
}

static void dial_file_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)revents;
	char buf[512];
	FILE *f = fopen(O.dial + 1, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (!n)
		return;
	ev_timer_stop(l, w);
	start_dial(buf);
}

static void hard_deadline(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)revents; (void)w;
	cli_warn("hard deadline reached");
	exit_status = AN_EXIT_SYSTEM;
	ev_break(l, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)l; (void)revents; (void)w;
	an_host_shutdown(host, 1000);
}

/* ---------------------------------------------------------------- main */

static void host_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

static long long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < 0) {
		cli_warn("invalid %s '%s'", what, s);
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	return v;
}

static double parse_secs(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || v < 0) {
		cli_warn("invalid %s '%s'", what, s);
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	return v;
}

static struct an_privkey *load_or_create_key(const char *path)
{
	struct an_privkey *k = NULL;
	int rc;
	if (!path) {
		rc = an_privkey_generate(&k);
	} else {
		rc = an_privkey_load(path, &k);
		if (rc == -ENOENT) {
			rc = an_privkey_generate(&k);
			if (rc == 0)
				rc = an_privkey_save(k, path, false);
		}
	}
	if (rc < 0)
		cli_die(cli_exit_status(rc), "unable to load key '%s': %s", path ? path : "", an_strerror(rc));
	return k;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"listen", required_argument, NULL, 'l'},
		{"dial", required_argument, NULL, 'd'},
		{"reserve", required_argument, NULL, 'Z'},
		{"dcutr", no_argument, NULL, 'u'},
		{"dcutr-addr", required_argument, NULL, 'A'},
		{"dcutr-prime", required_argument, NULL, 'T'},
		{"ping", required_argument, NULL, 'p'},
		{"identify", no_argument, NULL, 'i'},
		{"echo", required_argument, NULL, 'e'},
		{"streams", required_argument, NULL, 'S'},
		{"stream-bytes", required_argument, NULL, 'B'},
		{"half-close", no_argument, NULL, 'H'},
		{"reset", no_argument, NULL, 'r'},
		{"remote-reset", no_argument, NULL, 'R'},
		{"discard", required_argument, NULL, 'D'},
		{"serve-for", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"agent", required_argument, NULL, 'a'},
		{"quiet", no_argument, NULL, 'q'},
		{"stream-protocol", required_argument, NULL, 'P'},
		{"max-conns", required_argument, NULL, 'C'},
		{"max-streams", required_argument, NULL, 'M'},
		{"max-pending", required_argument, NULL, 'N'},
		{"kad-put-raw", required_argument, NULL, 'U'},
		{"kad-value", required_argument, NULL, 'V'},
		{"kad-get-raw", required_argument, NULL, 'G'},
		{"kad-protocol", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	cli_init(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	O.timeout = 30;
	O.stream_bytes = 4096;
	O.stream_protocol = PROTO_ECHO;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': O.key = optarg; break;
		case 'l':
			if (O.n_listen < 8)
				O.listen[O.n_listen++] = optarg;
			break;
		case 'd': O.dial = optarg; break;
		case 'Z': O.reserve = optarg; break;
		case 'u': O.dcutr = true; break;
		case 'A':
			if (O.n_dcutr_addr >= AN_DCUTR_MAX_EXTRA_ADDRS)
				cli_usage_error(USAGE, "too many --dcutr-addr");
			O.dcutr_addr[O.n_dcutr_addr++] = optarg;
			break;
		case 'T': O.dcutr_prime = (long)parse_num(optarg, "--dcutr-prime"); break;
		case 'p': O.ping = (long)parse_num(optarg, "--ping"); break;
		case 'i': O.identify = true; break;
		case 'e': O.echo = parse_num(optarg, "--echo"); break;
		case 'S': O.streams = (long)parse_num(optarg, "--streams"); break;
		case 'B': O.stream_bytes = (long)parse_num(optarg, "--stream-bytes"); break;
		case 'H': O.half_close = true; break;
		case 'r': O.reset = true; break;
		case 'R': O.remote_reset = true; break;
		case 'D': O.discard = parse_num(optarg, "--discard"); break;
		case 's': O.serve_for = parse_secs(optarg, "--serve-for"); O.serve_for_set = true; break;
		case 't': O.timeout = parse_secs(optarg, "--timeout"); break;
		case 'a': O.agent = optarg; break;
		case 'q': O.quiet = true; break;
		case 'P': O.stream_protocol = optarg; break;
		case 'C': O.max_conns = (long)parse_num(optarg, "--max-conns"); break;
		case 'M': O.max_streams = (long)parse_num(optarg, "--max-streams"); break;
		case 'N': O.max_pending = (long)parse_num(optarg, "--max-pending"); break;
		case 'U': O.kad_put = optarg; break;
		case 'V': O.kad_value = optarg; break;
		case 'G': O.kad_get = optarg; break;
		case 'K': O.kad_protocol = optarg; break;
		case 'h': cli_usage(USAGE, AN_EXIT_OK);
		default:
			cli_warn("unknown or incomplete option '%s'", argv[optind - 1]);
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
	}
	if (optind != argc || O.ping > 100000 || O.streams > MAX_TEST_STREAMS ||
	    !O.kad_put != !O.kad_value || ((O.kad_put || O.kad_get) && !O.dial)) {
		cli_warn("bad arguments");
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	if (!O.kad_protocol)
		O.kad_protocol = PROTO_KAD;
	an_buf_init(&kad_value, KAD_VALUE_MAX);
	if (O.kad_value) {
		int vrc = an_read_file(O.kad_value, &kad_value);
		if (vrc < 0)
			cli_die(cli_exit_status(vrc), "unable to read '%s': %s", O.kad_value, an_strerror(vrc));
	}
	loop = ev_default_loop(0);
	struct an_privkey *key = load_or_create_key(O.key);
	struct an_host_config cfg = {0};
	cfg.key = key;
	cfg.agent_version = O.agent ? O.agent : "an-testpeer/0.1.0";
	cfg.log = host_log;
	cfg.limits.max_streams_per_conn = O.max_streams ? (size_t)O.max_streams : 2 * MAX_TEST_STREAMS;
	cfg.limits.max_conns = (size_t)O.max_conns;
	cfg.limits.max_pending = (size_t)O.max_pending;
	int rc = an_host_new(loop, &cfg, &host);
	if (rc == 0)
		rc = an_ping_service_register(host);
	if (rc == 0)
		rc = an_identify_service_register(host);
	if (rc == 0)
		rc = an_host_handle(host, PROTO_ECHO, &echo_handler, (void *)PROTO_ECHO);
	if (rc == 0)
		rc = an_host_handle(host, PROTO_DISCARD, &discard_handler, (void *)PROTO_DISCARD);
	if (rc == 0)
		rc = an_host_handle(host, PROTO_RESET, &reset_handler, (void *)PROTO_RESET);
	if (rc < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to start: %s", an_strerror(rc));
	an_host_on_connection(host, on_connection, NULL);
	if (O.dcutr) {
		struct an_dcutr_config dc = {.attempt_ms = (int)(O.timeout * 1000) / 3,
					     .prime_ttl = (int)O.dcutr_prime, .report = dcutr_report};
		rc = an_dcutr_service_new(host, &dc, &dcutr_svc);
		for (int i = 0; rc == 0 && i < O.n_dcutr_addr; i++)
			if ((rc = an_dcutr_service_add_addr(dcutr_svc, O.dcutr_addr[i])) < 0)
				cli_die(AN_EXIT_USAGE, "bad --dcutr-addr '%s': %s", O.dcutr_addr[i],
					an_strerror(rc));
		if (rc < 0)
			cli_die(AN_EXIT_SYSTEM, "unable to start DCUtR: %s", an_strerror(rc));
	}
	an_peerid_format(an_host_peer_id(host), self_id, sizeof(self_id));
	for (int i = 0; i < O.n_listen; i++) {
		rc = an_host_listen(host, O.listen[i]);
		if (rc < 0)
			cli_die(AN_EXIT_SYSTEM, "unable to listen on '%s': %s", O.listen[i], an_strerror(rc));
	}
	if (O.n_listen) {
		const char *addrs[16];
		size_t n = an_host_addrs(host, addrs, 16);
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			char full[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8];
			snprintf(full, sizeof(full), "%s/p2p/%s", addrs[i], self_id);
			json_array_append_new(a, json_string(full));
		}
		emit(json_pack("{s:s,s:s,s:o}", "event", "listening", "peerId", self_id, "addrs", a));
	}
	ev_timer_init(&action_timer, action_timeout, O.timeout, 0);
	ev_signal sigterm, sigint;
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	/* the hard deadline of the whole run */
	double hard = (O.serve_for_set ? O.serve_for : (O.dial ? 0 : 60)) + (O.dial ? 8 * O.timeout + 30 : 10);
	ev_timer_init(&hard_timer, hard_deadline, hard, 0);
	ev_timer_start(loop, &hard_timer);
	if (O.reserve)
		start_reserve();
	if (O.dial && O.dial[0] == '@') {
		ev_timer_init(&dial_file_timer, dial_file_cb, 0.02, 0.02);
		ev_timer_start(loop, &dial_file_timer);
	} else if (O.dial) {
		start_dial(O.dial);
	} else {
		double serve = O.serve_for_set ? O.serve_for : 60;
		ev_timer_init(&serve_timer, serve_done, serve, 0);
		ev_timer_start(loop, &serve_timer);
	}
	ev_run(loop, 0);
	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns[i].c)
			an_host_conn_unref(conns[i].c);
		json_decref(conns[i].identify);
	}
	if (dialed)
		an_host_conn_unref(dialed);
	if (relay_conn)
		an_host_conn_unref(relay_conn);
	ev_timer_stop(loop, &refresh_timer);
	an_dcutr_service_free(dcutr_svc);
	an_host_free(host);
	an_privkey_free(key);
	an_buf_free(&kad_value);
	return cli_finish(exit_status);
}
