/*
 * an-tlsdial: dial a peer over /tls/1.0.0 (the host's dial_tls) for
 * tests/interop/tls.bats, then ping it, ask its identify, and echo BYTES
 * (default 1 MiB) over /an/test/echo/1.0.0, checking the bytes.
 *
 *   an-tlsdial MULTIADDR/p2p/ID [BYTES]
 *
 * One JSON line per step: {"event":"connected","remotePeer":...},
 * {"event":"ping","rtt":MS}, {"event":"identify","agentVersion":...,
 * "protocols":N}, {"event":"echo","bytes":N,"ok":true|false}, or
 * {"event":"error","step":...,"message":...}.  Exit 0 when all worked,
 * 1 on a failed step, 2 on bad usage.  The whole run is bounded (30 s).
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

#include <ev.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_PROTO "/an/test/echo/1.0.0"
#define STEP_MS 10000

static struct {
	struct ev_loop *loop;
	struct an_host *h;
	struct an_host_conn *conn;
	size_t bytes, sent, got;
	bool bad;
	int rc;
} R = {.rc = 1};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 11));
}

static void finish(int rc)
{
	R.rc = rc;
	an_host_shutdown(R.h, 1000);
}

static void fail(const char *step, int err)
{
	printf("{\"event\":\"error\",\"step\":\"%s\",\"message\":\"%s\"}\n", step, an_strerror(err));
	finish(1);
}

static void echo_pump(struct an_stream *s)
{
	uint8_t buf[16384];
	while (R.sent < R.bytes && an_stream_queued(s) < AN_STREAM_QUEUE_HIGH) {
		size_t n = R.bytes - R.sent < sizeof(buf) ? R.bytes - R.sent : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(R.sent + i);
		if (an_stream_write(s, buf, n) < 0)
			return;
		R.sent += n;
	}
	if (R.sent == R.bytes)
		an_stream_close_write(s);
}

static void echo_open(struct an_stream *s, void *arg)
{
	(void)arg;
	echo_pump(s);
}

static void echo_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s, (void)arg;
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(R.got + i))
			R.bad = true;
	R.got += n;
}

static void echo_writable(struct an_stream *s, void *arg)
{
	(void)arg;
	echo_pump(s);
}

static void echo_close(struct an_stream *s, int err, void *arg)
{
	(void)s, (void)arg;
	bool ok = err == 0 && R.got == R.bytes && !R.bad;
	printf("{\"event\":\"echo\",\"bytes\":%zu,\"recvBytes\":%zu,\"ok\":%s}\n", R.bytes, R.got,
	       ok ? "true" : "false");
	finish(ok ? 0 : 1);
}

static const struct an_stream_handler echo_handler = {
	.on_open = echo_open, .on_data = echo_data, .on_close = echo_close, .on_writable = echo_writable,
};

static void identified(void *arg, int err, const struct an_identify *m)
{
	(void)arg;
	if (err < 0 || !m) {
		fail("identify", err);
		return;
	}
	printf("{\"event\":\"identify\",\"agentVersion\":\"%s\",\"protocols\":%zu}\n",
	       m->agent_version ? m->agent_version : "", m->n_protocols);
	int rc = an_host_stream_open(R.conn, ECHO_PROTO, &echo_handler, NULL, NULL);
	if (rc < 0)
		fail("echo", rc);
}

static void pinged(void *arg, int err, uint64_t rtt)
{
	(void)arg;
	if (err < 0) {
		fail("ping", err);
		return;
	}
	printf("{\"event\":\"ping\",\"rtt\":%llu}\n", (unsigned long long)rtt);
	int rc = an_identify_request(R.conn, STEP_MS, identified, NULL);
	if (rc < 0)
		fail("identify", rc);
}

static void dialed(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h, (void)arg;
	char id[AN_PEERID_TEXT_MAX];
	if (err < 0) {
		fail("dial", err);
		return;
	}
	R.conn = c;
	an_host_conn_ref(c);
	an_peerid_format(an_host_conn_peer(c), id, sizeof(id));
	printf("{\"event\":\"connected\",\"remotePeer\":\"%s\"}\n", id);
	int rc = an_ping_once(c, STEP_MS, pinged, NULL);
	if (rc < 0)
		fail("ping", rc);
}

static void deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	printf("{\"event\":\"error\",\"step\":\"deadline\",\"message\":\"30 s passed\"}\n");
	R.rc = 1;
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	struct an_privkey *k = NULL;
	ev_timer t;
	if (argc < 2 || argc > 3) {
		fputs("Usage: an-tlsdial MULTIADDR/p2p/ID [BYTES]\n", stderr);
		return 2;
	}
	R.bytes = argc == 3 ? strtoul(argv[2], NULL, 10) : 1 << 20;
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || an_privkey_generate(&k) < 0)
		return 4;
	R.loop = ev_default_loop(0);
	struct an_host_config cfg = {.key = k, .agent_version = "c-tlsdial", .dial_tls = true};
	if (an_host_new(R.loop, &cfg, &R.h) < 0 || an_ping_service_register(R.h) < 0 ||
	    an_identify_service_register(R.h) < 0)
		return 4;
	int rc = an_host_dial(R.h, argv[1], STEP_MS, dialed, NULL);
	if (rc < 0) {
		fprintf(stderr, "an-tlsdial: unable to dial '%s': %s\n", argv[1], an_strerror(rc));
		return 2;
	}
	ev_timer_init(&t, deadline, 30, 0);
	ev_timer_start(R.loop, &t);
	ev_unref(R.loop);
	ev_run(R.loop, 0);
	if (R.conn)
		an_host_conn_unref(R.conn);
	an_host_free(R.h);
	an_privkey_free(k);
	fflush(stdout);
	return R.rc;
}
