/* kad_ops.c - the operations: put (with its claim), get, providers, republish. */
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

/* ---------------------------------------------------------------------- */
/* Operations.                                                              */


void kad_op_free(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->dials) { /* dial callbacks still to come: they free it */
		op->cancelled = true;
		return;
	}
	kad_kreq_detach(n, op);
	ev_timer_stop(n->loop, &op->timer);
	ev_timer_stop(n->loop, &op->defer);
	if (op->prev)
		op->prev->next = op->next;
	else if (n->ops == op)
		n->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = op->prev = NULL;
	if (op->child) {
		op->child->cancelled = true;
		kad_op_free(op->child);
	}
	an_lookup_free(op->lk);
	an_buf_free(&op->key);
	an_buf_free(&op->value);
	an_buf_free(&op->root_key);
	an_buf_free(&op->root_value);
	free(op->targets);
	free(op->ann);
	json_decref(op->root_json);
	an_store_record_free(&op->rec);
	free(op);
	kad_node_unref(n);
}

void an_kad_op_cancel(struct an_kad_op *op)
{
	if (!op)
		return;
	op->cancelled = true;
	kad_op_free(op);
}

struct an_kad_op *kad_op_new(struct an_kad_node *n, enum op_kind kind, void *arg)
{
	struct an_kad_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->node = n;
	op->kind = kind;
	op->arg = arg;
	an_buf_init(&op->key, AN_KAD_KEY_MAX);
	an_buf_init(&op->value, AN_LOOKUP_VALUE_MAX_DEFAULT);
	an_buf_init(&op->root_key, AN_KAD_KEY_MAX);
	an_buf_init(&op->root_value, AN_LOOKUP_VALUE_MAX_DEFAULT);
	an_store_record_init(&op->rec);
	op->next = n->ops;
	if (n->ops)
		n->ops->prev = op;
	n->ops = op;
	n->refs++;
	return op;
}

static void lookup_done(struct an_kad_op *op);
static void find_root(struct an_kad_node *n, struct an_kad_op *op, const json_t *root);

static void op_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	kad_lookup_pump(w->data);
}

static void lookup_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	struct an_kad_op *op = arg;
	struct an_kad_node *n = op->node;
	if (!op->lk)
		return;
	if (err == -ETIMEDOUT) {
		an_lookup_failure_timeout(op->lk, now_ms(n), &r->peer);
	} else if (err < 0 || !m) {
		an_lookup_failure(op->lk, now_ms(n), &r->peer);
	} else if (an_lookup_response(op->lk, now_ms(n), &r->peer, m) == 0) {
		/* It answered our kad request: a server, reachable at what we dialed. */
		if (r->naddrs)
			kad_rt_seen(n, &r->peer, r->addrs, r->naddrs, r->conn);
	}
	kad_lookup_pump(op);
}

void kad_lookup_pump(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	struct an_lookup_request req;
	for (;;) {
		int ev = an_lookup_next_request(op->lk, now_ms(n), &req);
		if (ev == AN_LOOKUP_REQUEST) {
			if (!kad_kreq_start(n, &req.peer, req.addrs, req.naddrs, req.msg, req.msg_len, true,
					lookup_resp, op, 0))
				an_lookup_failure(op->lk, now_ms(n), &req.peer);
			continue;
		}
		if (ev == AN_LOOKUP_TIMEOUT) {
			for (struct kreq *r = n->reqs; r; r = r->next)
				if (r->arg == op && an_peerid_equal(&r->peer, &req.peer))
					r->cb = NULL;
			continue;
		}
		if (ev == AN_LOOKUP_WAIT) {
			uint64_t d = an_lookup_next_deadline(op->lk), now = now_ms(n);
			ev_timer_stop(n->loop, &op->timer);
			if (d != UINT64_MAX) {
				ev_timer_set(&op->timer, d > now ? (double)(d - now) / 1000.0 + 0.001 : 0.001, 0);
				ev_timer_start(n->loop, &op->timer);
			}
			return;
		}
		ev_timer_stop(n->loop, &op->timer);
		kad_kreq_detach(n, op);
		lookup_done(op); /* may free op */
		return;
	}
}

