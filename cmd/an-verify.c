/* an-verify: verify Alternet records and subdomain chains offline. */
#include "cli.h"

#include "record/jsonstream.h"
#include "record/record.h"
#include "util/error.h"
#include "util/init.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
	"Usage: an-verify [-q] [-j N] [-t TIME] [-r ROOTFILE]... [FILE...]\n"
	"\n"
	"Verify Alternet records read from the FILEs (or standard input, or \"-\"):\n"
	"signature, publisher key against the peer hash of the name, validity window,\n"
	"and for a subdomain its reference to its root record (given with --root or\n"
	"earlier in the input).  Prints one JSON verdict line per record, naming its\n"
	"source (the file, or - for standard input) and its index there.\n"
	"\n"
	"Options:\n"
	"  -r, --root ROOTFILE  root records for the subdomains (repeatable)\n"
	"  -t, --time TIME      verify as of TIME (RFC 3339, Z or +HH:MM) instead of now\n"
	"  -q, --quiet          print nothing; the exit status tells\n"
	"      --format FORMAT  json (default) or text: SOURCE:INDEX: LOOKUP: valid|invalid...\n"
	"  -j, --jobs N         check signatures on N threads (default: the number of\n"
	"                       online CPUs; 1: one thread does everything)\n"
	"  -h, --help           show this help\n"
	"      --version        print the version and exit\n"
	"\n"
	"Exit status: 0 all valid, 1 some record not valid, 2 usage, 3 malformed input\n"
	"or no records at all, 4 unreadable file.\n";

static void usage(FILE *f, int status)
{
	(void)f;
	cli_usage(USAGE, status);
}

#define ROOTFILES_MAX 64
#define ROOTS_MAX 100000 /* verified root records remembered from the input */
#define JOBS_MAX 64      /* most threads -j takes */
#define QUEUE_MAX 256    /* records in flight between reading and printing */

struct options {
	const char *rootfiles[ROOTFILES_MAX];
	size_t nrootfiles;
	int64_t now;
	long jobs;
	bool quiet;
	bool text; /* --format text */
};

/*
 * The pipeline.  The main thread reads, parses and checks each record up to
 * its signature (an_record_check_begin), queues it, and prints verdicts in
 * input order (an_record_check_end), so the pool of roots a subdomain is
 * matched against holds exactly the roots before it in the input, as in a
 * serial run.  Worker threads only run the Ed25519 checks, which read
 * nothing but the job's key, digest and signature (no jansson).  When the
 * queue is full the main thread checks signatures itself rather than wait.
 * With no workers (-j 1) every record goes through the same steps at once.
 */
enum job_state { JOB_PENDING, JOB_CLAIMED, JOB_DONE };

struct job {
	json_t *rec;              /* owned; touched by the main thread only */
	const char *source;       /* borrowed: the input's name, for the verdict */
	unsigned long index;      /* the record's place in its input, from 1 */
	struct an_record_check c; /* written before queueing, then read-only */
	int sig_rc;               /* written by whoever checks the signature */
	enum job_state state;     /* under pool.lock */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* a job is pending, or stop */
	pthread_cond_t done;     /* a job is done */
	struct job ring[QUEUE_MAX];
	/* Counters, never wrapped; a job's slot is its counter % QUEUE_MAX. */
	size_t head;             /* oldest job not printed (main thread only) */
	size_t claim;            /* no job before it is pending (under lock) */
	size_t tail;             /* next job queued (under lock) */
	pthread_t threads[JOBS_MAX];
	size_t nthreads;
	bool stop;               /* under lock */
};

struct verifier {
	const struct options *o;
	json_t *roots; /* did -> array of verified root records */
	size_t nroots;
	int status;
	const char *source;    /* the input being read: a file name, or "-" */
	unsigned long nrecords; /* values read from every input */
	struct an_buf scratch; /* canonical form of the record being checked */
	struct pool pool;
};

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "time", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool has_time = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:t:qj:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (o->nrootfiles == ROOTFILES_MAX) {
				cli_warn("more than %d root files", ROOTFILES_MAX);
				usage(stderr, AN_EXIT_USAGE);
			}
			o->rootfiles[o->nrootfiles++] = optarg;
			break;
		case 't':
			if (cli_parse_time(optarg, &o->now) != 0) {
				cli_warn("invalid --time '%s': like 2026-11-23T20:00:00Z", optarg);
				usage(stderr, AN_EXIT_USAGE);
			}
			has_time = true;
			break;
		case 'q': o->quiet = true; break;
		case 'F':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				cli_warn("invalid --format '%s': json or text", optarg);
				usage(stderr, AN_EXIT_USAGE);
			}
			o->text = strcmp(optarg, "text") == 0;
			break;
		case 'j': {
			char *end;
			errno = 0;
			o->jobs = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o->jobs < 1 || o->jobs > JOBS_MAX) {
				cli_warn("invalid --jobs '%s': a number from 1 to %d", optarg, JOBS_MAX);
				usage(stderr, AN_EXIT_USAGE);
			}
			break;
		}
		case 'V':
			cli_version();
		case 'h': usage(stdout, AN_EXIT_OK); break;
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (!has_time)
		o->now = (int64_t)time(NULL);
	if (!o->jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o->jobs = n < 1 ? 1 : n > JOBS_MAX ? JOBS_MAX : n;
	}
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

