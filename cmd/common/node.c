#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control.h"
#include "crypto/key.h"
#include "dht/kad_node.h"
#include "encoding/multiaddr.h"
#include "encoding/multihash.h"
#include "nat/autonat.h"
#include "record/record.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/buf.h"
#include "util/error.h"
#include "cli.h"

enum op_kind { OP_PUT, OP_GET, OP_PROVIDERS };

struct an_node_op {
	struct an_node *node;
	struct an_node_op *next;
	enum op_kind kind;
	an_node_done_fn done;
	void *arg;
	ev_timer deadline;
	struct an_kad_op *kop;  /* in-process */
	char key[AN_KAD_KEY_MAX + 1];
	/* daemon client: one request line out, one reply line in */
	int fd;
	ev_io io;
	struct an_buf out, in;
	size_t out_pos;
};

struct an_node {
	struct an_node_options o;
	char sock[512];
	bool daemon;
	struct ev_loop *loop;
	struct an_privkey *key; /* own host only */
	struct an_host *host;
	bool own_host;
	struct an_kad_node *kad;
	struct an_autonat *autonat; /* on the node's host (own or the caller's) */
	size_t nboot;
	struct an_node_op *ops;
};

const char *an_node_state_dir(const char *dir)
{
	static char *computed; /* once a process, at its length: never truncated */
	const char *e;
	int len;
	if (dir)
		return dir;
	if ((e = getenv("AN_STATE_DIR")) && *e)
		return e;
	if (computed)
		return computed;
	if ((e = getenv("XDG_STATE_HOME")) && *e)
		len = asprintf(&computed, "%s/alternet", e);
	else
		len = asprintf(&computed, "%s/.local/state/alternet", getenv("HOME") ? getenv("HOME") : "");
	if (len < 0)
		computed = NULL;
	return computed;
}

/*
 * The state directory holds the identity, the store and the pins: like a
 * key file it is ours alone.  Writable by others (or owned by someone else)
 * is refused, since anyone who can write there can swap pins or the
 * identity; merely readable by others is fixed (chmod 700), with a warning.
 */
static int private_dir_check(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_uid != geteuid())
		return AN_EDIRPERM;
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		if (chmod(path, 0700) < 0)
			return -errno;
		cli_warn("state directory '%s' was readable by others: now mode 700", path);
	}
	return 0;
}

int an_node_make_dir(const char *path)
{
	char buf[4096];
	if (!path)
		return -ENOMEM; /* an_node_state_dir out of memory */
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
	return private_dir_check(buf);
}

