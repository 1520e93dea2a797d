/* an-serve: serve a directory or a local web server over /an/route/1.0.0 and publish its records. */
#include "cli.h"
#include "nodeopts.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crypto/key.h"
#include "record/record.h"
#include "relay/reservation.h"
#include "route/server.h"
#include "route/static_site.h"
#include "route/upstream.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/init.h"

static const char USAGE[] =
	"Usage: an-serve -k KEYFILE --name NAME [options] DIR\n"
	"       an-serve -k KEYFILE --name NAME --upstream URL [options]\n"
	"\n"
	"Serve DIR (or reverse-proxy to the local web server at URL) as an://PEERHASH@NAME\n"
	"over /an/route/1.0.0, with the key's peer ID as the node's identity; sign and\n"
	"publish the root record and one record per --sub with the node's addresses,\n"
	"republish them on schedule, stop cleanly on SIGTERM or SIGINT.  When ready,\n"
	"print one JSON line {\"peerId\",\"peerHash\",\"addrs\",\"names\",\"published\"}.\n"
	"\n"
	"Options:\n"
	"  -k, --key KEYFILE          the site's secret key, also the node's identity\n"
	"  -n, --name NAME            the root name (an fqdn)\n"
	"      --upstream URL         http://IP:PORT to forward requests to instead of DIR\n"
	"      --sub LABEL=DIR|URL    serve LABEL.NAME from DIR or http://IP:PORT (repeatable)\n"
	"      --listen MULTIADDR     TCP address to listen on (repeatable; default\n"
	"                             /ip4/127.0.0.1/tcp/0)\n"
	"      --announce MULTIADDR   address to publish instead of the listen addresses\n"
	"                             (repeatable)\n"
	"      --relay MULTIADDR      keep a reservation on this relay (.../p2p/RELAY) and\n"
	"                             publish the circuit address through it (repeatable)\n"
	"      --no-direct            publish only the circuit addresses (behind a NAT)\n"
	"  -s, --state-dir DIR        state directory (daemon socket, store, config)\n"
	"      --bootstrap MULTIADDR  bootstrap peer (repeatable; else $AN_BOOTSTRAP, DIR/config)\n"
	"      --protocol ID          kad protocol ID (default /an/kad/1.0.0)\n"
	"      --republish DURATION   republish interval (default 24h, the records' ttl)\n"
	"      --valid DURATION       validity of each signed record (default 48h)\n"
	"      --upstream-timeout DURATION  upstream response head deadline (default 30s)\n"
	"      --dotfiles             serve files and directories whose name starts with\n"
	"                             '.' too (default: 404, except /.well-known/)\n"
	"      --access-log FILE      append the access log to FILE (default stderr)\n"
	"  -t, --timeout DURATION     deadline of the bootstrap and of each publication\n"
	"                             (default 10s)\n"
	"  -q, --quiet                no access log and no progress messages\n"
	"  -h, --help                 show this help\n"
	"      --version              print the version and exit\n"
	"\n"
	"Exit status: 0 stopped by a signal (also when nothing could be published),\n"
	"2 usage, 3 bad key, name, directory or URL, 4 system or network error.\n";

enum {
	OPT_UPSTREAM = 256, OPT_SUB, OPT_LISTEN, OPT_ANNOUNCE, OPT_BOOTSTRAP, OPT_PROTOCOL,
	OPT_REPUBLISH, OPT_VALID, OPT_ACCESS_LOG, OPT_UPSTREAM_TIMEOUT, OPT_RELAY, OPT_NO_DIRECT,
	OPT_DOTFILES
};

#define MAX_SUBS 32
#define MAX_LISTEN 8

struct site {
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	const char *source;      /* DIR or URL (borrowed from argv) */
	bool upstream;
	struct an_static_site dir;
	struct an_upstream up;
	json_t *rec;             /* last signed record */
	size_t stored;
	bool put_done;
	int put_err;
};