/*
 * s (len bytes of UTF-8) as a JSON string, escaped the way jansson's
 * json_dumps escapes (cli_print_json's format), without building a value.
 */
static void put_string(const char *s, size_t len)
{
	size_t run = 0;
	putchar_unlocked('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite_unlocked(s + run, 1, i - run, stdout);
		run = i + 1;
		switch (c) {
		case '"': fputs_unlocked("\\\"", stdout); break;
		case '\\': fputs_unlocked("\\\\", stdout); break;
		case '\b': fputs_unlocked("\\b", stdout); break;
		case '\f': fputs_unlocked("\\f", stdout); break;
		case '\n': fputs_unlocked("\\n", stdout); break;
		case '\r': fputs_unlocked("\\r", stdout); break;
		case '\t': fputs_unlocked("\\t", stdout); break;
		default: printf("\\u%04X", c); break;
		}
	}
	fwrite_unlocked(s + run, 1, len - run, stdout);
	putchar_unlocked('"');
}

/* Length of s without a UTF-8 sequence cut short at its end (by snprintf's truncation). */
static size_t utf8_whole(const char *s)
{
	size_t n = strlen(s), i = n, k = 0;
	while (i > 0 && k < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--, k++;
	if (i == 0 || (unsigned char)s[i - 1] < 0xC0)
		return n;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t want = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
	return k == want ? n : i - 1;
}

/*
 * One verdict line: {"lookup":..,"source":..,"index":..,"valid":..[,"error":..,"field":..]}:
 * source is the input (a file name, "-" for standard input) and index the
 * record's place in it, from 1, so a CI log points at the bad record.
 */
static int print_verdict(struct verifier *v, const json_t *rec, int rc, const struct an_record_error *e,
			 const char *source, unsigned long index)
{
	if (v->o->quiet)
		return 0;
	json_t *lookup = json_is_object(rec) ? json_object_get(rec, "lookup") : NULL;
	if (v->o->text) { /* SOURCE:INDEX: LOOKUP: valid | invalid: FIELD: ERROR */
		printf("%s:%lu: %s: %s", source, index, json_is_string(lookup) ? json_string_value(lookup) : "-",
		       rc == 0 ? "valid" : "invalid");
		if (rc)
			printf(": %s%s%.*s", e->field, e->field[0] ? ": " : "", (int)utf8_whole(e->message),
			       e->message);
		return putchar_unlocked('\n') == EOF ? -EIO : 0;
	}
	fputs_unlocked("{\"lookup\":", stdout);
	if (json_is_string(lookup))
		put_string(json_string_value(lookup), json_string_length(lookup));
	else
		fputs_unlocked("null", stdout);
	fputs_unlocked(",\"source\":", stdout);
	put_string(source, strlen(source));
	printf(",\"index\":%lu", index);
	fputs_unlocked(rc == 0 ? ",\"valid\":true" : ",\"valid\":false", stdout);
	if (rc) {
		fputs_unlocked(",\"error\":", stdout);
		put_string(e->message, utf8_whole(e->message));
		fputs_unlocked(",\"field\":", stdout);
		put_string(e->field, utf8_whole(e->field));
	}
	putchar_unlocked('}');
	return putchar_unlocked('\n') == EOF ? -EIO : 0;
}

/*
 * A value missing more than one field a record needs is probably not a
 * record at all: name every missing one ("missing version, did, ...")
 * rather than the first the checks meet.
 */
static void explain_missing(const json_t *rec, struct an_record_error *e)
{
	static const char *const need[] = {"version", "did", "lookup", "publisherPublicKey", "type", "dns",
					   "ttl", "expires", "seq", "signature"};
#define MISSING_PREFIX "not a record: missing "
	/* every name above, ", "-separated, is 81 bytes: the list fits the message */
	char list[sizeof(e->message) - sizeof(MISSING_PREFIX) + 1] = "";
	size_t len = 0, n = 0;
	const char *first = NULL;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (json_object_get(rec, need[i]))
			continue;
		first = first ? first : need[i];
		int k = snprintf(list + len, sizeof(list) - len, "%s%s", n ? ", " : "", need[i]);
		if (k > 0 && (size_t)k < sizeof(list) - len)
			len += (size_t)k;
		n++;
	}
	if (n < 2)
		return;
	snprintf(e->field, sizeof(e->field), "%s", first);
	snprintf(e->message, sizeof(e->message), MISSING_PREFIX "%s", list);
#undef MISSING_PREFIX
}

