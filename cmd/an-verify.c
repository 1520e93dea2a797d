/* an-verify: verify Alternet records and subdomain chains offline. */
#include "cli.h"

#include "record/jsonstream.h"
#include "record/record.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
	"Usage: an-verify [-q] [-t TIME] [-r ROOTFILE]... [FILE...]\n"
	"\n"
	"Verify Alternet records read from the FILEs (or standard input, or \"-\"):\n"
	"signature, publisher key against the peer hash of the name, validity window,\n"
	"and for a subdomain its reference to its root record (given with --root or\n"
	"earlier in the input).  Prints one JSON verdict line per record.\n"
	"\n"
	"Options:\n"
	"  -r, --root ROOTFILE  root records for the subdomains (repeatable)\n"
	"  -t, --time TIME      verify as of TIME (RFC 3339 UTC) instead of now\n"
	"  -q, --quiet          print nothing; the exit status tells\n"
	"  -h, --help           show this help\n"
	"\n"
	"Exit status: 0 all valid, 1 some record not valid, 2 usage, 3 malformed input,\n"
	"4 unreadable file.\n";

static void usage(FILE *f, int status)
{
	(void)f;
	cli_usage(USAGE, status);
}

#define ROOTFILES_MAX 64
#define ROOTS_MAX 100000 /* verified root records remembered from the input */

struct options {
	const char *rootfiles[ROOTFILES_MAX];
	size_t nrootfiles;
	int64_t now;
	bool quiet;
};

struct verifier {
	const struct options *o;
	json_t *roots; /* did -> array of verified root records */
	size_t nroots;
	int status;
};

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "time", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool has_time = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (o->nrootfiles == ROOTFILES_MAX) {
				cli_warn("more than %d root files", ROOTFILES_MAX);
				usage(stderr, AN_EXIT_USAGE);
			}
			o->rootfiles[o->nrootfiles++] = optarg;
			break;
		case 't':
			if (an_record_parse_time(optarg, &o->now) != 0) {
				cli_warn("invalid --time '%s': like 2026-11-23T20:00:00Z", optarg);
				usage(stderr, AN_EXIT_USAGE);
			}
			has_time = true;
			break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout, AN_EXIT_OK); break;
		case ':':
			cli_warn("option '%s' needs an argument", argv[optind - 1]);
			usage(stderr, AN_EXIT_USAGE);
			break;
		default:
			cli_warn("unknown option '%s'", argv[optind - 1]);
			usage(stderr, AN_EXIT_USAGE);
		}
	}
	if (!has_time)
		o->now = (int64_t)time(NULL);
}

/* The worse of two exit statuses: system > data > negative > ok. */
static int worse(int a, int b)
{
	static const int rank[] = {[0] = 0, [1] = 1, [2] = 4, [3] = 2, [4] = 3};
	return rank[b] > rank[a] ? b : a;
}

/* Remember a verified root record (borrowed; a reference is taken). */
static void root_add(struct verifier *v, json_t *rec)
{
	const char *did = json_string_value(json_object_get(rec, "did"));
	if (!did || v->nroots >= ROOTS_MAX)
		return;
	json_t *list = json_object_get(v->roots, did);
	if (!list) {
		list = json_array();
		if (!list || json_object_set_new(v->roots, did, list) != 0)
			return;
	}
	if (json_array_append(list, rec) == 0)
		v->nroots++;
}

/* The root record a subdomain refers to: same did, preferably the same signature. */
static json_t *root_find(struct verifier *v, const json_t *rec)
{
	json_t *ref = json_array_get(json_object_get(rec, "root"), 0);
	const char *did = json_string_value(json_object_get(ref, "target"));
	json_t *sig = json_object_get(ref, "signature");
	json_t *list = did ? json_object_get(v->roots, did) : NULL;
	for (size_t i = 0; i < json_array_size(list); i++)
		if (json_equal(json_object_get(json_array_get(list, i), "signature"), sig))
			return json_array_get(list, i);
	return json_array_get(list, 0);
}