struct opts {
	const char *keyfile, *name, *statedir, *protocol, *access_log;
	const char *dir, *upstream;
	const char *subs[MAX_SUBS];
	int n_subs;
	const char *listen[MAX_LISTEN];
	int n_listen;
	const char *announce[AN_HOST_MAX_ANNOUNCE];
	int n_announce;
	const char *bootstrap[AN_NODE_MAX_BOOTSTRAP];
	int n_bootstrap;
	const char *relays[AN_RSV_MAX_RELAYS];
	int n_relays;
	bool no_direct, dotfiles;
	long long timeout_ms, republish_ms, valid_ms, upstream_timeout_ms;
	bool quiet;
};

struct serve {
	struct opts *o;
	struct ev_loop *loop;
	struct an_privkey *key;
	struct an_host *host;
	struct an_route_server *route;
	struct an_node *node;
	struct an_rsv *rsv;      /* --relay reservations, NULL without */
	ev_timer relay_wait;     /* bounds the wait for the first reservations */
	char published_circuits[AN_RECORD_ADDRS_MAX * AN_RECORD_ADDR_MAX]; /* in the last records */
	bool waiting_relays, publish_again;
	struct site sites[MAX_SUBS + 1];
	size_t n_sites;
	FILE *access;
	char peer[AN_PEERID_TEXT_MAX], hash[AN_PEERHASH_LEN + 1];
	ev_signal sigterm, sigint;
	ev_timer republish;
	struct an_node_op *op;   /* the put under way */
	size_t next_put;         /* site index of the next put in this round */
	bool publishing, ready_printed, stopping, running, can_publish;
	unsigned round;
	int64_t last_seq;
};

static void quiet_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

/* Printable, quote-free text for the log line: other bytes as \xHH. */
static void log_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x21 || c >= 0x7f || c == '"' || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

/*
 * One line per request (man page, ACCESS LOG):
 * TIME PEERID HOST "METHOD TARGET" STATUS BYTES DURATIONms END
 */
static void access_cb(void *arg, const struct an_route_access *a)
{
	struct serve *sv = arg;
	char t[AN_RECORD_TIME_LEN + 1];
	const char *end = "ok";
	if (!sv->access)
		return;
	an_record_format_time((int64_t)time(NULL), t);
	if (a->err == -ETIMEDOUT)
		end = "timeout";
	else if (a->err == AN_ERESET)
		end = "reset";
	else if (a->err == AN_EPROTO)
		end = "protocol-error";
	else if (a->err)
		end = "closed";
	fprintf(sv->access, "%s %s %s \"", t, a->peer, a->host);
	log_escape(sv->access, a->method);
	fputc(' ', sv->access);
	log_escape(sv->access, a->target);
	fprintf(sv->access, "\" %d %llu %llums %s\n", a->status, (unsigned long long)a->bytes,
		(unsigned long long)a->duration_ms, end);
	fflush(sv->access);
}

/* ---- records ---- */

/* seq: milliseconds since the epoch, above the last one we used (restarts, fast rounds). */
static int64_t next_seq(struct serve *sv)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	int64_t ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	sv->last_seq = ms > sv->last_seq ? ms : sv->last_seq + 1;
	return sv->last_seq;
}

/*
 * Our addresses without /p2p/<us>: the direct ones (unless --no-direct),
 * then the circuit ones through the relays holding a reservation now.
 */
static size_t our_addrs(const struct serve *sv, const char **out, size_t max)
{
	size_t n = sv->o->no_direct ? 0 : an_host_addrs(sv->host, out, max);
	return n + an_rsv_addrs(sv->rsv, out + n, max - n);
}

