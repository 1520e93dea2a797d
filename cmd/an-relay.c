/* an-relay: a Circuit Relay v2 relay node. */
#include "cli.h"
#include "nodeopts.h"
#include "node.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/key.h"
#include "relay/relay_server.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/init.h"

static const char USAGE[] =
	"Usage: an-relay -k KEYFILE [--listen MULTIADDR]... [options]\n"
	"\n"
	"Run a Circuit Relay v2 relay with the key's peer ID as its identity: peers\n"
	"reserve a slot (/libp2p/circuit/relay/0.2.0/hop) and others reach them\n"
	"through it at RELAYADDR/p2p-circuit/p2p/PEER.  Identify and ping are served\n"
	"too, and with --dht a DHT server.  When ready, print one JSON line\n"
	"{\"event\":\"ready\",\"peerId\",\"addrs\"}; on SIGUSR1 print one\n"
	"{\"event\":\"stats\",...} line; stop cleanly on SIGTERM or SIGINT.\n"
	"\n"
	"Options:\n"
	"  -k, --key KEYFILE             the relay's secret key (its identity)\n"
	"      --listen MULTIADDR        TCP address to listen on (repeatable; default\n"
	"                                /ip4/127.0.0.1/tcp/0)\n"
	"      --announce MULTIADDR      address to offer in reservations instead of the\n"
	"                                listen addresses (repeatable)\n"
	"      --reservation-ttl DURATION  lifetime of a reservation (default 1h)\n"
	"      --max-reservations N      reservations in all (default 128)\n"
	"      --max-reservations-per-ip N  reserving peers behind one IP (default 4)\n"
	"      --max-circuits N          relayed connections in all (default 16)\n"
	"      --max-circuits-per-peer N  relayed connections from one peer (default 4)\n"
	"      --circuit-duration DURATION  lifetime of a relayed connection (default 2m;\n"
	"                                0 = unlimited)\n"
	"      --circuit-data BYTES      bytes per direction of a relayed connection\n"
	"                                (default 128k; k and m suffixes; 0 = unlimited)\n"
	"      --dht                     also run a Kademlia DHT server on the relay's host\n"
	"      --bootstrap MULTIADDR     (with --dht) bootstrap peer (repeatable; else\n"
	"                                $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID             (with --dht) kad protocol ID (default /an/kad/1.0.0)\n"
	"  -s, --state-dir DIR           (with --dht) state directory (record store)\n"
	"  -q, --quiet                   no progress messages\n"
	"  -h, --help                    show this help\n"
	"      --version                 print the version and exit\n"
	"\n"
	"Exit status: 0 stopped by a signal, 2 usage, 3 bad key file,\n"
	"4 system or network error.\n";

enum {
	OPT_LISTEN = 256, OPT_ANNOUNCE, OPT_TTL, OPT_MAX_RSV, OPT_MAX_RSV_IP, OPT_MAX_CIRCUITS,
	OPT_MAX_CIRCUITS_PEER, OPT_DURATION, OPT_DATA, OPT_DHT, OPT_BOOTSTRAP, OPT_PROTOCOL
};

#define MAX_LISTEN 8

struct opts {
	const char *keyfile;
	const char *listen[MAX_LISTEN];
	int n_listen;
	const char *announce[AN_HOST_MAX_ANNOUNCE];
	int n_announce;
	struct an_relay_config cfg;
	bool quiet, dht;
	const char *statedir, *protocol;
	const char *bootstrap[AN_NODE_MAX_BOOTSTRAP];
	int n_bootstrap;
};

struct relay {
	struct opts *o;
	struct ev_loop *loop;
	struct an_host *host;
	struct an_relay_server *server;
	struct an_node *node; /* --dht */
	ev_signal sigterm, sigint, sigusr1;
	bool stopping, running;
};

static void debug_log(void *arg, const char *msg)
{
	(void)arg;
	cli_warn("%s", msg);
}

static void print_ready(struct relay *rl)
{
	const char *addrs[AN_HOST_MAX_LISTENERS + AN_HOST_MAX_ANNOUNCE];
	size_t n = an_host_addrs(rl->host, addrs, sizeof(addrs) / sizeof(addrs[0]));
	char peer[AN_PEERID_TEXT_MAX], full[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8];
	json_t *a = json_array();
	an_peerid_format(an_host_peer_id(rl->host), peer, sizeof(peer));
	for (size_t i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/p2p/%s", addrs[i], peer);
		json_array_append_new(a, json_string(full));
	}
	json_t *line = json_pack("{s:s,s:s,s:o}", "event", "ready", "peerId", peer, "addrs", a);
	cli_print_json(line);
	json_decref(line);
	fflush(stdout);
	cli_log_timestamps();
}

