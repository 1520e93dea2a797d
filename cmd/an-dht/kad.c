/* kad.c - the DHT commands: put, get, providers, peers, republish, pin, unpin,
 * through the daemon's control socket or on an in-process node. */
#include "dht.h"

#include <errno.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "node.h"
#include "control/control.h"
#include "crypto/peerid.h"
#include "dht/kad_node.h"
#include "dht/store.h"
#include "dht/validate.h"
#include "encoding/multihash.h"
#include "record/jsonstream.h"
#include "record/record.h"
#include "util/error.h"

/* ---- one command on a node: JSON request in, JSON lines out ---- */

struct kexec {
	struct an_kad_node *node;
	json_t *req;
	dht_line_fn line;
	dht_done_fn done;
	void *arg;
	struct an_kad_op *op;
	const char *cmd;
	char key[AN_KAD_KEY_MAX + 1];
	size_t key_len;
	int worst; /* republish: the worst outcome */
};

/* The kad op's outcome as we report it (cli_kad_err): a "no" only when peers were asked. */
static int exec_err(const struct kexec *x, int err)
{
	return cli_kad_err(err, an_kad_node_rt(x->node)->size);
}

static void exec_end(struct kexec *x, int err, const char *msg)
{
	if (err == -EHOSTUNREACH || err == -ETIMEDOUT)
		msg = cli_strerror(err);
	x->done(x->arg, err, msg);
	json_decref(x->req);
	free(x);
}

static json_t *peer_json(const struct an_peerid *id, const struct an_multiaddr *addrs, size_t na)
{
	char text[AN_PEERID_TEXT_MAX], hash[AN_PEERHASH_LEN + 1], a[AN_MULTIADDR_TEXT_MAX];
	json_t *arr = json_array();
	an_peerid_format(id, text, sizeof(text));
	an_peerhash(id, hash);
	for (size_t i = 0; i < na; i++)
		if (an_multiaddr_format(&addrs[i], a, sizeof(a)) == 0)
			json_array_append_new(arr, json_string(a));
	return json_pack("{s:s,s:s,s:o}", "peerId", text, "peerHash", hash, "addrs", arr);
}

static json_t *value_json(const char *key, const uint8_t *v, size_t len)
{
	json_t *rec = NULL;
	if (an_validate_namespace((const uint8_t *)key, strlen(key)) == AN_NS_AN)
		rec = json_loadb((const char *)v, len, 0, NULL);
	if (rec)
		return rec;
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(cap);
	if (!b64)
		return NULL;
	sodium_bin2base64(b64, cap, v, len, sodium_base64_VARIANT_ORIGINAL);
	rec = json_pack("{s:s,s:s}", "key", key, "value", b64);
	free(b64);
	return rec;
}

static void put_cb(void *arg, int err, size_t stored, const struct an_peerid *peers, size_t np)
{
	struct kexec *x = arg;
	json_t *arr = json_array();
	char text[AN_PEERID_TEXT_MAX];
	for (size_t i = 0; i < np; i++) {
		an_peerid_format(&peers[i], text, sizeof(text));
		json_array_append_new(arr, json_string(text));
	}
	json_t *line = json_pack("{s:s,s:I,s:o}", "key", x->key, "stored", (json_int_t)stored,
				 "peers", arr);
	int claim = an_kad_op_claim(x->op);
	const char *status = json_string_value(json_object_get(x->req, "status"));
	if (status) /* republish -k: a record re-signed by the tool */
		json_object_set_new(line, "status", json_string(status));
	if (json_is_true(json_object_get(x->req, "wasExpired")))
		json_object_set_new(line, "wasExpired", json_true());
	if (claim != AN_KAD_CLAIM_NONE)
		json_object_set_new(line, "claim",
				    json_string(claim == AN_KAD_CLAIM_STORED ? "stored" : "refused"));
	x->line(x->arg, line);
	/* stored by nobody: a "no" when peers answered, the network's fault when none could be asked */
	err = stored ? 0 : exec_err(x, err < 0 ? err : AN_ENOTFOUND);
	if (err < 0 && err != AN_ENOTFOUND)
		exec_end(x, err, NULL);
	else if (!stored)
		exec_end(x, AN_ENOTFOUND, "no peer stored the record");
	else if (claim == AN_KAD_CLAIM_REFUSED)
		exec_end(x, AN_ENOTFOUND, "the bare-name claim was refused: no peer lists us as its provider");
	else
		exec_end(x, 0, NULL);
}

static void get_cb(void *arg, int err, const uint8_t *v, size_t len, size_t from)
{
	(void)from;
	struct kexec *x = arg;
	if (err < 0) {
		err = exec_err(x, err);
		exec_end(x, err, err == AN_ENOTFOUND ? "not found" : NULL);
		return;
	}
	x->line(x->arg, value_json(x->key, v, len));
	exec_end(x, 0, NULL);
}