static void set_err(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	if (!err || !cap)
		return;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

static void boot_cb(void *arg, int err, size_t n)
{
	(void)err; (void)n;
	*(bool *)arg = true;
}

/*
 * 1 when a daemon answers on the state directory's control socket, 0 when
 * none listens there (no socket, or a stale one), else the error of a
 * daemon that accepts but does not answer (-ETIMEDOUT) or answers garbage:
 * falling back to an in-process node would hide a hung daemon.
 */
static int daemon_probe(struct an_node *n)
{
	json_t *req, *reply = NULL;
	int rc;
	if (an_control_socket_path(n->o.statedir, n->sock, sizeof(n->sock)) < 0)
		return 0;
	req = json_pack("{s:s}", "cmd", "status");
	rc = an_control_request(n->sock, req, AN_NODE_STATUS_TIMEOUT_MS, &reply);
	json_decref(req);
	json_decref(reply);
	if (rc == -ENOENT || rc == -ECONNREFUSED || rc == -ENOTDIR)
		return 0;
	return rc == 0 ? 1 : rc;
}

/*
 * AutoNAT v1 + v2, client and server, on the node's host (issue 12):
 * $AN_AUTONAT_ALLOW lists CIDRs the server dials although they are not
 * public (the tests' 127.0.0.0/8 or 198.18.0.0/15); AN_AUTONAT=off runs
 * none.  Reachability changes go to the node's log hook.
 */
static int start_autonat(struct an_node *n, const struct an_node_options *o)
{
	const char *off = getenv("AN_AUTONAT");
	struct an_autonat_config ac = {.allow = getenv("AN_AUTONAT_ALLOW"), .log = o->log,
				       .log_arg = o->log_arg};
	if (off && strcmp(off, "off") == 0)
		return 0;
	return an_autonat_new(n->host, &ac, &n->autonat);
}

int an_node_open(const struct an_node_options *o, struct an_node **out, char *err, size_t errcap)
{
	struct an_node *n = calloc(1, sizeof(*n));
	struct an_kad_node_config cfg = {0};
	char **boot = NULL;
	size_t nboot = 0;
	int rc = 0;
	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->o = *o;
	n->o.statedir = an_node_state_dir(o->statedir);
	if (n->o.timeout_ms <= 0)
		n->o.timeout_ms = AN_CONTROL_DEFAULT_TIMEOUT_MS;
	if (!o->no_daemon && (rc = daemon_probe(n)) != 0) {
		if (rc < 0) {
			set_err(err, errcap, "daemon at %s not answering: %s", n->sock,
				rc == -ETIMEDOUT ? "no reply to a status request in 2 s" : an_strerror(rc));
			rc = rc == -ETIMEDOUT ? rc : AN_ECLOSED; /* exit 4 either way */
			free(n);
			return rc;
		}
		n->daemon = true;
		n->loop = o->host ? an_host_loop(o->host) : ev_default_loop(0);
		*out = n;
		return 0;
	}
	n->sock[0] = 0;
	rc = an_node_make_dir(n->o.statedir);
	if (rc < 0) {
		set_err(err, errcap, "unable to create state directory '%s': %s", n->o.statedir,
			an_strerror(rc));
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < o->n_bootstrap; i++)
		rc = an_kad_bootstrap_parse(o->bootstrap[i], &boot, &nboot);
	if (rc == 0 && nboot == 0)
		rc = an_kad_bootstrap_parse(getenv("AN_BOOTSTRAP"), &boot, &nboot);
	if (rc == 0 && nboot == 0)
		rc = an_kad_bootstrap_config(n->o.statedir, &boot, &nboot);
	if (rc < 0) {
		set_err(err, errcap, "invalid bootstrap address: %s", an_strerror(rc));
		rc = AN_EMALFORMED;
		goto out;
	}
	n->nboot = nboot;
	if (o->host) {
		n->host = o->host;
		n->loop = an_host_loop(o->host);
	} else {
		struct an_host_config hc = {0};
		n->own_host = true;
		n->loop = ev_default_loop(0);
		rc = o->keyfile ? an_privkey_load(o->keyfile, &n->key) : an_privkey_generate(&n->key);
		if (rc < 0) {
			set_err(err, errcap, "unable to load key '%s': %s", o->keyfile ? o->keyfile : "",
				an_strerror(rc));
			goto out;
		}
		hc.key = n->key;
		hc.agent_version = o->agent;
		hc.log = o->log;
		hc.log_arg = o->log_arg;
		rc = an_host_new(n->loop, &hc, &n->host);
		if (rc == 0)
			rc = an_ping_service_register(n->host);
		if (rc == 0)
			rc = an_identify_service_register(n->host);
	}
	cfg.protocol = o->protocol ? o->protocol : getenv("AN_KAD_PROTOCOL");
	if (cfg.protocol && !*cfg.protocol)
		cfg.protocol = NULL;
	cfg.client = !o->server;
	cfg.state_dir = n->o.statedir;
	cfg.log = o->log;
	cfg.log_arg = o->log_arg;
	if (rc == 0)
		rc = an_kad_node_new(n->host, &cfg, &n->kad);
	if (rc < 0) {
		set_err(err, errcap, "unable to start a node: %s", an_strerror(rc));
		goto out;
	}
	rc = start_autonat(n, o);
	if (rc < 0) {
		set_err(err, errcap, "unable to start AutoNAT: %s", an_strerror(rc));
		goto out;
	}
	if (nboot || an_kad_node_rt(n->kad)->size) {
		bool booted = false;
		struct an_kad_op *bop = NULL;
		rc = an_kad_node_bootstrap(n->kad, (const char *const *)boot, nboot, boot_cb, &booted, &bop);
		/* past the deadline the lookup stops: its callback would write to this frame */
		if (rc == 0 && an_kad_node_wait(n->kad, &booted, n->o.timeout_ms) < 0)
			an_kad_op_cancel(bop);
		rc = 0;
	}
out:
	an_kad_bootstrap_free(boot, nboot);
	if (rc < 0) {
		an_node_close(n);
		return rc;
	}
	*out = n;
	return 0;
}

static void op_free(struct an_node_op *op);

void an_node_close(struct an_node *n)
{
	if (!n)
		return;
	while (n->ops)
		an_node_op_cancel(n->ops);
	an_autonat_free(n->autonat);
	if (n->kad)
		an_kad_node_drain(n->kad, 1000); /* ADD_PROVIDER, corrections */
	an_kad_node_free(n->kad);
	if (n->own_host && n->host) {
		an_host_shutdown(n->host, 500);
		ev_run(n->loop, 0);
		an_host_free(n->host);
	}
	an_privkey_free(n->key);
	free(n);
}

struct an_autonat *an_node_autonat(const struct an_node *n)
{
	return n->autonat;
}

bool an_node_is_daemon(const struct an_node *n)
{
	return n->daemon;
}

const char *an_node_daemon_socket(const struct an_node *n)
{
	return n->daemon ? n->sock : "";
}

struct ev_loop *an_node_loop(const struct an_node *n)
{
	return n->loop;
}

size_t an_node_bootstrap_count(const struct an_node *n)
{
	return n->nboot;
}

size_t an_node_peer_count(const struct an_node *n)
{
	return n->kad ? an_kad_node_rt(n->kad)->size : 0;
}

/* ---- operations ---- */

static void op_unlink(struct an_node_op *op)
{
	for (struct an_node_op **p = &op->node->ops; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
}

static void op_free(struct an_node_op *op)
{
	struct ev_loop *loop = op->node->loop;
	op_unlink(op);
	ev_timer_stop(loop, &op->deadline);
	if (op->fd >= 0) {
		ev_io_stop(loop, &op->io);
		close(op->fd);
	}
	an_buf_free(&op->out);
	an_buf_free(&op->in);
	free(op);
}

/* Report and free: the callback may start new operations or cancel others. */
static void op_finish(struct an_node_op *op, int err, const json_t *result, size_t stored)
{
	an_node_done_fn done = op->done;
	void *arg = op->arg;
	op->kop = NULL;
	op_free(op);
	done(arg, err, result, stored);
}

void an_node_op_cancel(struct an_node_op *op)
{
	if (!op)
		return;
	an_kad_op_cancel(op->kop);
	op_free(op);
}

static void op_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_node_op *op = w->data;
	an_kad_op_cancel(op->kop);
	op->kop = NULL;
	op_finish(op, -ETIMEDOUT, NULL, 0);
}

static struct an_node_op *op_new(struct an_node *n, enum op_kind kind, int timeout_ms,
				 an_node_done_fn done, void *arg)
{
	struct an_node_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->node = n;
	op->kind = kind;
	op->done = done;
	op->arg = arg;
	op->fd = -1;
	an_buf_init(&op->out, AN_CONTROL_LINE_MAX);
	an_buf_init(&op->in, AN_CONTROL_LINE_MAX);
	ev_timer_init(&op->deadline, op_timeout, (timeout_ms > 0 ? timeout_ms : n->o.timeout_ms) / 1000.0,
		      0);
	op->deadline.data = op;
	op->next = n->ops;
	n->ops = op;
	return op;
}

/* ---- the daemon client (non-blocking, in the loop) ---- */

static void daemon_reply(struct an_node_op *op, json_t *reply)
{
	json_t *results = json_object_get(reply, "results");
	json_t *code = json_object_get(reply, "code");
	int rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		rc = json_is_integer(code) && json_integer_value(code) < 0 ? (int)json_integer_value(code)
									  : AN_EPROTO;
		if (json_is_string(json_object_get(reply, "error")) &&
		    strcmp(json_string_value(json_object_get(reply, "error")), "timeout") == 0)
			rc = -ETIMEDOUT;
		op_finish(op, rc, NULL, 0);
		return;
	}
	rc = json_is_integer(code) ? (int)json_integer_value(code) : 0;
	if (rc > 0)
		rc = AN_EPROTO;
	if (rc == -ENOENT) /* the daemon's kad said: peers answered, none had it */
		rc = AN_ENOTFOUND;
	switch (op->kind) {
	case OP_PUT: {
		json_t *r = json_array_get(results, 0);
		json_int_t stored = json_integer_value(json_object_get(r, "stored"));
		if (rc == AN_ENOTFOUND) /* "no peer stored the record": a put with stored 0 */
			rc = 0;
		op_finish(op, rc, rc == 0 ? r : NULL, rc == 0 && stored > 0 ? (size_t)stored : 0);
		return;
	}
	case OP_GET: {
		json_t *r = json_array_get(results, 0);
		if (rc == 0 && !json_is_object(r))
			rc = AN_ENOTFOUND;
		op_finish(op, rc, rc == 0 ? r : NULL, 0);
		return;
	}
	case OP_PROVIDERS:
		if (rc == AN_ENOTFOUND)
			rc = 0;
		if (rc == 0 && !json_is_array(results)) {
			json_t *empty = json_array();
			op_finish(op, 0, empty, 0);
			json_decref(empty);
			return;
		}
		op_finish(op, rc, rc == 0 ? results : NULL, 0);
		return;
	}
}

