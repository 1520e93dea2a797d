/* an-dht: the Alternet node - daemon, and the tools that use it (ping, id). */
#include "cli.h"
#include "node.h"

#include "an-dht/dht.h"
#include "crypto/key.h"
#include "dht/claim.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/init.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
	"Usage: an-dht COMMAND [options] [ARGS]\n"
	"       an-dht COMMAND --help\n"
	"\n"
	"The Alternet node.  'an-dht daemon' runs the shared node; the other commands\n"
	"use it through its control socket when it runs, or an in-process node when not.\n"
	"\n"
	"Commands:\n"
	"  daemon    run a node; prints one JSON ready line with its peer ID and addresses\n"
	"  ping      ping a peer: one JSON line per round trip\n"
	"  id        print a peer's identify record as JSON\n"
	"  put       publish signed records read from stdin (verified first)\n"
	"  get       fetch the best valid record under KEY\n"
	"  providers list the claimants (providers) of a bare NAME\n"
	"  peers     list the routing table\n"
	"  republish republish own and pinned records that are due (cron)\n"
	"  pin       keep republishing someone else's record KEY\n"
	"  unpin     stop republishing KEY\n"
	"  status    the daemon's state as JSON: peer ID, addresses, connections, ...\n"
	"\n"
	"Options for every command:\n"
	"  -k, --key KEYFILE        identity key (default: ephemeral; daemon: STATEDIR/identity.key)\n"
	"  -s, --state-dir DIR      state directory (control socket, identity)\n"
	"  -t, --timeout DURATION   deadline of each network operation (default 10s)\n"
	"  -h, --help               show this help\n"
	"      --version            print the version and exit (an-dht --version)\n"
	"\n"
	"Exit status: 0 ok, 1 not found or not stored, 2 usage, 3 bad data,\n"
	"4 network error, timeout or unreachable.\n";

static const char USAGE_KAD[] =
	"Usage: an-dht put [options] < RECORDS\n"
	"       an-dht get [options] KEY\n"
	"       an-dht providers [options] NAME\n"
	"       an-dht peers [options]\n"
	"       an-dht republish [--force] [options]\n"
	"       an-dht pin|unpin [options] KEY\n"
	"\n"
	"DHT commands, run by the daemon of the state directory when it runs, else on an\n"
	"in-process node bootstrapped from --bootstrap, $AN_BOOTSTRAP or DIR/config.\n"
	"KEY is /an/PEERHASH@NAME, an://PEERHASH@NAME or PEERHASH@NAME.  Output: JSON lines.\n"
	"\n"
	"Options:\n"
	"  -t, --timeout DURATION     deadline of the bootstrap and of the command (default 10s)\n"
	"  -k, --key KEYFILE          identity key of the in-process node (default: ephemeral)\n"
	"  -s, --state-dir DIR        state directory (daemon socket, store, pins, config)\n"
	"      --bootstrap MULTIADDR  bootstrap peer (repeatable)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"      --claim-bits N         work of a bare-name claim (default 20, else $AN_CLAIM_BITS)\n"
	"  -f, --force                republish: every own and pinned record, due or not\n"
	"      --format FORMAT        json (default) or text: key: value lines for people\n"
	"  -h, --help                 show this help\n"
	"\n"
	"put prints {\"key\",\"stored\",\"peers\"} per record, and \"claim\":\"stored\" or \"refused\"\n"
	"for the bare-name claim of a record this node publishes.\n"
	"\n"
	"Exit status: 0 ok, 1 not found, stored by no peer or claim refused, 2 usage, 3 invalid record\n"
	"(nothing sent), 4 network error, timeout or daemon unreachable.\n";