static void prov_cb(void *arg, int err, const struct an_kad_provider *p, size_t np)
{
	struct kexec *x = arg;
	const char *name = json_string_value(json_object_get(x->req, "name"));
	for (size_t i = 0; i < np; i++) {
		json_t *line = peer_json(&p[i].id, p[i].addrs, p[i].naddrs);
		if (name) { /* the claim as a name: an://PEERHASH@NAME */
			char lookup[AN_RECORD_FQDN_MAX + AN_PEERHASH_LEN + 8];
			snprintf(lookup, sizeof(lookup), "an://%s@%s",
				 json_string_value(json_object_get(line, "peerHash")), name);
			json_object_set_new(line, "name", json_string(lookup));
		}
		x->line(x->arg, line);
	}
	err = np ? 0 : exec_err(x, err < 0 ? err : AN_ENOTFOUND);
	exec_end(x, err, err == AN_ENOTFOUND ? "no providers" : NULL);
}

static void repub_item(void *arg, const uint8_t *key, size_t key_len, const char *status,
		       size_t stored)
{
	struct kexec *x = arg;
	x->line(x->arg, json_pack("{s:s%,s:s,s:I}", "key", (const char *)key, key_len, "status",
				  status, "stored", (json_int_t)stored));
	if (strcmp(status, "refused") == 0)
		x->worst = AN_EMALFORMED;
	else if ((strcmp(status, "expired") == 0 || stored == 0) && x->worst == 0)
		x->worst = AN_ENOTFOUND;
}

static void repub_done(void *arg, int err)
{
	struct kexec *x = arg;
	if (err == 0)
		err = x->worst;
	if (err == AN_ENOTFOUND || err == -ENOENT)
		err = exec_err(x, err);
	exec_end(x, err, err == AN_ENOTFOUND ? "some records were not stored by any peer" : NULL);
}

/* pin: the record is fetched, stored pinned here and sent on. */
static void pin_put_cb(void *arg, int err, size_t stored, const struct an_peerid *peers, size_t np)
{
	(void)err; (void)np; (void)peers;
	struct kexec *x = arg;
	x->line(x->arg, json_pack("{s:s,s:b,s:I}", "key", x->key, "pinned", 1, "stored",
				  (json_int_t)stored));
	exec_end(x, 0, NULL);
}

static void pin_get_cb(void *arg, int err, const uint8_t *v, size_t len, size_t from)
{
	(void)from;
	struct kexec *x = arg;
	struct an_store *s = an_kad_node_store(x->node);
	struct an_record_error e = {{0}, {0}};
	const uint8_t *k = (const uint8_t *)x->key;
	if (err < 0) {
		err = exec_err(x, err);
		exec_end(x, err, err == AN_ENOTFOUND ? "no such record to pin" : NULL);
		return;
	}
	err = an_store_pin(s, k, x->key_len, (int64_t)time(NULL));
	if (err == 0)
		err = an_kad_node_put(x->node, k, x->key_len, v, len, 0, NULL, pin_put_cb, x, &x->op, &e);
	if (err == AN_ESTALE) /* we hold a better one: pinned, nothing to send */
		pin_put_cb(x, 0, 0, NULL, 0);
	else if (err < 0)
		exec_end(x, err, e.message[0] ? e.message : NULL);
}

static int exec_peers(struct kexec *x)
{
	const struct an_rt *rt = an_kad_node_rt(x->node);
	for (unsigned b = 0; b < AN_RT_BUCKETS; b++)
		for (size_t j = 0; j < an_rt_bucket_size(rt, b); j++) {
			const struct an_rt_entry *e = an_rt_bucket_entry(rt, b, j);
			json_t *p = peer_json(&e->id, e->addrs, e->naddrs);
			json_object_set_new(p, "bucket", json_integer(b));
			x->line(x->arg, p);
		}
	return 0;
}

/*
 * Start the command in req (borrowed) on n.  Lines and done come from the
 * loop (peers, unpin: at once, before this returns).  Returns 0 or an
 * error (nothing started, done not called).
 */
