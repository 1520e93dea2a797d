/* kad_node.c - the Kademlia service on a libev host: the node's life (new,
   free, config), the routing table's liveness checks, identify hooks and
   bootstrap lists.  The rest: kad_request.c, kad_service.c, kad_ops.c,
   kad_upkeep.c (see kad_node.h, kad_node_priv.h). */
#include "dht/kad_node_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dht/claim.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "dht/validate.h"
#include "encoding/protobuf.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/file.h"

void kad_log(struct an_kad_node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!n->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->cfg.log(n->cfg.log_arg, msg);
}

void kad_node_unref(struct an_kad_node *n)
{
	if (--n->refs == 0) {
		for (size_t i = 0; i < n->nboot; i++)
			free(n->boot[i]);
		free(n->boot);
		free(n);
	}
}

void kad_refresh_self_addrs(struct an_kad_node *n)
{
	const char *addrs[SELF_ADDRS_MAX];
	size_t c = an_host_addrs(n->host, addrs, SELF_ADDRS_MAX);
	n->nself = 0;
	for (size_t i = 0; i < c; i++)
		if (an_multiaddr_parse(addrs[i], &n->self_addrs[n->nself]) == 0)
			n->nself++;
	n->srv.self_addrs = n->self_addrs;
	n->srv.nself_addrs = n->nself;
}

/* ---------------------------------------------------------------------- */
/* Liveness checks asked for by the routing table (routing.h events).      */

struct check {
	struct an_kad_node *node;
	struct an_peerid peer;
	struct an_host_conn *conn;
};

static void rt_events(struct an_kad_node *n);

static void check_end(struct check *c, bool alive)
{
	struct an_kad_node *n = c->node;
	if (!n->closed) {
		an_rt_check_result(&n->rt, &c->peer, alive, now_ms(n));
		rt_events(n);
	}
	if (c->conn)
		an_host_conn_unref(c->conn);
	free(c);
	kad_node_unref(n);
}

static void check_ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	(void)rtt_ms;
	check_end(arg, err == 0);
}

static void check_dial_cb(struct an_host *h, struct an_host_conn *conn, int err, void *arg)
{
	(void)h;
	struct check *c = arg;
	if (err < 0 || c->node->closed) {
		check_end(c, false);
		return;
	}
	an_host_conn_ref(conn);
	c->conn = conn;
	if (an_ping_once(conn, AN_PING_TIMEOUT_MS / 2, check_ping_cb, c) < 0)
		check_end(c, false);
}

/* Dial text for a peer at addr: addr with /p2p/<peer> unless it has one. */
int kad_dial_text(const struct an_multiaddr *addr, const struct an_peerid *peer, char *out,
		     size_t cap)
{
	struct an_multiaddr full = *addr;
	struct an_multiaddr rest;
	struct an_peerid id;
	if (an_multiaddr_split_p2p(addr, &rest, &id) != 0 &&
	    an_multiaddr_append_p2p(&full, peer) < 0)
		return AN_ETOOBIG;
	return an_multiaddr_format(&full, out, cap);
}

static void rt_events(struct an_kad_node *n)
{
	struct an_rt_event ev;
	while (!n->closed && an_rt_next_event(&n->rt, &ev) == 1) {
		const struct an_rt_entry *e = an_rt_find(&n->rt, &ev.ping);
		char text[AN_MULTIADDR_TEXT_MAX];
		struct check *c;
		if (!e || e->naddrs == 0 || kad_dial_text(&e->addrs[0], &e->id, text, sizeof(text)) < 0 ||
		    !(c = calloc(1, sizeof(*c)))) {
			an_rt_check_result(&n->rt, &ev.ping, false, now_ms(n));
			continue;
		}
		c->node = n;
		c->peer = ev.ping;
		n->refs++;
		if (an_host_dial(n->host, text, AN_PING_TIMEOUT_MS / 2, check_dial_cb, c) < 0) {
			n->refs--;
			free(c);
			an_rt_check_result(&n->rt, &ev.ping, false, now_ms(n));
		}
	}
}

void kad_rt_seen(struct an_kad_node *n, const struct an_peerid *id,
		    const struct an_multiaddr *addrs, size_t naddrs, const struct an_host_conn *conn)
{
	struct an_multiaddr seen;
	const char *text = conn ? an_host_conn_remote_addr(conn) : NULL;
	bool have_seen = text && an_multiaddr_parse(text, &seen) == 0;
	if (n->closed)
		return;
	if (an_rt_update_from(&n->rt, id, addrs, naddrs, have_seen ? &seen : NULL, now_ms(n)) ==
	    AN_RT_PENDING)
		rt_events(n);
}