/*
 * A subdomain whose root was not found: if a root of the same name from
 * another publisher was given, say so (checking a subdomain against someone
 * else's root is a mistake worth naming).
 */
static void explain_root(struct verifier *v, const json_t *rec, struct an_record_error *e)
{
	json_t *ref = json_array_get(json_object_get(rec, "root"), 0);
	const char *ctx = json_string_value(json_object_get(ref, "context"));
	const char *pk = json_string_value(json_object_get(rec, "publisherPublicKey"));
	const char *key;
	json_t *list;
	if (!ctx || !pk)
		return;
	json_object_foreach(v->roots, key, list) {
		json_t *r = json_array_get(list, 0);
		const char *name = json_string_value(json_object_get(json_object_get(r, "dns"), "name"));
		const char *rpk = json_string_value(json_object_get(r, "publisherPublicKey"));
		if (name && rpk && strcmp(name, ctx) == 0 && strcmp(rpk, pk) != 0) {
			char msg[1024];
			int len = snprintf(msg, sizeof(msg),
					   "the root record given for '%s' is another publisher's (%s), not this "
					   "subdomain's (%s)",
					   ctx, rpk, pk);
			size_t l = len < 0 ? 0 : (size_t)len;
			if (l >= sizeof(e->message))
				l = sizeof(e->message) - 1; /* utf8_whole trims a cut character */
			memcpy(e->message, msg, l);
			e->message[l] = 0;
			snprintf(e->field, sizeof(e->field), "root");
			return;
		}
	}
}

/* The verdict of a record whose signature check is done; remembers valid roots. */
static void finish_one(struct verifier *v, const struct job *j)
{
	struct an_record_error e;
	const json_t *rec = j->rec;
	json_t *type = json_is_object(rec) ? json_object_get(rec, "type") : NULL;
	json_t *root = json_is_object(rec) && json_object_get(rec, "root") ? root_find(v, rec) : NULL;
	int rc = an_record_check_end(rec, &j->c, j->sig_rc, root, v->o->now, AN_RECORD_ROOT_VERIFIED, &e);
	if (rc == AN_EFIELD && json_is_object(rec))
		explain_missing(rec, &e);
	if (rc == AN_EROOT && !root)
		explain_root(v, rec, &e);
	if (rc == 0 && json_is_string(type) && !strcmp(json_string_value(type), "root"))
		root_add(v, j->rec);
	if (rc == AN_EMALFORMED || rc == AN_ETOOBIG)
		v->status = worse(v->status, AN_EXIT_DATA);
	else if (rc)
		v->status = worse(v->status, AN_EXIT_NEGATIVE);
	if (print_verdict(v, rec, rc, &e, j->source, j->index) < 0)
		v->status = worse(v->status, AN_EXIT_SYSTEM);
}

/*
 * Check the oldest pending signature on this thread.  Called and returns
 * with p->lock held; false if no job was pending.
 */
static bool pool_run_one(struct pool *p)
{
	while (p->claim < p->tail && p->ring[p->claim % QUEUE_MAX].state != JOB_PENDING)
		p->claim++;
	if (p->claim == p->tail)
		return false;
	struct job *j = &p->ring[p->claim++ % QUEUE_MAX];
	j->state = JOB_CLAIMED;
	pthread_mutex_unlock(&p->lock);
	int rc = an_record_check_signature(&j->c);
	pthread_mutex_lock(&p->lock);
	j->sig_rc = rc;
	j->state = JOB_DONE;
	pthread_cond_signal(&p->done);
	return true;
}

static void *pool_worker(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (pool_run_one(p))
			continue;
		if (p->stop)
			break;
		pthread_cond_wait(&p->work, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start nthreads workers (fewer if the system refuses; 0 is the serial path). */
static void pool_start(struct pool *p, size_t nthreads)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->head = p->claim = p->tail = 0;
	p->stop = false;
	for (p->nthreads = 0; p->nthreads < nthreads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, pool_worker, p) != 0)
			break;
}

/* Stop and join the workers; the queue must be empty. */
static void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
}

/*
 * Print the verdicts of the oldest jobs whose signatures are checked, in
 * order, until at most max_queued jobs stay queued (checking signatures here
 * or waiting for the workers) and the oldest left is not done.
 * QUEUE_MAX: never wait; 0: print every verdict.
 */