int kad_lookup_begin(struct an_kad_op *op, enum an_lookup_kind kind, const uint8_t *key,
			size_t key_len)
{
	struct an_kad_node *n = op->node;
	struct an_lookup_config lc = {
		.kind = kind,
		.k = n->cfg.k,
		.alpha = n->cfg.alpha,
		.paths = n->cfg.paths,
		.request_timeout_ms = n->cfg.request_timeout_ms,
		.quorum = n->cfg.quorum,
	};
	const struct an_rt_entry *close[AN_RT_K_MAX];
	struct an_kad_id target;
	size_t c;
	int rc;
	lc.group_flags = n->cfg.loopback_subnets ? AN_RT_LOOPBACK_SUBNETS : 0;
	if (kad_defence(n, AN_KAD_DEF_DIVERSITY))
		lc.max_per_subnet = AN_KAD_SUBNET_WINDOW;
	if (kind == AN_LOOKUP_GET_VALUE && kad_defence(n, AN_KAD_DEF_PROGRESS)) {
		lc.max_idle = AN_KAD_IDLE_MAX;
		lc.quorum_subnets = true;
	}
	if (kind == AN_LOOKUP_GET_VALUE) {
		op->vctx.now = now_s();
		op->vctx.root = op->root_json;
		op->vctx.get_root = kad_store_root_get;
		op->vctx.arg = n;
		lc.validate = an_validate_cb;
		lc.compare = an_validate_compare_cb;
		lc.arg = &op->vctx;
	}
	an_lookup_free(op->lk);
	op->lk = NULL;
	rc = an_lookup_new(&op->lk, &lc, an_host_peer_id(n->host), key, key_len);
	if (rc < 0)
		return rc;
	an_kad_id_from_key(key, key_len, &target);
	c = an_rt_closest(&n->rt, &target, NULL, close, n->cfg.k);
	for (size_t i = 0; i < c; i++)
		an_lookup_seed(op->lk, &close[i]->id, close[i]->addrs, close[i]->naddrs);
	for (size_t i = 0; i < op->nseeds; i++)
		an_lookup_seed(op->lk, &op->seeds[i], &op->seed_addrs[i], 1);
	ev_init(&op->timer, op_timer_cb);
	op->timer.data = op;
	return 0;
}

/* Run fn from the loop (so callbacks never run inside the starting call). */
void kad_op_defer(struct an_kad_op *op, void (*fn)(struct ev_loop *, ev_timer *, int))
{
	ev_timer_init(&op->defer, fn, 0, 0);
	op->defer.data = op;
	ev_timer_start(op->node->loop, &op->defer);
}

/* ---- put: targets ---- */

static void put_finish(struct an_kad_op *op);
static void put_step(struct an_kad_op *op, size_t i);

/* Is g a subnet none of op's holders so far is on?  (Exempt groups always are.) */
static bool new_subnet(const struct an_kad_op *op, const struct an_rt_group *g)
{
	for (size_t i = 0; i < op->ntargets; i++)
		if (op->targets[i].stored && an_rt_group_equal(&op->targets[i].group, g))
			return false;
	return true;
}

static void put_launch(struct an_kad_op *op);

/* Target i is done: maybe start the next one, then finish when none is left. */
static void put_target_done(struct an_kad_op *op, size_t i)
{
	op->inflight--;
	if (op->replace && !op->targets[i].stored)
		put_launch(op);
	if (--op->pending == 0)
		put_finish(op); /* may free op */
}

static void put_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	struct an_kad_op *op = arg;
	struct target *t = &op->targets[r->tag];
	bool same = err == 0 && m && m->has_record && m->record.value.len == op->value.len &&
		    memcmp(m->record.value.p, op->value.data, op->value.len) == 0;
	if (t->stage == 1 && same && !op->verify) {
		t->stored = true;
		op->stored++;
	} else if (t->stage == 1 && !same) {
		t->stage = 2; /* not echoed: nothing to read back */
	} else if (t->stage == 2 && same && new_subnet(op, &t->group)) {
		/* read back: the peer really holds it (a holder on a subnet we had is not counted) */
		t->stored = true;
		op->stored++;
	}
	t->stage++;
	put_step(op, r->tag);
}

/* Send target i its next request (PUT_VALUE, or the read-back GET_VALUE); when it is done, say so. */
static void put_step(struct an_kad_op *op, size_t i)
{
	struct an_kad_node *n = op->node;
	struct target *t = &op->targets[i];
	for (;;) {
		const struct an_buf *k = t->stage == 0 ? &op->root_key : &op->key;
		const struct an_buf *v = t->stage == 0 ? &op->root_value : &op->value;
		struct an_kad_msg m;
		struct an_buf body;
		char when[AN_KAD_TIME_LEN + 1];
		struct kreq *r = NULL;
		if (t->stage == 2 && !op->verify)
			t->stage = 3;
		if (t->stage >= 3) {
			put_target_done(op, i); /* may free op */
			return;
		}
		if (t->stage == 0 && op->root_value.len == 0) {
			t->stage = 1;
			continue;
		}
		an_kad_msg_init(&m);
		m.has_key = true;
		m.key.p = k->data;
		m.key.len = k->len;
		if (t->stage == 2) {
			m.type = AN_KAD_GET_VALUE;
		} else {
			m.type = AN_KAD_PUT_VALUE;
			m.has_record = true;
			m.record.key = m.key;
			m.record.value.p = v->data;
			m.record.value.len = v->len;
			if (an_kad_time_format(now_s(), 0, when) == 0) {
				m.record.time_received.p = (const uint8_t *)when;
				m.record.time_received.len = strlen(when);
			}
		}
		an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
		if (an_kad_msg_encode(&m, &body) == 0)
			r = kad_kreq_start(n, &t->id, t->addrs, t->naddrs, body.data, body.len, true,
					   put_resp, op, i);
		an_buf_free(&body);
		an_kad_msg_free(&m);
		if (r)
			return;
		t->stage = t->stage == 1 ? 3 : t->stage + 1;
	}
}