/* The circuit addresses now, one string, to tell whether records must change. */
static void circuits_text(const struct serve *sv, char *out, size_t cap)
{
	const char *c[AN_RECORD_ADDRS_MAX];
	size_t n = an_rsv_addrs(sv->rsv, c, AN_RECORD_ADDRS_MAX), used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++) {
		int k = snprintf(out + used, cap - used, "%s ", c[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
}

static int sign_site(struct serve *sv, struct site *s, const json_t *root)
{
	const char *addrs[AN_RECORD_ADDRS_MAX];
	char full[AN_RECORD_ADDRS_MAX][AN_RECORD_ADDR_MAX];
	const char *bare[AN_RECORD_ADDRS_MAX];
	struct an_record_error e = {{0}, {0}};
	struct an_record_sign_opts so = {0};
	size_t n = our_addrs(sv, bare, AN_RECORD_ADDRS_MAX), k = 0;
	json_t *rec = json_object();
	int rc;
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(full[k], sizeof(full[k]), "%s/p2p/%s", bare[i], sv->peer);
		if (len > 0 && (size_t)len < sizeof(full[k])) { /* a longer one cannot be signed */
			addrs[k] = full[k];
			k++;
		}
	}
	n = k;
	so.now = (int64_t)time(NULL);
	so.name = s->fqdn;
	so.type = root ? "A" : "root";
	so.addrs = addrs;
	so.naddrs = n;
	so.root = root;
	so.has_seq = true;
	so.seq = (uint64_t)next_seq(sv);
	so.valid_secs = sv->o->valid_ms / 1000;
	so.ttl_secs = sv->o->republish_ms / 1000 > 0 ? sv->o->republish_ms / 1000 : 1;
	rc = an_record_sign(rec, sv->key, &so, &e);
	if (rc < 0) {
		cli_warn("unable to sign the record of '%s': %s%s%s", s->fqdn, e.field,
			 e.field[0] ? ": " : "", e.message[0] ? e.message : an_strerror(rc));
		json_decref(rec);
		return rc;
	}
	json_decref(s->rec);
	s->rec = rec;
	return 0;
}

static void print_ready(struct serve *sv);
static void publish_next(struct serve *sv);
static void publish_round(struct serve *sv);

static void put_done(void *arg, int err, const json_t *result, size_t stored)
{
	(void)result;
	struct serve *sv = arg;
	struct site *s = &sv->sites[sv->next_put];
	sv->op = NULL;
	s->put_done = true;
	s->put_err = err;
	s->stored = err == 0 ? stored : 0;
	if (!sv->o->quiet) {
		if (err < 0)
			cli_warn("%s '%s' (seq %lld): %s", sv->round ? "republish" : "publish", s->fqdn,
				 (long long)json_integer_value(json_object_get(s->rec, "seq")),
				 an_strerror(err));
		else
			cli_warn("%s '%s' (seq %lld): stored by %zu peer%s", sv->round ? "republished" : "published",
				 s->fqdn, (long long)json_integer_value(json_object_get(s->rec, "seq")),
				 stored, stored == 1 ? "" : "s");
	}
	sv->next_put++;
	publish_next(sv);
}

/* Put the sites' records one after the other (root first: subdomains refer to it). */
static void publish_next(struct serve *sv)
{
	while (sv->next_put < sv->n_sites) {
		struct site *s = &sv->sites[sv->next_put];
		const json_t *root = sv->next_put ? sv->sites[0].rec : NULL;
		int rc;
		if (sv->next_put && !root) {
			sv->next_put++;
			continue;
		}
		rc = sign_site(sv, s, root);
		if (rc == 0)
			rc = an_node_put_start(sv->node, s->rec, root, 0, put_done, sv, &sv->op);
		if (rc == 0)
			return;
		s->put_done = true;
		s->put_err = rc;
		s->stored = 0;
		if (!sv->o->quiet)
			cli_warn("publish '%s': %s", s->fqdn, an_strerror(rc));
		sv->next_put++;
	}
	sv->publishing = false;
	sv->round++;
	if (!sv->ready_printed)
		print_ready(sv);
	if (sv->publish_again) { /* the addresses changed during the round */
		sv->publish_again = false;
		publish_round(sv);
	}
}

static void publish_round(struct serve *sv)
{
	if (sv->stopping)
		return;
	if (sv->publishing) {
		sv->publish_again = true;
		return;
	}
	sv->publishing = true;
	sv->next_put = 0;
	circuits_text(sv, sv->published_circuits, sizeof(sv->published_circuits));
	publish_next(sv);
}

static void republish_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	publish_round(w->data);
}

/* ---- ready line ---- */