bool kad_defence(const struct an_kad_node *n, unsigned d)
{
	return !(n->cfg.defences_off & d);
}

/* cfg's defences turned off, with $AN_KAD_DEFENCES_OFF's ("all" or names, comma separated). */
static unsigned defences_off(const struct an_kad_node_config *cfg)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"diversity", AN_KAD_DEF_DIVERSITY},
		{"verify", AN_KAD_DEF_VERIFY},
		{"correct", AN_KAD_DEF_CORRECT},
		{"progress", AN_KAD_DEF_PROGRESS},
		{"all", AN_KAD_DEF_ALL},
	};
	const char *env = getenv("AN_KAD_DEFENCES_OFF");
	unsigned off = cfg->defences_off;
	while (env && *env) {
		size_t len = strcspn(env, ", ");
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (len == strlen(names[i].name) && strncmp(env, names[i].name, len) == 0)
				off |= names[i].bit;
		env += len;
		env += strspn(env, ", ");
	}
	return off;
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

/* ---------------------------------------------------------------------- */
/* Identify: peers that advertise our protocol join the routing table.      */

struct ident {
	struct an_kad_node *node;
	struct an_host_conn *conn;
};

static bool ident_speaks_kad(const struct an_kad_node *n, const struct an_identify *m)
{
	for (size_t i = 0; i < m->n_protocols; i++)
		if (strcmp(m->protocols[i], n->protocol) == 0)
			return true;
	return false;
}

/* m's listen addresses we can dial (no relayed ones) into addrs; the count. */
static size_t ident_addrs(const struct an_identify *m, struct an_multiaddr addrs[AN_RT_ADDRS_MAX])
{
	size_t na = 0;
	for (size_t i = 0; i < m->n_addrs && na < AN_RT_ADDRS_MAX; i++)
		if (an_multiaddr_from_bytes(m->addrs[i].data, m->addrs[i].len, &addrs[na]) == 0 &&
		    !an_multiaddr_is_circuit(&addrs[na]))
			na++;
	return na;
}

static void ident_cb(void *arg, int err, const struct an_identify *m)
{
	struct ident *x = arg;
	struct an_kad_node *n = x->node;
	if (err == 0 && !n->closed && an_host_conn_alive(x->conn)) {
		struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
		size_t na = ident_addrs(m, addrs);
		if (ident_speaks_kad(n, m) && na > 0)
			kad_rt_seen(n, an_host_conn_peer(x->conn), addrs, na, x->conn);
	}
	an_host_conn_unref(x->conn);
	free(x);
	kad_node_unref(n);
}

/*
 * An identify push: a peer that now lists our protocol (it switched to DHT
 * server mode) joins the table, one that no longer does (client mode)
 * leaves it - js-libp2p does the same through its registrar, whose
 * topology hears of protocols a peer:update adds or removes.  A push
 * without protocols changes nothing; one without addresses keeps those
 * the table has (a newcomer without any is not added).
 */
static void on_identify_push(struct an_host_conn *c, const struct an_identify *m, void *arg)
{
	struct an_kad_node *n = arg;
	const struct an_peerid *id = an_host_conn_peer(c);
	const struct an_rt_entry *e;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t na = 0;
	if (n->closed || !id || !(m->present & AN_IDENTIFY_HAS_PROTOCOLS))
		return;
	e = an_rt_find(&n->rt, id);
	if (!ident_speaks_kad(n, m)) {
		if (e)
			an_rt_remove(&n->rt, id);
		return;
	}
	if (m->present & AN_IDENTIFY_HAS_ADDRS)
		na = ident_addrs(m, addrs);
	if (na == 0 && e) {
		na = e->naddrs;
		memcpy(addrs, e->addrs, na * sizeof(addrs[0]));
	}
	if (na > 0)
		kad_rt_seen(n, id, addrs, na, c);
}

static void on_connection(struct an_host_conn *c, void *arg)
{
	struct an_kad_node *n = arg;
	struct ident *x;
	/* a peer met through a relay is not a DHT peer (no kad over that connection) */
	if (n->closed || an_host_conn_relayed(c) || !(x = calloc(1, sizeof(*x))))
		return;
	x->node = n;
	x->conn = c;
	an_host_conn_ref(c);
	n->refs++;
	if (an_identify_request(c, AN_IDENTIFY_TIMEOUT_MS, ident_cb, x) < 0) {
		an_host_conn_unref(c);
		free(x);
		n->refs--;
	}
}