/* Start targets in order while fewer than the goal hold it or are under way. */
static void put_launch(struct an_kad_op *op)
{
	while (op->next_target < op->ntargets && op->stored + op->inflight < op->goal) {
		size_t i = op->next_target++;
		op->inflight++;
		op->pending++;
		put_step(op, i);
	}
}

/*
 * Send to peers[0..c) (closest first): all of them (no defence), or, with
 * verified stores, the first `replication` and then the next ones in place
 * of each that did not take it; a get's wider corrections likewise for k.
 */
static void put_send_all(struct an_kad_op *op, const struct an_lookup_peer *const *peers, size_t c)
{
	struct an_kad_node *n = op->node;
	free(op->targets);
	op->targets = calloc(c ? c : 1, sizeof(*op->targets));
	op->ntargets = 0;
	op->next_target = op->inflight = 0;
	if (!op->targets)
		c = 0;
	for (size_t i = 0; i < c; i++) {
		struct target *t = &op->targets[op->ntargets++];
		t->id = peers[i]->id;
		t->naddrs = peers[i]->naddrs;
		memcpy(t->addrs, peers[i]->addrs, t->naddrs * sizeof(t->addrs[0]));
		an_rt_group_of(t->naddrs ? &t->addrs[0] : NULL,
			       n->cfg.loopback_subnets ? AN_RT_LOOPBACK_SUBNETS : 0, &t->group);
	}
	op->goal = op->ntargets;
	op->verify = op->replace = false;
	if (op->kind == OP_PUT && kad_defence(n, AN_KAD_DEF_VERIFY)) {
		op->verify = op->replace = true;
		op->goal = n->cfg.replication;
	} else if (op->kind == OP_GET && kad_defence(n, AN_KAD_DEF_CORRECT)) {
		op->replace = true;
		op->goal = n->cfg.k;
	}
	op->pending = 1;
	put_launch(op);
	if (--op->pending == 0)
		put_finish(op);
}

/* peers[0..c) with at most AN_KAD_SUBNET_WINDOW of one subnet (DIVERSITY), in place; the new count. */
static size_t subnet_filter(const struct an_kad_node *n, const struct an_lookup_peer **peers, size_t c)
{
	size_t out = 0;
	if (!kad_defence(n, AN_KAD_DEF_DIVERSITY))
		return c;
	for (size_t i = 0; i < c; i++) {
		size_t same = 0;
		for (size_t j = 0; j < out; j++)
			same += an_rt_group_equal(&peers[j]->group, &peers[i]->group);
		if (same < AN_KAD_SUBNET_WINDOW)
			peers[out++] = peers[i];
	}
	return out;
}

/* Our proof for fqdn at the node's claim bits: from the cache, else found now. */
static int claim_nonce(struct an_kad_node *n, const char *fqdn, uint64_t *nonce)
{
	unsigned bits = n->srv.claim_bits;
	struct claim_proof *c;
	int rc;
	for (size_t i = 0; i < n->nclaims && i < CLAIM_CACHE; i++)
		if (n->claims[i].bits == bits && strcmp(n->claims[i].fqdn, fqdn) == 0) {
			*nonce = n->claims[i].nonce;
			return 0;
		}
	/* 2^(bits+6) tries fail with odds e^-64: the cap only bounds the loop. */
	rc = an_claim_find(an_host_peer_id(n->host), fqdn, strlen(fqdn), bits,
			   bits + 6 < 64 ? (uint64_t)1 << (bits + 6) : 0, nonce);
	if (rc < 0)
		return rc;
	c = &n->claims[n->nclaims++ % CLAIM_CACHE];
	snprintf(c->fqdn, sizeof(c->fqdn), "%s", fqdn);
	c->bits = bits;
	c->nonce = *nonce;
	return 0;
}

static void claim_done(struct an_kad_op *op, int claim)
{
	op->claim = claim;
	put_finish(op); /* may free op */
}