static void print_ready(struct serve *sv)
{
	const char *addrs[AN_RECORD_ADDRS_MAX];
	size_t n = our_addrs(sv, addrs, AN_RECORD_ADDRS_MAX);
	json_t *a = json_array(), *names = json_array();
	bool published = false;
	char full[AN_HOST_ADDR_TEXT_MAX + 80], url[AN_RECORD_FQDN_MAX + 32];
	for (size_t i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/p2p/%s", addrs[i], sv->peer);
		json_array_append_new(a, json_string(full));
	}
	for (size_t i = 0; i < sv->n_sites; i++) {
		struct site *s = &sv->sites[i];
		snprintf(url, sizeof(url), "an://%s@%s", sv->hash, s->fqdn);
		json_array_append_new(names, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "name", s->fqdn,
						       "url", url, "source", s->upstream ? "upstream" : "dir",
						       "target", s->source, "stored", (json_int_t)s->stored,
						       "seq", s->rec ? json_integer_value(json_object_get(s->rec, "seq")) : 0));
		if (s->stored)
			published = true;
	}
	json_t *line = json_pack("{s:s,s:s,s:s,s:o,s:o,s:b,s:s}", "event", "ready", "peerId", sv->peer,
				 "peerHash", sv->hash, "addrs", a, "names", names, "published",
				 published, "backend",
				 sv->can_publish ? (an_node_is_daemon(sv->node) ? "daemon" : "node") : "none");
	cli_print_json(line);
	json_decref(line);
	fflush(stdout);
	sv->ready_printed = true;
	cli_log_timestamps();
	if (!published && !sv->o->quiet) {
		if (sv->can_publish)
			cli_warn("no peer stored the records: nothing was published");
		else if (sv->node && an_node_bootstrap_count(sv->node))
			cli_warn("no bootstrap peer could be reached: nothing was published");
		else
			cli_warn("no daemon and no bootstrap peer: nothing was published");
	}
}

/* ---- lifecycle ---- */

static void stop(struct serve *sv)
{
	if (sv->stopping)
		return;
	sv->stopping = true;
	ev_timer_stop(sv->loop, &sv->republish);
	ev_timer_stop(sv->loop, &sv->relay_wait);
	an_rsv_stop(sv->rsv);
	an_node_op_cancel(sv->op);
	sv->op = NULL;
	an_node_close(sv->node); /* on our host: the node goes, the host stays */
	sv->node = NULL;
	an_route_server_free(sv->route);
	sv->route = NULL;
	ev_signal_stop(sv->loop, &sv->sigterm);
	ev_signal_stop(sv->loop, &sv->sigint);
	an_host_shutdown(sv->host, 1000);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop; (void)revents;
	struct serve *sv = w->data;
	if (!sv->o->quiet)
		cli_warn("signal %d: shutting down", w->signum);
	if (sv->running)
		stop(sv);
	else
		sv->stopping = true; /* checked once the node is open */
}

/* ---- relays ---- */

/* The first publication (or, with nobody to publish to, the ready line). */
static void start_serving(struct serve *sv)
{
	sv->waiting_relays = false;
	ev_timer_stop(sv->loop, &sv->relay_wait);
	if (sv->can_publish) {
		ev_timer_init(&sv->republish, republish_cb, sv->o->republish_ms / 1000.0,
			      sv->o->republish_ms / 1000.0);
		sv->republish.data = sv;
		ev_timer_start(sv->loop, &sv->republish);
		publish_round(sv);
	} else {
		for (size_t i = 0; i < sv->n_sites; i++)
			sign_site(sv, &sv->sites[i], i ? sv->sites[0].rec : NULL);
		print_ready(sv);
	}
}

static void relay_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct serve *sv = w->data;
	if (sv->waiting_relays && !sv->stopping)
		start_serving(sv);
}

