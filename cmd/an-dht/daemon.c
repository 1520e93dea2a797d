/* daemon.c - an-dht daemon: one node, a ready line, a control socket, clean stop on SIGTERM. */
#include "dht.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "node.h"
#include "nodeopts.h"
#include "control/control.h"
#include "crypto/peerid.h"
#include "nat/autonat.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

#define SHUTDOWN_GRACE_MS 2000
/*
 * Every TRIM_INTERVAL_S the daemon hands free heap pages back to the kernel
 * (glibc malloc_trim).  Bursts of puts and gets leave freed chunks in the
 * middle of the heap that glibc's own trimming (top of the heap only) never
 * returns: in the 100-node benchmark a daemon's heap held ~0.5 MB free in
 * ~200 chunks and malloc_trim took RSS from 6.6 to 6.3 MB (bench/README.md).
 */
#define TRIM_INTERVAL_S 30.

struct daemon {
	struct ev_loop *loop;
	struct an_host *host;
	struct an_control_server *control;
	struct dht_kad *kad;
	struct an_autonat *autonat; /* NULL with AN_AUTONAT=off */
	ev_signal sigterm, sigint;
	ev_timer trim;
	char peer[AN_PEERID_TEXT_MAX];
	bool quiet;
};

struct call_ctx {
	struct an_control_call *call;
	struct dht_job *job;
	json_t *results;
};

static void log_msg(void *arg, const char *msg)
{
	struct daemon *d = arg;
	if (!d->quiet)
		cli_warn("%s", msg);
}

static void call_line(void *arg, json_t *line)
{
	struct call_ctx *x = arg;
	json_array_append_new(x->results, line);
}

static void call_done(void *arg, int err, const char *msg)
{
	struct call_ctx *x = arg;
	if (err < 0)
		an_control_reply_error(x->call, err, msg);
	else
		an_control_reply(x->call, json_pack("{s:b,s:O}", "ok", 1, "results", x->results));
	json_decref(x->results);
	free(x);
}

static void call_cancel(struct an_control_call *call, void *arg)
{
	(void)call;
	struct call_ctx *x = arg;
	dht_job_cancel(x->job);
	json_decref(x->results);
	free(x);
}

static json_t *status_json(struct daemon *d)
{
	const char *addrs[16];
	size_t n = an_host_addrs(d->host, addrs, 16);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		char full[AN_HOST_ADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8];
		snprintf(full, sizeof(full), "%s/p2p/%s", addrs[i], d->peer);
		json_array_append_new(a, json_string(full));
	}
	return json_pack("{s:s,s:o}", "peerId", d->peer, "addrs", a);
}

static void handle(struct an_control_call *call, const json_t *req, void *arg)
{
	struct daemon *d = arg;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (strcmp(cmd, "status") == 0) {
		json_t *s = status_json(d);
		json_object_set_new(s, "ok", json_true());
		json_object_set_new(s, "connections",
				    json_integer((json_int_t)an_host_conn_count(d->host)));
		json_t *ks = dht_kad_status(d->kad);
		json_object_update(s, ks);
		json_decref(ks);
		/* learned by AutoNAT; "unknown" until it decides, or when it is off */
		json_object_set_new(s, "reachability",
				    json_string(an_reach_name(d->autonat ? an_autonat_reachability(d->autonat)
									 : AN_REACH_UNKNOWN)));
		an_control_reply(call, s);
		return;
	}
	if (dht_kad_handle(d->kad, call, cmd, req))
		return;
	if (strcmp(cmd, "ping") != 0 && strcmp(cmd, "id") != 0) {
		an_control_reply_error(call, AN_EFIELD, "unknown cmd");
		return;
	}
	const char *addr = json_string_value(json_object_get(req, "addr"));
	json_t *count = json_object_get(req, "count");
	if (!addr) {
		an_control_reply_error(call, AN_EFIELD, "missing addr");
		return;
	}
	struct call_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		an_control_reply_error(call, -ENOMEM, NULL);
		return;
	}
	x->call = call;
	x->results = json_array();
	long n = json_is_integer(count) ? (long)json_integer_value(count) : 1;
	if (n < 1 || n > 100000)
		n = 1;
	int t = an_control_call_timeout_ms(call);
	int rc = dht_job_start(d->host, cmd, addr, n, t, call_line, call_done, x, &x->job);
	if (rc < 0) {
		json_decref(x->results);
		free(x);
		an_control_reply_error(call, rc, NULL);
		return;
	}
	an_control_call_on_cancel(call, call_cancel, x);
}

