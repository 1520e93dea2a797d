/* an-resolve: Alternet names to verified records and addresses, with peer hashes pinned on first use. */
#include "cli.h"

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

/* Either the daemon's control socket or an in-process node. */
struct backend {
	struct opts *o;
	char sock[512];
	bool daemon;
	struct ev_loop *loop;
	struct an_privkey *key;
	struct an_host *host;
	struct an_kad_node *node;
};

static const char *state_dir(const struct opts *o)
{
	static char buf[4096];
	const char *e;
	if (o->statedir)
		return o->statedir;
	if ((e = getenv("AN_STATE_DIR")) && *e)
		return e;
	if ((e = getenv("XDG_STATE_HOME")) && *e)
		snprintf(buf, sizeof(buf), "%s/alternet", e);
	else
		snprintf(buf, sizeof(buf), "%s/.local/state/alternet", getenv("HOME") ? getenv("HOME") : "");
	return buf;
}

static int make_dir(const char *path)
{
	char buf[4096];
	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void quiet_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

static void boot_cb(void *arg, int err, size_t n)
{
	(void)err; (void)n;
	*(bool *)arg = true;
}

static int backend_open(struct backend *b)
{
	const char *dir = state_dir(b->o);
	struct an_kad_node_config cfg = {0};
	struct an_host_config hc = {0};
	char **boot = NULL;
	size_t nboot = 0;
	json_t *req, *reply = NULL;
	bool booted = false;
	int rc;
	if (an_control_socket_path(dir, b->sock, sizeof(b->sock)) == 0) {
		req = json_pack("{s:s}", "cmd", "status");
		rc = an_control_request(b->sock, req, 2000, &reply);
		json_decref(req);
		json_decref(reply);
		if (rc == 0) {
			b->daemon = true;
			return 0;
		}
	}
	rc = make_dir(dir);
	if (rc < 0) {
		cli_warn("unable to create state directory '%s': %s", dir, an_strerror(rc));
		return rc;
	}
	for (int i = 0; rc == 0 && i < b->o->n_bootstrap; i++)
		rc = an_kad_bootstrap_parse(b->o->bootstrap[i], &boot, &nboot);
	if (rc == 0 && nboot == 0)
		rc = an_kad_bootstrap_parse(getenv("AN_BOOTSTRAP"), &boot, &nboot);
	if (rc == 0 && nboot == 0)
		rc = an_kad_bootstrap_config(dir, &boot, &nboot);
	if (rc < 0) {
		cli_warn("invalid bootstrap address: %s", an_strerror(rc));
		an_kad_bootstrap_free(boot, nboot);
		return AN_EMALFORMED;
	}
	b->loop = ev_default_loop(0);
	rc = b->o->keyfile ? an_privkey_load(b->o->keyfile, &b->key) : an_privkey_generate(&b->key);
	if (rc < 0) {
		cli_warn("unable to load key '%s': %s", b->o->keyfile ? b->o->keyfile : "", an_strerror(rc));
		goto out;
	}
	hc.key = b->key;
	hc.agent_version = "an-resolve/0.1.0";
	hc.log = quiet_log;
	rc = an_host_new(b->loop, &hc, &b->host);
	if (rc == 0)
		rc = an_ping_service_register(b->host);
	if (rc == 0)
		rc = an_identify_service_register(b->host);
	cfg.protocol = b->o->protocol ? b->o->protocol : getenv("AN_KAD_PROTOCOL");
	if (cfg.protocol && !*cfg.protocol)
		cfg.protocol = NULL;
	cfg.client = true;
	cfg.state_dir = dir;
	cfg.log = quiet_log;
	if (rc == 0)
		rc = an_kad_node_new(b->host, &cfg, &b->node);
	if (rc < 0) {
		cli_warn("unable to start a node: %s", an_strerror(rc));
		goto out;
	}
	if (nboot || an_kad_node_rt(b->node)->size) {
		rc = an_kad_node_bootstrap(b->node, (const char *const *)boot, nboot, boot_cb, &booted, NULL);
		if (rc == 0)
			an_kad_node_wait(b->node, &booted, (int)b->o->timeout_ms);
	}
	rc = 0;
out:
	an_kad_bootstrap_free(boot, nboot);
	return rc;
}

static void backend_close(struct backend *b)
{
	if (b->node)
		an_kad_node_drain(b->node, 1000); /* corrections */
	an_kad_node_free(b->node);
	if (b->host) {
		an_host_shutdown(b->host, 500);
		ev_run(b->loop, 0);
	}
	an_host_free(b->host);
	an_privkey_free(b->key);
}

struct wait {
	bool done;
	int err;
	json_t *out; /* get: the record; providers: array */
};

static void get_cb(void *arg, int err, const uint8_t *v, size_t len, size_t from)
{
	(void)from;
	struct wait *w = arg;
	w->done = true;
	w->err = err;
	if (err == 0 && !(w->out = json_loadb((const char *)v, len, 0, NULL)))
		w->err = AN_EMALFORMED;
}

static void prov_cb(void *arg, int err, const struct an_kad_provider *p, size_t np)
{
	struct wait *w = arg;
	char text[AN_PEERID_TEXT_MAX], hash[AN_PEERHASH_LEN + 1], a[AN_MULTIADDR_TEXT_MAX];
	w->done = true;
	w->err = err;
	w->out = json_array();
	for (size_t i = 0; i < np; i++) {
		json_t *addrs = json_array();
		an_peerid_format(&p[i].id, text, sizeof(text));
		an_peerhash(&p[i].id, hash);
		for (size_t j = 0; j < p[i].naddrs; j++)
			if (an_multiaddr_format(&p[i].addrs[j], a, sizeof(a)) == 0)
				json_array_append_new(addrs, json_string(a));
		json_array_append_new(w->out, json_pack("{s:s,s:s,s:o}", "peerId", text, "peerHash",
							hash, "addrs", addrs));
	}
}

/* A daemon request: results in *out (new), the command's code returned. */
static int daemon_call(struct backend *b, json_t *req, json_t **results)
{
	json_t *reply = NULL;
	int rc;
	json_object_set_new(req, "timeoutMs", json_integer(b->o->timeout_ms));
	rc = an_control_request(b->sock, req, (int)b->o->timeout_ms + 1000, &reply);
	json_decref(req);
	if (rc < 0)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *code = json_object_get(reply, "code");
		rc = json_is_integer(code) && json_integer_value(code) < 0 ? (int)json_integer_value(code)
									  : AN_EPROTO;
	} else {
		rc = (int)json_integer_value(json_object_get(reply, "code"));
		*results = json_incref(json_object_get(reply, "results"));
	}
	json_decref(reply);
	return rc;
}