static void claim_resp(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	(void)r;
	struct an_kad_op *op = arg;
	const struct an_peerid *self = an_host_peer_id(op->node->host);
	for (size_t i = 0; err == 0 && m && i < m->nproviders; i++)
		if (an_peerid_equal(&m->providers[i].id, self))
			op->listed = true;
	if (--op->check_pending == 0)
		claim_done(op, op->listed ? AN_KAD_CLAIM_STORED : AN_KAD_CLAIM_REFUSED);
}

/* Ask the first CLAIM_CHECK_PEERS peers that took our ADD_PROVIDER for the key's providers. */
static void claim_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	struct an_kad_node *n = op->node;
	struct an_kad_msg m;
	struct an_buf body;
	size_t asked = 0;
	ev_timer_stop(loop, w);
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_PROVIDERS;
	m.has_key = true;
	m.key.p = op->name_key;
	m.key.len = sizeof(op->name_key);
	an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
	op->check_pending = 1;
	if (an_kad_msg_encode(&m, &body) == 0)
		for (size_t i = 0; i < op->nann && asked < CLAIM_CHECK_PEERS; i++) {
			const struct target *t = &op->ann[i];
			if (!t->stored)
				continue;
			if (kad_kreq_start(n, &t->id, t->addrs, t->naddrs, body.data, body.len, true,
				       claim_resp, op, i)) {
				asked++;
				op->check_pending++;
			}
		}
	an_buf_free(&body);
	an_kad_msg_free(&m);
	if (--op->check_pending == 0)
		claim_done(op, op->listed ? AN_KAD_CLAIM_STORED : AN_KAD_CLAIM_REFUSED);
}

static void claim_written(void *arg, struct kreq *r, int err, const struct an_kad_msg *m)
{
	(void)m;
	struct an_kad_op *op = arg;
	op->ann[r->tag].stored = err == 0;
	if (--op->ann_pending == 0) {
		/* Give the peers a moment to take the request in before asking. */
		ev_timer_init(&op->defer, claim_check_cb, CLAIM_CHECK_DELAY, 0);
		op->defer.data = op;
		ev_timer_start(op->node->loop, &op->defer);
	}
}

/*
 * ADD_PROVIDER of the bare-name key, with our claim's proof, to the
 * closest, and to our own store; then the check of whether they kept it.
 * true if the check is under way (it calls put_finish), false if the put
 * is to finish now.
 */
static bool announce_send(struct an_kad_op *op, const struct an_lookup_peer *const *peers, size_t c)
{
	struct an_kad_node *n = op->node;
	struct an_kad_msg m;
	struct an_buf body;
	const struct an_multiaddr *addrs = n->self_addrs;
	size_t na = n->nself;
	struct an_multiaddr rec_addrs[AN_RT_ADDRS_MAX];
	char name[AN_CLAIM_NAME_MAX];
	uint8_t nb[AN_CLAIM_NONCE_LEN];
	uint64_t nonce = 0;
	bool checking = false;
	int rc;
	kad_refresh_self_addrs(n);
	na = n->nself;
	if (na == 0) {
		/* A client without listen addresses: announce the record's own. */
		json_t *rec = json_loadb((const char *)op->value.data, op->value.len, 0, NULL);
		size_t i;
		json_t *a;
		json_array_foreach(json_object_get(rec, "multiaddrs"), i, a)
		{
			if (na < AN_RT_ADDRS_MAX && json_is_string(a) &&
			    an_multiaddr_parse(json_string_value(a), &rec_addrs[na]) == 0)
				na++;
		}
		json_decref(rec);
		addrs = rec_addrs;
	}
	if (na > AN_RT_ADDRS_MAX)
		na = AN_RT_ADDRS_MAX;
	if (na == 0) {
		kad_log(n, "kad: no address to announce as provider");
		op->claim = AN_KAD_CLAIM_REFUSED;
		return false;
	}
	rc = claim_nonce(n, op->fqdn, &nonce);
	if (rc < 0) {
		kad_log(n, "kad: no proof of work for the claim on '%s': %s", op->fqdn, an_strerror(rc));
		op->claim = AN_KAD_CLAIM_REFUSED;
		return false;
	}
	an_claim_nonce_bytes(nonce, nb);
	snprintf(name, sizeof(name), "%s%s", AN_CLAIM_NAME_PREFIX, op->fqdn);
	an_store_provider_claim(n->store, op->name_key, sizeof(op->name_key), an_host_peer_id(n->host),
				addrs, na, true,
				an_claim_work(an_host_peer_id(n->host), op->fqdn, strlen(op->fqdn), nonce),
				now_s());
	free(op->ann);
	op->ann = calloc(c ? c : 1, sizeof(*op->ann));
	op->nann = 0;
	op->ann_pending = 0;
	an_kad_msg_init(&m);
	m.type = AN_KAD_ADD_PROVIDER;
	m.has_key = true;
	m.key.p = op->name_key;
	m.key.len = sizeof(op->name_key);
	m.has_record = true;
	m.record.key.p = (const uint8_t *)name;
	m.record.key.len = strlen(name);
	m.record.value.p = nb;
	m.record.value.len = sizeof(nb);
	an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
	if (op->ann &&
	    an_kad_msg_add_peer_ma(&m, true, an_host_peer_id(n->host), addrs, na,
				   AN_KAD_CONNECTED) == 0 &&
	    an_kad_msg_encode(&m, &body) == 0)
		for (size_t i = 0; i < c; i++) {
			struct target *t = &op->ann[op->nann];
			t->id = peers[i]->id;
			t->naddrs = peers[i]->naddrs;
			memcpy(t->addrs, peers[i]->addrs, t->naddrs * sizeof(t->addrs[0]));
			if (kad_kreq_start(n, &peers[i]->id, peers[i]->addrs, peers[i]->naddrs, body.data,
				       body.len, false, claim_written, op, op->nann)) {
				op->nann++;
				op->ann_pending++;
			}
		}
	an_buf_free(&body);
	an_kad_msg_free(&m);
	checking = op->ann_pending > 0;
	if (!checking)
		op->claim = AN_KAD_CLAIM_REFUSED; /* nobody to hold it */
	return checking;
}

