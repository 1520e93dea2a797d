/* an-resolve: Alternet names to verified records and addresses, with peer hashes pinned on first use. */
#include "cli.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "crypto/key.h"
#include "dht/kad_node.h"
#include "encoding/multihash.h"
#include "record/record.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/file.h"

static const char USAGE[] =
	"Usage: an-resolve [options] NAME\n"
	"\n"
	"Resolve NAME (an://PEERHASH@NAME, PEERHASH@NAME, PEERHASH@SUB.NAME, or a bare NAME)\n"
	"to its verified record as one JSON line {\"name\",\"record\",\"chain\"}; a bare name\n"
	"lists its claimants, one JSON line each, unless a peer hash is pinned for it.\n"
	"The first answer for a name pins its peer hash in STATEDIR/pins.json; a later\n"
	"answer from another peer hash is refused unless --repin is given.\n"
	"\n"
	"Options:\n"
	"      --addrs                print only the record's multiaddrs, one per line\n"
	"      --repin                accept and pin a peer hash other than the pinned one\n"
	"  -t, --timeout DURATION     deadline of the bootstrap and of each lookup (default 10s)\n"
	"  -k, --key KEYFILE          identity of the in-process node (default: ephemeral)\n"
	"  -s, --state-dir DIR        state directory (daemon socket, pins, store, config)\n"
	"      --bootstrap MULTIADDR  bootstrap peer (repeatable; else $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"  -h, --help                 show this help\n"
	"\n"
	"Exit status: 0 ok, 1 not found or pinned to another peer hash, 2 usage,\n"
	"3 bad data, 4 network error, timeout or daemon unreachable.\n";

enum { OPT_ADDRS = 256, OPT_REPIN, OPT_BOOTSTRAP, OPT_PROTOCOL };

#define MAX_BOOTSTRAP 16
#define PINS_MAX (1 << 20)

struct opts {
	const char *keyfile, *statedir, *protocol;
	const char *bootstrap[MAX_BOOTSTRAP];
	int n_bootstrap;
	long long timeout_ms;
	bool addrs, repin;
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

/* ---- pins: STATEDIR/pins.json, {"<root name>":"<peer hash>",...} ---- */

static json_t *pins_load(const char *dir)
{
	char path[4200];
	struct an_buf b;
	json_t *pins = NULL;
	snprintf(path, sizeof(path), "%s/pins.json", dir);
	an_buf_init(&b, PINS_MAX);
	if (an_read_file(path, &b) == 0)
		pins = json_loadb((const char *)b.data, b.len, 0, NULL);
	an_buf_free(&b);
	if (!json_is_object(pins)) {
		json_decref(pins);
		pins = json_object();
	}
	return pins;
}

/* Write atomically: a temporary file renamed over pins.json. */
static int pins_save(const char *dir, const json_t *pins)
{
	char path[4200], tmp[4220];
	int rc = an_node_make_dir(dir);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/pins.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (json_dump_file(pins, tmp, JSON_COMPACT | JSON_SORT_KEYS) < 0)
		return -EIO;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
	}
	return rc;
}

/* The pinned peer hash for fqdn or a name it is a subdomain of; *at the pinned name. */
static const char *pin_find(const json_t *pins, const char *fqdn, const char **at)
{
	for (const char *p = fqdn; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL) {
		const char *h = json_string_value(json_object_get(pins, p));
		if (h) {
			*at = p;
			return h;
		}
	}
	return NULL;
}

static int print_addrs(const json_t *rec)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(rec, "multiaddrs"), i, a)
		if (json_is_string(a))
			printf("%s\n", json_string_value(a));
	return 0;
}

