/*
 * an-flood: the hostile peer of tests/bats/hostile-peers.bats and
 * bench/flood.sh.  Everything it sends goes to the one target given, from
 * the source addresses given (loopback in the tests), and it stops by
 * itself at --for.
 *
 *   an-flood idle --to IP:PORT --from IP[,IP...] -n N [--for SECONDS]
 *       holds N idle TCP connections (source addresses in turn), opening
 *       again each second those the target closed (not with --once); never
 *       sends a byte.
 *
 *   an-flood streams --to MULTIADDR --from IP -n N --streams S --proto ID
 *                    [--for SECONDS]
 *       N hosts, each with a fresh key, listening on IP:0 so that their
 *       dials leave from that address, each dials the target and keeps S
 *       streams of protocol ID open on its connection (idle after the
 *       protocol is agreed), opening again each second what the target
 *       closed (not with --once).
 *
 * Prints JSON lines on stdout: {"event":"holding",...} once every socket
 * or connection was tried, then {"event":"stats",...} every second and at
 * the end: "open" (connected sockets, or established connections),
 * "streams" (agreed streams open now), "closed" (by the target), "refused"
 * (failed connects, dials or stream opens).  Exit 0 at --for or SIGTERM,
 * 2 on bad usage, 4 when nothing could be set up.
 */
#include "cli.h"

#include "crypto/key.h"
#include "transport/host.h"
#include "util/error.h"
#include "util/init.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SOCKETS 4096
#define MAX_SOURCES 16
#define MAX_HOSTS 2048

static const char USAGE[] =
	"Usage: an-flood idle --to IP:PORT --from IP[,IP...] -n N [--for SECONDS] [--once]\n"
	"       an-flood streams --to MULTIADDR --from IP -n N --streams S --proto ID\n"
	"                        [--for SECONDS] [--once]\n";

static struct {
	const char *to, *proto;
	struct in_addr from[MAX_SOURCES];
	size_t n_from;
	long n, streams;
	double seconds;
	bool once;
} O = {.seconds = 30};

static struct {
	long open, streams, closed, refused;
} st;

static struct ev_loop *loop;

static void stats(const char *event)
{
	printf("{\"event\":\"%s\",\"open\":%ld,\"streams\":%ld,\"closed\":%ld,\"refused\":%ld}\n", event,
	       st.open, st.streams, st.closed, st.refused);
	fflush(stdout);
}

/* ---- idle: plain TCP ---- */

struct sock {
	ev_io io;
	int fd;
	size_t src;
	bool connected;
};

static struct sockaddr_in target;
static struct sock *socks;

static void sock_open(struct sock *s);

static void sock_cb(struct ev_loop *l, ev_io *w, int revents)
{
	(void)revents;
	struct sock *s = (struct sock *)w;
	char b[64];
	if (!s->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		ev_io_stop(l, w);
		if (err) {
			st.refused++;
			close(s->fd);
			s->fd = -1;
			return;
		}
		s->connected = true;
		st.open++;
		ev_io_set(w, s->fd, EV_READ);
		ev_io_start(l, w);
		return;
	}
	ssize_t n = read(s->fd, b, sizeof(b));
	if (n > 0 || (n < 0 && errno == EAGAIN))
		return; /* never expected: we send nothing */
	ev_io_stop(l, w);
	close(s->fd);
	s->fd = -1;
	st.open--;
	st.closed++; /* opened again at the next tick, unless --once */
}

static void sock_open(struct sock *s)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = O.from[s->src]};
	s->connected = false;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		st.refused++;
		return;
	}
	if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(s->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS)) {
		st.refused++;
		close(s->fd);
		s->fd = -1;
		return;
	}
	ev_io_init(&s->io, sock_cb, s->fd, EV_WRITE);
	ev_io_start(loop, &s->io);
}

static int run_idle(void)
{
	char ip[64];
	const char *colon = strrchr(O.to, ':');
	if (!colon || (size_t)(colon - O.to) >= sizeof(ip))
		cli_usage_error(USAGE, "--to: expected IP:PORT");
	memcpy(ip, O.to, (size_t)(colon - O.to));
	ip[colon - O.to] = '\0';
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &target.sin_addr) != 1)
		cli_usage_error(USAGE, "--to: expected IP:PORT");
	socks = calloc((size_t)O.n, sizeof(*socks));
	if (!socks)
		return AN_EXIT_SYSTEM;
	for (long i = 0; i < O.n; i++) {
		socks[i].src = (size_t)i % O.n_from;
		sock_open(&socks[i]);
	}
	return 0;
}

/* ---- streams: libp2p connections ---- */

struct flooder {
	struct an_host *h;
	struct an_privkey *key;
	struct an_host_conn *c;
	long streams;
	bool dialing;
};

static struct flooder *fl;
static long n_fl;

static void stream_opened(struct an_stream *s, void *arg)
{
	(void)s;
	(void)arg;
	st.streams++;
}

static void fill_streams(struct flooder *f);

static void stream_closed(struct an_stream *s, int err, void *arg)
{
	struct flooder *f = arg;
	(void)err;
	if (an_stream_user(s))
		st.streams--;
	f->streams--;
	st.closed++;
}

static void stream_opened_mark(struct an_stream *s, void *arg)
{
	an_stream_set_user(s, s);
	stream_opened(s, arg);
}

static const struct an_stream_handler flood_handler = {
	.on_open = stream_opened_mark,
	.on_close = stream_closed,
};