static void put_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	if (op->kind == OP_GET) { /* corrections sent: the get's answer went out already */
		kad_op_free(op);
		return;
	}
	if (op->announce && op->phase == 1) {
		op->phase = 2;
		if (kad_lookup_begin(op, AN_LOOKUP_FIND_NODE, op->name_key, sizeof(op->name_key)) == 0) {
			kad_lookup_pump(op);
			return;
		}
	}
	struct an_peerid *peers = calloc(op->ntargets ? op->ntargets : 1, sizeof(*peers));
	size_t np = 0;
	for (size_t i = 0; peers && i < op->ntargets; i++)
		if (op->targets[i].stored)
			peers[np++] = op->targets[i].id;
	if (!op->cancelled && op->put_cb)
		op->put_cb(op->arg, op->stored ? 0 : op->reach ? op->reach : -ENOENT, op->stored, peers,
			   np);
	free(peers);
	(void)n;
	kad_op_free(op);
}

/* An operation that found nothing: -ENOENT if peers answered, else why none did (kad_node.h). */
static int not_found_err(const struct an_lookup *lk)
{
	int reach = lk ? an_lookup_reach(lk) : -EHOSTUNREACH;
	return reach ? reach : -ENOENT;
}

/*
 * Keep a record the get found in our own store (validated there again):
 * this node then serves it, and its maintenance re-replicates it, so a
 * name whose k closest are hostile survives on the resolvers' side.
 * Signed records verify themselves, so a cached copy is as good as the
 * publisher's.  The store's caps bound what caching can take.
 */
static void get_cache(struct an_kad_op *op)
{
	struct an_store_put p = {.key = op->key.data,
				 .key_len = op->key.len,
				 .value = op->value.data,
				 .value_len = op->value.len,
				 .root = op->root_json};
	if (op->key.len <= AN_VALIDATE_KEY_MAX)
		an_store_put(op->node->store, &p, now_s(), NULL, NULL);
}

static void get_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	const uint8_t *val = NULL;
	size_t len = 0, count = 0;
	const struct an_lookup_peer *corr[AN_RT_K_MAX];
	size_t nc = 0;
	int have = an_lookup_value(op->lk, &val, &len, &count) == 0;
	/* op->value holds the local value, if any; the better of the two wins. */
	if (have && op->value.len &&
	    an_validate_compare(op->key.data, op->key.len, op->value.data, op->value.len, val, len) >= 0) {
		have = 0;
	}
	if (have) {
		an_buf_reset(&op->value);
		if (an_buf_append(&op->value, val, len) < 0)
			an_buf_reset(&op->value);
		op->from_peers = count;
		if (kad_defence(n, AN_KAD_DEF_CORRECT)) {
			nc = an_lookup_lacking(op->lk, corr, AN_RT_K_MAX);
			get_cache(op);
		} else {
			nc = an_lookup_corrections(op->lk, corr, n->cfg.k);
		}
	}
	if (!op->cancelled && op->get_cb) {
		if (op->value.len)
			op->get_cb(op->arg, 0, op->value.data, op->value.len, op->from_peers);
		else
			op->get_cb(op->arg, not_found_err(op->lk), NULL, 0, 0);
	}
	op->get_cb = NULL;
	if (nc == 0 || op->cancelled) {
		kad_op_free(op);
		return;
	}
	/* Corrections (js does the same): the best value to those that lacked it,
	 * a subdomain's root first (the caller's, else the store's). */
	find_root(n, op, op->root_json);
	put_send_all(op, corr, nc);
}

