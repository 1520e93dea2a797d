/*
 * resolve.c - names to verified records with pins (see resolve.h).
 */
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "cli.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#define SUFFIX_MAX 128 /* labels in a name: 253 characters hold at most 127 */

int an_name_parse(const char *s, bool allow_bare, struct an_name *out)
{
	char buf[AN_PEERID_TEXT_MAX + AN_RECORD_FQDN_MAX + 16];
	const char *rest = strncmp(s, "an://", 5) == 0 ? s + 5 : s;
	const char *at = strchr(rest, '@');
	const char *slash = strchr(rest, '/');
	size_t fq_end;
	memset(out, 0, sizeof(*out));
	if (at && slash && slash < at)
		return AN_EMALFORMED;
	if (!at && !allow_bare)
		return AN_EMALFORMED;
	fq_end = slash ? (size_t)(slash - rest) : strlen(rest);
	if (at) {
		size_t idlen = (size_t)(at - rest);
		char id[AN_PEERID_TEXT_MAX];
		if (idlen == 0 || idlen >= sizeof(id))
			return AN_EMALFORMED;
		memcpy(id, rest, idlen);
		id[idlen] = 0;
		if (an_peerhash_valid(id)) {
			memcpy(out->peerhash, id, AN_PEERHASH_LEN + 1);
		} else if (an_peerid_parse(id, &out->id) == 0) {
			out->has_id = true;
			if (an_peerhash(&out->id, out->peerhash) < 0)
				return AN_EMALFORMED;
		} else {
			return AN_EMALFORMED;
		}
		size_t flen = fq_end - idlen - 1;
		if (flen == 0 || flen > AN_RECORD_FQDN_MAX)
			return AN_EMALFORMED;
		snprintf(buf, sizeof(buf), "an://%s@%.*s", out->peerhash, (int)flen, at + 1);
	} else {
		if (fq_end == 0 || fq_end > AN_RECORD_FQDN_MAX)
			return AN_EMALFORMED;
		snprintf(buf, sizeof(buf), "an://%.*s", (int)fq_end, rest);
	}
	char ph[AN_PEERHASH_LEN + 1];
	if (an_record_parse_name(buf, !at, ph, out->fqdn) < 0)
		return AN_EMALFORMED;
	return 0;
}

/* ---- pins ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Group or others may write st (or it is not ours): whoever can decides where names go. */
static bool writable_by_others(const struct stat *st)
{
	return (st->st_mode & (S_IWGRP | S_IWOTH)) || st->st_uid != geteuid();
}

static int pins_dir_check(const char *statedir, char *err, size_t errcap)
{
	struct stat st;
	if (stat(statedir, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode) && !writable_by_others(&st))
		return 0;
	if (err)
		snprintf(err, errcap,
			 "refusing pins in '%s': the directory is writable by others or not ours (chmod 700 it)",
			 statedir);
	return AN_EKEYPERM;
}

int an_pins_load(const char *statedir, json_t **out, char *err, size_t errcap)
{
	char path[4200];
	struct an_buf b;
	struct stat st;
	json_t *pins = NULL;
	int rc;
	*out = NULL;
	if (err && errcap)
		err[0] = 0;
	snprintf(path, sizeof(path), "%s/pins.json", statedir);
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode) || writable_by_others(&st)) {
			if (err)
				snprintf(err, errcap,
					 "refusing pins in '%s': the file is writable by others, not ours or "
					 "not a regular file (check it, then chmod 600 it)",
					 path);
			return AN_EKEYPERM;
		}
		rc = pins_dir_check(statedir, err, errcap);
		if (rc < 0)
			return rc;
	}
	an_buf_init(&b, AN_PINS_MAX);
	if (an_read_file(path, &b) == 0)
		pins = json_loadb((const char *)b.data, b.len, 0, NULL);
	an_buf_free(&b);
	if (!json_is_object(pins)) {
		json_decref(pins);
		pins = json_object();
	}
	*out = pins;
	return pins ? 0 : -ENOMEM;
}

int an_pins_save(const char *statedir, const json_t *pins, char *err, size_t errcap)
{
	char path[4200], tmp[4220];
	char *text = NULL;
	int fd = -1;
	int rc = an_node_make_dir(statedir);
	if (rc < 0) {
		if (err)
			snprintf(err, errcap, "unable to create '%s': %s", statedir, an_strerror(rc));
		return rc;
	}
	rc = pins_dir_check(statedir, err, errcap);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/pins.json", statedir);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	text = json_dumps(pins, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0) {
		rc = errno ? -errno : -EIO;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		unlink(tmp);
		if (err && !err[0])
			snprintf(err, errcap, "unable to write '%s': %s", path, an_strerror(rc ? rc : -EIO));
	}
	free(text);
	return rc;
}

