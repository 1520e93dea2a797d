/* query.c - ping and id: run on the daemon through its control socket, or in-process. */
#include "dht.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "control/control.h"
#include "crypto/peerid.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

struct dht_job {
	struct an_host *host;
	struct an_host_conn *conn; /* referenced once dialed */
	bool is_ping;
	long count, seq;
	int timeout_ms;
	dht_line_fn line;
	dht_done_fn done;
	void *arg;
	bool busy;      /* a dial, ping or identify is outstanding */
	bool cancelled; /* no more callbacks; freed when not busy */
	char peer[AN_PEERID_TEXT_MAX];
	ev_tstamp t0; /* start of the current ping: finer than the codec's ms */
};

static void job_free(struct dht_job *j)
{
	if (j->conn)
		an_host_conn_unref(j->conn);
	free(j);
}

static void job_finish(struct dht_job *j, int err, const char *msg)
{
	if (!j->cancelled)
		j->done(j->arg, err, msg);
	job_free(j);
}

static json_t *identify_json(const char *peer, const struct an_identify *m)
{
	json_t *o = json_object();
	json_t *addrs = json_array(), *protos = json_array();
	char text[AN_HOST_ADDR_TEXT_MAX];
	json_object_set_new(o, "peerId", json_string(peer));
	if (m->public_key.len) {
		size_t cap = sodium_base64_ENCODED_LEN(m->public_key.len, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(cap);
		if (b64) {
			sodium_bin2base64(b64, cap, m->public_key.data, m->public_key.len,
					  sodium_base64_VARIANT_ORIGINAL);
			json_object_set_new(o, "publicKey", json_string(b64));
			free(b64);
		}
	}
	for (size_t i = 0; i < m->n_addrs; i++)
		if (an_host_maddr_format(m->addrs[i].data, m->addrs[i].len, text, sizeof(text)) == 0)
			json_array_append_new(addrs, json_string(text));
	json_object_set_new(o, "listenAddrs", addrs);
	for (size_t i = 0; i < m->n_protocols; i++)
		json_array_append_new(protos, json_string(m->protocols[i]));
	json_object_set_new(o, "protocols", protos);
	if (m->observed_addr.len &&
	    an_host_maddr_format(m->observed_addr.data, m->observed_addr.len, text, sizeof(text)) == 0)
		json_object_set_new(o, "observedAddr", json_string(text));
	if (m->protocol_version)
		json_object_set_new(o, "protocolVersion", json_string(m->protocol_version));
	if (m->agent_version)
		json_object_set_new(o, "agentVersion", json_string(m->agent_version));
	json_object_set_new(o, "signedPeerRecord",
			    json_boolean(m->present & AN_IDENTIFY_HAS_SIGNED_RECORD));
	return o;
}

static void job_step(struct dht_job *j);

static void ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	struct dht_job *j = arg;
	j->busy = false;
	if (j->cancelled) {
		job_free(j);
		return;
	}
	if (err < 0) {
		job_finish(j, err, err == -ETIMEDOUT ? "ping timed out" : an_strerror(err));
		return;
	}
	json_int_t us = (json_int_t)((ev_time() - j->t0) * 1e6);
	j->line(j->arg, json_pack("{s:s,s:i,s:I,s:I}", "peerId", j->peer, "seq", (int)j->seq,
				  "rttMs", (json_int_t)rtt_ms, "rttUs", us));
	job_step(j);
}

static void identify_cb(void *arg, int err, const struct an_identify *m)
{
	struct dht_job *j = arg;
	j->busy = false;
	if (j->cancelled) {
		job_free(j);
		return;
	}
	if (err < 0) {
		job_finish(j, err, NULL);
		return;
	}
	j->line(j->arg, identify_json(j->peer, m));
	job_finish(j, 0, NULL);
}

static void job_step(struct dht_job *j)
{
	int rc;
	if (!an_host_conn_alive(j->conn)) {
		job_finish(j, AN_ECLOSED, "connection lost");
		return;
	}
	if (j->is_ping) {
		if (j->seq >= j->count) {
			job_finish(j, 0, NULL);
			return;
		}
		j->seq++;
		j->t0 = ev_time();
		rc = an_ping_once(j->conn, j->timeout_ms, ping_cb, j);
	} else {
		rc = an_identify_request(j->conn, j->timeout_ms, identify_cb, j);
	}
	if (rc < 0) {
		job_finish(j, rc, NULL);
		return;
	}
	j->busy = true;
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct dht_job *j = arg;
	j->busy = false;
	if (j->cancelled) {
		job_free(j);
		return;
	}
	if (err < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "unable to connect: %s", an_strerror(err));
		job_finish(j, err, msg);
		return;
	}
	an_host_conn_ref(c);
	j->conn = c;
	an_peerid_format(an_host_conn_peer(c), j->peer, sizeof(j->peer));
	job_step(j);
}