static void print_stats(struct relay *rl)
{
	struct an_relay_stats st;
	an_relay_server_stats(rl->server, &st);
	json_t *line = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "event", "stats",
				 "reservations", (json_int_t)st.reservations,
				 "circuits", (json_int_t)st.circuits,
				 "reservationsAccepted", (json_int_t)st.reservations_accepted,
				 "reservationsRefused", (json_int_t)st.reservations_refused,
				 "circuitsOpened", (json_int_t)st.circuits_opened,
				 "circuitsRefused", (json_int_t)st.circuits_refused,
				 "circuitsLimited", (json_int_t)st.circuits_limited,
				 "bytesRelayed", (json_int_t)st.bytes_relayed,
				 "connections", (json_int_t)an_host_conn_count(rl->host));
	cli_print_json(line);
	json_decref(line);
	fflush(stdout);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop, (void)revents;
	struct relay *rl = w->data;
	if (w->signum == SIGUSR1) {
		print_stats(rl);
		return;
	}
	if (rl->stopping)
		return;
	rl->stopping = true;
	if (!rl->o->quiet)
		cli_warn("signal %d: shutting down", w->signum);
	if (!rl->running)
		return; /* the DHT bootstrap is running the loop: run() stops after it */
	an_node_close(rl->node); /* on our host: the node goes, the host stays */
	rl->node = NULL;
	ev_signal_stop(rl->loop, &rl->sigterm);
	ev_signal_stop(rl->loop, &rl->sigint);
	ev_signal_stop(rl->loop, &rl->sigusr1);
	an_relay_server_free(rl->server); /* resets the circuits */
	rl->server = NULL;
	an_host_shutdown(rl->host, 1000);
}

static int run(struct opts *o)
{
	struct relay rl = {.o = o};
	struct an_host_config hc = {0};
	struct an_privkey *key = NULL;
	int rc = an_privkey_load(o->keyfile, &key);
	if (rc < 0) {
		cli_warn("unable to load key '%s': %s", o->keyfile, an_strerror(rc));
		return rc;
	}
	rl.loop = ev_default_loop(0);
	hc.key = key;
	hc.agent_version = "an-relay/0.1.0";
	if (getenv("AN_DEBUG"))
		hc.log = debug_log;
	rc = an_host_new(rl.loop, &hc, &rl.host);
	if (rc == 0)
		rc = an_ping_service_register(rl.host);
	if (rc == 0)
		rc = an_identify_service_register(rl.host);
	if (rc == 0)
		rc = an_relay_server_new(rl.host, &o->cfg, &rl.server);
	if (rc < 0) {
		cli_warn("unable to start the relay: %s", an_strerror(rc));
		goto out;
	}
	if (cli_host_listen_all(rl.host, o->listen, o->n_listen) < 0) {
		rc = -EADDRNOTAVAIL; /* a listen address is a system matter, even a malformed one */
		goto out;
	}
	if (cli_host_announce_all(rl.host, o->announce, o->n_announce) < 0) {
		rc = -EINVAL;
		goto out;
	}
	ev_signal_init(&rl.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&rl.sigint, signal_cb, SIGINT);
	ev_signal_init(&rl.sigusr1, signal_cb, SIGUSR1);
	rl.sigterm.data = rl.sigint.data = rl.sigusr1.data = &rl;
	ev_signal_start(rl.loop, &rl.sigterm);
	ev_signal_start(rl.loop, &rl.sigint);
	ev_signal_start(rl.loop, &rl.sigusr1);
	if (o->dht) {
		char err[256] = "";
		struct an_node_options no = {
			.statedir = an_node_state_dir(o->statedir),
			.bootstrap = o->bootstrap,
			.n_bootstrap = (size_t)o->n_bootstrap,
			.protocol = o->protocol,
			.timeout_ms = 10000,
			.host = rl.host,
			.server = true,
			.no_daemon = true,
			.log = hc.log,
		};
		rc = an_node_open(&no, &rl.node, err, sizeof(err));
		if (rc < 0) {
			cli_warn("%s", err[0] ? err : an_strerror(rc));
			goto out;
		}
	}
	rl.running = true;
	if (rl.stopping) { /* a signal came during the bootstrap */
		rc = 0;
		goto out;
	}
	print_ready(&rl);
	ev_run(rl.loop, 0);
	rc = 0;
out:
	an_node_close(rl.node);
	an_relay_server_free(rl.server);
	an_host_free(rl.host);
	an_privkey_free(key);
	return rc;
}