const char *an_pins_find(const json_t *pins, const char *fqdn)
{
	return json_string_value(json_object_get(pins, fqdn));
}

int an_pins_check(const json_t *pins, const char *fqdn, const char *root, const char *peerhash,
		  char *err, size_t errcap)
{
	const char *names[2] = {fqdn, root};
	for (size_t i = 0; i < 2; i++) {
		const char *h = names[i] && names[i][0] ? an_pins_find(pins, names[i]) : NULL;
		if (h && strcmp(h, peerhash) != 0) {
			if (err)
				snprintf(err, errcap, "'%s' is pinned to peer hash %s, not %s: use --repin to change",
					 names[i], h, peerhash);
			return AN_EPINNED;
		}
	}
	return 0;
}

int an_pins_set(const char *statedir, const char *name, const char *peerhash, bool replace,
		bool *changed, char *err, size_t errcap)
{
	json_t *pins = NULL;
	const char *h;
	int rc;
	if (changed)
		*changed = false;
	rc = an_pins_load(statedir, &pins, err, errcap);
	if (rc < 0)
		goto out;
	h = an_pins_find(pins, name);
	if (h && strcmp(h, peerhash) == 0)
		goto out;
	if (h && !replace) {
		an_pins_check(pins, name, NULL, peerhash, err, errcap);
		rc = AN_EPINNED;
		goto out;
	}
	if (!h && json_object_size(pins) >= AN_PINS_ENTRIES_MAX) {
		if (err)
			snprintf(err, errcap, "not pinning '%s': %d names are pinned already (remove some with an-resolve --unpin)",
				 name, AN_PINS_ENTRIES_MAX);
		rc = AN_ELIMIT;
		goto out;
	}
	if (json_object_set_new(pins, name, json_string(peerhash)) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = an_pins_save(statedir, pins, err, errcap);
	if (rc == 0 && changed)
		*changed = true;
out:
	json_decref(pins);
	return rc;
}

int an_pins_unset(const char *statedir, const char *name, char *err, size_t errcap)
{
	json_t *pins = NULL;
	int rc = an_pins_load(statedir, &pins, err, errcap);
	if (rc < 0)
		goto out;
	if (!an_pins_find(pins, name)) {
		if (err)
			snprintf(err, errcap, "'%s' is not pinned", name);
		rc = AN_ENOTFOUND;
		goto out;
	}
	json_object_del(pins, name);
	rc = an_pins_save(statedir, pins, err, errcap);
out:
	json_decref(pins);
	return rc;
}

/* ---- resolution ---- */

void an_resolved_init(struct an_resolved *r)
{
	memset(r, 0, sizeof(*r));
}

void an_resolved_free(struct an_resolved *r)
{
	if (!r)
		return;
	json_decref(r->record);
	json_decref(r->root);
	r->record = r->root = NULL;
}

size_t an_resolved_addrs(const struct an_resolved *r, const char **out, size_t max)
{
	const json_t *a = json_object_get(r->record, "multiaddrs");
	size_t n = 0, i;
	json_t *v;
	if (json_array_size(a) == 0 && r->root)
		a = json_object_get(r->root, "multiaddrs");
	json_array_foreach(a, i, v)
		if (json_is_string(v) && n < max)
			out[n++] = json_string_value(v);
	return n;
}

struct an_resolve_op {
	struct an_node *node;
	char statedir[4096];
	unsigned flags;
	int timeout_ms;
	an_resolve_fn done;
	void *arg;
	struct an_node_op *nop;
	struct an_resolved res;
	const char *suffixes[SUFFIX_MAX];
	size_t ns;
	size_t i;        /* suffix being tried (counting down: shortest first) */
	bool sub;        /* getting the subdomain's record */
	size_t root_i;   /* the suffix that was the root */
	int sub_retries; /* SUB_RETRIES left */
	ev_timer retry;
};

/*
 * A subdomain record names its root record's signature, so while the
 * publisher republishes (root first, then each subdomain) the held pair
 * disagrees for a moment and the subdomain is "not found".  Ask again for
 * root and subdomain, SUB_RETRIES times SUB_RETRY_S apart, before saying so.
 */
#define SUB_RETRIES 2
#define SUB_RETRY_S 0.4

/* The root is known: a pin on it (or on the name) for another peer hash refuses. */
static int check_root_pin(struct an_resolve_op *op)
{
	json_t *pins = NULL;
	int rc;
	if (op->flags & AN_RESOLVE_REPIN)
		return 0;
	rc = an_pins_load(op->statedir, &pins, op->res.why, sizeof(op->res.why));
	if (rc == 0)
		rc = an_pins_check(pins, op->res.name.fqdn, op->res.root_name, op->res.name.peerhash,
				   op->res.why, sizeof(op->res.why));
	json_decref(pins);
	return rc;
}

static void op_finish(struct an_resolve_op *op, int err)
{
	if (err == 0) {
		const char *pk = json_string_value(json_object_get(op->res.record, "publisherPublicKey"));
		char hash[AN_PEERHASH_LEN + 1];
		if (!pk || an_peerid_parse(pk, &op->res.publisher) < 0 ||
		    an_peerhash(&op->res.publisher, hash) < 0)
			err = AN_EFIELD;
		else if (strcmp(hash, op->res.name.peerhash) != 0)
			err = AN_EMISMATCH; /* the node validated it; keep the check local too */
	}
	if (err == 0)
		err = check_root_pin(op);
	if (err == 0 && (op->flags & (AN_RESOLVE_PIN | AN_RESOLVE_REPIN)) && op->res.root_name[0]) {
		/* pin the root name's peer hash on first use (or on repin) */
		char why[512] = "";
		bool changed = false;
		bool repin = op->flags & AN_RESOLVE_REPIN;
		int prc = an_pins_set(op->statedir, op->res.root_name, op->res.name.peerhash, repin,
				      &changed, why, sizeof(why));
		/* a repin also drops a pin on the subdomain's own name that disagrees */
		if (prc == 0 && repin && strcmp(op->res.name.fqdn, op->res.root_name) != 0) {
			json_t *pins = NULL;
			if (an_pins_load(op->statedir, &pins, NULL, 0) == 0 &&
			    an_pins_find(pins, op->res.name.fqdn) &&
			    strcmp(an_pins_find(pins, op->res.name.fqdn), op->res.name.peerhash) != 0)
				prc = an_pins_unset(op->statedir, op->res.name.fqdn, why, sizeof(why));
			json_decref(pins);
		}
		if (prc < 0)
			cli_warn("%s", why[0] ? why : an_strerror(prc));
		op->res.pinned_now = changed;
	}
	if (err < 0 && !op->res.why[0])
		snprintf(op->res.why, sizeof(op->res.why), "'%s@%s': %s", op->res.name.peerhash,
			 op->res.name.fqdn, cli_strerror(err));
	op->done(op->arg, err, &op->res);
	an_resolved_free(&op->res);
	free(op);
}

static void get_done(void *arg, int err, const json_t *result, size_t stored);

static int get_next(struct an_resolve_op *op)
{
	char key[AN_PEERHASH_LEN + AN_RECORD_FQDN_MAX + 16];
	const char *fq = op->sub ? op->res.name.fqdn : op->suffixes[op->i];
	snprintf(key, sizeof(key), "/an/%s@%s", op->res.name.peerhash, fq);
	return an_node_get_start(op->node, key, op->sub ? op->res.root : NULL, op->timeout_ms,
				 get_done, op, &op->nop);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_resolve_op *op = w->data;
	int err;
	ev_timer_stop(loop, w);
	json_decref(op->res.root);
	op->res.root = NULL;
	op->sub = false;
	op->i = op->root_i;
	err = get_next(op);
	if (err < 0)
		op_finish(op, err);
}

static void get_done(void *arg, int err, const json_t *result, size_t stored)
{
	struct an_resolve_op *op = arg;
	(void)stored;
	op->nop = NULL;
	if (op->sub) {
		if (err == AN_ENOTFOUND && op->sub_retries > 0) {
			op->sub_retries--;
			ev_timer_init(&op->retry, retry_cb, SUB_RETRY_S, 0);
			op->retry.data = op;
			ev_timer_start(an_node_loop(op->node), &op->retry);
			return;
		}
		if (err == 0)
			op->res.record = json_deep_copy(result);
		op_finish(op, err);
		return;
	}
	if (err == 0 && !json_is_true(json_object_get(json_object_get(result, "dns"), "isRoot")))
		err = AN_ENOTFOUND; /* not a root: a longer suffix may be */
	if (err == AN_ENOTFOUND) {
		if (op->i == 0) {
			op_finish(op, AN_ENOTFOUND);
			return;
		}
		op->i--;
	} else if (err < 0) {
		op_finish(op, err);
		return;
	} else if (op->i == 0) {
		op->res.record = json_deep_copy(result);
		snprintf(op->res.root_name, sizeof(op->res.root_name), "%s", op->suffixes[op->i]);
		op_finish(op, 0);
		return;
	} else {
		op->res.root = json_deep_copy(result);
		snprintf(op->res.root_name, sizeof(op->res.root_name), "%s", op->suffixes[op->i]);
		op->root_i = op->i;
		op->sub = true;
	}
	err = get_next(op);
	if (err < 0)
		op_finish(op, err);
}

int an_resolve_start(struct an_node *n, const char *statedir, const struct an_name *name,
		     unsigned flags, int timeout_ms, an_resolve_fn done, void *arg,
		     struct an_resolve_op **opp, char *err, size_t errcap)
{
	struct an_resolve_op *op;
	json_t *pins = NULL;
	const char *pinned;
	int rc;
	if (opp)
		*opp = NULL;
	if (err && errcap)
		err[0] = 0;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->node = n;
	snprintf(op->statedir, sizeof(op->statedir), "%s", statedir);
	op->flags = flags;
	op->timeout_ms = timeout_ms;
	op->done = done;
	op->arg = arg;
	op->sub_retries = SUB_RETRIES;
	an_resolved_init(&op->res);
	op->res.name = *name;
	rc = an_pins_load(statedir, &pins, err, errcap);
	if (rc < 0)
		goto fail;
	/* a pin decides exactly its own name */
	pinned = an_pins_find(pins, name->fqdn);
	if (!name->peerhash[0]) {
		if (!pinned || !an_peerhash_valid(pinned)) {
			if (err)
				snprintf(err, errcap, "'%s' is not pinned to a peer hash", name->fqdn);
			rc = AN_ENOTFOUND;
			goto fail;
		}
		memcpy(op->res.name.peerhash, pinned, sizeof(op->res.name.peerhash));
	} else if (!(flags & AN_RESOLVE_REPIN) &&
		   (rc = an_pins_check(pins, name->fqdn, NULL, name->peerhash, err, errcap)) < 0) {
		goto fail;
	}
	const char *fq = op->res.name.fqdn;
	for (const char *p = fq; p && op->ns < SUFFIX_MAX; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
		op->suffixes[op->ns++] = p;
	op->i = op->ns - 1; /* shortest first: the root of api.mysite is mysite */
	rc = get_next(op);
	if (rc < 0) {
		if (err)
			snprintf(err, errcap, "%s", an_strerror(rc));
		goto fail;
	}
	json_decref(pins);
	if (opp)
		*opp = op;
	return 0;
fail:
	json_decref(pins);
	free(op);
	return rc;
}

void an_resolve_cancel(struct an_resolve_op *op)
{
	if (!op)
		return;
	an_node_op_cancel(op->nop);
	if (ev_is_active(&op->retry))
		ev_timer_stop(an_node_loop(op->node), &op->retry);
	an_resolved_free(&op->res);
	free(op);
}

struct blocking {
	bool done;
	int err;
	struct an_resolved *out;
	char *why;
	size_t whycap;
};

static void blocking_done(void *arg, int err, struct an_resolved *r)
{
	struct blocking *b = arg;
	b->done = true;
	b->err = err;
	if (err < 0 && b->why && b->whycap)
		snprintf(b->why, b->whycap, "%s", r->why);
	if (err == 0) {
		*b->out = *r;
		r->record = r->root = NULL; /* stolen */
	}
}

int an_resolve(struct an_node *n, const char *statedir, const struct an_name *name, unsigned flags,
	       int timeout_ms, struct an_resolved *out, char *err, size_t errcap)
{
	struct blocking b = {.out = out, .why = err, .whycap = errcap};
	struct ev_loop *loop = an_node_loop(n);
	an_resolved_init(out);
	int rc = an_resolve_start(n, statedir, name, flags, timeout_ms, blocking_done, &b, NULL, err,
				  errcap);
	if (rc < 0)
		return rc;
	/* every get has its deadline, so this ends; the guard bounds a bug */
	for (long i = 0; !b.done && i < 100000000L; i++)
		ev_run(loop, EVRUN_ONCE);
	if (!b.done)
		return -ETIMEDOUT;
	return b.err;
}