static void daemon_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct an_node_op *op = w->data;
	ssize_t r;
	if (revents & EV_WRITE) {
		r = send(op->fd, op->out.data + op->out_pos, op->out.len - op->out_pos, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r < 0) {
			op_finish(op, -errno, NULL, 0);
			return;
		}
		op->out_pos += (size_t)r;
		if (op->out_pos == op->out.len) {
			ev_io_stop(loop, &op->io);
			ev_io_set(&op->io, op->fd, EV_READ);
			ev_io_start(loop, &op->io);
		}
		return;
	}
	uint8_t buf[4096];
	r = recv(op->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		op_finish(op, r < 0 ? -errno : AN_ECLOSED, NULL, 0);
		return;
	}
	uint8_t *nl = memchr(buf, '\n', (size_t)r);
	size_t take = nl ? (size_t)(nl - buf) : (size_t)r;
	if (an_buf_append(&op->in, buf, take) < 0) {
		op_finish(op, AN_ETOOBIG, NULL, 0);
		return;
	}
	if (!nl)
		return;
	json_t *reply = json_loadb((const char *)op->in.data, op->in.len, 0, NULL);
	if (!json_is_object(reply)) {
		json_decref(reply);
		op_finish(op, AN_EMALFORMED, NULL, 0);
		return;
	}
	daemon_reply(op, reply);
	json_decref(reply);
}