/* The valid record under key (a subdomain checked against root, may be NULL): *rec new. */
static int lookup_get(struct backend *b, const char *key, const json_t *root, json_t **rec)
{
	struct wait w = {0};
	struct an_buf rv;
	int rc;
	*rec = NULL;
	an_buf_init(&rv, AN_RECORD_MAX * 2);
	if (root && an_record_serialize(root, &rv) < 0) {
		an_buf_free(&rv);
		return AN_EMALFORMED;
	}
	if (b->daemon) {
		json_t *res = NULL;
		json_t *req = json_pack("{s:s,s:s}", "cmd", "get", "key", key);
		if (root)
			json_object_set_new(req, "rootValue", json_string((const char *)rv.data));
		an_buf_free(&rv);
		rc = daemon_call(b, req, &res);
		if (rc == 0 && !(*rec = json_incref(json_array_get(res, 0))))
			rc = AN_ENOTFOUND;
		json_decref(res);
		return rc;
	}
	rc = an_kad_node_get(b->node, (const uint8_t *)key, strlen(key), rv.data, rv.len, get_cb, &w,
			     NULL);
	an_buf_free(&rv);
	if (rc == 0 && an_kad_node_wait(b->node, &w.done, (int)b->o->timeout_ms) < 0)
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = w.err;
	if (rc == 0)
		*rec = w.out;
	else
		json_decref(w.out);
	return rc;
}

static int lookup_providers(struct backend *b, const char *fqdn, json_t **list)
{
	uint8_t mh[34];
	char text[128];
	struct wait w = {0};
	int rc = an_record_name_key(fqdn, mh);
	if (rc == 0)
		rc = an_multihash_format(mh, sizeof(mh), text, sizeof(text));
	if (rc < 0)
		return rc;
	if (b->daemon) {
		rc = daemon_call(b, json_pack("{s:s,s:s}", "cmd", "providers", "key", text), list);
		return rc == AN_ENOTFOUND ? 0 : rc;
	}
	rc = an_kad_node_providers(b->node, mh, sizeof(mh), prov_cb, &w, NULL);
	if (rc == 0 && an_kad_node_wait(b->node, &w.done, (int)b->o->timeout_ms) < 0)
		rc = -ETIMEDOUT;
	if (rc == 0)
		*list = w.out;
	else
		json_decref(w.out);
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
	int rc = make_dir(dir);
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
static int resolve(struct backend *b, const char *ph, const char *fqdn, json_t **rec, json_t **root)
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
		rc = lookup_get(b, key, NULL, &r);
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
		rc = lookup_get(b, key, r, rec);
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
	const char *dir = state_dir(o);
	struct backend b = {.o = o};
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
	rc = backend_open(&b);
	if (rc < 0)
		goto out;
	if (!ph[0] && !pinned) {
		rc = lookup_providers(&b, fqdn, &list);
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
	rc = resolve(&b, ph, fqdn, &rec, &root);
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
	if (b.node || b.host)
		backend_close(&b);
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