static int dht_kad_exec(struct an_kad_node *n, const json_t *req, dht_line_fn line,
			dht_done_fn done, void *arg, struct kexec **out)
{
	struct kexec *x = calloc(1, sizeof(*x));
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	const char *key = json_string_value(json_object_get(req, "key"));
	int rc = 0;
	if (!x)
		return -ENOMEM;
	*out = NULL;
	x->node = n;
	x->req = json_deep_copy(req);
	x->line = line;
	x->done = done;
	x->arg = arg;
	x->cmd = cmd;
	if (key) {
		if (strlen(key) > AN_KAD_KEY_MAX) {
			rc = AN_ETOOBIG;
			goto fail;
		}
		snprintf(x->key, sizeof(x->key), "%s", key);
		x->key_len = strlen(key);
	}
	if (!cmd) {
		rc = AN_EFIELD;
	} else if (strcmp(cmd, "put") == 0) {
		const json_t *rec = json_object_get(req, "record");
		const json_t *root = json_object_get(req, "root");
		struct an_buf val, k;
		struct an_record_error e = {{0}, {0}};
		char ph[AN_PEERHASH_LEN + 1], fqdn[AN_RECORD_FQDN_MAX + 1];
		an_buf_init(&val, AN_RECORD_MAX * 2);
		an_buf_init(&k, AN_KAD_KEY_MAX);
		rc = rec ? an_record_serialize(rec, &val) : AN_EFIELD;
		if (rc == 0)
			rc = an_record_parse_name(json_string_value(json_object_get(rec, "lookup")) ?: "",
						  false, ph, fqdn);
		if (rc == 0)
			rc = an_record_dht_key(ph, fqdn, &k);
		if (rc == 0 && k.len <= AN_KAD_KEY_MAX) {
			memcpy(x->key, k.data, k.len);
			x->key[k.len] = 0;
			x->key_len = k.len;
			rc = an_kad_node_put(n, k.data, k.len, val.data, val.len, AN_KAD_PUT_OURS,
					     json_is_object(root) ? root : NULL, put_cb, x, &x->op, &e);
		}
		an_buf_free(&val);
		an_buf_free(&k);
	} else if (strcmp(cmd, "get") == 0 && key) {
		const char *root = json_string_value(json_object_get(req, "rootValue"));
		rc = an_kad_node_get(n, (const uint8_t *)key, x->key_len, (const uint8_t *)root,
				     root ? strlen(root) : 0, get_cb, x, &x->op);
	} else if (strcmp(cmd, "providers") == 0 && key) {
		uint8_t mh[AN_MULTIHASH_MAX];
		size_t mlen;
		rc = an_multihash_parse(key, mh, sizeof(mh), &mlen);
		if (rc == 0)
			rc = an_kad_node_providers(n, mh, mlen, prov_cb, x, &x->op);
	} else if (strcmp(cmd, "peers") == 0) {
		exec_peers(x);
		exec_end(x, 0, NULL); /* done: the caller's state may be gone now */
		return 0;
	} else if (strcmp(cmd, "republish") == 0) {
		rc = an_kad_node_republish(n, json_is_true(json_object_get(req, "force")), repub_item,
					   repub_done, x, &x->op);
	} else if (strcmp(cmd, "pin") == 0 && key) {
		rc = an_kad_node_get(n, (const uint8_t *)key, x->key_len, NULL, 0, pin_get_cb, x, &x->op);
	} else if (strcmp(cmd, "unpin") == 0 && key) {
		rc = an_store_unpin(an_kad_node_store(n), (const uint8_t *)key, x->key_len);
		if (rc == 0) {
			line(arg, json_pack("{s:s,s:b}", "key", key, "pinned", 0));
			exec_end(x, 0, NULL);
			return 0;
		}
	} else {
		rc = AN_EFIELD;
	}
	if (rc < 0)
		goto fail;
	*out = x;
	return 0;
fail:
	json_decref(x->req);
	free(x);
	return rc;
}

static void dht_kad_exec_cancel(struct kexec *x)
{
	an_kad_op_cancel(x->op);
	json_decref(x->req);
	free(x);
}

/* ---- node configuration shared by the daemon and in-process nodes ---- */

static uint64_t env_ms(const char *name)
{
	const char *v = getenv(name);
	long long ms;
	if (!v || !*v || cli_parse_duration_ms(v, &ms) < 0 || ms <= 0)
		return 0;
	return (uint64_t)ms;
}

static void node_config(const struct dht_opts *o, const char *dir, bool daemon,
			struct an_kad_node_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->protocol = o->protocol ? o->protocol : getenv("AN_KAD_PROTOCOL");
	if (cfg->protocol && !*cfg->protocol)
		cfg->protocol = NULL;
	cfg->client = daemon ? o->client : true;
	cfg->maintain = daemon;
	cfg->state_dir = dir;
	cfg->store.replicate_interval = (int64_t)(env_ms("AN_KAD_REPLICATE_INTERVAL") / 1000);
	cfg->store.republish_interval = (int64_t)(env_ms("AN_KAD_REPUBLISH_INTERVAL") / 1000);
	cfg->refresh_ms = env_ms("AN_KAD_REFRESH_INTERVAL");
	cfg->maintain_ms = env_ms("AN_KAD_MAINTAIN_INTERVAL");
	cfg->request_timeout_ms = o->timeout_ms > 0 && o->timeout_ms < 10000 ? (uint64_t)o->timeout_ms : 0;
	cfg->quorum = 0;
	cfg->claim_bits = o->claim_bits; /* 0: $AN_CLAIM_BITS, else the default (kad_node.h) */
}

/* Bootstrap addresses: --bootstrap, then $AN_BOOTSTRAP, then <dir>/config. */
static int boot_list(const struct dht_opts *o, const char *dir, char ***list, size_t *n)
{
	int rc = 0;
	*list = NULL;
	*n = 0;
	for (int i = 0; rc == 0 && i < o->n_bootstrap; i++)
		rc = an_kad_bootstrap_parse(o->bootstrap[i], list, n);
	if (rc == 0 && *n == 0)
		rc = an_kad_bootstrap_parse(getenv("AN_BOOTSTRAP"), list, n);
	if (rc == 0 && *n == 0)
		rc = an_kad_bootstrap_config(dir, list, n);
	return rc;
}