static void prov_finish(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	struct an_kad_provider out[AN_KAD_SERVER_PROVIDERS_MAX];
	size_t np = 0;
	int local = kad_ops_get_providers(n, op->key.data, op->key.len, out, AN_KAD_SERVER_PROVIDERS_MAX, 0);
	if (local > 0)
		np = (size_t)local;
	if (op->lk) {
		const struct an_lookup_peer *ps[AN_KAD_SERVER_PROVIDERS_MAX];
		size_t c = an_lookup_providers(op->lk, ps, AN_KAD_SERVER_PROVIDERS_MAX);
		for (size_t i = 0; i < c && np < AN_KAD_SERVER_PROVIDERS_MAX; i++) {
			bool dup = false;
			for (size_t j = 0; j < np; j++)
				if (an_peerid_equal(&out[j].id, &ps[i]->id))
					dup = true;
			if (dup)
				continue;
			memset(&out[np], 0, sizeof(out[np]));
			out[np].id = ps[i]->id;
			for (size_t a = 0; a < ps[i]->naddrs && a < AN_RT_ADDRS_MAX; a++)
				out[np].addrs[out[np].naddrs++] = ps[i]->addrs[a];
			np++;
		}
	}
	if (!op->cancelled && op->prov_cb)
		op->prov_cb(op->arg, np ? 0 : not_found_err(op->lk), out, np);
	kad_op_free(op);
}

static void lookup_done(struct an_kad_op *op)
{
	const struct an_lookup_peer *peers[AN_RT_K_MAX];
	size_t c;
	switch (op->kind) {
	case OP_BOOT:
		kad_boot_finish(op);
		return;
	case OP_GET:
		get_finish(op);
		return;
	case OP_PROV:
		prov_finish(op);
		return;
	case OP_PUT:
		c = an_lookup_closest(op->lk, peers, op->node->cfg.k);
		if (op->phase == 0) {
			op->phase = 1;
			op->reach = an_lookup_reach(op->lk);
			if (kad_defence(op->node, AN_KAD_DEF_VERIFY)) /* the next-closest stand by */
				c = an_lookup_closest(op->lk, peers, AN_RT_K_MAX);
			c = subnet_filter(op->node, peers, c);
			put_send_all(op, peers, c);
		} else {
			op->announce = false;
			if (!announce_send(op, peers, c))
				put_finish(op);
		}
		return;
	case OP_REPUB:
		return;
	}
}

void kad_lookup_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct an_kad_op *op = w->data;
	ev_timer_stop(loop, w);
	kad_lookup_pump(op);
}

/* The root record's key and value for a subdomain value (from the store). */
static void find_root(struct an_kad_node *n, struct an_kad_op *op, const json_t *root)
{
	json_t *rec = json_loadb((const char *)op->value.data, op->value.len, 0, NULL);
	const char *ctx = json_string_value(
		json_object_get(json_array_get(json_object_get(rec, "root"), 0), "context"));
	const char *key = (const char *)op->key.data;
	const char *at = memchr(key, '@', op->key.len);
	if (ctx && at && an_validate_namespace(op->key.data, op->key.len) == AN_NS_AN) {
		struct an_store_record r;
		an_buf_append(&op->root_key, key, (size_t)(at - key) + 1);
		an_buf_append(&op->root_key, ctx, strlen(ctx));
		an_store_record_init(&r);
		if (root) {
			if (an_record_serialize(root, &op->root_value) < 0)
				an_buf_reset(&op->root_value);
		} else if (an_store_get(n->store, op->root_key.data, op->root_key.len, now_s(), &r) == 0) {
			an_buf_append(&op->root_value, r.value.data, r.value.len);
		}
		an_store_record_free(&r);
	}
	json_decref(rec);
}

/* The fqdn of an /an/<ph>@<fqdn> key, parsed as an_validate_name_key does. */
static int key_fqdn(const uint8_t *key, size_t key_len, char fqdn[AN_RECORD_FQDN_MAX + 1])
{
	char text[AN_VALIDATE_KEY_MAX + 8], peerhash[AN_PEERHASH_LEN + 1];
	if (key_len < 4 || key_len > AN_VALIDATE_KEY_MAX || memchr(key, 0, key_len))
		return AN_EMALFORMED;
	memcpy(text, "an://", 5);
	memcpy(text + 5, key + 4, key_len - 4);
	text[5 + key_len - 4] = 0;
	return an_record_parse_name(text, false, peerhash, fqdn) == 0 ? 0 : AN_EMALFORMED;
}

size_t an_kad_op_wanted(const struct an_kad_op *op)
{
	if (!op || op->kind != OP_PUT || !op->verify)
		return 0;
	return op->goal < op->ntargets ? op->goal : op->ntargets;
}

int an_kad_op_claim(const struct an_kad_op *op)
{
	return op ? op->claim : AN_KAD_CLAIM_NONE;
}