static void fill_streams(struct flooder *f)
{
	while (f->c && an_host_conn_alive(f->c) && f->streams < O.streams) {
		if (an_host_stream_open(f->c, O.proto, &flood_handler, f, NULL) < 0) {
			st.refused++;
			return;
		}
		f->streams++;
	}
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct flooder *f = arg;
	f->dialing = false;
	if (err < 0) {
		st.refused++;
		return;
	}
	an_host_conn_ref(c);
	f->c = c;
	st.open++;
	fill_streams(f);
}

static void flood_dial(struct flooder *f)
{
	if (f->c) {
		an_host_conn_unref(f->c);
		f->c = NULL;
	}
	f->dialing = true;
	if (an_host_dial(f->h, O.to, 10000, dial_cb, f) < 0) {
		f->dialing = false;
		st.refused++;
	}
}

static int run_streams(void)
{
	char listen[80], ip[INET_ADDRSTRLEN];
	if (!O.proto || O.streams < 0)
		cli_usage_error(USAGE, "streams: --proto and --streams are needed");
	if (O.n > MAX_HOSTS)
		cli_usage_error(USAGE, "-n: at most 2048 hosts");
	inet_ntop(AF_INET, &O.from[0], ip, sizeof(ip));
	snprintf(listen, sizeof(listen), "/ip4/%s/tcp/0", ip);
	fl = calloc((size_t)O.n, sizeof(*fl));
	if (!fl)
		return AN_EXIT_SYSTEM;
	for (long i = 0; i < O.n; i++) {
		struct flooder *f = &fl[i];
		struct an_host_config hc = {0};
		if (an_privkey_generate(&f->key) < 0)
			return AN_EXIT_SYSTEM;
		hc.key = f->key;
		hc.agent_version = "an-flood";
		/* our own limits must not be what stops us */
		hc.limits.max_pending = 4096;
		hc.limits.max_conns = 4096;
		if (an_host_new(loop, &hc, &f->h) < 0 || an_host_listen(f->h, listen) < 0) {
			cli_warn("unable to listen on %s", listen);
			return AN_EXIT_SYSTEM;
		}
		n_fl++;
		flood_dial(f);
	}
	return 0;
}

/* Every second: report, and open again what the target closed. */
static void tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	for (long i = 0; i < O.n && socks && !O.once; i++)
		if (socks[i].fd < 0)
			sock_open(&socks[i]);
	for (long i = 0; i < n_fl && !O.once; i++) {
		struct flooder *f = &fl[i];
		if (f->dialing)
			continue;
		if (!f->c || !an_host_conn_alive(f->c)) {
			if (f->c)
				st.open--, st.closed++;
			flood_dial(f);
			continue;
		}
		fill_streams(f);
	}
	stats("stats");
}

static void holding_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	stats("holding");
}

static void end_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

static void parse_from(const char *arg)
{
	char buf[1024];
	if (strlen(arg) >= sizeof(buf))
		cli_usage_error(USAGE, "--from: too long");
	strcpy(buf, arg);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (O.n_from >= MAX_SOURCES || inet_pton(AF_INET, t, &O.from[O.n_from]) != 1)
			cli_usage_error(USAGE, "--from: up to 16 IPv4 addresses");
		O.n_from++;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"to", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'f'},
		{"streams", required_argument, NULL, 's'},
		{"proto", required_argument, NULL, 'p'},
		{"for", required_argument, NULL, 'F'},
		{"once", no_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || sodium_init() < 0)
		cli_usage_error(USAGE, "a mode is needed");
	const char *mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': O.to = optarg; break;
		case 'f': parse_from(optarg); break;
		case 'n': O.n = atol(optarg); break;
		case 's': O.streams = atol(optarg); break;
		case 'p': O.proto = optarg; break;
		case 'F': O.seconds = atof(optarg); break;
		case 'o': O.once = true; break;
		case 'h': fputs(USAGE, stdout); return 0;
		default: cli_usage_error(USAGE, "unknown option");
		}
	}
	if (!O.to || !O.n_from || O.n <= 0 || O.n > MAX_SOCKETS || O.seconds <= 0)
		cli_usage_error(USAGE, "--to, --from and -n (1-4096) are needed");
	loop = ev_default_loop(0);
	if (strcmp(mode, "idle") == 0)
		rc = run_idle();
	else if (strcmp(mode, "streams") == 0)
		rc = run_streams();
	else
		cli_usage_error(USAGE, "mode: idle or streams");
	if (rc)
		return rc;
	ev_timer tick, holding, end;
	ev_signal sigterm, sigint;
	ev_timer_init(&tick, tick_cb, 1.0, 1.0);
	ev_timer_init(&holding, holding_cb, 0.5, 0);
	ev_timer_init(&end, end_cb, O.seconds, 0);
	ev_signal_init(&sigterm, signal_cb, SIGTERM);
	ev_signal_init(&sigint, signal_cb, SIGINT);
	ev_timer_start(loop, &tick);
	ev_timer_start(loop, &holding);
	ev_timer_start(loop, &end);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_run(loop, 0);
	stats("stats");
	for (long i = 0; i < O.n && socks; i++)
		if (socks[i].fd >= 0)
			close(socks[i].fd);
	for (long i = 0; i < n_fl; i++) {
		if (fl[i].c)
			an_host_conn_unref(fl[i].c);
		an_host_free(fl[i].h);
		an_privkey_free(fl[i].key);
	}
	free(fl);
	free(socks);
	return 0;
}