/* ---- the daemon side ---- */

struct dht_kad {
	struct an_kad_node *node;
};

struct kcall {
	struct an_control_call *call;
	struct kexec *x;
	json_t *results;
};

static void kcall_line(void *arg, json_t *line)
{
	struct kcall *c = arg;
	json_array_append_new(c->results, line);
}

static void kcall_done(void *arg, int err, const char *msg)
{
	struct kcall *c = arg;
	json_t *r = json_pack("{s:b,s:O,s:i}", "ok", 1, "results", c->results, "code", err);
	if (err < 0)
		json_object_set_new(r, "error", json_string(msg ? msg : an_strerror(err)));
	if (c->call)
		an_control_reply(c->call, r);
	else
		json_decref(r);
	json_decref(c->results);
	free(c);
}

static void kcall_cancel(struct an_control_call *call, void *arg)
{
	(void)call;
	struct kcall *c = arg;
	dht_kad_exec_cancel(c->x);
	json_decref(c->results);
	free(c);
}

static void daemon_log(void *arg, const char *msg)
{
	if (!*(const bool *)arg)
		cli_warn("%s", msg);
}

static void boot_done(void *arg, int err, size_t n)
{
	(void)n;
	if (err < 0 && !*(const bool *)arg)
		cli_warn("bootstrap: no peer reached");
}

int dht_kad_start(struct an_host *h, const struct dht_opts *o, const char *statedir,
		  struct dht_kad **out)
{
	static bool quiet;
	struct an_kad_node_config cfg;
	struct dht_kad *k = calloc(1, sizeof(*k));
	char **boot = NULL;
	size_t nboot = 0;
	int rc;
	if (!k)
		return -ENOMEM;
	quiet = o->quiet;
	node_config(o, statedir, true, &cfg);
	cfg.log = daemon_log;
	cfg.log_arg = &quiet;
	rc = boot_list(o, statedir, &boot, &nboot);
	if (rc < 0) {
		cli_warn("invalid bootstrap address: %s", an_strerror(rc));
		free(k);
		return rc;
	}
	rc = an_kad_node_new(h, &cfg, &k->node);
	if (rc == 0 && (nboot || an_kad_node_rt(k->node)->size))
		rc = an_kad_node_bootstrap(k->node, (const char *const *)boot, nboot, boot_done, &quiet,
					   NULL);
	an_kad_bootstrap_free(boot, nboot);
	if (rc < 0) {
		an_kad_node_free(k->node);
		free(k);
		return rc;
	}
	*out = k;
	return 0;
}

bool dht_kad_handle(struct dht_kad *k, struct an_control_call *call, const char *cmd,
		    const json_t *req)
{
	static const char *const cmds[] = {"put", "get", "providers", "peers", "republish", "pin", "unpin"};
	struct kcall *c;
	bool ours = false;
	int rc;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			ours = true;
	if (!ours || !k)
		return false;
	c = calloc(1, sizeof(*c));
	if (!c) {
		an_control_reply_error(call, -ENOMEM, NULL);
		return true;
	}
	c->call = call;
	c->results = json_array();
	struct kexec *x = NULL;
	rc = dht_kad_exec(k->node, req, kcall_line, kcall_done, c, &x);
	if (rc < 0) {
		json_decref(c->results);
		free(c);
		an_control_reply_error(call, rc, NULL);
		return true;
	}
	if (x) { /* still running; else c was freed by kcall_done */
		c->x = x;
		an_control_call_on_cancel(call, kcall_cancel, c);
	}
	return true;
}

json_t *dht_kad_status(struct dht_kad *k)
{
	struct an_store *st = k ? an_kad_node_store(k->node) : NULL;
	struct an_store_record r;
	size_t records = 0, due = 0;
	int64_t now = (int64_t)time(NULL);
	if (!k)
		return json_object();
	an_store_stat(st, &records, NULL);
	an_store_record_init(&r);
	while (due < 1000000 && an_store_next(st, AN_STORE_REPUBLISH_DUE, now, &r) == 0)
		due++;
	an_store_record_free(&r);
	return json_pack("{s:I,s:I,s:I}", "routingTable", (json_int_t)an_kad_node_rt(k->node)->size,
			 "records", (json_int_t)records, "republishDue", (json_int_t)due);
}

