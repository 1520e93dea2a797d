/* an-sign: build and sign Alternet records, or re-sign them for republishing. */
#include "cli.h"

#include "crypto/key.h"
#include "record/jsonstream.h"
#include "record/record.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"
#include "util/init.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
	"Usage: an-sign -k KEYFILE --name NAME --type TYPE [options]\n"
	"       an-sign -k KEYFILE [options] < partial-records.json\n"
	"       an-sign -k KEYFILE --resign [options] < signed-records.json\n"
	"\n"
	"Build an Alternet record from the options (with --name), or complete each\n"
	"JSON record read from standard input, sign it and write it as one canonical\n"
	"JSON line.  With --resign, refresh signed records for republishing.\n"
	"\n"
	"Options:\n"
	"  -k, --key KEYFILE       the publisher's secret key file (an-keygen)\n"
	"  -n, --name NAME         the name, e.g. mysite or api.mysite\n"
	"  -T, --type TYPE         root, A, CNAME or TXT\n"
	"  -a, --addr MULTIADDR    an address (repeatable, up to 16); replaces multiaddrs\n"
	"      --target NAME       CNAME target, an://PEERHASH@NAME\n"
	"      --text TEXT         TXT record text\n"
	"  -r, --root ROOTFILE     the signed root record a subdomain refers to\n"
	"      --seq N             set seq to N\n"
	"      --bump-seq          add one to seq\n"
	"      --valid DURATION    validity from now (default 48h, at most 30d)\n"
	"      --ttl DURATION      republishing interval, ttl.timeToLive (default 24h)\n"
	"      --resign            re-sign signed records: timesRepublished + 1\n"
	"  -t, --time TIME         sign as of TIME (RFC 3339, Z or +HH:MM) instead of now\n"
	"  -h, --help              show this help\n"
	"      --version           print the version and exit\n"
	"\n"
	"Exit status: 0 ok, 1 root not valid or another publisher, 2 usage, 3 bad input,\n"
	"4 system error.\n";

static void usage(FILE *f, int status)
{
	(void)f;
	cli_usage(USAGE, status);
}

struct options {
	const char *keyfile, *rootfile;
	const char *addrs[AN_RECORD_ADDRS_MAX];
	struct an_record_sign_opts sign;
	bool has_time;
};

enum { OPT_TARGET = 256, OPT_TEXT, OPT_SEQ, OPT_BUMP, OPT_VALID, OPT_TTL, OPT_RESIGN };

static int64_t duration_secs(const char *opt, const char *s)
{
	long long ms;
	if (cli_parse_duration_ms(s, &ms) < 0 || ms < 1000 || ms % 1000) {
		cli_warn("invalid %s '%s': a duration in whole seconds such as 3600, 90m, 48h, 7d", opt, s);
		usage(stderr, AN_EXIT_USAGE);
	}
	return ms / 1000;
}

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'n' },
		{ "type", required_argument, NULL, 'T' },
		{ "addr", required_argument, NULL, 'a' },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "text", required_argument, NULL, OPT_TEXT },
		{ "root", required_argument, NULL, 'r' },
		{ "seq", required_argument, NULL, OPT_SEQ },
		{ "bump-seq", no_argument, NULL, OPT_BUMP },
		{ "valid", required_argument, NULL, OPT_VALID },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "resign", no_argument, NULL, OPT_RESIGN },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct an_record_sign_opts *s = &o->sign;
	char *end;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:n:T:a:r:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->keyfile = optarg; break;
		case 'n': s->name = optarg; break;
		case 'T': s->type = optarg; break;
		case 'a':
			if (s->naddrs == AN_RECORD_ADDRS_MAX) {
				cli_warn("more than %d addresses", AN_RECORD_ADDRS_MAX);
				usage(stderr, AN_EXIT_USAGE);
			}
			o->addrs[s->naddrs++] = optarg;
			break;
		case OPT_TARGET: s->target = optarg; break;
		case OPT_TEXT: s->text = optarg; break;
		case 'r': o->rootfile = optarg; break;
		case OPT_SEQ:
			errno = 0;
			s->seq = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    s->seq > (unsigned long long)AN_RECORD_INT_MAX) {
				cli_warn("invalid --seq '%s': an integer 0..2^53-1", optarg);
				usage(stderr, AN_EXIT_USAGE);
			}
			s->has_seq = true;
			break;
		case OPT_BUMP: s->bump_seq = true; break;
		case OPT_VALID: s->valid_secs = duration_secs("--valid", optarg); break;
		case OPT_TTL: s->ttl_secs = duration_secs("--ttl", optarg); break;
		case OPT_RESIGN: s->resign = true; break;
		case 't':
			if (cli_parse_time(optarg, &s->now) != 0) {
				cli_warn("invalid --time '%s': like 2026-11-23T20:00:00Z", optarg);
				usage(stderr, AN_EXIT_USAGE);
			}
			o->has_time = true;
			break;
		case 'V':
			cli_version();
		case 'h': usage(stdout, AN_EXIT_OK); break;
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (optind != argc) {
		cli_warn("unexpected argument '%s'", argv[optind]);
		usage(stderr, AN_EXIT_USAGE);
	}
	if (!o->keyfile) {
		cli_warn("a key file is required (-k KEYFILE)");
		usage(stderr, AN_EXIT_USAGE);
	}
	if (s->resign && s->name) {
		cli_warn("--resign and --name exclude each other");
		usage(stderr, AN_EXIT_USAGE);
	}
	if (s->name && !s->type) {
		cli_warn("--name needs --type (root, A, CNAME or TXT)");
		usage(stderr, AN_EXIT_USAGE);
	}
	s->addrs = o->addrs;
	if (!o->has_time)
		s->now = (int64_t)time(NULL);
}