/* snprintf that refuses to truncate: 0 or -ENAMETOOLONG. */
static int copy_text(char *out, size_t cap, const char *a, const char *b)
{
	int len = snprintf(out, cap, "%s%s", a, b);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

int an_kad_node_new(struct an_host *h, const struct an_kad_node_config *cfg,
		    struct an_kad_node **out)
{
	struct an_kad_node *n = NULL;
	char dir[4200];
	struct an_rt_config rc_cfg = {0};
	bool handled = false;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->host = h;
	n->loop = an_host_loop(h);
	n->cfg = *cfg;
	n->refs = 1;
	rc = copy_text(n->protocol, sizeof(n->protocol),
		       cfg->protocol ? cfg->protocol : AN_KAD_PROTOCOL_DEFAULT, "");
	if (rc == 0)
		rc = copy_text(n->state_dir, sizeof(n->state_dir), cfg->state_dir ? cfg->state_dir : ".", "");
	if (rc == 0)
		rc = copy_text(dir, sizeof(dir), n->state_dir, "/" AN_KAD_STORE_NAME);
	if (rc < 0)
		goto out;
	n->cfg.protocol = n->protocol;
	n->cfg.state_dir = n->state_dir;
	if (!n->cfg.k)
		n->cfg.k = AN_RT_K_DEFAULT;
	if (n->cfg.k > AN_RT_K_MAX)
		n->cfg.k = AN_RT_K_MAX;
	if (!n->cfg.request_timeout_ms)
		n->cfg.request_timeout_ms = AN_LOOKUP_TIMEOUT_DEFAULT;
	if (!n->cfg.refresh_ms)
		n->cfg.refresh_ms = AN_KAD_NODE_REFRESH_MS;
	if (!n->cfg.maintain_ms)
		n->cfg.maintain_ms = AN_KAD_NODE_MAINTAIN_MS;
	n->cfg.defences_off = defences_off(cfg);
	if (env_true("AN_KAD_LOOPBACK_SUBNETS"))
		n->cfg.loopback_subnets = true;
	if (!n->cfg.replication)
		n->cfg.replication = AN_KAD_REPLICATION_DEFAULT;
	rc_cfg.k = n->cfg.k;
	rc_cfg.flags = (kad_defence(n, AN_KAD_DEF_DIVERSITY) ? 0 : AN_RT_NO_DIVERSITY) |
		       (n->cfg.loopback_subnets ? AN_RT_LOOPBACK_SUBNETS : 0);
	rc = an_rt_init(&n->rt, an_host_peer_id(h), &rc_cfg);
	if (rc < 0)
		goto out;
	rc = an_store_open(&n->store, dir, &cfg->store);
	if (rc < 0)
		goto out;
	kad_snapshot_load(n);
	n->srv.self = *an_host_peer_id(h);
	n->srv.rt = &n->rt;
	n->srv.k = n->cfg.k;
	n->srv.claim_bits = kad_claim_bits(&n->cfg);
	n->srv.store.get = kad_ops_get;
	n->srv.store.put = kad_ops_put;
	n->srv.store.add_provider = kad_ops_add_provider;
	n->srv.store.get_providers = kad_ops_get_providers;
	n->srv.store.arg = n;
	kad_refresh_self_addrs(n);
	if (!n->cfg.client) {
		rc = an_host_handle(h, n->protocol, &kad_inbound_handler, n);
		if (rc < 0)
			goto out;
		handled = true;
	}
	an_host_on_connection(h, on_connection, n);
	an_host_on_identify_push(h, on_identify_push, n);
	ev_init(&n->refresh, kad_refresh_cb);
	n->refresh.data = n;
	n->refresh.repeat = n->cfg.refresh_ms / 1000.0;
	ev_init(&n->boot_retry, kad_boot_retry_cb);
	n->boot_retry.data = n;
	ev_init(&n->maintain, kad_maintain_cb);
	n->maintain.data = n;
	n->maintain.repeat = n->cfg.maintain_ms / 1000.0;
	if (n->cfg.maintain) {
		ev_timer_again(n->loop, &n->refresh);
		ev_timer_again(n->loop, &n->maintain);
	}
	*out = n;
	n = NULL;
out:
	if (n) {
		if (handled)
			an_host_unhandle(h, n->protocol);
		an_store_close(n->store);
		an_rt_free(&n->rt);
		free(n);
	}
	return rc;
}

void an_kad_node_free(struct an_kad_node *n)
{
	if (!n)
		return;
	kad_snapshot_save(n);
	n->closed = true;
	ev_timer_stop(n->loop, &n->refresh);
	ev_timer_stop(n->loop, &n->maintain);
	ev_timer_stop(n->loop, &n->boot_retry);
	/* Every op goes below, a republish's child put on its own (it may come
	   first in the list): no parent may free it again. */
	for (struct an_kad_op *op = n->ops; op; op = op->next)
		op->child = NULL;
	while (n->ops) {
		struct an_kad_op *op = n->ops;
		op->cancelled = true;
		if (op->dials) { /* unlink: its dial callbacks free it */
			n->ops = op->next;
			if (n->ops)
				n->ops->prev = NULL;
			op->next = op->prev = NULL;
			continue;
		}
		kad_op_free(op);
	}
	for (struct kreq *r = n->reqs, *next; r; r = next) {
		next = r->next;
		r->cb = NULL;
		ev_timer_stop(n->loop, &r->timer);
		/* a finished request's stream only lingers: let the host close it */
		if (r->s && !r->finished) {
			r->finished = true;
			an_stream_reset(r->s);
		}
		r->finished = true;
	}
	for (struct inbound *b = n->ins, *next; b; b = next) {
		next = b->next;
		an_stream_reset(b->s);
	}
	if (!n->cfg.client)
		an_host_unhandle(n->host, n->protocol);
	an_host_on_connection(n->host, NULL, NULL);
	an_host_on_identify_push(n->host, NULL, NULL);
	an_store_close(n->store);
	n->store = NULL;
	an_rt_free(&n->rt);
	kad_node_unref(n);
}

struct an_store *an_kad_node_store(struct an_kad_node *n)
{
	return n->store;
}

const struct an_rt *an_kad_node_rt(const struct an_kad_node *n)
{
	return &n->rt;
}

const char *an_kad_node_protocol(const struct an_kad_node *n)
{
	return n->protocol;
}

static void wait_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	*(bool *)w->data = true;
}