static long long duration_opt(const char *what, const char *arg, long long min_ms)
{
	long long ms;
	if (cli_parse_duration_ms(arg, &ms) < 0 || ms < min_ms || ms > (long long)UINT32_MAX * 1000LL)
		cli_usage_error(USAGE, "invalid %s '%s'", what, arg);
	return ms;
}

static size_t count_opt(const char *what, const char *arg, size_t min)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > 1000000)
		cli_usage_error(USAGE, "invalid %s '%s'", what, arg);
	return (size_t)v;
}

/* BYTES: a decimal count with an optional k or m suffix (binary units). */
static uint64_t bytes_opt(const char *what, const char *arg)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	unsigned long long mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	if (errno || end == arg || *end || arg[0] == '-' || v > (1ULL << 40) / mul)
		cli_usage_error(USAGE, "invalid %s '%s'", what, arg);
	return v * mul;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"announce", required_argument, NULL, OPT_ANNOUNCE},
		{"reservation-ttl", required_argument, NULL, OPT_TTL},
		{"max-reservations", required_argument, NULL, OPT_MAX_RSV},
		{"max-reservations-per-ip", required_argument, NULL, OPT_MAX_RSV_IP},
		{"max-circuits", required_argument, NULL, OPT_MAX_CIRCUITS},
		{"max-circuits-per-peer", required_argument, NULL, OPT_MAX_CIRCUITS_PEER},
		{"circuit-duration", required_argument, NULL, OPT_DURATION},
		{"circuit-data", required_argument, NULL, OPT_DATA},
		{"dht", no_argument, NULL, OPT_DHT},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"state-dir", required_argument, NULL, 's'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	long long ms;
	int c;
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	an_relay_config_init(&o.cfg);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:s:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o.keyfile = optarg;
			break;
		case OPT_LISTEN:
			cli_opt_append(o.listen, &o.n_listen, MAX_LISTEN, optarg, "--listen addresses", USAGE);
			break;
		case OPT_ANNOUNCE:
			cli_opt_append(o.announce, &o.n_announce, AN_HOST_MAX_ANNOUNCE, optarg, "--announce addresses", USAGE);
			break;
		case OPT_TTL:
			o.cfg.reservation_ttl_s = (uint32_t)(duration_opt("reservation ttl", optarg, 1000) / 1000);
			break;
		case OPT_MAX_RSV:
			o.cfg.max_reservations = count_opt("reservation count", optarg, 1);
			break;
		case OPT_MAX_RSV_IP:
			o.cfg.max_reservations_per_ip = count_opt("reservations per IP", optarg, 1);
			break;
		case OPT_MAX_CIRCUITS:
			o.cfg.max_circuits = count_opt("circuit count", optarg, 0);
			break;
		case OPT_MAX_CIRCUITS_PEER:
			o.cfg.max_circuits_per_peer = count_opt("circuits per peer", optarg, 0);
			break;
		case OPT_DURATION:
			ms = duration_opt("circuit duration", optarg, 0);
			o.cfg.circuit_duration_s = (uint32_t)(ms / 1000);
			if (ms % 1000) /* Limit.duration is whole seconds */
				cli_usage_error(USAGE, "invalid circuit duration '%s' (whole seconds, or 0)", optarg);
			break;
		case OPT_DATA:
			o.cfg.circuit_data = bytes_opt("circuit data", optarg);
			break;
		case OPT_DHT:
			o.dht = true;
			break;
		case OPT_BOOTSTRAP:
			cli_opt_append(o.bootstrap, &o.n_bootstrap, AN_NODE_MAX_BOOTSTRAP, optarg, "--bootstrap addresses", USAGE);
			break;
		case OPT_PROTOCOL:
			o.protocol = cli_protocol_opt(optarg, USAGE);
			break;
		case 's':
			o.statedir = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'V':
			cli_version();
		case 'h':
			cli_usage(USAGE, AN_EXIT_OK);
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (!o.keyfile)
		cli_usage_error(USAGE, "missing -k KEYFILE");
	if (!o.dht && (o.n_bootstrap || o.protocol || o.statedir))
		cli_usage_error(USAGE, "--bootstrap, --protocol and --state-dir need --dht");
	if (argc != optind)
		cli_usage_error(USAGE, "too many arguments");
	return cli_finish(cli_exit_status(run(&o)));
}