/* The worse of two exit statuses: system > data > negative > ok. */
static int worse(int a, int b)
{
	static const int rank[] = {[0] = 0, [1] = 1, [2] = 4, [3] = 2, [4] = 3};
	return rank[b] > rank[a] ? b : a;
}

static int load_root(const char *path, json_t **out)
{
	struct an_buf b;
	json_error_t jerr;
	int status = AN_EXIT_OK;
	an_buf_init(&b, AN_RECORD_STREAM_MAX);
	int rc = an_read_file(path, &b);
	if (rc < 0) {
		cli_warn("unable to read root record %s: %s", path, an_strerror(rc));
		status = rc == AN_ETOOBIG ? AN_EXIT_DATA : AN_EXIT_SYSTEM;
		goto out;
	}
	*out = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out) {
		cli_warn("invalid root record %s: %s at line %d", path, jerr.text, jerr.line);
		status = AN_EXIT_DATA;
	}
out:
	an_buf_free(&b);
	return status;
}

/* Sign one record and print it; returns an exit status. */
static int sign_one(json_t *rec, const struct an_privkey *k, const struct options *o, unsigned long n)
{
	struct an_record_error e;
	struct an_buf out;
	int status = AN_EXIT_OK;
	an_buf_init(&out, AN_RECORD_MAX);
	int rc = an_record_sign(rec, k, &o->sign, &e);
	if (rc < 0) {
		char where[32] = "";
		if (n)
			snprintf(where, sizeof where, "record %lu: ", n);
		cli_warn("%s%s%s%s", where, e.field, e.field[0] ? ": " : "", e.message);
		status = rc == AN_EROOT ? AN_EXIT_NEGATIVE : cli_exit_status(rc);
		goto out;
	}
	rc = an_record_serialize(rec, &out);
	if (rc == 0)
		rc = an_buf_putc(&out, '\n');
	if (rc < 0) {
		cli_warn("unable to serialize the record: %s", an_strerror(rc));
		status = cli_exit_status(rc);
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len)
		status = AN_EXIT_SYSTEM;
out:
	an_buf_free(&out);
	return status;
}

static int run(struct options *o)
{
	struct an_privkey *k = NULL;
	json_t *root = NULL, *rec = NULL;
	struct an_json_stream in;
	int status = AN_EXIT_OK, rc;
	char err[200];

	an_json_stream_init(&in, STDIN_FILENO, AN_RECORD_STREAM_MAX);
	rc = an_privkey_load(o->keyfile, &k);
	if (rc < 0) {
		if (rc == AN_EKEYPERM)
			cli_warn("refusing key file %s: it is accessible by group or others (chmod 600 %s)",
				 o->keyfile, o->keyfile);
		else
			cli_warn("unable to load key %s: %s", o->keyfile, an_strerror(rc));
		status = an_error_class(rc) == AN_CLASS_DATA ? AN_EXIT_DATA : AN_EXIT_SYSTEM;
		goto out;
	}
	if (o->rootfile && (status = load_root(o->rootfile, &root)) != AN_EXIT_OK)
		goto out;
	o->sign.root = root;

	if (o->sign.name) {
		rec = json_object();
		status = rec ? sign_one(rec, k, o, 0) : AN_EXIT_SYSTEM;
		goto out;
	}
	for (unsigned long n = 1;; n++) {
		rc = an_json_stream_next(&in, &rec, err, sizeof err);
		if (rc == 0)
			break;
		if (rc < 0) {
			cli_warn("standard input: record %lu: %s", n, rc == -EIO ? an_strerror(rc) : err);
			status = worse(status, cli_exit_status(rc));
			break;
		}
		status = worse(status, sign_one(rec, k, o, n));
		json_decref(rec);
		rec = NULL;
	}
out:
	json_decref(rec);
	json_decref(root);
	an_json_stream_free(&in);
	an_privkey_free(k);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };

	cli_init(argv[0]);
	an_global_init();
	parse(argc, argv, &o);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	return cli_finish(run(&o));
}
