/*
 * resolve.c - names to verified records with pins (see resolve.h).
 */
#include "resolve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

json_t *an_pins_load(const char *statedir)
{
	char path[4200];
	struct an_buf b;
	json_t *pins = NULL;
	snprintf(path, sizeof(path), "%s/pins.json", statedir);
	an_buf_init(&b, AN_PINS_MAX);
	if (an_read_file(path, &b) == 0)
		pins = json_loadb((const char *)b.data, b.len, 0, NULL);
	an_buf_free(&b);
	if (!json_is_object(pins)) {
		json_decref(pins);
		pins = json_object();
	}
	return pins;
}

int an_pins_save(const char *statedir, const json_t *pins)
{
	char path[4200], tmp[4220];
	int rc = an_node_make_dir(statedir);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/pins.json", statedir);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (json_dump_file(pins, tmp, JSON_COMPACT | JSON_SORT_KEYS) < 0) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
	}
	return rc;
}

const char *an_pins_find(const json_t *pins, const char *fqdn, const char **at)
{
	for (const char *p = fqdn; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL) {
		const char *h = json_string_value(json_object_get(pins, p));
		if (h) {
			if (at)
				*at = p;
			return h;
		}
	}
	return NULL;
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
	bool repin;
	int timeout_ms;
	an_resolve_fn done;
	void *arg;
	struct an_node_op *nop;
	struct an_resolved res;
	const char *suffixes[SUFFIX_MAX];
	size_t ns;
	size_t i;        /* suffix being tried (counting down: shortest first) */
	bool sub;        /* getting the subdomain's record */
	char pinned[AN_PEERHASH_LEN + 1]; /* "" if none */
	char pinned_at[AN_RECORD_FQDN_MAX + 1];
};

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
	if (err == 0) {
		/* pin the root name's peer hash on first use (or on --repin) */
		const json_t *top = op->res.root ? op->res.root : op->res.record;
		const char *root_name = json_string_value(json_object_get(json_object_get(top, "dns"), "name"));
		const char *ph = op->res.name.peerhash;
		if (root_name && (!op->pinned[0] || op->repin || strcmp(op->pinned, ph) != 0)) {
			json_t *pins = an_pins_load(op->statedir);
			if (op->pinned_at[0] && op->repin)
				json_object_del(pins, op->pinned_at);
			json_object_set_new(pins, root_name, json_string(ph));
			int prc = an_pins_save(op->statedir, pins);
			if (prc < 0)
				cli_warn("unable to save pins in '%s': %s", op->statedir, an_strerror(prc));
			else
				op->res.pinned_now = true;
			json_decref(pins);
		}
	}
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

static void get_done(void *arg, int err, const json_t *result, size_t stored)
{
	struct an_resolve_op *op = arg;
	(void)stored;
	op->nop = NULL;
	if (op->sub) {
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
		op_finish(op, 0);
		return;
	} else {
		op->res.root = json_deep_copy(result);
		op->sub = true;
	}
	err = get_next(op);
	if (err < 0)
		op_finish(op, err);
}

int an_resolve_start(struct an_node *n, const char *statedir, const struct an_name *name,
		     bool repin, int timeout_ms, an_resolve_fn done, void *arg,
		     struct an_resolve_op **opp, char *err, size_t errcap)
{
	struct an_resolve_op *op;
	json_t *pins;
	const char *pinned, *at = NULL;
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
	op->repin = repin;
	op->timeout_ms = timeout_ms;
	op->done = done;
	op->arg = arg;
	an_resolved_init(&op->res);
	op->res.name = *name;
	pins = an_pins_load(statedir);
	pinned = an_pins_find(pins, name->fqdn, &at);
	if (pinned) {
		snprintf(op->pinned, sizeof(op->pinned), "%s", pinned);
		snprintf(op->pinned_at, sizeof(op->pinned_at), "%s", at);
	}
	json_decref(pins);
	if (!name->peerhash[0]) {
		if (!op->pinned[0] || !an_peerhash_valid(op->pinned)) {
			if (err)
				snprintf(err, errcap, "'%s' is not pinned to a peer hash", name->fqdn);
			rc = AN_ENOTFOUND;
			goto fail;
		}
		memcpy(op->res.name.peerhash, op->pinned, sizeof(op->pinned));
	} else if (op->pinned[0] && strcmp(op->pinned, name->peerhash) != 0 && !repin) {
		if (err)
			snprintf(err, errcap, "'%s' is pinned to peer hash %s, not %s: use --repin to change",
				 op->pinned_at, op->pinned, name->peerhash);
		rc = AN_EPINNED;
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
	if (opp)
		*opp = op;
	return 0;
fail:
	free(op);
	return rc;
}

void an_resolve_cancel(struct an_resolve_op *op)
{
	if (!op)
		return;
	an_node_op_cancel(op->nop);
	an_resolved_free(&op->res);
	free(op);
}

struct blocking {
	bool done;
	int err;
	struct an_resolved *out;
};

static void blocking_done(void *arg, int err, struct an_resolved *r)
{
	struct blocking *b = arg;
	b->done = true;
	b->err = err;
	if (err == 0) {
		*b->out = *r;
		r->record = r->root = NULL; /* stolen */
	}
}

int an_resolve(struct an_node *n, const char *statedir, const struct an_name *name, bool repin,
	       int timeout_ms, struct an_resolved *out, char *err, size_t errcap)
{
	struct blocking b = {.out = out};
	struct ev_loop *loop = an_node_loop(n);
	an_resolved_init(out);
	int rc = an_resolve_start(n, statedir, name, repin, timeout_ms, blocking_done, &b, NULL, err,
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
