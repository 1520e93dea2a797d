/*
 * throughput: single-stream throughput, C dialer on the libev host - the C
 * half of bench/js/throughput.mjs, measured the same way.  One connection to
 * --target; per run one /an/test/discard/1.0.0 stream carrying --mib MiB one
 * way (a fixed 64 KiB random block, so the PRNG is not measured).  The
 * listener answers with the byte count after our FIN; the clock runs from
 * the first write (stream negotiated) to that answer, so every byte has
 * crossed Noise and yamux (flow control included) and been read.  Runs
 * reuse the connection with a fresh stream each, as the js script does.
 *
 *   throughput --target MULTIADDR [--mib 256] [--runs 3]
 *
 * Prints one JSON line:
 *   {"bench":"throughput","impl":"c","listener":"external","mib":..,"runs":..,
 *    "gbps":median,"gbpsBest":..}
 * Exit 0, 2 on usage, 4 on a failed dial or transfer or the deadline.
 */
#include "crypto/key.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTO_DISCARD "/an/test/discard/1.0.0"
#define CHUNK (64 * 1024)
#define MAX_RUNS 100
#define DEADLINE_S 600.0

static const char USAGE[] = "usage: throughput --target MULTIADDR [--mib N] [--runs R]\n";

static struct ev_loop *loop;
static struct an_host *host;
static struct an_host_conn *conn;
static uint8_t block[CHUNK];
static long runs, run;
static long long total, sent;
static double t0, gbps[MAX_RUNS], secs_of[MAX_RUNS];
static char reply[32];
static size_t reply_len;
static bool closed_write;
static int status;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *msg)
{
	fprintf(stderr, "throughput: run %ld: %s\n", run + 1, msg);
	status = 4;
	ev_break(loop, EVBREAK_ALL);
}

static void pump(struct an_stream *s)
{
	while (sent < total && an_stream_queued(s) < AN_STREAM_QUEUE_HIGH) {
		size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
		if (an_stream_write(s, block, n) < 0) {
			an_stream_reset(s);
			return;
		}
		sent += (long long)n;
	}
	if (sent >= total && !closed_write) {
		closed_write = true;
		an_stream_close_write(s);
	}
}

static void x_open(struct an_stream *s, void *arg)
{
	(void)arg;
	t0 = now_s();
	pump(s);
}

static void x_writable(struct an_stream *s, void *arg)
{
	(void)arg;
	pump(s);
}

static void x_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg; (void)s;
	size_t room = sizeof(reply) - 1 - reply_len;
	size_t k = n < room ? n : room;
	memcpy(reply + reply_len, p, k);
	reply_len += k;
	reply[reply_len] = '\0';
}

static void x_eof(struct an_stream *s, void *arg)
{
	(void)arg; (void)s;
}

static void start_run(void);

static void x_close(struct an_stream *s, int err, void *arg)
{
	(void)arg; (void)s;
	double secs = now_s() - t0;
	long long acked = strtoll(reply, NULL, 10);
	if (err < 0) {
		fail(an_strerror(err));
		return;
	}
	if (acked != total) {
		char msg[96];
		snprintf(msg, sizeof(msg), "listener acknowledged %lld of %lld bytes", acked, total);
		fail(msg);
		return;
	}
	secs_of[run] = secs;
	gbps[run++] = (double)total * 8 / 1e9 / secs;
	start_run();
}

static const struct an_stream_handler xfer = {.on_open = x_open, .on_data = x_data, .on_eof = x_eof,
					      .on_close = x_close, .on_writable = x_writable};

static void start_run(void)
{
	if (run == runs) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	sent = 0;
	reply_len = 0;
	reply[0] = '\0';
	closed_write = false;
	int rc = an_host_stream_open(conn, PROTO_DISCARD, &xfer, NULL, NULL);
	if (rc < 0)
		fail(an_strerror(rc));
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)arg; (void)h;
	if (err < 0) {
		fail(an_strerror(err));
		return;
	}
	an_host_conn_ref(c);
	conn = c;
	start_run();
}

static void deadline_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l; (void)revents; (void)w;
	fail("deadline passed");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static long parse_count(const char *s, const char *name, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
		fprintf(stderr, "throughput: invalid --%s '%s'\n%s", name, s, USAGE);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'}, {"mib", required_argument, NULL, 'm'},
		{"runs", required_argument, NULL, 'r'},   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *target = NULL;
	long mib = 256;
	runs = 3;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't': target = optarg; break;
		case 'm': mib = parse_count(optarg, "mib", 1L << 20); break;
		case 'r': runs = parse_count(optarg, "runs", MAX_RUNS); break;
		case 'h': fputs(USAGE, stdout); return 0;
		default: fputs(USAGE, stderr); return 2;
		}
	}
	if (!target || optind != argc) {
		fputs(USAGE, stderr);
		return 2;
	}
	total = (long long)mib * 1024 * 1024;
	signal(SIGPIPE, SIG_IGN);

	struct an_privkey *key = NULL;
	loop = ev_default_loop(0);
	if (sodium_init() < 0 || an_privkey_generate(&key) < 0 || !loop) {
		fprintf(stderr, "throughput: unable to start\n");
		return 4;
	}
	randombytes_buf(block, sizeof(block));
	struct an_host_config cfg = {.key = key, .agent_version = "an-bench/throughput"};
	int rc = an_host_new(loop, &cfg, &host);
	/* the listener identifies us (as js does): answer it */
	if (rc == 0)
		rc = an_identify_service_register(host);
	if (rc == 0)
		rc = an_ping_service_register(host);
	if (rc == 0)
		rc = an_host_dial(host, target, 10000, dial_cb, NULL);
	if (rc < 0) {
		fprintf(stderr, "throughput: unable to start: %s\n", an_strerror(rc));
		return 4;
	}
	ev_timer deadline;
	ev_timer_init(&deadline, deadline_cb, DEADLINE_S, 0);
	ev_timer_start(loop, &deadline);
	ev_run(loop, 0);

	if (status == 0) {
		double best = 0;
		char each[MAX_RUNS * 16] = "";
		size_t len = 0;
		for (long i = 0; i < runs; i++) {
			best = gbps[i] > best ? gbps[i] : best;
			len += (size_t)snprintf(each + len, sizeof(each) - len, "%s%.3f", i ? "," : "", secs_of[i]);
		}
		qsort(gbps, (size_t)runs, sizeof(gbps[0]), cmp_double);
		/* secsEach in run order: a slow later run on the same connection shows here */
		printf("{\"bench\":\"throughput\",\"impl\":\"c\",\"listener\":\"external\",\"mib\":%ld,"
		       "\"runs\":%ld,\"gbps\":%.3f,\"gbpsBest\":%.3f,\"secsEach\":[%s]}\n",
		       mib, runs, gbps[(runs - 1) / 2], best, each);
		if (fflush(stdout) != 0)
			status = 4;
	}
	if (conn) {
		an_host_conn_close(conn);
		an_host_conn_unref(conn);
	}
	an_host_free(host);
	an_privkey_free(key);
	return status;
}
