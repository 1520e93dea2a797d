/* kad_upkeep.c - bootstrap, refresh, maintenance (re-replication, republish,
   sweep) and the routing-table snapshot. */
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

/* ---- lookup results, per operation ---- */

/*
 * A bootstrap that left the table smaller than the bootstrap set (a seed
 * down, or refusing us at its pending-handshake limit when a whole network
 * starts at once) is tried again after a backoff that doubles from
 * AN_KAD_NODE_BOOT_RETRY_MIN_MS to _MAX_MS, each delay drawn from its
 * upper half so nodes started together spread out, instead of waiting for
 * the next refresh (10 min).  Daemons only (cfg.maintain): tools bootstrap
 * once, with their own deadline.
 */
static void boot_schedule(struct an_kad_node *n)
{
	uint64_t b, delay;
	if (!n->cfg.maintain || n->nboot == 0 || n->closed)
		return;
	if (n->rt.size >= n->nboot) {
		n->boot_backoff_ms = 0;
		return;
	}
	if (ev_is_active(&n->boot_retry))
		return;
	b = n->boot_backoff_ms ? n->boot_backoff_ms : AN_KAD_NODE_BOOT_RETRY_MIN_MS;
	delay = b / 2 + randombytes_uniform((uint32_t)(b / 2 + 1));
	n->boot_backoff_ms = b * 2 < AN_KAD_NODE_BOOT_RETRY_MAX_MS ? b * 2 : AN_KAD_NODE_BOOT_RETRY_MAX_MS;
	ev_timer_set(&n->boot_retry, (double)delay / 1000.0, 0);
	ev_timer_start(n->loop, &n->boot_retry);
	kad_log(n, "kad: %zu peers in the table, %zu bootstrap addresses: bootstrapping again in %.1f s",
		 n->rt.size, n->nboot, (double)delay / 1000.0);
}

void kad_boot_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	if (n->closed)
		return;
	if (n->rt.size >= n->nboot) {
		n->boot_backoff_ms = 0;
		return;
	}
	if (an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL) < 0)
		boot_schedule(n); /* out of memory now: later */
}

void kad_boot_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->bootstrap && !op->cancelled)
		boot_schedule(n);
	int err = 0;
	if (n->rt.size == 0) {
		err = op->lk ? an_lookup_reach(op->lk) : -EHOSTUNREACH;
		if (err == -EHOSTUNREACH && op->timed_out)
			err = -ETIMEDOUT;
		else if (err == 0) /* peers answered, none for the table */
			err = -ENOENT;
	}
	if (!op->cancelled && op->boot_cb)
		op->boot_cb(op->arg, err, n->rt.size);
	kad_op_free(op);
}

/* ---- starting operations ---- */

static void boot_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg);

struct boot_dial {
	struct an_kad_op *op;
	struct an_multiaddr addr;
};

static void boot_lookup(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	const struct an_peerid *self = an_host_peer_id(n->host);
	if (n->closed || kad_lookup_begin(op, AN_LOOKUP_FIND_NODE, self->bytes, self->len) < 0) {
		kad_boot_finish(op);
		return;
	}
	kad_lookup_pump(op);
}

static void boot_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct boot_dial *d = arg;
	struct an_kad_op *op = d->op;
	op->dials--;
	if (err == 0 && !op->cancelled && op->nseeds < AN_KAD_NODE_BOOTSTRAP_MAX) {
		const struct an_peerid *id = an_host_conn_peer(c);
		struct an_multiaddr rest;
		struct an_peerid ignored;
		an_multiaddr_split_p2p(&d->addr, &rest, &ignored);
		op->seeds[op->nseeds] = *id;
		op->seed_addrs[op->nseeds++] = rest;
	} else if (err < 0 && !op->cancelled) {
		char text[AN_MULTIADDR_TEXT_MAX];
		if (err == -ETIMEDOUT)
			op->timed_out = true;
		if (an_multiaddr_format(&d->addr, text, sizeof(text)) == 0)
			kad_log(op->node, "kad: bootstrap peer %s: %s", text, an_strerror(err));
	}
	free(d);
	if (op->cancelled) {
		if (op->dials == 0)
			kad_op_free(op);
		return;
	}
	if (op->dials == 0)
		boot_lookup(op);
}

static void boot_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	struct an_kad_node *n = op->node;
	ev_timer_stop(loop, w);
	for (size_t i = 0; i < n->nboot; i++) {
		struct boot_dial *d = calloc(1, sizeof(*d));
		if (!d || an_multiaddr_parse(n->boot[i], &d->addr) < 0) {
			free(d);
			continue;
		}
		d->op = op;
		op->dials++;
		if (an_host_dial(n->host, n->boot[i], (int)n->cfg.request_timeout_ms, boot_dial_cb, d) < 0) {
			op->dials--;
			free(d);
		}
	}
	if (op->dials == 0)
		boot_lookup(op);
}

