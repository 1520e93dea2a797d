/*
 * conn_ping: connection setup + first ping, C dialer on the libev host - the
 * C half of bench/js/conn_ping.mjs, measured the same way inside one
 * process (no process start-up in the samples).  N times: dial a fresh
 * connection to --target (TCP, multistream-select, Noise XX,
 * multistream-select, yamux), ping once over it (/ipfs/ping/1.0.0 on a new
 * stream), close it; one sample is the wall time from the dial call to the
 * ping's answer.  Like the js dialer, this host serves identify and ping and
 * asks every new connection for its identify in the background (--no-identify
 * leaves that out).  Warm-up dials are not counted.
 *
 *   conn_ping --target MULTIADDR [--n 200] [--warmup 10] [--no-identify]
 *
 * Prints one JSON line:
 *   {"bench":"conn_ping","impl":"c","listener":"external","n":..,"medianMs":..,
 *    "p99Ms":..,"meanMs":..,"minMs":..,"identify":true}
 * Exit 0, 2 on usage, 4 when a dial or ping fails or the deadline passes.
 */
#include "crypto/key.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_N 100000
#define STEP_TIMEOUT_MS 10000 /* js: AbortSignal.timeout(10_000) per dial and ping */
#define DEADLINE_S 300.0

static const char USAGE[] = "usage: conn_ping --target MULTIADDR [--n N] [--warmup W] [--no-identify]\n";

static struct ev_loop *loop;
static struct an_host *host;
static const char *target;
static long n_total, warmup, done_count;
static double *samples;
static double t0;
static struct an_host_conn *cur;
static ev_idle next_watcher;
static int status;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *what, int err)
{
	fprintf(stderr, "conn_ping: %s failed after %ld samples: %s\n", what, done_count, an_strerror(err));
	status = 4;
	ev_break(loop, EVBREAK_ALL);
}

static void identify_cb(void *arg, int err, const struct an_identify *m)
{
	(void)arg; (void)err; (void)m;
	/* background identify, as js runs on every connection; its result is not measured */
}

static void on_connection(struct an_host_conn *c, void *arg)
{
	(void)arg;
	an_identify_request(c, AN_IDENTIFY_TIMEOUT_MS, identify_cb, NULL);
}

static void ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	(void)arg; (void)rtt_ms;
	if (err < 0) {
		fail("ping", err);
		return;
	}
	double ms = now_ms() - t0;
	if (done_count >= warmup)
		samples[done_count - warmup] = ms;
	done_count++;
	an_host_conn_close(cur);
	an_host_conn_unref(cur);
	cur = NULL;
	ev_idle_start(loop, &next_watcher); /* next dial outside this callback */
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)arg; (void)h;
	if (err < 0) {
		fail("dial", err);
		return;
	}
	an_host_conn_ref(c);
	cur = c;
	int rc = an_ping_once(c, STEP_TIMEOUT_MS, ping_cb, NULL);
	if (rc < 0)
		fail("ping", rc);
}

static void next_dial(struct ev_loop *l, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(l, w);
	if (done_count == warmup + n_total) {
		ev_break(l, EVBREAK_ALL);
		return;
	}
	t0 = now_ms();
	int rc = an_host_dial(host, target, STEP_TIMEOUT_MS, dial_cb, NULL);
	if (rc < 0)
		fail("dial", rc);
}

static void deadline_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)revents; (void)w;
	fprintf(stderr, "conn_ping: deadline of %.0f s passed\n", DEADLINE_S);
	status = 4;
	ev_break(l, EVBREAK_ALL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The js scripts' percentile: the ceil(p% * n)-th smallest. */
static double percentile(const double *sorted, long n, double p)
{
	long i = (long)ceil(p / 100.0 * (double)n) - 1;
	if (i < 0)
		i = 0;
	return sorted[i < n ? i : n - 1];
}

static long parse_count(const char *s, const char *name, long min)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > MAX_N) {
		fprintf(stderr, "conn_ping: invalid --%s '%s'\n%s", name, s, USAGE);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'}, {"n", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'}, {"no-identify", no_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	bool identify = true;
	n_total = 200;
	warmup = 10;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't': target = optarg; break;
		case 'n': n_total = parse_count(optarg, "n", 1); break;
		case 'w': warmup = parse_count(optarg, "warmup", 0); break;
		case 'I': identify = false; break;
		case 'h': fputs(USAGE, stdout); return 0;
		default: fputs(USAGE, stderr); return 2;
		}
	}
	if (!target || optind != argc) {
		fputs(USAGE, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	struct an_privkey *key = NULL;
	int rc = an_privkey_generate(&key);
	samples = calloc((size_t)n_total, sizeof(*samples));
	loop = ev_default_loop(0);
	if (rc < 0 || !samples || !loop) {
		fprintf(stderr, "conn_ping: unable to start\n");
		return 4;
	}
	struct an_host_config cfg = {.key = key, .agent_version = "an-bench/conn_ping"};
	rc = an_host_new(loop, &cfg, &host);
	if (rc == 0)
		rc = an_ping_service_register(host);
	if (rc == 0)
		rc = an_identify_service_register(host);
	if (rc < 0) {
		fprintf(stderr, "conn_ping: unable to start the host: %s\n", an_strerror(rc));
		return 4;
	}
	if (identify)
		an_host_on_connection(host, on_connection, NULL);

	ev_timer deadline;
	ev_timer_init(&deadline, deadline_cb, DEADLINE_S, 0);
	ev_timer_start(loop, &deadline);
	ev_idle_init(&next_watcher, next_dial);
	ev_idle_start(loop, &next_watcher);
	ev_run(loop, 0);

	if (status == 0) {
		double sum = 0;
		for (long i = 0; i < n_total; i++)
			sum += samples[i];
		qsort(samples, (size_t)n_total, sizeof(*samples), cmp_double);
		printf("{\"bench\":\"conn_ping\",\"impl\":\"c\",\"listener\":\"external\",\"n\":%ld,"
		       "\"medianMs\":%.3f,\"p99Ms\":%.3f,\"meanMs\":%.3f,\"minMs\":%.3f,\"identify\":%s}\n",
		       n_total, percentile(samples, n_total, 50), percentile(samples, n_total, 99),
		       sum / (double)n_total, samples[0], identify ? "true" : "false");
		if (fflush(stdout) != 0)
			status = 4;
	}
	if (cur)
		an_host_conn_unref(cur);
	an_host_free(host);
	an_privkey_free(key);
	free(samples);
	return status;
}