int an_kad_node_put(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *value, size_t value_len, unsigned flags, const json_t *root,
		    an_kad_put_fn cb, void *arg, struct an_kad_op **out, struct an_record_error *e)
{
	struct an_kad_op *op;
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	if (!(flags & AN_KAD_PUT_NO_STORE)) {
		struct an_store_put p = {.key = key,
					 .key_len = key_len,
					 .value = value,
					 .value_len = value_len,
					 .flags = (flags & AN_KAD_PUT_OURS) ? AN_STORE_OURS : 0,
					 .root = root};
		rc = an_store_put(n->store, &p, now_s(), NULL, e);
		if (rc < 0 && rc != AN_ESTALE)
			return rc;
		if (rc == AN_ESTALE)
			return rc;
	}
	op = kad_op_new(n, OP_PUT, arg);
	if (!op)
		return -ENOMEM;
	op->put_cb = cb;
	op->flags = flags;
	if (an_buf_append(&op->key, key, key_len) < 0 ||
	    an_buf_append(&op->value, value, value_len) < 0) {
		kad_op_free(op);
		return AN_ETOOBIG;
	}
	find_root(n, op, root);
	if ((flags & AN_KAD_PUT_OURS) && an_validate_name_key(key, key_len, op->name_key) == 0) {
		/* Announce only as the publisher itself: the provider is the sender (js, rust). */
		json_t *rec = json_loadb((const char *)value, value_len, 0, NULL);
		struct an_peerid pub;
		const char *pk = json_string_value(json_object_get(rec, "publisherPublicKey"));
		op->announce = pk && an_peerid_parse(pk, &pub) == 0 &&
			       an_peerid_equal(&pub, an_host_peer_id(n->host)) &&
			       key_fqdn(key, key_len, op->fqdn) == 0;
		json_decref(rec);
	}
	rc = kad_lookup_begin(op, AN_LOOKUP_FIND_NODE, key, key_len);
	if (rc < 0) {
		kad_op_free(op);
		return rc;
	}
	kad_op_defer(op, kad_lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

int an_kad_node_get(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *root_value, size_t root_len, an_kad_get_fn cb, void *arg,
		    struct an_kad_op **out)
{
	struct an_kad_op *op = kad_op_new(n, OP_GET, arg);
	struct an_store_record r;
	int rc;
	if (!op)
		return -ENOMEM;
	op->get_cb = cb;
	if (an_buf_append(&op->key, key, key_len) < 0) {
		kad_op_free(op);
		return AN_ETOOBIG;
	}
	if (root_value && root_len) {
		op->root_json = json_loadb((const char *)root_value, root_len, 0, NULL);
		if (!op->root_json) {
			kad_op_free(op);
			return AN_EMALFORMED;
		}
	}
	an_store_record_init(&r);
	if (key_len <= AN_VALIDATE_KEY_MAX && an_store_get(n->store, key, key_len, now_s(), &r) == 0)
		an_buf_append(&op->value, r.value.data, r.value.len);
	an_store_record_free(&r);
	rc = kad_lookup_begin(op, AN_LOOKUP_GET_VALUE, key, key_len);
	if (rc < 0) {
		kad_op_free(op);
		return rc;
	}
	kad_op_defer(op, kad_lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

int an_kad_node_providers(struct an_kad_node *n, const uint8_t *key, size_t key_len,
			  an_kad_providers_fn cb, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op = kad_op_new(n, OP_PROV, arg);
	int rc;
	if (!op)
		return -ENOMEM;
	op->prov_cb = cb;
	if (an_buf_append(&op->key, key, key_len) < 0) {
		kad_op_free(op);
		return AN_ETOOBIG;
	}
	rc = kad_lookup_begin(op, AN_LOOKUP_GET_PROVIDERS, key, key_len);
	if (rc < 0) {
		kad_op_free(op);
		return rc;
	}
	kad_op_defer(op, kad_lookup_start_cb);
	if (out)
		*out = op;
	return 0;
}

/* ---- republish ---- */

static void repub_next(struct an_kad_op *op);

static void repub_child_cb(void *arg, int err, size_t stored, const struct an_peerid *peers,
			   size_t np)
{
	(void)err; (void)np; (void)peers;
	struct an_kad_op *op = arg;
	op->child = NULL;
	if (!op->cancelled && op->item_cb)
		op->item_cb(op->arg, op->rec.key.data, op->rec.key.len, op->child_status, stored);
	repub_next(op);
}

static void repub_item(struct an_kad_op *op, const char *status, size_t stored)
{
	if (!op->cancelled && op->item_cb)
		op->item_cb(op->arg, op->rec.key.data, op->rec.key.len, status, stored);
}

/* Handle op->rec; 1 if a put was started (its callback continues), else 0. */
static int repub_one(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	int64_t now = now_s();
	json_t *rec = NULL, *root = NULL;
	struct an_buf val;
	struct an_record_error e;
	int started = 0, rc;
	bool is_an = an_validate_namespace(op->rec.key.data, op->rec.key.len) == AN_NS_AN;
	bool is_root = true;
	an_buf_init(&val, AN_RECORD_MAX * 2);
	if (is_an) {
		rec = json_loadb((const char *)op->rec.value.data, op->rec.value.len, 0, NULL);
		is_root = json_is_true(json_object_get(json_object_get(rec, "dns"), "isRoot"));
	}
	if ((op->pass == 0) != is_root)
		goto out;
	if (op->force ? !(op->rec.flags & (AN_STORE_OURS | AN_STORE_PINNED)) : false)
		goto out;
	an_store_mark_republished(n->store, op->rec.key.data, op->rec.key.len, now);
	const char *pk = json_string_value(json_object_get(rec, "publisherPublicKey"));
	struct an_peerid pub;
	if ((op->rec.flags & AN_STORE_OURS) && is_an && pk && an_peerid_parse(pk, &pub) == 0 &&
	    an_peerid_equal(&pub, an_host_peer_id(n->host))) {
		struct an_record_sign_opts so = {.now = now, .resign = true};
		if (!is_root) {
			/* refer to the root as it is now (re-signed in pass 0) */
			struct an_buf rk;
			struct an_store_record rr;
			const char *ctx = json_string_value(json_object_get(
				json_array_get(json_object_get(rec, "root"), 0), "context"));
			const char *at = memchr(op->rec.key.data, '@', op->rec.key.len);
			an_buf_init(&rk, AN_KAD_KEY_MAX);
			an_store_record_init(&rr);
			if (ctx && at) {
				an_buf_append(&rk, op->rec.key.data, (size_t)((const uint8_t *)at - op->rec.key.data) + 1);
				an_buf_append(&rk, ctx, strlen(ctx));
				if (an_store_get(n->store, rk.data, rk.len, now, &rr) == 0)
					root = json_loadb((const char *)rr.value.data, rr.value.len, 0, NULL);
			}
			an_buf_free(&rk);
			an_store_record_free(&rr);
			so.root = root;
		}
		rc = an_record_sign(rec, an_host_key(n->host), &so, &e);
		if (rc == 0)
			rc = an_record_serialize(rec, &val);
		if (rc == 0)
			rc = an_kad_node_put(n, op->rec.key.data, op->rec.key.len, val.data, val.len,
					     AN_KAD_PUT_OURS, root, repub_child_cb, op, &op->child, &e);
		if (rc < 0) {
			kad_log(n, "kad: republish: %s: %s", an_strerror(rc), e.message);
			repub_item(op, "refused", 0);
			goto out;
		}
		op->child_status = "resigned";
		started = 1;
		goto out;
	}
	if (op->rec.expires && op->rec.expires <= now) {
		repub_item(op, "expired", 0);
		goto out;
	}
	rc = an_kad_node_put(n, op->rec.key.data, op->rec.key.len, op->rec.value.data,
			     op->rec.value.len, AN_KAD_PUT_NO_STORE, NULL, repub_child_cb, op,
			     &op->child, NULL);
	if (rc < 0) {
		repub_item(op, "refused", 0);
		goto out;
	}
	op->child_status = "republished";
	started = 1;
out:
	json_decref(rec);
	json_decref(root);
	an_buf_free(&val);
	return started;
}

static void repub_next(struct an_kad_op *op)
{
	struct an_kad_node *n = op->node;
	for (;;) {
		int rc = an_store_next(n->store, op->force ? AN_STORE_ALL : AN_STORE_REPUBLISH_DUE,
				       now_s(), &op->rec);
		if (rc == AN_ENOTFOUND) {
			if (op->pass == 0) {
				op->pass = 1;
				an_buf_reset(&op->rec.key);
				continue;
			}
			break;
		}
		if (rc < 0) {
			op->err = rc;
			break;
		}
		if (repub_one(op))
			return;
	}
	if (!op->cancelled && op->done_cb)
		op->done_cb(op->arg, op->err);
	kad_op_free(op);
}

static void repub_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(loop, w);
	repub_next(w->data);
}

int an_kad_node_republish(struct an_kad_node *n, bool force, an_kad_republish_item_fn item,
			  an_kad_done_fn done, void *arg, struct an_kad_op **out)
{
	struct an_kad_op *op = kad_op_new(n, OP_REPUB, arg);
	if (!op)
		return -ENOMEM;
	op->force = force;
	op->item_cb = item;
	op->done_cb = done;
	kad_op_defer(op, repub_start_cb);
	if (out)
		*out = op;
	return 0;
}