static void trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct daemon *d = w->data;
	if (!d->quiet)
		cli_warn("signal %d: shutting down", w->signum);
	an_control_server_free(d->control);
	d->control = NULL;
	dht_kad_stop(d->kad); /* saves the routing table */
	d->kad = NULL;
	ev_signal_stop(loop, &d->sigterm);
	ev_signal_stop(loop, &d->sigint);
	ev_timer_stop(loop, &d->trim);
	an_host_shutdown(d->host, SHUTDOWN_GRACE_MS);
}

int dht_cmd_daemon(struct dht_opts *o)
{
	struct daemon d = {0};
	struct an_privkey *key = NULL;
	char sock[512];
	int rc;

	if (o->n_args != 0)
		return AN_EXIT_USAGE;
	const char *dir = dht_state_dir(o);
	rc = an_node_make_dir(dir);
	if (rc < 0) {
		cli_warn("unable to create state directory '%s': %s", dir, an_strerror(rc));
		return cli_exit_status(rc);
	}
	rc = an_control_socket_path(dir, sock, sizeof(sock));
	if (rc < 0) {
		cli_warn("state directory path '%s' is too long for a socket", dir);
		return AN_EXIT_USAGE;
	}
	char keypath[4200];
	/* The daemon keeps its identity: create it on first start. */
	if (o->keyfile)
		snprintf(keypath, sizeof(keypath), "%s", o->keyfile);
	else
		snprintf(keypath, sizeof(keypath), "%s/identity.key", dir);
	{
		if (access(keypath, F_OK) < 0 && errno == ENOENT) {
			rc = an_privkey_generate(&key);
			if (rc == 0)
				rc = an_privkey_save(key, keypath, false);
			an_privkey_free(key);
			key = NULL;
			if (rc < 0) {
				cli_warn("unable to create '%s': %s", keypath, an_strerror(rc));
				return cli_exit_status(rc);
			}
		}
		o->keyfile = keypath;
	}
	d.quiet = o->quiet;
	d.loop = ev_default_loop(0);
	rc = dht_host_new(d.loop, o, &key, &d.host);
	if (rc < 0) {
		cli_warn("unable to start the node: %s", an_strerror(rc));
		goto out;
	}
	an_host_config_log(d.host, log_msg, &d);
	an_peerid_format(an_host_peer_id(d.host), d.peer, sizeof(d.peer));
	rc = cli_host_listen_all(d.host, o->listen, o->n_listen);
	if (rc == 0)
		rc = cli_host_announce_all(d.host, o->announce, o->n_announce);
	if (rc < 0)
		goto out;
	rc = dht_kad_start(d.host, o, dir, &d.kad);
	if (rc < 0) {
		cli_warn("unable to start the DHT in '%s': %s", dir, an_strerror(rc));
		goto out;
	}
	/* AutoNAT v1 + v2 as in every program's node (cmd/common/node.c):
	 * $AN_AUTONAT_ALLOW lists non-public ranges its server dials;
	 * AN_AUTONAT=off runs none. */
	const char *autonat_off = getenv("AN_AUTONAT");
	if (!autonat_off || strcmp(autonat_off, "off") != 0) {
		struct an_autonat_config ac = {.allow = getenv("AN_AUTONAT_ALLOW"), .log = log_msg,
					       .log_arg = &d};
		rc = an_autonat_new(d.host, &ac, &d.autonat);
		if (rc < 0) {
			cli_warn("unable to start AutoNAT: %s", an_strerror(rc));
			goto out;
		}
	}
	rc = an_control_server_new(d.loop, sock, handle, &d, &d.control);
	if (rc < 0) {
		cli_warn("unable to open control socket '%s': %s", sock,
			 rc == -EADDRINUSE ? "another daemon is running" : an_strerror(rc));
		goto out;
	}
	ev_signal_init(&d.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&d.sigint, signal_cb, SIGINT);
	d.sigterm.data = d.sigint.data = &d;
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	ev_timer_init(&d.trim, trim_cb, TRIM_INTERVAL_S, TRIM_INTERVAL_S);
	ev_timer_start(d.loop, &d.trim);

	json_t *ready = status_json(&d);
	json_object_set_new(ready, "event", json_string("ready"));
	json_t *line = json_pack("{s:s,s:O,s:O}", "event", "ready", "peerId",
				 json_object_get(ready, "peerId"), "addrs", json_object_get(ready, "addrs"));
	json_decref(ready);
	cli_print_json(line);
	json_decref(line);
	fflush(stdout);
	cli_log_timestamps();
	ev_run(d.loop, 0);
	rc = 0;
out:
	an_control_server_free(d.control);
	an_autonat_free(d.autonat);
	dht_kad_stop(d.kad);
	an_host_free(d.host);
	an_privkey_free(key);
	return cli_exit_status(rc);
}