int dht_cmd_status(struct dht_opts *o)
{
	char path[512];
	json_t *req = json_pack("{s:s}", "cmd", "status"), *reply = NULL;
	int rc = an_control_socket_path(dht_state_dir(o), path, sizeof(path));
	if (rc == 0)
		rc = an_control_request(path, req, (int)o->timeout_ms, &reply);
	json_decref(req);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		cli_warn("no daemon runs in '%s' (start one with an-dht daemon)", dht_state_dir(o));
		rc = -ECONNREFUSED;
	} else if (rc == -ETIMEDOUT) {
		cli_warn("daemon at %s not answering: no reply in %lld ms", path, o->timeout_ms);
	} else if (rc < 0) {
		cli_warn("daemon at %s: %s", path, an_strerror(rc));
	} else {
		json_object_del(reply, "ok");
		rc = cli_print_json(reply);
	}
	json_decref(reply);
	return cli_exit_status(rc);
}

void dht_kad_stop(struct dht_kad *k)
{
	if (!k)
		return;
	an_kad_node_free(k->node);
	free(k);
}

/* ---- the tool side ---- */

struct tool {
	int err;
	char msg[256];
	bool done;
	size_t lines;
};

static void tool_line(void *arg, json_t *line)
{
	struct tool *t = arg;
	t->lines++;
	cli_print_json(line);
	fflush(stdout);
	json_decref(line);
}

static void tool_done(void *arg, int err, const char *msg)
{
	struct tool *t = arg;
	t->err = err;
	snprintf(t->msg, sizeof(t->msg), "%s", msg ? msg : err ? an_strerror(err) : "");
	t->done = true;
}

static void tool_boot(void *arg, int err, size_t n)
{
	(void)err; (void)n;
	*(bool *)arg = true;
}

static void quiet_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

/*
 * The in-process node: every request in reqs[0..n) in turn; the worst
 * error.  read_only (get, peers, providers): a state directory that does
 * not exist is not created - the node keeps its store and routing table in
 * a temporary directory, removed at the end.
 */
static int run_in_process(struct dht_opts *o, json_t **reqs, size_t nreq, bool read_only)
{
	const char *dir = dht_state_dir(o);
	char tmp[4096] = "";
	struct stat sb;
	struct ev_loop *loop = ev_default_loop(0);
	struct an_privkey *key = NULL;
	struct an_host *h = NULL;
	struct an_kad_node *node = NULL;
	struct an_kad_node_config cfg;
	char **boot = NULL;
	size_t nboot = 0;
	int rc, worst = 0;
	bool booted = false;

	if (read_only && dir && stat(dir, &sb) < 0 && errno == ENOENT) {
		const char *t = getenv("TMPDIR");
		snprintf(tmp, sizeof(tmp), "%s/an-dht-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(tmp)) {
			rc = -errno;
			cli_warn("unable to create a temporary directory '%s': %s", tmp, an_strerror(rc));
			return rc;
		}
		/* bootstrap peers from DIR/config would be read there: none, since DIR is absent */
		dir = tmp;
	}
	rc = an_node_make_dir(dir);
	if (rc < 0) {
		cli_warn("unable to create state directory '%s': %s", dir, an_strerror(rc));
		goto out;
	}
	rc = boot_list(o, dir, &boot, &nboot);
	if (rc < 0) {
		cli_warn("invalid bootstrap address: %s", an_strerror(rc));
		rc = AN_EMALFORMED;
		goto out;
	}
	rc = dht_host_new(loop, o, &key, &h);
	if (rc < 0) {
		cli_warn("unable to start a node: %s", an_strerror(rc));
		goto out;
	}
	an_host_config_log(h, quiet_log, NULL);
	node_config(o, dir, false, &cfg);
	cfg.log = quiet_log;
	rc = an_kad_node_new(h, &cfg, &node);
	if (rc < 0) {
		cli_warn("unable to open the DHT state in '%s': %s", dir, an_strerror(rc));
		goto out;
	}
	/* Fill the routing table first, bounded by the timeout. */
	if (nboot || an_kad_node_rt(node)->size) {
		rc = an_kad_node_bootstrap(node, (const char *const *)boot, nboot, tool_boot, &booted, NULL);
		if (rc == 0)
			an_kad_node_wait(node, &booted, (int)o->timeout_ms);
	}
	for (size_t i = 0; i < nreq; i++) {
		struct tool t = {0};
		struct kexec *x;
		rc = dht_kad_exec(node, reqs[i], tool_line, tool_done, &t, &x);
		if (rc == 0 && x && an_kad_node_wait(node, &t.done, (int)o->timeout_ms) < 0) {
			dht_kad_exec_cancel(x);
			t.err = -ETIMEDOUT;
			snprintf(t.msg, sizeof(t.msg), "no answer within %lld ms (-t)", o->timeout_ms);
		} else if (rc < 0) {
			t.err = rc;
			snprintf(t.msg, sizeof(t.msg), "%s", an_strerror(rc));
		}
		if (t.err < 0) {
			const char *k = json_string_value(json_object_get(reqs[i], "key"));
			cli_warn("%s%s%s", k ? k : "", k ? ": " : "", t.msg);
			if (worst == 0 || cli_exit_status(t.err) > cli_exit_status(worst))
				worst = t.err;
		}
	}
	rc = worst;
	/* ADD_PROVIDER and corrections are still leaving */
	an_kad_node_drain(node, 2000);
out:
	an_kad_node_free(node);
	if (h) {
		/* let ADD_PROVIDER and last writes leave */
		an_host_shutdown(h, 1000);
		ev_run(loop, 0);
	}
	an_host_free(h);
	an_privkey_free(key);
	an_kad_bootstrap_free(boot, nboot);
	if (tmp[0])
		nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}