static const char USAGE_DAEMON[] =
	"Usage: an-dht daemon [-k KEYFILE] [-s DIR] [--listen MULTIADDR]... [--announce MULTIADDR]...\n"
	"\n"
	"Run a node until SIGTERM or SIGINT.  Prints {\"event\":\"ready\",\"peerId\":...,\"addrs\":[...]}\n"
	"once listening, and serves a control socket DIR/control.sock (mode 0600).\n"
	"\n"
	"Options:\n"
	"  -k, --key KEYFILE          identity key (default DIR/identity.key, created if absent)\n"
	"  -s, --state-dir DIR        state directory\n"
	"      --listen MULTIADDR     listen address (repeatable; default /ip4/127.0.0.1/tcp/0)\n"
	"      --announce MULTIADDR   address to announce instead of the listen addresses (repeatable)\n"
	"      --max-conns N          connection limit (default 256)\n"
	"      --max-pending N        limit of connections in their handshake (default 64)\n"
	"      --max-per-peer N       connections per peer (default 8)\n"
	"      --max-streams N        streams per connection (default 256)\n"
	"      --idle-timeout DURATION       close silent connections (default 120s)\n"
	"      --handshake-timeout DURATION  deadline of the connection upgrade (default 10s;\n"
	"                                    6s for accepted connections)\n"
	"      --bootstrap MULTIADDR  DHT bootstrap peer (repeatable; else $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"      --client               DHT client mode: query only, serve and advertise nothing\n"
	"      --claim-bits N         leading zero bits a bare-name claim's proof of work needs\n"
	"                             (default 20, else $AN_CLAIM_BITS; ours pay the same)\n"
	"  -q, --quiet                do not log closed connections to stderr\n"
	"  -h, --help                 show this help\n";

static const char USAGE_STATUS[] =
	"Usage: an-dht status [-t DURATION] [-s DIR]\n"
	"\n"
	"Print the state of the daemon of DIR as one JSON line: peerId, addrs, connections,\n"
	"reachability, routingTable (peers), records (held), republishDue (own and pinned\n"
	"records due).  Exit 4 when no daemon answers.\n"
	"\n"
	"Options:\n"
	"  -t, --timeout DURATION     deadline of the reply (default 10s)\n"
	"  -s, --state-dir DIR        state directory of the daemon\n"
	"      --format FORMAT        json (default) or text: key: value lines for people\n"
	"  -h, --help                 show this help\n";

static const char USAGE_PING[] =
	"Usage: an-dht ping [-c COUNT] [-t DURATION] [-k KEYFILE] [-s DIR] MULTIADDR\n"
	"\n"
	"Ping the peer at MULTIADDR (/ip4|ip6/.../tcp/PORT[/p2p/ID]) over /ipfs/ping/1.0.0.\n"
	"Prints {\"peerId\":...,\"seq\":N,\"rttMs\":N,\"rttUs\":N} per ping.  Exit 4 when unreachable.\n"
	"\n"
	"Options:\n"
	"  -c, --count N              number of pings (default 1)\n"
	"  -t, --timeout DURATION     deadline of the dial and of each ping (default 10s)\n"
	"  -k, --key KEYFILE          identity key (default: ephemeral)\n"
	"  -s, --state-dir DIR        state directory of a running daemon\n"
	"  -h, --help                 show this help\n";

static const char USAGE_ID[] =
	"Usage: an-dht id [-t DURATION] [-k KEYFILE] [-s DIR] MULTIADDR\n"
	"\n"
	"Print the identify record (/ipfs/id/1.0.0) of the peer at MULTIADDR as one JSON\n"
	"line: peerId, publicKey, listenAddrs, protocols, observedAddr, protocolVersion,\n"
	"agentVersion.  Exit 4 when unreachable.\n"
	"\n"
	"Options:\n"
	"  -t, --timeout DURATION     deadline of the dial and of the exchange (default 10s)\n"
	"  -k, --key KEYFILE          identity key (default: ephemeral)\n"
	"  -s, --state-dir DIR        state directory of a running daemon\n"
	"  -h, --help                 show this help\n";

enum {
	OPT_LISTEN = 256,
	OPT_ANNOUNCE,
	OPT_MAX_CONNS,
	OPT_MAX_PENDING,
	OPT_MAX_PER_PEER,
	OPT_MAX_STREAMS,
	OPT_IDLE,
	OPT_HANDSHAKE,
	OPT_BOOTSTRAP,
	OPT_PROTOCOL,
	OPT_CLIENT,
	OPT_CLAIM_BITS,
	OPT_FORMAT
};

/* The subcommand table: later issues add put, get, providers, peers, ... */
struct subcommand {
	const char *name;
	const char *usage;
	const char *shortopts; /* accepted short options */
	const int *longonly;   /* accepted long-only options, 0-terminated */
	int min_args, max_args;
	int (*run)(struct dht_opts *o, const char *name);
};

static int run_daemon(struct dht_opts *o, const char *name)
{
	(void)name;
	return dht_cmd_daemon(o);
}

static int run_query(struct dht_opts *o, const char *name)
{
	return dht_cmd_query(o, name);
}