static void pool_drain(struct verifier *v, size_t max_queued)
{
	struct pool *p = &v->pool;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->head < p->tail && p->ring[p->head % QUEUE_MAX].state != JOB_DONE &&
		       p->tail - p->head > max_queued)
			if (!pool_run_one(p))
				pthread_cond_wait(&p->done, &p->lock);
		bool ready = p->head < p->tail && p->ring[p->head % QUEUE_MAX].state == JOB_DONE;
		pthread_mutex_unlock(&p->lock);
		if (!ready)
			return;
		struct job *j = &p->ring[p->head % QUEUE_MAX];
		finish_one(v, j);
		json_decref(j->rec);
		j->rec = NULL;
		p->head++; /* only this thread reads head */
	}
}

/* Queue rec (stolen; the index-th of v->source) for verification, printing the verdicts that are ready. */
static void verify_one(struct verifier *v, json_t *rec, unsigned long index)
{
	struct pool *p = &v->pool;
	if (p->tail - p->head == QUEUE_MAX)
		pool_drain(v, QUEUE_MAX - 1);
	/* The slot is free: its last job was printed, no thread looks at it. */
	struct job *j = &p->ring[p->tail % QUEUE_MAX];
	j->rec = rec;
	j->source = v->source;
	j->index = index;
	int rc = an_record_check_begin(rec, &v->scratch, &j->c);
	j->sig_rc = 0;
	pthread_mutex_lock(&p->lock);
	j->state = rc ? JOB_DONE : JOB_PENDING;
	p->tail++;
	if (rc == 0 && p->nthreads)
		pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	/* Serial: everything at once.  Else just what is ready. */
	pool_drain(v, p->nthreads ? QUEUE_MAX : 0);
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
	unsigned long n = 1;
	int rc;

	v->source = path ? path : "-";
	if (fd < 0) {
		cli_warn("unable to open %s: %s", path, strerror(errno));
		v->status = worse(v->status, AN_EXIT_SYSTEM);
		return;
	}
	an_json_stream_init(&in, fd, AN_RECORD_STREAM_MAX);
	for (; (rc = an_json_stream_next(&in, &rec, err, sizeof err)) > 0; n++) {
		if (!as_roots) {
			v->nrecords++;
			verify_one(v, rec, n); /* steals rec */
			continue;
		}
		struct an_record_error e;
		int vr = an_record_verify(rec, NULL, v->o->now, 0, &e);
		if (vr == 0) {
			root_add(v, rec);
		} else {
			cli_warn("%s: record %lu is not a valid root record: %s%s%s", name, n, e.field,
				 e.field[0] ? ": " : "", e.message);
			v->status = worse(v->status, vr == AN_EMALFORMED || vr == AN_ETOOBIG
						    ? AN_EXIT_DATA : AN_EXIT_NEGATIVE);
		}
		json_decref(rec);
	}
	/* Every verdict of this input before its error, or the next input's. */
	pool_drain(v, 0);
	if (rc < 0) {
		bool sys = an_error_class(rc) == AN_CLASS_SYSTEM;
		cli_warn("%s: %s", name, sys ? an_strerror(rc) : err);
		v->status = worse(v->status, sys ? AN_EXIT_SYSTEM : AN_EXIT_DATA);
		if (!sys && !as_roots && !v->o->quiet) {
			struct an_record_error e = { .field = "" };
			snprintf(e.message, sizeof e.message, "malformed input: %s", err);
			v->nrecords++; /* a verdict was given: the input was not empty */
			if (print_verdict(v, NULL, rc, &e, v->source, n) < 0)
				v->status = worse(v->status, AN_EXIT_SYSTEM);
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
	an_global_init();
	parse(argc, argv, &o);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	v.roots = json_object();
	if (!v.roots)
		cli_die(AN_EXIT_SYSTEM, "%s", strerror(ENOMEM));
	/* Verdicts are small and many: write them in big blocks when not read live. */
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	an_buf_init(&v.scratch, AN_RECORD_MAX);
	pool_start(&v.pool, (size_t)o.jobs - 1);
	for (size_t i = 0; i < o.nrootfiles; i++)
		read_input(&v, o.rootfiles[i], true);
	if (optind == argc)
		read_input(&v, NULL, false);
	for (int i = optind; i < argc; i++)
		read_input(&v, argv[i], false);
	pool_stop(&v.pool);
	/* a gate that saw nothing must not pass: an empty file is a broken pipeline */
	if (v.nrecords == 0 && v.status != AN_EXIT_SYSTEM) {
		cli_warn("no records in %s", optind == argc ? "standard input" : "the input files");
		v.status = worse(v.status, AN_EXIT_DATA);
	}
	an_buf_free(&v.scratch);
	json_decref(v.roots);
	return cli_finish(v.status);
}