/* 1 if a daemon ran the requests (worst error in *result), 0 if there is none. */
static int run_daemon(struct dht_opts *o, json_t **reqs, size_t nreq, int *result)
{
	char path[512];
	int worst = 0;
	if (an_control_socket_path(dht_state_dir(o), path, sizeof(path)) < 0)
		return 0;
	for (size_t i = 0; i < nreq; i++) {
		json_t *reply = NULL;
		json_object_set_new(reqs[i], "timeoutMs", json_integer(o->timeout_ms));
		int rc = an_control_request(path, reqs[i], (int)o->timeout_ms + 1000, &reply);
		if (i == 0 && (rc == -ENOENT || rc == -ECONNREFUSED))
			return 0;
		if (rc == 0 && !json_is_true(json_object_get(reply, "ok"))) {
			json_t *code = json_object_get(reply, "code");
			const char *err = json_string_value(json_object_get(reply, "error"));
			rc = json_is_integer(code) && json_integer_value(code) < 0 ? (int)json_integer_value(code)
										  : AN_EPROTO;
			cli_warn("daemon: %s", rc == -ETIMEDOUT ? cli_strerror(rc) : err ? err : an_strerror(rc));
		} else if (rc == 0) {
			size_t j;
			json_t *v;
			json_array_foreach(json_object_get(reply, "results"), j, v)
				cli_print_json(v);
			rc = (int)json_integer_value(json_object_get(reply, "code"));
			if (rc == -ENOENT)
				rc = AN_ENOTFOUND;
			if (rc < 0) {
				const char *k = json_string_value(json_object_get(reqs[i], "key"));
				const char *err = json_string_value(json_object_get(reply, "error"));
				cli_warn("%s%s%s", k ? k : "", k ? ": " : "", err ? err : an_strerror(rc));
			}
		} else if (rc == -ETIMEDOUT) {
			cli_warn("daemon at %s not answering: no reply in %lld ms", path, o->timeout_ms + 1000);
		} else {
			cli_warn("daemon at %s: %s", path, an_strerror(rc));
		}
		json_decref(reply);
		if (rc < 0 && (worst == 0 || cli_exit_status(rc) > cli_exit_status(worst)))
			worst = rc;
	}
	*result = worst;
	return 1;
}

/* KEY: "/ns/..." as is, "an://h@name" or "h@name" as its /an/ key. */
static int parse_key(const char *arg, char *out, size_t cap)
{
	char ph[AN_PEERHASH_LEN + 1], fqdn[AN_RECORD_FQDN_MAX + 1], lookup[600];
	struct an_buf k;
	int rc;
	if (arg[0] == '/') {
		if (strlen(arg) >= cap)
			return AN_ETOOBIG;
		strcpy(out, arg);
		return 0;
	}
	snprintf(lookup, sizeof(lookup), "%s%s", strncmp(arg, "an://", 5) ? "an://" : "", arg);
	rc = an_record_parse_name(lookup, false, ph, fqdn);
	if (rc < 0)
		return rc;
	an_buf_init(&k, cap - 1);
	rc = an_record_dht_key(ph, fqdn, &k);
	if (rc == 0)
		snprintf(out, cap, "%s", (const char *)k.data);
	an_buf_free(&k);
	return rc;
}

/* put: every record on stdin verified (a subdomain against a root seen before it). */
static int read_records(json_t ***reqs, size_t *nreq)
{
	struct an_json_stream st;
	json_t *rec, *roots = json_object();
	char err[256];
	int rc;
	an_json_stream_init(&st, 0, AN_RECORD_STREAM_MAX);
	while ((rc = an_json_stream_next(&st, &rec, err, sizeof(err))) == 1) {
		struct an_record_error e = {{0}, {0}};
		const char *lookup = json_string_value(json_object_get(rec, "lookup"));
		const json_t *root = NULL;
		const json_t *ref = json_array_get(json_object_get(rec, "root"), 0);
		if (ref) {
			const char *did = json_string_value(json_object_get(ref, "target"));
			root = did ? json_object_get(roots, did) : NULL;
		}
		/* A root held by the node is found there; here only roots on stdin. */
		rc = an_record_verify(rec, root, (int64_t)time(NULL), 0, &e);
		if (rc == AN_EROOT && !root)
			rc = 0; /* the node checks it against the root it holds */
		if (rc < 0) {
			cli_warn("record %zu (%s): %s%s%s", *nreq + 1, lookup ? lookup : "?", e.field,
				 e.field[0] ? ": " : "", e.message[0] ? e.message : an_strerror(rc));
			json_decref(rec);
			rc = cli_exit_status(rc) == AN_EXIT_NEGATIVE ? AN_EMALFORMED : rc;
			goto out;
		}
		if (json_is_true(json_object_get(json_object_get(rec, "dns"), "isRoot")))
			json_object_set(roots, json_string_value(json_object_get(rec, "did")), rec);
		json_t **grown = realloc(*reqs, (*nreq + 1) * sizeof(json_t *));
		if (!grown) {
			json_decref(rec);
			rc = -ENOMEM;
			goto out;
		}
		*reqs = grown;
		(*reqs)[(*nreq)++] = json_pack("{s:s,s:o,s:O?}", "cmd", "put", "record", rec, "root",
					       (json_t *)root);
	}
	if (rc < 0)
		cli_warn("stdin: %s%s%s", an_strerror(rc), err[0] ? ": " : "", err);
	else if (*nreq == 0) {
		cli_warn("no records on stdin");
		rc = AN_EMALFORMED;
	}
out:
	an_json_stream_free(&st);
	json_decref(roots);
	return rc < 0 ? rc : 0;
}