static int run_kad(struct dht_opts *o, const char *name)
{
	return dht_cmd_kad(o, name);
}

static int run_status(struct dht_opts *o, const char *name)
{
	(void)name;
	return dht_cmd_status(o);
}

static const int daemon_long[] = {OPT_LISTEN, OPT_MAX_CONNS, OPT_MAX_PENDING, OPT_MAX_PER_PEER,
				  OPT_MAX_STREAMS, OPT_IDLE, OPT_HANDSHAKE, OPT_ANNOUNCE,
				  OPT_BOOTSTRAP, OPT_PROTOCOL, OPT_CLIENT, OPT_CLAIM_BITS, 0};
static const int none_long[] = {0};
static const int kad_long[] = {OPT_BOOTSTRAP, OPT_PROTOCOL, OPT_CLAIM_BITS, OPT_FORMAT, 0};
static const int status_long[] = {OPT_FORMAT, 0};

static const struct subcommand commands[] = {
	{"daemon", USAGE_DAEMON, "k:s:t:qh", daemon_long, 0, 0, run_daemon},
	{"ping", USAGE_PING, "k:s:t:c:h", none_long, 1, 1, run_query},
	{"id", USAGE_ID, "k:s:t:h", none_long, 1, 1, run_query},
	{"put", USAGE_KAD, "k:s:t:h", kad_long, 0, 0, run_kad},
	{"get", USAGE_KAD, "k:s:t:h", kad_long, 1, 1, run_kad},
	{"providers", USAGE_KAD, "k:s:t:h", kad_long, 1, 1, run_kad},
	{"peers", USAGE_KAD, "k:s:t:h", kad_long, 0, 0, run_kad},
	{"republish", USAGE_KAD, "k:s:t:fh", kad_long, 0, 0, run_kad},
	{"pin", USAGE_KAD, "k:s:t:h", kad_long, 1, 1, run_kad},
	{"unpin", USAGE_KAD, "k:s:t:h", kad_long, 1, 1, run_kad},
	{"status", USAGE_STATUS, "s:t:h", status_long, 0, 0, run_status},
};

static const struct subcommand *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static long parse_count(const char *s, const char *what, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > max) {
		cli_warn("invalid %s '%s'", what, s);
		cli_usage("", AN_EXIT_USAGE);
	}
	return v;
}

static int parse_ms(const char *s, const char *what)
{
	long long ms;
	if (cli_parse_duration_ms(s, &ms) < 0 || ms <= 0 || ms > INT_MAX) {
		cli_warn("invalid %s '%s'", what, s);
		cli_usage("", AN_EXIT_USAGE);
	}
	return (int)ms;
}

static bool allowed(const struct subcommand *sc, int c)
{
	if (c < 256)
		return strchr(sc->shortopts, c) != NULL;
	for (const int *p = sc->longonly; *p; p++)
		if (*p == c)
			return true;
	return false;
}