static void relay_report(void *arg, const struct an_rsv_report *r)
{
	struct serve *sv = arg;
	char circuits[sizeof(sv->published_circuits)];
	if (!sv->o->quiet) {
		if (r->event == AN_RSV_RESERVED)
			cli_warn("reserved a slot on relay '%s'", r->relay_addr);
		else if (r->event == AN_RSV_FAILED && r->status)
			cli_warn("relay '%s' refused the reservation: %s (retrying in %ds)", r->relay_addr,
				 an_relay_status_name(r->status), (r->retry_ms + 999) / 1000);
		else if (r->event == AN_RSV_FAILED)
			cli_warn("unable to reserve on relay '%s': %s (retrying in %ds)", r->relay_addr,
				 an_strerror(r->err), (r->retry_ms + 999) / 1000);
		else if (r->event == AN_RSV_LOST)
			cli_warn("lost the connection to relay '%s' (retrying in %ds)", r->relay_addr,
				 (r->retry_ms + 999) / 1000);
	}
	if (sv->stopping || !sv->running)
		return;
	if (sv->waiting_relays) {
		if (an_rsv_settled(sv->rsv))
			start_serving(sv);
		return;
	}
	/* A new or renewed slot changes our circuit addresses: publish them now. */
	circuits_text(sv, circuits, sizeof(circuits));
	if (r->event == AN_RSV_RESERVED && strcmp(circuits, sv->published_circuits) != 0) {
		if (sv->can_publish)
			publish_round(sv);
		else
			for (size_t i = 0; i < sv->n_sites; i++)
				sign_site(sv, &sv->sites[i], i ? sv->sites[0].rec : NULL);
	}
}

static int relays_start(struct serve *sv)
{
	struct an_rsv_config rc = {.timeout_ms = (int)sv->o->timeout_ms, .report = relay_report,
				   .arg = sv};
	int err;
	if (sv->o->n_relays == 0)
		return 0;
	err = an_rsv_new(sv->host, &rc, &sv->rsv);
	if (err < 0) {
		cli_warn("unable to serve circuits: %s", an_strerror(err));
		return err;
	}
	for (int i = 0; i < sv->o->n_relays; i++) {
		err = an_rsv_add(sv->rsv, sv->o->relays[i]);
		if (err < 0) {
			cli_warn("invalid relay address '%s': %s", sv->o->relays[i],
				 err == AN_EMALFORMED ? "not ADDR/p2p/RELAY" : an_strerror(err));
			return err;
		}
	}
	return 0;
}

/* A site's source: a directory or an upstream URL. */
static int site_open(struct site *s)
{
	int rc;
	s->dir.dirfd = -1;
	if (strncmp(s->source, "http://", 7) == 0 || strstr(s->source, "://")) {
		s->upstream = true;
		rc = an_upstream_init(&s->up, s->source);
		if (rc < 0)
			cli_warn("invalid upstream URL '%s' (http://IP:PORT)", s->source);
		return rc;
	}
	rc = an_static_site_init(&s->dir, s->source);
	if (rc < 0) {
		cli_warn("unable to open directory '%s': %s", s->source, an_strerror(rc));
		return rc == -ENOENT || rc == -ENOTDIR ? AN_EMALFORMED : rc;
	}
	return 0;
}