/*
 * republish -k KEYFILE: the key's own records held in DIR/store (the one
 * the daemon, if any, uses too), re-signed here with fresh validity when
 * due (their signature is older than the republish interval, they expired,
 * or --force), as put requests for the daemon or the in-process node.  The
 * key never leaves this process: the daemon gets signed records only.
 * Roots come first, and a subdomain names its root as re-signed here.
 */
static int resign_requests(struct dht_opts *o, json_t ***reqs, size_t *nreq)
{
	const char *dir = dht_state_dir(o);
	char path[4200], me[AN_PEERID_TEXT_MAX];
	struct an_privkey *key = NULL;
	struct an_pubkey pub;
	struct an_peerid id;
	struct an_store *st = NULL;
	struct an_store_config cfg = {0};
	struct an_store_record r;
	struct stat sb;
	json_t *own[2] = {json_array(), json_array()}; /* roots, subdomains */
	json_t *roots = json_object();                  /* root name -> re-signed root */
	int64_t now = (int64_t)time(NULL), interval = (int64_t)(env_ms("AN_KAD_REPUBLISH_INTERVAL") / 1000);
	size_t held = 0;
	int rc;
	an_store_record_init(&r);
	rc = an_privkey_load(o->keyfile, &key);
	if (rc < 0) {
		cli_warn("unable to load key '%s': %s", o->keyfile, an_strerror(rc));
		goto out;
	}
	an_privkey_public(key, &pub);
	rc = an_peerid_from_pubkey(&pub, &id);
	if (rc == 0)
		rc = an_peerid_format(&id, me, sizeof(me));
	if (rc < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", dir, AN_KAD_STORE_NAME);
	if (stat(path, &sb) < 0) {
		cli_warn("no record store in '%s': publish with an-dht put or an-serve first", dir);
		rc = AN_ENOTFOUND;
		goto out;
	}
	/* interval 1 s: the due filter then yields every own record, expired ones too */
	cfg.republish_interval = 1;
	rc = an_store_open(&st, path, &cfg);
	if (rc < 0) {
		cli_warn("unable to open the record store '%s': %s", path, an_strerror(rc));
		goto out;
	}
	while ((rc = an_store_next(st, AN_STORE_REPUBLISH_DUE, now + 1, &r)) == 0) {
		json_t *rec;
		int64_t stamp = 0, ttl;
		if (!(r.flags & AN_STORE_OURS) ||
		    an_validate_namespace(r.key.data, r.key.len) != AN_NS_AN)
			continue;
		rec = json_loadb((const char *)r.value.data, r.value.len, 0, NULL);
		if (!rec || !json_is_string(json_object_get(rec, "publisherPublicKey")) ||
		    strcmp(json_string_value(json_object_get(rec, "publisherPublicKey")), me) != 0) {
			json_decref(rec);
			continue;
		}
		held++;
		ttl = json_integer_value(json_object_get(json_object_get(rec, "ttl"), "timeToLive"));
		if (interval <= 0)
			interval = ttl > 0 ? ttl : AN_RECORD_TTL_DEFAULT;
		an_record_parse_time(json_string_value(json_object_get(json_object_get(rec, "ttl"),
								       "timestampRepublished")) ?: "",
				     &stamp);
		bool expired = r.expires && r.expires <= now;
		if (!o->force && !expired && stamp + interval > now) {
			json_decref(rec);
			continue;
		}
		json_t *item = json_pack("{s:s%,s:o,s:b}", "key", (const char *)r.key.data, r.key.len,
					 "record", rec, "expired", expired);
		bool is_root = json_is_true(json_object_get(json_object_get(rec, "dns"), "isRoot"));
		json_array_append_new(own[is_root ? 0 : 1], item);
	}
	an_store_close(st);
	st = NULL;
	if (rc != AN_ENOTFOUND)
		goto out;
	rc = 0;
	if (held == 0) {
		cli_warn("no record of %s held as own in '%s'", me, dir);
		rc = AN_ENOTFOUND;
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		size_t i;
		json_t *item;
		json_array_foreach(own[pass], i, item)
		{
			json_t *rec = json_object_get(item, "record");
			const char *k = json_string_value(json_object_get(item, "key"));
			const json_t *root = NULL;
			struct an_record_sign_opts so = {.now = now, .resign = true};
			struct an_record_error e = {{0}, {0}};
			if (pass == 1) {
				const char *ctx = json_string_value(json_object_get(
					json_array_get(json_object_get(rec, "root"), 0), "context"));
				root = ctx ? json_object_get(roots, ctx) : NULL;
				so.root = root; /* NULL: keep root[], the root was not due */
			}
			rc = an_record_sign(rec, key, &so, &e);
			if (rc < 0) {
				cli_warn("%s: unable to re-sign: %s%s%s", k, e.field, e.field[0] ? ": " : "",
					 e.message[0] ? e.message : an_strerror(rc));
				printf("{\"key\":\"%s\",\"status\":\"refused\",\"stored\":0}\n", k);
				rc = AN_EMALFORMED;
				goto out;
			}
			if (pass == 0)
				json_object_set(roots, json_string_value(json_object_get(json_object_get(rec, "dns"),
											"name")) ?: "",
						rec);
			json_t **grown = realloc(*reqs, (*nreq + 1) * sizeof(json_t *));
			if (!grown) {
				rc = -ENOMEM;
				goto out;
			}
			*reqs = grown;
			(*reqs)[(*nreq)++] = json_pack("{s:s,s:O,s:O?,s:s,s:O}", "cmd", "put", "record", rec,
						       "root", (json_t *)root, "status", "resigned",
						       "wasExpired", json_object_get(item, "expired"));
		}
	}
out:
	an_store_record_free(&r);
	an_store_close(st);
	an_privkey_free(key);
	json_decref(own[0]);
	json_decref(own[1]);
	json_decref(roots);
	return rc;
}

int dht_cmd_kad(struct dht_opts *o, const char *cmd)
{
	json_t **reqs = NULL;
	size_t nreq = 0;
	char key[AN_KAD_KEY_MAX + 1];
	int rc = 0, result = 0;
	if (strcmp(cmd, "put") == 0) {
		rc = read_records(&reqs, &nreq);
		if (rc < 0)
			goto out;
	} else if (strcmp(cmd, "republish") == 0 && o->keyfile) {
		rc = resign_requests(o, &reqs, &nreq);
		if (rc < 0 || nreq == 0)
			goto out;
	} else if (strcmp(cmd, "peers") == 0 || strcmp(cmd, "republish") == 0) {
		reqs = calloc(1, sizeof(json_t *));
		if (!reqs) {
			rc = -ENOMEM;
			goto out;
		}
		reqs[nreq++] = json_pack("{s:s,s:b}", "cmd", cmd, "force", o->force);
	} else if (strcmp(cmd, "providers") == 0) {
		uint8_t mh[34], tmp[AN_MULTIHASH_MAX];
		size_t tl;
		char text[128];
		const char *name = o->args[0];
		if (an_record_fqdn_valid(name)) {
			rc = an_record_name_key(name, mh);
			if (rc == 0)
				rc = an_multihash_format(mh, sizeof(mh), text, sizeof(text));
		} else {
			rc = an_multihash_parse(name, tmp, sizeof(tmp), &tl);
			snprintf(text, sizeof(text), "%s", name);
		}
		if (rc < 0) {
			cli_warn("invalid name or multihash '%s'", name);
			rc = AN_EMALFORMED;
			goto out;
		}
		reqs = calloc(1, sizeof(json_t *));
		if (!reqs) {
			rc = -ENOMEM;
			goto out;
		}
		reqs[nreq++] = json_pack("{s:s,s:s}", "cmd", cmd, "key", text);
		if (an_record_fqdn_valid(name)) /* lines name the claim: an://PEERHASH@NAME */
			json_object_set_new(reqs[0], "name", json_string(name));
	} else {
		rc = parse_key(o->args[0], key, sizeof(key));
		if (rc < 0) {
			cli_warn("invalid key '%s'", o->args[0]);
			rc = AN_EMALFORMED;
			goto out;
		}
		reqs = calloc(1, sizeof(json_t *));
		if (!reqs) {
			rc = -ENOMEM;
			goto out;
		}
		reqs[nreq++] = json_pack("{s:s,s:s}", "cmd", cmd, "key", key);
	}
	if (!run_daemon(o, reqs, nreq, &result))
		result = run_in_process(o, reqs, nreq,
					strcmp(cmd, "get") == 0 || strcmp(cmd, "peers") == 0 ||
						strcmp(cmd, "providers") == 0);
	rc = result;
out:
	for (size_t i = 0; i < nreq; i++)
		json_decref(reqs[i]);
	free(reqs);
	return cli_exit_status(rc);
}