/* Send req (steals) to the daemon; the reply comes through daemon_io. */
static int daemon_start(struct an_node_op *op, json_t *req, int timeout_ms)
{
	struct an_node *n = op->node;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *text;
	int rc;
	int t = timeout_ms > 0 ? timeout_ms : n->o.timeout_ms;
	/* the daemon answers "timeout" itself at timeoutMs; our deadline is a second later */
	json_object_set_new(req, "timeoutMs", json_integer(t));
	ev_timer_set(&op->deadline, (t + 1000) / 1000.0, 0);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return -ENOMEM;
	rc = an_buf_append(&op->out, text, strlen(text));
	if (rc == 0)
		rc = an_buf_append(&op->out, "\n", 1);
	free(text);
	if (rc < 0)
		return rc;
	if (strlen(n->sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, n->sock, strlen(n->sock) + 1);
	op->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (op->fd < 0)
		return -errno;
	/* a Unix connect completes at once, or EAGAIN with a full backlog: then wait to write */
	if (connect(op->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EAGAIN &&
	    errno != EINPROGRESS)
		return -errno;
	ev_io_init(&op->io, daemon_io, op->fd, EV_WRITE);
	op->io.data = op;
	ev_io_start(n->loop, &op->io);
	ev_timer_start(n->loop, &op->deadline);
	return 0;
}

/* ---- the in-process node ---- */

static void kad_put_cb(void *arg, int err, size_t stored, const struct an_peerid *peers, size_t np)
{
	(void)peers; (void)np;
	struct an_node_op *op = arg;
	json_t *r = json_pack("{s:s,s:I}", "key", op->key, "stored", (json_int_t)stored);
	err = cli_kad_err(err, an_node_peer_count(op->node));
	if (err == AN_ENOTFOUND) /* peers answered, none stored it: stored 0 */
		err = 0;
	op_finish(op, err, err == 0 ? r : NULL, err == 0 ? stored : 0);
	json_decref(r);
}

static void kad_get_cb(void *arg, int err, const uint8_t *v, size_t len, size_t from)
{
	(void)from;
	struct an_node_op *op = arg;
	json_t *rec = NULL;
	err = cli_kad_err(err, an_node_peer_count(op->node));
	/* not inside json_is_object(): the macro evaluates its argument twice */
	if (err == 0)
		rec = json_loadb((const char *)v, len, 0, NULL);
	if (err == 0 && !json_is_object(rec))
		err = AN_EMALFORMED;
	op_finish(op, err, err == 0 ? rec : NULL, 0);
	json_decref(rec);
}

static void kad_prov_cb(void *arg, int err, const struct an_kad_provider *p, size_t np)
{
	struct an_node_op *op = arg;
	json_t *list = json_array();
	char text[AN_PEERID_TEXT_MAX], hash[AN_PEERHASH_LEN + 1], a[AN_MULTIADDR_TEXT_MAX];
	/* none found with nobody to ask is the network's answer, not a "no" */
	if (err == 0 && np == 0)
		err = AN_ENOTFOUND;
	err = cli_kad_err(err, an_node_peer_count(op->node));
	if (err == AN_ENOTFOUND)
		err = 0; /* an empty list */
	for (size_t i = 0; err == 0 && i < np; i++) {
		json_t *addrs = json_array();
		an_peerid_format(&p[i].id, text, sizeof(text));
		an_peerhash(&p[i].id, hash);
		for (size_t j = 0; j < p[i].naddrs; j++)
			if (an_multiaddr_format(&p[i].addrs[j], a, sizeof(a)) == 0)
				json_array_append_new(addrs, json_string(a));
		json_array_append_new(list, json_pack("{s:s,s:s,s:o}", "peerId", text, "peerHash", hash,
						      "addrs", addrs));
	}
	op_finish(op, err, err == 0 ? list : NULL, 0);
	json_decref(list);
}

/* The DHT key of a signed record, from its lookup. */
static int record_key(const json_t *rec, char *out, size_t cap)
{
	char ph[AN_PEERHASH_LEN + 1], fqdn[AN_RECORD_FQDN_MAX + 1];
	const char *lookup = json_string_value(json_object_get(rec, "lookup"));
	struct an_buf k;
	int rc;
	if (!lookup)
		return AN_EFIELD;
	rc = an_record_parse_name(lookup, false, ph, fqdn);
	if (rc < 0)
		return rc;
	an_buf_init(&k, cap - 1);
	rc = an_record_dht_key(ph, fqdn, &k);
	if (rc == 0) {
		memcpy(out, k.data, k.len);
		out[k.len] = 0;
	}
	an_buf_free(&k);
	return rc;
}

int an_node_put_start(struct an_node *n, const json_t *rec, const json_t *root, int timeout_ms,
		      an_node_done_fn done, void *arg, struct an_node_op **out)
{
	struct an_record_error e = {{0}, {0}};
	struct an_node_op *op;
	struct an_buf val;
	int rc;
	if (out)
		*out = NULL;
	if (!(op = op_new(n, OP_PUT, timeout_ms, done, arg)))
		return -ENOMEM;
	rc = record_key(rec, op->key, sizeof(op->key));
	if (rc < 0)
		goto fail;
	if (n->daemon) {
		rc = daemon_start(op, json_pack("{s:s,s:O,s:O?}", "cmd", "put", "record", rec, "root",
						(json_t *)root),
				  timeout_ms);
		if (rc < 0)
			goto fail;
		goto started;
	}
	an_buf_init(&val, AN_RECORD_MAX * 2);
	rc = an_record_serialize(rec, &val);
	if (rc == 0)
		rc = an_kad_node_put(n->kad, (const uint8_t *)op->key, strlen(op->key), val.data, val.len,
				     AN_KAD_PUT_OURS, root, kad_put_cb, op, &op->kop, &e);
	an_buf_free(&val);
	if (rc < 0)
		goto fail;
	ev_timer_start(n->loop, &op->deadline);
started:
	if (out)
		*out = op;
	return 0;
fail:
	op_free(op);
	return rc;
}

int an_node_get_start(struct an_node *n, const char *key, const json_t *root, int timeout_ms,
		      an_node_done_fn done, void *arg, struct an_node_op **out)
{
	struct an_node_op *op;
	struct an_buf rv;
	int rc;
	if (out)
		*out = NULL;
	if (strlen(key) > AN_KAD_KEY_MAX)
		return AN_ETOOBIG;
	if (!(op = op_new(n, OP_GET, timeout_ms, done, arg)))
		return -ENOMEM;
	snprintf(op->key, sizeof(op->key), "%s", key);
	an_buf_init(&rv, AN_RECORD_MAX * 2);
	rc = root ? an_record_serialize(root, &rv) : 0;
	if (rc < 0) {
		rc = AN_EMALFORMED;
		goto fail;
	}
	if (n->daemon) {
		json_t *req = json_pack("{s:s,s:s}", "cmd", "get", "key", key);
		if (root)
			json_object_set_new(req, "rootValue", json_stringn((const char *)rv.data, rv.len));
		rc = daemon_start(op, req, timeout_ms);
	} else {
		rc = an_kad_node_get(n->kad, (const uint8_t *)key, strlen(key), rv.data, rv.len,
				     kad_get_cb, op, &op->kop);
		if (rc == 0)
			ev_timer_start(n->loop, &op->deadline);
	}
	if (rc < 0)
		goto fail;
	an_buf_free(&rv);
	if (out)
		*out = op;
	return 0;
fail:
	an_buf_free(&rv);
	op_free(op);
	return rc;
}

int an_node_providers_start(struct an_node *n, const char *fqdn, int timeout_ms,
			    an_node_done_fn done, void *arg, struct an_node_op **out)
{
	uint8_t mh[34];
	char text[128];
	struct an_node_op *op;
	int rc = an_record_name_key(fqdn, mh);
	if (out)
		*out = NULL;
	if (rc == 0)
		rc = an_multihash_format(mh, sizeof(mh), text, sizeof(text));
	if (rc < 0)
		return rc;
	if (!(op = op_new(n, OP_PROVIDERS, timeout_ms, done, arg)))
		return -ENOMEM;
	if (n->daemon) {
		rc = daemon_start(op, json_pack("{s:s,s:s}", "cmd", "providers", "key", text), timeout_ms);
	} else {
		rc = an_kad_node_providers(n->kad, mh, sizeof(mh), kad_prov_cb, op, &op->kop);
		if (rc == 0)
			ev_timer_start(n->loop, &op->deadline);
	}
	if (rc < 0) {
		op_free(op);
		return rc;
	}
	if (out)
		*out = op;
	return 0;
}

/* ---- blocking forms ---- */

struct waiter {
	bool done;
	int err;
	size_t stored;
	json_t *result;
};

static void wait_cb(void *arg, int err, const json_t *result, size_t stored)
{
	struct waiter *w = arg;
	w->done = true;
	w->err = err;
	w->stored = stored;
	w->result = json_incref((json_t *)result);
}

/* Every operation has a deadline timer, so this loop ends. */
static int wait_for(struct an_node *n, struct waiter *w)
{
	while (!w->done)
		ev_run(n->loop, EVRUN_ONCE);
	return w->err;
}

int an_node_put(struct an_node *n, const json_t *rec, const json_t *root, size_t *stored)
{
	struct waiter w = {0};
	int rc = an_node_put_start(n, rec, root, 0, wait_cb, &w, NULL);
	if (rc == 0)
		rc = wait_for(n, &w);
	if (stored)
		*stored = w.stored;
	json_decref(w.result);
	return rc;
}

int an_node_get(struct an_node *n, const char *key, const json_t *root, json_t **rec)
{
	struct waiter w = {0};
	int rc = an_node_get_start(n, key, root, 0, wait_cb, &w, NULL);
	*rec = NULL;
	if (rc == 0)
		rc = wait_for(n, &w);
	if (rc == 0)
		*rec = w.result;
	else
		json_decref(w.result);
	return rc;
}

int an_node_providers(struct an_node *n, const char *fqdn, json_t **list)
{
	struct waiter w = {0};
	int rc = an_node_providers_start(n, fqdn, 0, wait_cb, &w, NULL);
	*list = NULL;
	if (rc == 0)
		rc = wait_for(n, &w);
	if (rc == 0)
		*list = w.result ? w.result : json_array();
	else
		json_decref(w.result);
	return rc;
}
