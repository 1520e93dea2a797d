/* an-resolve: Alternet names to verified records and addresses, with peer hashes pinned on first use. */
#include "cli.h"
#include "node.h"
#include "resolve.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/record.h"
#include "util/error.h"
#include "util/init.h"

static const char USAGE[] =
	"Usage: an-resolve [options] NAME\n"
	"\n"
	"Resolve NAME (an://PEERHASH@NAME, PEERHASH@NAME, PEERHASH@SUB.NAME, or a bare NAME)\n"
	"to its verified record as one JSON line {\"name\",\"record\",\"chain\"}; a bare name\n"
	"lists its claimants, one JSON line each, unless a peer hash is pinned for it.\n"
	"The first answer for a name pins its root name's peer hash in STATEDIR/pins.json;\n"
	"a later answer from another peer hash is refused unless --repin is given.  A pin\n"
	"decides exactly its own name (and subdomains resolved under it), never a name\n"
	"with a root record of its own.  --pin and --unpin change pins without a lookup.\n"
	"\n"
	"Options:\n"
	"      --addrs                print only the record's multiaddrs, one per line\n"
	"      --repin                accept and pin a peer hash other than the pinned one\n"
	"      --pin                  pin NAME (PEERHASH@NAME) to PEERHASH, replacing its pin\n"
	"      --unpin                remove NAME's pin\n"
	"  -t, --timeout DURATION     deadline of the bootstrap and of each lookup (default 10s)\n"
	"  -k, --key KEYFILE          identity of the in-process node (default: ephemeral)\n"
	"  -s, --state-dir DIR        state directory (daemon socket, pins, store, config)\n"
	"      --bootstrap MULTIADDR  bootstrap peer (repeatable; else $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"      --format FORMAT        json (default) or text: key: value lines for people\n"
	"  -h, --help                 show this help\n"
	"      --version              print the version and exit\n"
	"\n"
	"Exit status: 0 ok, 1 not found, pinned to another peer hash, or (--unpin) not\n"
	"pinned, 2 usage, 3 bad data, 4 network error, timeout or daemon unreachable.\n";

enum { OPT_ADDRS = 256, OPT_REPIN, OPT_PIN, OPT_UNPIN, OPT_BOOTSTRAP, OPT_PROTOCOL, OPT_FORMAT };

#define MAX_BOOTSTRAP 16

struct opts {
	const char *keyfile, *statedir, *protocol;
	const char *bootstrap[MAX_BOOTSTRAP];
	int n_bootstrap;
	long long timeout_ms;
	bool addrs, repin, pin, unpin;
};

static void quiet_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

/* The daemon when one runs in the state directory, else an in-process node (node.h). */
static int backend_open(struct opts *o, struct an_node **node)
{
	char err[512] = "";
	struct an_node_options no = {
		.statedir = an_node_state_dir(o->statedir),
		.keyfile = o->keyfile,
		.bootstrap = o->bootstrap,
		.n_bootstrap = (size_t)o->n_bootstrap,
		.protocol = o->protocol,
		.timeout_ms = (int)o->timeout_ms,
		.agent = "an-resolve/0.1.0",
		.log = quiet_log,
	};
	int rc = an_node_open(&no, node, err, sizeof(err));
	if (rc < 0)
		cli_warn("%s", err[0] ? err : an_strerror(rc));
	return rc;
}

static int print_addrs(const struct an_resolved *r)
{
	const char *a[AN_RECORD_ADDRS_MAX];
	size_t n = an_resolved_addrs(r, a, AN_RECORD_ADDRS_MAX);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", a[i]);
	return 0;
}