int an_kad_node_wait(struct an_kad_node *n, const bool *op_done, int timeout_ms)
{
	ev_timer t;
	bool expired = false;
	ev_timer_init(&t, wait_timeout, timeout_ms / 1000.0, 0);
	t.data = &expired;
	ev_timer_start(n->loop, &t);
	while (!*op_done && !expired)
		ev_run(n->loop, EVRUN_ONCE);
	ev_timer_stop(n->loop, &t);
	return *op_done ? 0 : -ETIMEDOUT;
}

int an_kad_node_drain(struct an_kad_node *n, int timeout_ms)
{
	ev_timer t;
	bool expired = false;
	ev_timer_init(&t, wait_timeout, timeout_ms / 1000.0, 0);
	t.data = &expired;
	ev_timer_start(n->loop, &t);
	for (;;) {
		bool busy = false;
		for (struct kreq *r = n->reqs; r; r = r->next)
			if (!r->finished)
				busy = true;
		if (!busy || expired)
			break;
		ev_run(n->loop, EVRUN_ONCE);
	}
	ev_timer_stop(n->loop, &t);
	return expired ? -ETIMEDOUT : 0;
}

/* ---- bootstrap lists ---- */

static int boot_add(const char *s, size_t len, char ***list, size_t *count)
{
	struct an_multiaddr ma;
	char text[AN_MULTIADDR_TEXT_MAX];
	char **grown;
	if (len >= sizeof(text))
		return AN_EMALFORMED;
	memcpy(text, s, len);
	text[len] = 0;
	if (an_multiaddr_parse(text, &ma) < 0)
		return AN_EMALFORMED;
	if (*count >= AN_KAD_NODE_BOOTSTRAP_MAX)
		return 0;
	grown = realloc(*list, (*count + 1) * sizeof(char *));
	if (!grown)
		return -ENOMEM;
	*list = grown;
	if (!(grown[*count] = strdup(text)))
		return -ENOMEM;
	(*count)++;
	return 0;
}

int an_kad_bootstrap_parse(const char *s, char ***list, size_t *count)
{
	const char *sep = ", \t\r\n";
	while (s && *s) {
		size_t skip = strspn(s, sep), len;
		s += skip;
		len = strcspn(s, sep);
		if (len) {
			int rc = boot_add(s, len, list, count);
			if (rc < 0)
				return rc;
		}
		s += len;
	}
	return 0;
}

int an_kad_bootstrap_config(const char *dir, char ***list, size_t *count)
{
	char path[4200];
	struct an_buf b;
	int rc;
	snprintf(path, sizeof(path), "%s/config", dir);
	an_buf_init(&b, 1 << 16);
	rc = an_read_file(path, &b);
	if (rc == -ENOENT) {
		an_buf_free(&b);
		return 0;
	}
	for (char *line = (char *)b.data, *next; rc == 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		line += strspn(line, " \t");
		if (strncmp(line, "bootstrap", 9) == 0 && (line[9] == ' ' || line[9] == '\t'))
			rc = an_kad_bootstrap_parse(line + 10, list, count);
	}
	an_buf_free(&b);
	return rc;
}

void an_kad_bootstrap_free(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}
