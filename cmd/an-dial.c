/* an-dial: fetch an:// URLs like curl, or run a local HTTP gateway for browsers. */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an-dial/dial.h"
#include "util/error.h"
#include "util/init.h"

static const char USAGE[] =
	"Usage: an-dial [options] URL\n"
	"       an-dial --gateway [ADDR:]PORT [options]\n"
	"\n"
	"Fetch URL (an://PEERHASH@NAME[/path][?query]; PEERHASH may be a full peer ID,\n"
	"NAME a subdomain, or a bare NAME pinned by an-resolve) over /an/route/1.0.0 and\n"
	"write the body to stdout.  The name is resolved like an-resolve does (pins\n"
	"included) and every address of its record is tried, each only if the node\n"
	"there holds the publisher's key.  With --gateway, serve browsers instead:\n"
	"http://NAME.PEERHASH.localhost:PORT/path is that site, on an origin of its own\n"
	"(http://ADDR:PORT/an/PEERHASH@NAME/path redirects there).  The gateway answers\n"
	"only Host names of its own, and pins a name only on a navigation the user made.\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE          write the body to FILE\n"
	"  -i, --include              write the response head before the body\n"
	"  -X, --request METHOD       request method (default GET, POST with --data)\n"
	"  -d, --data DATA            request body: DATA, @FILE, or - for stdin\n"
	"  -H, --header 'NAME: VALUE' extra request header (repeatable)\n"
	"  -t, --timeout DURATION     deadline of resolution, of each connection, of the\n"
	"                             response head and of any stall (default 30s)\n"
	"  -s, --silent               no progress bar\n"
	"  -q, --quiet                same as --silent\n"
	"  -v, --verbose              say which addresses are tried\n"
	"      --connect-to MULTIADDR skip resolution and dial MULTIADDR (the peer must\n"
	"                             still match the URL's peer hash)\n"
	"      --gateway [ADDR:]PORT  run the browser gateway (ADDR default 127.0.0.1)\n"
	"      --gateway-public       allow the gateway to bind a non-loopback address\n"
	"      --gateway-host NAME    also answer Host NAME and *.NAME (repeatable)\n"
	"      --repin                accept and pin a peer hash other than the pinned one\n"
	"                             (not with --gateway)\n"
	"  -k, --key KEYFILE          our identity (default: ephemeral)\n"
	"      --state-dir DIR        state directory (daemon socket, pins, config)\n"
	"      --bootstrap MULTIADDR  bootstrap peer (repeatable; else $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"  -h, --help                 show this help\n"
	"      --version              print the version and exit\n"
	"\n"
	"Exit status: 0 ok; 1 HTTP status 400 or more (the body is still written),\n"
	"name not found, pinned to another peer hash, or the peer does not hold the\n"
	"publisher's key; 2 usage; 3 bad data (a malformed URL); 4 network error,\n"
	"timeout, broken response or an output that cannot be written.\n";

enum {
	OPT_CONNECT_TO = 256,
	OPT_GATEWAY,
	OPT_GATEWAY_PUBLIC,
	OPT_GATEWAY_HOST,
	OPT_REPIN,
	OPT_STATE_DIR,
	OPT_BOOTSTRAP,
	OPT_PROTOCOL
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"include", no_argument, NULL, 'i'},
		{"request", required_argument, NULL, 'X'},
		{"data", required_argument, NULL, 'd'},
		{"header", required_argument, NULL, 'H'},
		{"timeout", required_argument, NULL, 't'},
		{"silent", no_argument, NULL, 's'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"connect-to", required_argument, NULL, OPT_CONNECT_TO},
		{"gateway", required_argument, NULL, OPT_GATEWAY},
		{"gateway-public", no_argument, NULL, OPT_GATEWAY_PUBLIC},
		{"gateway-host", required_argument, NULL, OPT_GATEWAY_HOST},
		{"repin", no_argument, NULL, OPT_REPIN},
		{"key", required_argument, NULL, 'k'},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct dial_cfg cfg = {.timeout_ms = 30000};
	struct fetch_opts fo = {0};
	struct gateway_opts go = {0};
	struct dial d;
	const char *statedir = NULL;
	long long ms;
	int c, status;
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:iX:d:H:t:sqvk:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			fo.output = optarg;
			break;
		case 'i':
			fo.include = true;
			break;
		case 'X':
			if (!*optarg || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") !=
						strlen(optarg)) {
				cli_warn("invalid method '%s'", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			fo.method = optarg;
			break;
		case 'd':
			fo.data = optarg;
			break;
		case 'H':
			if (fo.n_headers == sizeof(fo.headers) / sizeof(fo.headers[0])) {
				cli_warn("too many --header options");
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			fo.headers[fo.n_headers++] = optarg;
			break;
		case 't':
			if (cli_parse_duration_ms(optarg, &ms) < 0 || ms <= 0 || ms > INT_MAX / 2) {
				cli_warn("invalid timeout '%s'", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			cfg.timeout_ms = (int)ms;
			break;
		case 's':
		case 'q':
			fo.silent = true;
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case OPT_CONNECT_TO:
			cfg.connect_to = optarg;
			break;
		case OPT_GATEWAY:
			go.listen = optarg;
			break;
		case OPT_GATEWAY_PUBLIC:
			go.public = true;
			break;
		case OPT_GATEWAY_HOST:
			/* a DNS name, lowercase (Host is compared lowercased) */
			if (!*optarg || strlen(optarg) > 253 || optarg[0] == '.' || optarg[0] == '-' ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(optarg)) {
				cli_warn("invalid gateway host '%s' (a lowercase DNS name)", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			if (go.n_hosts == GW_MAX_HOSTS) {
				cli_warn("too many --gateway-host names");
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			go.hosts[go.n_hosts++] = optarg;
			break;
		case OPT_REPIN:
			cfg.repin = true;
			break;
		case 'k':
			cfg.keyfile = optarg;
			break;
		case OPT_STATE_DIR:
			statedir = optarg;
			break;
		case OPT_BOOTSTRAP:
			if (cfg.n_bootstrap == DIAL_MAX_BOOTSTRAP) {
				cli_warn("too many --bootstrap addresses");
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			cfg.bootstrap[cfg.n_bootstrap++] = optarg;
			break;
		case OPT_PROTOCOL:
			if (optarg[0] != '/') {
				cli_warn("invalid protocol ID '%s'", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			cfg.protocol = optarg;
			break;
		case 'V':
			cli_version();
		case 'h':
			cli_usage(USAGE, AN_EXIT_OK);
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (go.listen) {
		if (argc != optind) {
			cli_warn("--gateway takes no URL");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
		if (fo.output || fo.include || fo.method || fo.data || fo.n_headers) {
			cli_warn("-o, -i, -X, -d and -H are for a single request, not --gateway");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
		if (cfg.connect_to) {
			cli_warn("--connect-to is for a single request, not --gateway");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
		if (cfg.repin) {
			/* any page could then repin any name */
			cli_warn("--repin is for a single request, not --gateway (use an-resolve --pin)");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
	} else {
		if (go.public || go.n_hosts) {
			cli_warn("--gateway-public and --gateway-host need --gateway");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
		if (argc - optind != 1) {
			cli_warn(argc == optind ? "missing URL" : "too many arguments");
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
		fo.url = argv[optind];
	}
	cfg.statedir = an_node_state_dir(statedir);
	if (dial_init(&d, &cfg) < 0) {
		dial_free(&d);
		return cli_finish(AN_EXIT_SYSTEM);
	}
	status = go.listen ? gateway_run(&d, &go) : fetch_run(&d, &fo);
	dial_free(&d);
	return cli_finish(status);
}