static int run(struct opts *o, const char *arg)
{
	const char *dir = an_node_state_dir(o->statedir);
	struct an_node *b = NULL;
	struct an_name name;
	struct an_resolved res;
	json_t *pins = NULL, *list = NULL;
	const char *pinned;
	char err[512] = "";
	int rc;
	an_resolved_init(&res);
	/* an://ph@name[/path], ph@name, or a bare name */
	rc = an_name_parse(arg, true, &name);
	if (rc < 0) {
		cli_warn("invalid name '%s'", arg);
		rc = AN_EMALFORMED;
		goto out;
	}
	if (o->pin || o->unpin) {
		if (o->pin && !name.peerhash[0]) {
			cli_warn("--pin needs PEERHASH@NAME, not a bare name '%s'", arg);
			rc = AN_EMALFORMED;
			goto out;
		}
		rc = o->pin ? an_pins_set(dir, name.fqdn, name.peerhash, true, NULL, err, sizeof(err))
			    : an_pins_unset(dir, name.fqdn, err, sizeof(err));
		if (rc < 0)
			cli_warn("%s", err[0] ? err : an_strerror(rc));
		goto out;
	}
	/* a pin conflict on the name itself needs no network: answer it before opening a node */
	rc = an_pins_load(dir, &pins, err, sizeof(err));
	if (rc == 0 && name.peerhash[0] && !o->repin)
		rc = an_pins_check(pins, name.fqdn, NULL, name.peerhash, err, sizeof(err));
	if (rc < 0) {
		cli_warn("%s", err);
		goto out;
	}
	pinned = an_pins_find(pins, name.fqdn);
	rc = backend_open(o, &b);
	if (rc < 0)
		goto out;
	if (!name.peerhash[0] && !pinned) {
		rc = an_node_providers(b, name.fqdn, &list);
		if (rc < 0)
			cli_warn("'%s': %s", name.fqdn, cli_strerror(rc));
		else if (json_array_size(list) == 0) {
			cli_warn("'%s': no claimants found", name.fqdn);
			rc = AN_ENOTFOUND;
		}
		size_t i;
		json_t *p;
		json_array_foreach(list, i, p)
		{
			char lookup[600];
			snprintf(lookup, sizeof(lookup), "an://%s@%s",
				 json_string_value(json_object_get(p, "peerHash")), name.fqdn);
			json_object_set_new(p, "name", json_string(lookup));
			cli_print_json(p);
		}
		goto out;
	}
	rc = an_resolve(b, dir, &name, AN_RESOLVE_PIN | (o->repin ? AN_RESOLVE_REPIN : 0),
			(int)o->timeout_ms, &res, err, sizeof(err));
	if (rc < 0) {
		if (err[0])
			cli_warn("%s", err);
		else
			cli_warn("'%s@%s': %s", res.name.peerhash[0] ? res.name.peerhash : name.peerhash,
				 name.fqdn, cli_strerror(rc));
		goto out;
	}
	if (o->addrs) {
		print_addrs(&res);
	} else {
		json_t *chain = json_array();
		char lookup[600];
		if (res.root)
			json_array_append(chain, res.root);
		snprintf(lookup, sizeof(lookup), "an://%s@%s", res.name.peerhash, name.fqdn);
		json_t *line = json_pack("{s:s,s:O,s:o}", "name", lookup, "record", res.record, "chain", chain);
		cli_print_json(line);
		json_decref(line);
	}
out:
	an_resolved_free(&res);
	an_node_close(b);
	json_decref(pins);
	json_decref(list);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"addrs", no_argument, NULL, OPT_ADDRS},
		{"repin", no_argument, NULL, OPT_REPIN},
		{"pin", no_argument, NULL, OPT_PIN},
		{"unpin", no_argument, NULL, OPT_UNPIN},
		{"timeout", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"state-dir", required_argument, NULL, 's'},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.timeout_ms = 10000};
	long long ms;
	int c;
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:k:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_parse_duration_ms(optarg, &ms) < 0 || ms <= 0 || ms > INT_MAX - 1000)
				cli_usage_error(USAGE, "invalid timeout '%s'", optarg);
			o.timeout_ms = ms;
			break;
		case 'k':
			o.keyfile = optarg;
			break;
		case 's':
			o.statedir = optarg;
			break;
		case OPT_ADDRS:
			o.addrs = true;
			break;
		case OPT_REPIN:
			o.repin = true;
			break;
		case OPT_PIN:
			o.pin = true;
			break;
		case OPT_UNPIN:
			o.unpin = true;
			break;
		case OPT_BOOTSTRAP:
			cli_opt_append(o.bootstrap, &o.n_bootstrap, MAX_BOOTSTRAP, optarg, "--bootstrap addresses", USAGE);
			break;
		case OPT_PROTOCOL:
			o.protocol = cli_protocol_opt(optarg, USAGE);
			break;
		case OPT_FORMAT:
			if (cli_set_format(optarg) < 0)
				cli_usage_error(USAGE, "invalid --format '%s': json or text", optarg);
			break;
		case 'V':
			cli_version();
		case 'h':
			cli_usage(USAGE, AN_EXIT_OK);
		case ':':
			cli_usage_error(USAGE, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(USAGE, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		cli_usage_error(USAGE, argc == optind ? "missing NAME" : "too many arguments");
	if (o.pin + o.unpin + o.repin + o.addrs > 1 && (o.pin || o.unpin))
		cli_usage_error(USAGE, "--pin and --unpin take no other of --pin, --unpin, --repin, --addrs");
	return cli_finish(cli_exit_status(run(&o, argv[optind])));
}