static int print_verdict(struct verifier *v, const json_t *rec, int rc, const struct an_record_error *e)
{
	if (v->o->quiet)
		return 0;
	json_t *lookup = json_is_object(rec) ? json_object_get(rec, "lookup") : NULL;
	json_t *out = json_pack("{s:O, s:b}", "lookup", json_is_string(lookup) ? lookup : json_null(),
				"valid", rc == 0);
	if (!out)
		return -ENOMEM;
	if (rc) {
		json_object_set_new(out, "error", json_string(e->message));
		json_object_set_new(out, "field", json_string(e->field));
	}
	rc = cli_print_json(out);
	json_decref(out);
	return rc;
}

/* Verify one record, print its verdict; remembers valid roots. */
static void verify_one(struct verifier *v, json_t *rec)
{
	struct an_record_error e;
	json_t *type = json_is_object(rec) ? json_object_get(rec, "type") : NULL;
	json_t *root = json_is_object(rec) && json_object_get(rec, "root") ? root_find(v, rec) : NULL;
	int rc = an_record_verify(rec, root, v->o->now, AN_RECORD_ROOT_VERIFIED, &e);
	if (rc == 0 && json_is_string(type) && !strcmp(json_string_value(type), "root"))
		root_add(v, rec);
	if (rc == AN_EMALFORMED || rc == AN_ETOOBIG)
		v->status = worse(v->status, AN_EXIT_DATA);
	else if (rc)
		v->status = worse(v->status, AN_EXIT_NEGATIVE);
	if (print_verdict(v, rec, rc, &e) < 0)
		v->status = worse(v->status, AN_EXIT_SYSTEM);
}

/*
 * Read one input.  Records are verified (and printed) when as_roots is
 * false; root files only feed the pool of roots, after their own check.
 */
static void read_input(struct verifier *v, const char *path, bool as_roots)
{
	const char *name = path && strcmp(path, "-") ? path : "standard input";
	int fd = path && strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	struct an_json_stream in;
	json_t *rec;
	char err[150];
	int rc;

	if (fd < 0) {
		cli_warn("unable to open %s: %s", path, strerror(errno));
		v->status = worse(v->status, AN_EXIT_SYSTEM);
		return;
	}
	an_json_stream_init(&in, fd, AN_RECORD_STREAM_MAX);
	for (unsigned long n = 1; (rc = an_json_stream_next(&in, &rec, err, sizeof err)) > 0; n++) {
		if (!as_roots) {
			verify_one(v, rec);
		} else {
			struct an_record_error e;
			int vr = an_record_verify(rec, NULL, v->o->now, 0, &e);
			if (vr == 0)
				root_add(v, rec);
			else {
				cli_warn("%s: record %lu is not a valid root record: %s%s%s", name, n, e.field,
					 e.field[0] ? ": " : "", e.message);
				v->status = worse(v->status, vr == AN_EMALFORMED || vr == AN_ETOOBIG
							    ? AN_EXIT_DATA : AN_EXIT_NEGATIVE);
			}
		}
		json_decref(rec);
	}
	if (rc < 0) {
		bool sys = an_error_class(rc) == AN_CLASS_SYSTEM;
		cli_warn("%s: %s", name, sys ? an_strerror(rc) : err);
		v->status = worse(v->status, sys ? AN_EXIT_SYSTEM : AN_EXIT_DATA);
		if (!sys && !as_roots && !v->o->quiet) {
			struct an_record_error e = { .field = "" };
			snprintf(e.message, sizeof e.message, "malformed input: %s", err);
			print_verdict(v, NULL, rc, &e);
		}
	}
	an_json_stream_free(&in);
	if (fd != STDIN_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct verifier v = { .o = &o };

	cli_init(argv[0]);
	parse(argc, argv, &o);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	v.roots = json_object();
	if (!v.roots)
		cli_die(AN_EXIT_SYSTEM, "%s", strerror(ENOMEM));
	for (size_t i = 0; i < o.nrootfiles; i++)
		read_input(&v, o.rootfiles[i], true);
	if (optind == argc)
		read_input(&v, NULL, false);
	for (int i = optind; i < argc; i++)
		read_input(&v, argv[i], false);
	json_decref(v.roots);
	return cli_finish(v.status);
}