int an_kad_node_bootstrap(struct an_kad_node *n, const char *const *addrs, size_t naddrs,
			  an_kad_bootstrap_fn cb, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op;
	if (addrs && naddrs) {
		for (size_t i = 0; i < n->nboot; i++)
			free(n->boot[i]);
		free(n->boot);
		n->nboot = 0;
		if (naddrs > AN_KAD_NODE_BOOTSTRAP_MAX)
			naddrs = AN_KAD_NODE_BOOTSTRAP_MAX;
		n->boot = calloc(naddrs, sizeof(char *));
		if (!n->boot)
			return -ENOMEM;
		for (size_t i = 0; i < naddrs; i++)
			if ((n->boot[n->nboot] = strdup(addrs[i])))
				n->nboot++;
	}
	op = kad_op_new(n, OP_BOOT, arg);
	if (!op)
		return -ENOMEM;
	op->bootstrap = true;
	op->boot_cb = cb;
	kad_op_defer(op, boot_start_cb);
	if (out)
		*out = op;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Maintenance: refresh, re-replication, republish, sweep.                  */

static void maint_repl_next(struct an_kad_node *n, struct an_store_record *r);

struct repl {
	struct an_kad_node *node;
	struct an_store_record rec;
};

static void maint_end(struct an_kad_node *n)
{
	size_t removed = 0;
	an_store_sweep(n->store, now_s(), AN_KAD_NODE_SWEEP_MAX, &removed);
	n->maintaining = false;
}

static void maint_repub_done(void *arg, int err)
{
	(void)err;
	maint_end(arg);
}

static void maint_repl_cb(void *arg, int err, size_t stored, const struct an_peerid *peers,
			  size_t np)
{
	(void)err; (void)np; (void)peers; (void)stored;
	struct repl *x = arg;
	an_store_mark_replicated(x->node->store, x->rec.key.data, x->rec.key.len, now_s());
	maint_repl_next(x->node, &x->rec);
	an_store_record_free(&x->rec);
	free(x);
}

/* Re-replicate the next due record after r's key; then republish. */
static void maint_repl_next(struct an_kad_node *n, struct an_store_record *r)
{
	while (an_store_next(n->store, AN_STORE_REPLICATE_DUE, now_s(), r) == 0) {
		struct repl *x = calloc(1, sizeof(*x));
		if (!x)
			break;
		x->node = n;
		an_store_record_init(&x->rec);
		if (an_buf_append(&x->rec.key, r->key.data, r->key.len) == 0 &&
		    an_kad_node_put(n, r->key.data, r->key.len, r->value.data, r->value.len,
				    AN_KAD_PUT_NO_STORE, NULL, maint_repl_cb, x, NULL, NULL) == 0)
			return;
		an_store_mark_replicated(n->store, r->key.data, r->key.len, now_s());
		an_store_record_free(&x->rec);
		free(x);
	}
	if (an_kad_node_republish(n, false, NULL, maint_repub_done, n, NULL) < 0)
		maint_end(n);
}

void kad_maintain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	struct an_store_record r;
	if (n->maintaining || n->closed)
		return;
	n->maintaining = true;
	an_store_record_init(&r);
	maint_repl_next(n, &r);
	an_store_record_free(&r);
}

void kad_refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_kad_node *n = w->data;
	unsigned stale[AN_KAD_NODE_REFRESH_CPL_MAX + 1];
	size_t c;
	an_rt_expire_checks(&n->rt, now_ms(n));
	if (n->rt.size == 0) {
		if (!ev_is_active(&n->boot_retry)) /* else a retry is due anyway */
			an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL);
		return;
	}
	an_kad_node_bootstrap(n, NULL, 0, NULL, NULL, NULL); /* the self lookup */
	c = an_rt_stale_buckets(&n->rt, now_ms(n), n->cfg.refresh_ms, AN_KAD_NODE_REFRESH_CPL_MAX,
				stale, AN_KAD_NODE_REFRESH_CPL_MAX + 1);
	for (size_t i = 0; i < c; i++) {
		uint8_t key[34];
		struct an_kad_op *op;
		if (an_kad_key_with_cpl(&n->rt.self_kad, stale[i], (uint64_t)rand(), 1u << 20, key) < 0)
			continue;
		an_rt_bucket_touch(&n->rt, stale[i], now_ms(n));
		op = kad_op_new(n, OP_BOOT, NULL);
		if (!op)
			break;
		if (kad_lookup_begin(op, AN_LOOKUP_FIND_NODE, key, sizeof(key)) < 0) {
			kad_op_free(op);
			continue;
		}
		kad_op_defer(op, kad_lookup_start_cb);
	}
}

/* ---------------------------------------------------------------------- */

void kad_snapshot_load(struct an_kad_node *n)
{
	char path[4200];
	struct an_buf b;
	snprintf(path, sizeof(path), "%s/%s", n->state_dir, AN_KAD_SNAPSHOT_NAME);
	an_buf_init(&b, SNAPSHOT_MAX);
	if (an_read_file(path, &b) == 0 && an_rt_load(&n->rt, b.data, b.len) < 0)
		kad_log(n, "kad: routing snapshot %s is damaged; partly loaded", path);
	an_buf_free(&b);
}

void kad_snapshot_save(struct an_kad_node *n)
{
	char path[4200], tmp[4220];
	struct an_buf b;
	int fd;
	snprintf(path, sizeof(path), "%s/%s", n->state_dir, AN_KAD_SNAPSHOT_NAME);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	an_buf_init(&b, SNAPSHOT_MAX);
	if (an_rt_save(&n->rt, &b) == 0 &&
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
		size_t off = 0;
		while (off < b.len) {
			ssize_t w = write(fd, b.data + off, b.len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (close(fd) == 0 && off == b.len)
			rename(tmp, path);
		else
			unlink(tmp);
	}
	an_buf_free(&b);
}