static int add_sites(struct serve *sv)
{
	struct opts *o = sv->o;
	struct site *root = &sv->sites[0];
	int rc;
	snprintf(root->fqdn, sizeof(root->fqdn), "%s", o->name);
	root->source = o->upstream ? o->upstream : o->dir;
	sv->n_sites = 1;
	for (int i = 0; i < o->n_subs; i++) {
		struct site *s = &sv->sites[sv->n_sites];
		const char *eq = strchr(o->subs[i], '=');
		size_t llen = eq ? (size_t)(eq - o->subs[i]) : 0;
		char label[AN_RECORD_LABEL_MAX + 1];
		if (!eq || llen == 0 || llen > AN_RECORD_LABEL_MAX || !eq[1]) {
			cli_warn("invalid --sub '%s' (LABEL=DIR or LABEL=URL)", o->subs[i]);
			return AN_EMALFORMED;
		}
		memcpy(label, o->subs[i], llen);
		label[llen] = 0;
		if (strchr(label, '.') || (size_t)snprintf(s->fqdn, sizeof(s->fqdn), "%s.%s", label, o->name) >= sizeof(s->fqdn) ||
		    !an_record_fqdn_valid(s->fqdn)) {
			cli_warn("invalid subdomain label '%s'", label);
			return AN_EMALFORMED;
		}
		for (size_t j = 0; j < sv->n_sites; j++)
			if (strcmp(sv->sites[j].fqdn, s->fqdn) == 0) {
				cli_warn("subdomain '%s' given twice", label);
				return AN_EMALFORMED;
			}
		s->source = eq + 1;
		sv->n_sites++;
	}
	for (size_t i = 0; i < sv->n_sites; i++) {
		struct site *s = &sv->sites[i];
		rc = site_open(s);
		if (rc < 0)
			return rc;
		s->up.timeout_ms = (int)o->upstream_timeout_ms;
		s->dir.dotfiles = o->dotfiles;
		rc = an_route_server_add_site(sv->route, s->fqdn,
					      s->upstream ? &an_upstream_responder : &an_static_responder,
					      s->upstream ? (void *)&s->up : (void *)&s->dir);
		if (rc < 0) {
			cli_warn("unable to serve '%s': %s", s->fqdn, an_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/*
 * One an-serve per key and name in a state directory: a second one would
 * publish its own addresses over the live site's records.  The lock is
 * STATEDIR/serve-PEERHASH@NAME.lock, held (flock) until we exit, with the
 * holder's pid in it for the message.  *fd is the open lock.
 */
static int serve_lock(const char *dir, const char *hash, const char *name, int *fd)
{
	char path[4400], pid[32] = "";
	int rc = an_node_make_dir(dir);
	if (rc < 0) {
		cli_warn("unable to create state directory '%s': %s", dir, an_strerror(rc));
		return rc;
	}
	if (snprintf(path, sizeof(path), "%s/serve-%s@%s.lock", dir, hash, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		rc = -errno;
		cli_warn("unable to open lock '%s': %s", path, an_strerror(rc));
		return rc;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		ssize_t n = pread(*fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		if (rc == -EBUSY)
			cli_warn("'%s@%s' is already served from state directory '%s'%s%s%s: refusing to "
				 "publish over it (stop that one first, or use another -s)",
				 hash, name, dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		else
			cli_warn("unable to lock '%s': %s", path, an_strerror(rc));
		close(*fd);
		*fd = -1;
		return rc;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* the pid is only for the message: a failed write changes nothing */
	if (ftruncate(*fd, 0) == 0 && pwrite(*fd, pid, strlen(pid), 0) < 0)
		return 0;
	return 0;
}

static int run(struct opts *o)
{
	struct serve sv = {.o = o};
	struct an_host_config hc = {0};
	struct an_route_server_config rc_cfg = {0};
	char err[512] = "";
	int rc, lock = -1;
	for (size_t i = 0; i < MAX_SUBS + 1; i++)
		sv.sites[i].dir.dirfd = -1;
	if (!an_record_fqdn_valid(o->name)) {
		cli_warn("invalid name '%s'", o->name);
		return AN_EMALFORMED;
	}
	for (const char *p = o->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z') {
			cli_warn("invalid name '%s': names are lowercase", o->name);
			return AN_EMALFORMED;
		}
	rc = an_privkey_load(o->keyfile, &sv.key);
	if (rc < 0) {
		cli_warn("unable to load key '%s': %s", o->keyfile, an_strerror(rc));
		return rc;
	}
	if (o->access_log && !o->quiet) {
		sv.access = fopen(o->access_log, "ae");
		if (!sv.access) {
			rc = -errno;
			cli_warn("unable to open access log '%s': %s", o->access_log, an_strerror(rc));
			goto out;
		}
	} else if (!o->quiet) {
		sv.access = stderr;
	}
	sv.loop = ev_default_loop(0);
	hc.key = sv.key;
	hc.agent_version = "an-serve/0.1.0";
	hc.log = quiet_log;
	rc = an_host_new(sv.loop, &hc, &sv.host);
	if (rc == 0)
		rc = an_ping_service_register(sv.host);
	if (rc == 0)
		rc = an_identify_service_register(sv.host);
	if (rc < 0) {
		cli_warn("unable to start the host: %s", an_strerror(rc));
		goto out;
	}
	an_peerid_format(an_host_peer_id(sv.host), sv.peer, sizeof(sv.peer));
	an_peerhash(an_host_peer_id(sv.host), sv.hash);
	rc = serve_lock(an_node_state_dir(o->statedir), sv.hash, o->name, &lock);
	if (rc < 0)
		goto out;
	rc_cfg.access = access_cb;
	rc_cfg.access_arg = &sv;
	rc_cfg.log = quiet_log;
	rc = an_route_server_new(sv.host, &rc_cfg, &sv.route);
	if (rc == 0)
		rc = add_sites(&sv);
	if (rc < 0)
		goto out;
	rc = cli_host_listen_all(sv.host, o->listen, o->n_listen);
	if (rc < 0) {
		rc = rc == AN_EMALFORMED ? rc : -EADDRNOTAVAIL;
		goto out;
	}
	rc = cli_host_announce_all(sv.host, o->announce, o->n_announce);
	if (rc == 0)
		rc = relays_start(&sv);
	if (rc < 0)
		goto out;
	ev_signal_init(&sv.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&sv.sigint, signal_cb, SIGINT);
	sv.sigterm.data = sv.sigint.data = &sv;
	ev_signal_start(sv.loop, &sv.sigterm);
	ev_signal_start(sv.loop, &sv.sigint);

	struct an_node_options no = {
		.statedir = an_node_state_dir(o->statedir),
		.bootstrap = o->bootstrap,
		.n_bootstrap = (size_t)o->n_bootstrap,
		.protocol = o->protocol,
		.timeout_ms = (int)o->timeout_ms,
		.host = sv.host,
		.log = quiet_log,
	};
	rc = an_node_open(&no, &sv.node, err, sizeof(err));
	if (rc < 0) {
		cli_warn("%s", err[0] ? err : an_strerror(rc));
		goto out;
	}
	sv.can_publish = an_node_is_daemon(sv.node) || an_node_peer_count(sv.node) > 0;
	sv.running = true;
	if (sv.stopping) { /* a signal came while the node bootstrapped */
		sv.stopping = false;
		stop(&sv);
	} else if (sv.rsv && !an_rsv_settled(sv.rsv)) {
		/* publish the circuit addresses from the start: wait (bounded) for the relays */
		sv.waiting_relays = true;
		ev_timer_init(&sv.relay_wait, relay_wait_cb, o->timeout_ms / 1000.0, 0.);
		sv.relay_wait.data = &sv;
		ev_timer_start(sv.loop, &sv.relay_wait);
	} else {
		start_serving(&sv);
	}
	ev_run(sv.loop, 0);
	rc = 0;
out:
	an_node_close(sv.node);
	an_route_server_free(sv.route);
	an_rsv_free(sv.rsv); /* right before the host: see reservation.h */
	an_host_free(sv.host);
	for (size_t i = 0; i < MAX_SUBS + 1; i++) {
		an_static_site_free(&sv.sites[i].dir);
		json_decref(sv.sites[i].rec);
	}
	if (sv.access && sv.access != stderr)
		fclose(sv.access);
	an_privkey_free(sv.key);
	if (lock >= 0)
		close(lock);
	return rc;
}

static long long duration_opt(const char *what, const char *arg, long long min_ms)
{
	long long ms;
	if (cli_parse_duration_ms(arg, &ms) < 0 || ms < min_ms || ms > (long long)INT_MAX * 1000LL)
		cli_usage_error(USAGE, "invalid %s '%s'", what, arg);
	return ms;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"name", required_argument, NULL, 'n'},
		{"upstream", required_argument, NULL, OPT_UPSTREAM},
		{"sub", required_argument, NULL, OPT_SUB},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"announce", required_argument, NULL, OPT_ANNOUNCE},
		{"relay", required_argument, NULL, OPT_RELAY},
		{"no-direct", no_argument, NULL, OPT_NO_DIRECT},
		{"state-dir", required_argument, NULL, 's'},
		{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
		{"protocol", required_argument, NULL, OPT_PROTOCOL},
		{"republish", required_argument, NULL, OPT_REPUBLISH},
		{"valid", required_argument, NULL, OPT_VALID},
		{"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
		{"dotfiles", no_argument, NULL, OPT_DOTFILES},
		{"access-log", required_argument, NULL, OPT_ACCESS_LOG},
		{"timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.timeout_ms = 10000,
			 .republish_ms = AN_RECORD_TTL_DEFAULT * 1000LL,
			 .valid_ms = AN_RECORD_VALID_DEFAULT * 1000LL,
			 .upstream_timeout_ms = AN_ROUTE_RESPONSE_TIMEOUT_MS};
	int c;
	cli_init(argv[0]);
	an_global_init();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:n:s:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o.keyfile = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case OPT_UPSTREAM:
			o.upstream = optarg;
			break;
		case OPT_SUB:
			if (o.n_subs == MAX_SUBS)
				cli_usage_error(USAGE, "too many --sub options (at most %d)", MAX_SUBS);
			o.subs[o.n_subs++] = optarg;
			break;
		case OPT_LISTEN:
			cli_opt_append(o.listen, &o.n_listen, MAX_LISTEN, optarg, "--listen addresses", USAGE);
			break;
		case OPT_ANNOUNCE:
			cli_opt_append(o.announce, &o.n_announce, AN_HOST_MAX_ANNOUNCE, optarg, "--announce addresses", USAGE);
			break;
		case OPT_RELAY:
			cli_opt_append(o.relays, &o.n_relays, AN_RSV_MAX_RELAYS, optarg, "--relay addresses", USAGE);
			break;
		case OPT_NO_DIRECT:
			o.no_direct = true;
			break;
		case 's':
			o.statedir = optarg;
			break;
		case OPT_BOOTSTRAP:
			cli_opt_append(o.bootstrap, &o.n_bootstrap, AN_NODE_MAX_BOOTSTRAP, optarg, "--bootstrap addresses", USAGE);
			break;
		case OPT_PROTOCOL:
			o.protocol = cli_protocol_opt(optarg, USAGE);
			break;
		case OPT_REPUBLISH:
			o.republish_ms = duration_opt("republish interval", optarg, 1000);
			break;
		case OPT_VALID:
			o.valid_ms = duration_opt("validity", optarg, 1000);
			if (o.valid_ms > AN_RECORD_VALID_MAX * 1000LL)
				cli_usage_error(USAGE, "invalid validity '%s' (at most 30d)", optarg);
			break;
		case OPT_UPSTREAM_TIMEOUT:
			o.upstream_timeout_ms = duration_opt("upstream timeout", optarg, 1);
			break;
		case OPT_DOTFILES:
			o.dotfiles = true;
			break;
		case OPT_ACCESS_LOG:
			o.access_log = optarg;
			break;
		case 't':
			o.timeout_ms = duration_opt("timeout", optarg, 1);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'V':
			cli_version();
		case 'h':
			cli_usage(USAGE, AN_EXIT_OK);
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (!o.keyfile)
		cli_usage_error(USAGE, "missing -k KEYFILE");
	if (!o.name)
		cli_usage_error(USAGE, "missing --name NAME");
	if (o.upstream) {
		if (argc - optind != 0)
			cli_usage_error(USAGE, "DIR and --upstream are exclusive");
	} else if (argc - optind != 1) {
		cli_usage_error(USAGE, argc == optind ? "missing DIR (or --upstream URL)" : "too many arguments");
	} else {
		o.dir = argv[optind];
	}
	if (o.no_direct && o.n_relays == 0)
		cli_usage_error(USAGE, "--no-direct needs at least one --relay");
	if (o.republish_ms >= o.valid_ms)
		cli_warn("warning: records valid for %llds are republished only every %llds: they will expire in between",
			 o.valid_ms / 1000, o.republish_ms / 1000);
	if (o.timeout_ms > INT_MAX - 1000)
		o.timeout_ms = INT_MAX - 1000;
	return cli_finish(cli_exit_status(run(&o)));
}