/* Resolve ph@fqdn: the root (the shortest suffix held as a root record), then the name. */
static int resolve(struct an_node *b, const char *ph, const char *fqdn, json_t **rec, json_t **root)
{
	char key[600];
	int rc = AN_ENOTFOUND;
	const char *suffixes[128];
	size_t ns = 0;
	*rec = *root = NULL;
	for (const char *p = fqdn; p && ns < 128; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
		suffixes[ns++] = p;
	/* shortest first: the root of api.mysite is mysite, not api.mysite */
	for (size_t i = ns; i-- > 0;) {
		json_t *r = NULL;
		snprintf(key, sizeof(key), "/an/%s@%s", ph, suffixes[i]);
		rc = an_node_get(b, key, NULL, &r);
		if (rc == AN_ENOTFOUND)
			continue;
		if (rc < 0)
			return rc;
		if (!json_is_true(json_object_get(json_object_get(r, "dns"), "isRoot"))) {
			json_decref(r);
			rc = AN_ENOTFOUND;
			continue;
		}
		if (i == 0) {
			*rec = r;
			return 0;
		}
		*root = r;
		snprintf(key, sizeof(key), "/an/%s@%s", ph, fqdn);
		rc = an_node_get(b, key, r, rec);
		if (rc < 0) {
			json_decref(*root);
			*root = NULL;
		}
		return rc;
	}
	return rc;
}

static int run(struct opts *o, const char *arg)
{
	char ph[AN_PEERHASH_LEN + 1], fqdn[AN_RECORD_FQDN_MAX + 1], name[600];
	const char *dir = an_node_state_dir(o->statedir);
	struct an_node *b = NULL;
	json_t *pins = pins_load(dir), *rec = NULL, *root = NULL, *list = NULL;
	const char *pinned, *pinned_at = NULL;
	int rc;
	/* an://ph@name[/path], ph@name, or a bare name */
	snprintf(name, sizeof(name), "%s%s", strncmp(arg, "an://", 5) ? "an://" : "", arg);
	char *path = strchr(name + 5, '/');
	if (path)
		*path = 0;
	rc = an_record_parse_name(name, true, ph, fqdn);
	if (rc < 0) {
		cli_warn("invalid name '%s'", arg);
		rc = AN_EMALFORMED;
		goto out;
	}
	pinned = pin_find(pins, fqdn, &pinned_at);
	if (ph[0] && pinned && strcmp(pinned, ph) != 0 && !o->repin) {
		cli_warn("'%s' is pinned to peer hash %s, not %s: use --repin to change", pinned_at,
			 pinned, ph);
		rc = AN_EPINNED;
		goto out;
	}
	rc = backend_open(o, &b);
	if (rc < 0)
		goto out;
	if (!ph[0] && !pinned) {
		rc = an_node_providers(b, fqdn, &list);
		if (rc == 0 && json_array_size(list) == 0) {
			cli_warn("'%s': no claimants found", fqdn);
			rc = AN_ENOTFOUND;
		}
		size_t i;
		json_t *p;
		json_array_foreach(list, i, p)
		{
			char lookup[600];
			snprintf(lookup, sizeof(lookup), "an://%s@%s",
				 json_string_value(json_object_get(p, "peerHash")), fqdn);
			json_object_set_new(p, "name", json_string(lookup));
			cli_print_json(p);
		}
		goto out;
	}
	if (!ph[0])
		snprintf(ph, sizeof(ph), "%s", pinned);
	rc = resolve(b, ph, fqdn, &rec, &root);
	if (rc < 0) {
		cli_warn("'%s@%s': %s", ph, fqdn, rc == AN_ENOTFOUND ? "not found" : an_strerror(rc));
		goto out;
	}
	/* pin the root name's peer hash on first use (or on --repin) */
	const char *root_name = json_string_value(
		json_object_get(json_object_get(root ? root : rec, "dns"), "name"));
	if (root_name && (!pinned || o->repin || strcmp(pinned, ph) != 0)) {
		if (pinned_at && o->repin)
			json_object_del(pins, pinned_at);
		json_object_set_new(pins, root_name, json_string(ph));
		int prc = pins_save(dir, pins);
		if (prc < 0)
			cli_warn("unable to save pins in '%s': %s", dir, an_strerror(prc));
	}
	if (o->addrs) {
		print_addrs(rec);
	} else {
		json_t *chain = json_array();
		char lookup[600];
		if (root)
			json_array_append(chain, root);
		snprintf(lookup, sizeof(lookup), "an://%s@%s", ph, fqdn);
		json_t *line = json_pack("{s:s,s:O,s:o}", "name", lookup, "record", rec, "chain", chain);
		cli_print_json(line);
		json_decref(line);
	}
out:
	an_node_close(b);
	json_decref(pins);
	json_decref(rec);
	json_decref(root);
	json_decref(list);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"addrs", no_argument, NULL, OPT_ADDRS},
		{"repin", no_argument, NULL, OPT_REPIN},
		{"timeout", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"state-dir", required_argument, NULL, 's'},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.timeout_ms = 10000};
	long long ms;
	int c;
	cli_init(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:k:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_parse_duration_ms(optarg, &ms) < 0 || ms <= 0 || ms > INT_MAX - 1000) {
				cli_warn("invalid timeout '%s'", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
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
		case OPT_BOOTSTRAP:
			if (o.n_bootstrap == MAX_BOOTSTRAP) {
				cli_warn("too many --bootstrap addresses");
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			o.bootstrap[o.n_bootstrap++] = optarg;
			break;
		case OPT_PROTOCOL:
			if (optarg[0] != '/') {
				cli_warn("invalid protocol ID '%s'", optarg);
				cli_usage(USAGE, AN_EXIT_USAGE);
			}
			o.protocol = optarg;
			break;
		case 'h':
			cli_usage(USAGE, AN_EXIT_OK);
		case ':':
			cli_warn("option '%s' needs a value", argv[optind - 1]);
			cli_usage(USAGE, AN_EXIT_USAGE);
		default:
			cli_warn("unknown option '%s'", argv[optind - 1]);
			cli_usage(USAGE, AN_EXIT_USAGE);
		}
	}
	if (argc - optind != 1) {
		cli_warn(argc == optind ? "missing NAME" : "too many arguments");
		cli_usage(USAGE, AN_EXIT_USAGE);
	}
	return cli_finish(cli_exit_status(run(&o, argv[optind])));
}