static void parse(int argc, char **argv, const struct subcommand *sc, struct dht_opts *o)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"state-dir", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"count", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"announce", required_argument, NULL, OPT_ANNOUNCE},
		{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
		{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
		{"max-per-peer", required_argument, NULL, OPT_MAX_PER_PEER},
		{"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
		{"idle-timeout", required_argument, NULL, OPT_IDLE},
		{"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"client", no_argument, NULL, OPT_CLIENT},
		{"claim-bits", required_argument, NULL, OPT_CLAIM_BITS},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"force", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":k:s:t:c:qfh", longopts, NULL)) != -1) {
		if (c == '?' || c == ':')
			cli_bad_option(c, argv, sc->usage);
		if (!allowed(sc, c)) {
			cli_warn("option '%s' does not apply to '%s'", argv[optind - 1], sc->name);
			cli_usage(sc->usage, AN_EXIT_USAGE);
		}
		switch (c) {
		case 'k':
			o->keyfile = optarg;
			break;
		case 's':
			o->statedir = optarg;
			break;
		case 't':
			o->timeout_ms = parse_ms(optarg, "timeout");
			break;
		case 'c':
			o->count = parse_count(optarg, "count", 1000000);
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			cli_usage(sc->usage, AN_EXIT_OK);
		case OPT_LISTEN:
			cli_opt_append(o->listen, &o->n_listen, DHT_MAX_LISTEN, optarg, "--listen addresses", sc->usage);
			break;
		case OPT_ANNOUNCE:
			cli_opt_append(o->announce, &o->n_announce, AN_HOST_MAX_ANNOUNCE, optarg, "--announce addresses", sc->usage);
			break;
		case OPT_MAX_CONNS:
			o->limits.max_conns = (size_t)parse_count(optarg, "--max-conns", 1000000);
			break;
		case OPT_MAX_PENDING:
			o->limits.max_pending = (size_t)parse_count(optarg, "--max-pending", 1000000);
			break;
		case OPT_MAX_PER_PEER:
			o->limits.max_per_peer = (size_t)parse_count(optarg, "--max-per-peer", 1000000);
			break;
		case OPT_MAX_STREAMS:
			o->limits.max_streams_per_conn = (size_t)parse_count(optarg, "--max-streams", 100000);
			break;
		case OPT_IDLE:
			o->limits.idle_timeout_ms = parse_ms(optarg, "idle timeout");
			break;
		case OPT_HANDSHAKE:
			o->limits.handshake_timeout_ms = parse_ms(optarg, "handshake timeout");
			break;
		case OPT_BOOTSTRAP:
			cli_opt_append(o->bootstrap, &o->n_bootstrap, DHT_MAX_BOOTSTRAP, optarg, "--bootstrap addresses", sc->usage);
			break;
		case OPT_PROTOCOL:
			o->protocol = cli_protocol_opt(optarg, sc->usage);
			break;
		case OPT_CLIENT:
			o->client = true;
			break;
		case OPT_CLAIM_BITS:
			o->claim_bits = (unsigned)parse_count(optarg, "--claim-bits", AN_CLAIM_BITS_MAX);
			break;
		case OPT_FORMAT:
			if (cli_set_format(optarg) < 0) {
				cli_warn("invalid --format '%s': json or text", optarg);
				cli_usage("", AN_EXIT_USAGE);
			}
			break;
		case 'f':
			o->force = true;
			break;
		}
	}
	o->args = argv + optind;
	o->n_args = argc - optind;
}

const char *dht_state_dir(const struct dht_opts *o)
{
	return an_node_state_dir(o->statedir);
}

int dht_host_new(struct ev_loop *loop, const struct dht_opts *o, struct an_privkey **key,
		 struct an_host **h)
{
	struct an_host_config cfg = {0};
	int rc;
	*h = NULL;
	*key = NULL;
	if (o->keyfile) {
		rc = an_privkey_load(o->keyfile, key);
		if (rc < 0) {
			cli_warn("unable to load key '%s': %s", o->keyfile, an_strerror(rc));
			return rc;
		}
	} else {
		rc = an_privkey_generate(key);
		if (rc < 0)
			return rc;
	}
	cfg.key = *key;
	cfg.limits = o->limits;
	cfg.agent_version = "an-dht/0.1.0";
	rc = an_host_new(loop, &cfg, h);
	if (rc == 0)
		rc = an_ping_service_register(*h);
	if (rc == 0)
		rc = an_identify_service_register(*h);
	if (rc < 0) {
		an_host_free(*h);
		*h = NULL;
		an_privkey_free(*key);
		*key = NULL;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct dht_opts o = {0};
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	if (argc < 2) {
		cli_warn("missing command");
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		cli_usage(USAGE, AN_EXIT_OK);
	if (!strcmp(argv[1], "--version"))
		cli_version();
	const struct subcommand *sc = find_command(argv[1]);
	if (!sc) {
		if (argv[1][0] == '-')
			cli_warn("unknown option '%s'", argv[1]);
		else
			cli_warn("unknown command '%s'", argv[1]);
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	o.timeout_ms = DHT_DEFAULT_TIMEOUT_MS;
	o.count = 1;
	cli_command = sc->name;
	parse(argc - 1, argv + 1, sc, &o);
	if (o.n_args < sc->min_args) {
		cli_warn(sc->run == run_query ? "missing MULTIADDR" : "missing argument");
		cli_usage(sc->usage, AN_EXIT_USAGE);
	}
	if (o.n_args > sc->max_args) {
		if (sc->max_args == 0)
			cli_warn("unexpected argument '%s'", o.args[0]);
		else
			cli_warn("too many arguments");
		cli_usage(sc->usage, AN_EXIT_USAGE);
	}
	return cli_finish(sc->run(&o, sc->name));
}