int dht_job_start(struct an_host *h, const char *cmd, const char *addr, long count, int timeout_ms,
		  dht_line_fn line, dht_done_fn done, void *arg, struct dht_job **out)
{
	struct dht_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->host = h;
	j->is_ping = strcmp(cmd, "ping") == 0;
	j->count = count > 0 ? count : 1;
	j->timeout_ms = timeout_ms;
	j->line = line;
	j->done = done;
	j->arg = arg;
	int rc = an_host_dial(h, addr, timeout_ms, dial_cb, j);
	if (rc < 0) {
		free(j);
		return rc;
	}
	j->busy = true;
	if (out)
		*out = j;
	return 0;
}

void dht_job_cancel(struct dht_job *j)
{
	j->cancelled = true;
	if (!j->busy)
		job_free(j);
}

/* ---- the tool side ---- */

struct run {
	struct ev_loop *loop;
	int err;
	char msg[256];
};

static void print_line(void *arg, json_t *line)
{
	(void)arg;
	cli_print_json(line);
	fflush(stdout);
	json_decref(line);
}

static void run_done(void *arg, int err, const char *msg)
{
	struct run *r = arg;
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : an_strerror(err));
	ev_break(r->loop, EVBREAK_ALL);
}

static void log_stderr(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

static int query_in_process(struct dht_opts *o, const char *cmd, const char *addr)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct an_privkey *key = NULL;
	struct an_host *h = NULL;
	struct run r = {.loop = loop};
	int rc = dht_host_new(loop, o, &key, &h);
	if (rc < 0) {
		cli_warn("unable to start a node: %s", an_strerror(rc));
		goto out;
	}
	an_host_config_log(h, log_stderr, NULL);
	rc = dht_job_start(h, cmd, addr, o->count, (int)o->timeout_ms, print_line, run_done, &r, NULL);
	if (rc < 0) {
		cli_warn("unable to dial '%s': %s", addr, an_strerror(rc));
		goto out;
	}
	ev_run(loop, 0);
	rc = r.err;
	if (rc < 0)
		cli_warn("%s: %s", addr, r.msg);
out:
	an_host_free(h);
	an_privkey_free(key);
	return rc;
}

/* 1 if the daemon answered (rc in *result), 0 if there is no daemon. */
static int query_daemon(struct dht_opts *o, const char *cmd, const char *addr, int *result)
{
	char path[512];
	json_t *reply = NULL;
	int rc = an_control_socket_path(dht_state_dir(o), path, sizeof(path));
	if (rc < 0)
		return 0;
	json_t *req = json_pack("{s:s,s:s,s:I,s:I}", "cmd", cmd, "addr", addr, "count",
				(json_int_t)(o->count > 0 ? o->count : 1), "timeoutMs",
				(json_int_t)o->timeout_ms);
	/* The daemon needs time for every ping plus the dial. */
	long long wait = o->timeout_ms * ((o->count > 0 ? o->count : 1) + 1) + 1000;
	rc = an_control_request(path, req, (int)(wait > 600000 ? 600000 : wait), &reply);
	json_decref(req);
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		return 0;
	if (rc < 0) {
		cli_warn("daemon at %s: %s", path, an_strerror(rc));
		*result = rc;
		return 1;
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(reply, "results"), i, v)
			cli_print_json(v);
		*result = 0;
	} else {
		json_t *code = json_object_get(reply, "code");
		const char *err = json_string_value(json_object_get(reply, "error"));
		cli_warn("%s: %s", addr, err ? err : "daemon error");
		*result = json_is_integer(code) && json_integer_value(code) < 0
				  ? (int)json_integer_value(code)
				  : AN_EPROTO;
	}
	json_decref(reply);
	return 1;
}

int dht_cmd_query(struct dht_opts *o, const char *cmd)
{
	int rc;
	if (o->n_args != 1)
		return AN_EXIT_USAGE;
	const char *addr = o->args[0];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	if (an_host_maddr_split(addr, &ss, &sl, &id, &has_id) < 0) {
		cli_warn("invalid multiaddr '%s'", addr);
		return AN_EXIT_USAGE;
	}
	if (!query_daemon(o, cmd, addr, &rc))
		rc = query_in_process(o, cmd, addr);
	/* A peer other than the one in /p2p/ is a failure to reach that peer. */
	if (rc == AN_EMISMATCH)
		return AN_EXIT_SYSTEM;
	return cli_exit_status(rc);
}
