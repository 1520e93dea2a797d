/*
 * Iterative lookup tests: a simulated network in memory of NODES nodes, each
 * with its own routing table, answering kad requests through the real
 * message codec, driven on a virtual clock.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "dht/routing.h"
#include "util/error.h"

#define NODES 500
#define MAX_PENDING 4096

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

struct node {
	struct an_peerid id;
	struct an_kad_id kad;
	struct an_multiaddr addr;
	struct an_rt rt;
	bool dead;          /* never answers: requests time out */
	bool refuses;       /* answers with a failure (stream reset) */
	const char *value;  /* GET_VALUE record held, or NULL */
	bool provides;      /* a provider of every key */
};

static struct node nodes[NODES];
static const char *sim_key = "/an/simulated@key";

static struct node *node_by_id(const struct an_peerid *id)
{
	for (size_t i = 0; i < NODES; i++)
		if (an_peerid_equal(&nodes[i].id, id))
			return &nodes[i];
	return NULL;
}

static void setup_network(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	for (size_t i = 0; i < NODES; i++) {
		uint8_t b[34] = { 0x12, 0x20 };
		char text[64];
		for (int j = 2; j < 34; j++)
			b[j] = (uint8_t)rng();
		if (an_peerid_from_bytes(b, sizeof(b), &nodes[i].id) != 0)
			abort();
		an_kad_id_from_peer(&nodes[i].id, &nodes[i].kad);
		snprintf(text, sizeof(text), "/ip4/127.0.0.1/tcp/%zu", 10000 + i);
		if (an_multiaddr_parse(text, &nodes[i].addr) != 0)
			abort();
		an_rt_init(&nodes[i].rt, &nodes[i].id, NULL);
	}
	/* Every node hears of every other in a random order; full buckets keep their old entries. */
	for (size_t i = 0; i < NODES; i++) {
		for (size_t n = 0; n < NODES; n++) {
			size_t j = (size_t)(rng() % NODES);
			struct an_rt_event ev;
			an_rt_update(&nodes[i].rt, &nodes[j].id, &nodes[j].addr, 1, n);
			while (an_rt_next_event(&nodes[i].rt, &ev))
				an_rt_check_result(&nodes[i].rt, &ev.ping, true, n);
		}
	}
}

static void reset_behaviour(void)
{
	for (size_t i = 0; i < NODES; i++) {
		nodes[i].dead = false;
		nodes[i].refuses = false;
		nodes[i].value = NULL;
		nodes[i].provides = false;
	}
}

/* The server side: node n answers the request body req (as kad_server will). */
static int serve(struct node *n, const struct an_peerid *from, const uint8_t *req, size_t req_len,
		 struct an_buf *resp)
{
	struct an_kad_msg in, out;
	const struct an_rt_entry *closest[AN_RT_K_DEFAULT];
	struct an_kad_id target;
	size_t nc;
	int rc = an_kad_msg_decode(req, req_len, AN_KAD_MSG_MAX_DEFAULT, &in);
	if (rc < 0)
		return rc;
	an_kad_msg_init(&out);
	out.type = in.type;
	out.has_key = in.has_key;
	out.key = in.key;
	an_kad_id_from_key(in.key.p, in.key.len, &target);
	nc = an_rt_closest(&n->rt, &target, from, closest, AN_RT_K_DEFAULT);
	for (size_t i = 0; i < nc; i++)
		an_kad_msg_add_peer_ma(&out, false, &closest[i]->id, closest[i]->addrs,
				       closest[i]->naddrs, AN_KAD_NOT_CONNECTED);
	if (in.type == AN_KAD_GET_VALUE && n->value) {
		out.has_record = true;
		out.record.key = in.key;
		out.record.value.p = (const uint8_t *)n->value;
		out.record.value.len = strlen(n->value);
	}
	if (in.type == AN_KAD_GET_PROVIDERS && n->provides)
		an_kad_msg_add_peer_ma(&out, true, &n->id, &n->addr, 1, AN_KAD_CONNECTED);
	rc = an_kad_msg_encode(&out, resp);
	an_kad_msg_free(&out);
	an_kad_msg_free(&in);
	return rc;
}

/* Test validator: values are "seq:<n>"; higher n wins. */
static int validate(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
		    size_t val_len)
{
	(void)arg, (void)key, (void)key_len;
	return val_len > 4 && memcmp(val, "seq:", 4) == 0 ? 0 : AN_EMALFORMED;
}

static long seq_of(const uint8_t *v, size_t len)
{
	long n = 0;
	for (size_t i = 4; i < len; i++)
		n = n * 10 + (v[i] - '0');
	return n;
}

static int compare(void *arg, const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
		   const uint8_t *b, size_t b_len)
{
	long x = seq_of(a, a_len), y = seq_of(b, b_len);
	(void)arg, (void)key, (void)key_len;
	return x > y ? 1 : x < y ? -1 : 0;
}

struct pending {
	struct an_peerid peer;
	uint64_t at;
	bool fail;
	const uint8_t *msg;
	size_t msg_len;
};

struct sim_stats {
	size_t requests;
	size_t timeouts;
	uint64_t end_ms;
	size_t requested_by_path[AN_LOOKUP_PATHS_MAX];
	bool twice;          /* some peer was asked twice */
	bool shared;         /* some peer appeared on two paths */
	bool asked_self;
	bool bad_server;     /* the simulated server failed: a test bug */
	bool bad_response;   /* an_lookup_response refused a well-formed answer */
};

/* Run l to completion from node `self` on the virtual clock; fills *st. */
static void run(struct an_lookup *l, struct node *self, struct sim_stats *st)
{
	static struct pending pend[MAX_PENDING];
	static struct an_peerid asked[MAX_PENDING];
	static unsigned asked_path[MAX_PENDING];
	size_t npend = 0, nasked = 0;
	uint64_t now = 1000000;
	struct an_buf resp;

	memset(st, 0, sizeof(*st));
	an_buf_init(&resp, AN_KAD_MSG_MAX_DEFAULT);
	for (int steps = 0; steps < 100000; steps++) {
		struct an_lookup_request req;
		int ev = an_lookup_next_request(l, now, &req);
		if (ev == AN_LOOKUP_DONE)
			break;
		if (ev == AN_LOOKUP_TIMEOUT) {
			st->timeouts++;
			continue;
		}
		if (ev == AN_LOOKUP_REQUEST) {
			struct node *n = node_by_id(&req.peer);
			st->requests++;
			if (req.path < AN_LOOKUP_PATHS_MAX)
				st->requested_by_path[req.path]++;
			if (an_peerid_equal(&req.peer, &self->id))
				st->asked_self = true;
			for (size_t i = 0; i < nasked; i++) {
				if (an_peerid_equal(&asked[i], &req.peer)) {
					st->twice = true;
					if (asked_path[i] != req.path)
						st->shared = true;
				}
			}
			if (nasked < MAX_PENDING) {
				asked[nasked] = req.peer;
				asked_path[nasked++] = req.path;
			}
			if (n && !n->dead && npend < MAX_PENDING) {
				pend[npend].peer = req.peer;
				pend[npend].at = now + 5 + rng() % 200; /* 5..204 ms */
				pend[npend].fail = n->refuses;
				pend[npend].msg = req.msg;
				pend[npend].msg_len = req.msg_len;
				npend++;
			}
			continue;
		}
		/* WAIT: deliver the earliest response, or jump to the next deadline. */
		size_t best = npend;
		for (size_t i = 0; i < npend; i++)
			if (best == npend || pend[i].at < pend[best].at)
				best = i;
		uint64_t deadline = an_lookup_next_deadline(l);
		if (best < npend && pend[best].at <= deadline) {
			struct pending p = pend[best];
			pend[best] = pend[--npend];
			now = p.at > now ? p.at : now;
			if (p.fail) {
				an_lookup_failure(l, now, &p.peer);
			} else {
				struct an_kad_msg m;
				an_buf_reset(&resp);
				if (serve(node_by_id(&p.peer), &self->id, p.msg, p.msg_len, &resp) != 0 ||
				    an_kad_msg_decode(resp.data, resp.len, AN_KAD_MSG_MAX_DEFAULT, &m) != 0) {
					st->bad_server = true;
					an_lookup_failure(l, now, &p.peer);
					continue;
				}
				if (an_lookup_response(l, now, &p.peer, &m) != 0)
					st->bad_response = true;
				an_kad_msg_free(&m);
			}
		} else if (deadline != UINT64_MAX) {
			now = deadline;
		} else {
			break; /* nothing in flight and nothing to do: a bug */
		}
	}
	st->end_ms = now;
	an_buf_free(&resp);
}


static struct an_lookup *start_lookup(struct node *self, const struct an_lookup_config *cfg,
				      const uint8_t *key, size_t key_len)
{
	struct an_lookup *l = NULL;
	const struct an_rt_entry *seeds[AN_RT_K_DEFAULT];
	struct an_kad_id target;
	size_t n;
	if (an_lookup_new(&l, cfg, &self->id, key, key_len) != 0)
		return NULL;
	an_kad_id_from_key(key, key_len, &target);
	n = an_rt_closest(&self->rt, &target, NULL, seeds, AN_RT_K_DEFAULT);
	for (size_t i = 0; i < n; i++)
		an_lookup_seed(l, &seeds[i]->id, seeds[i]->addrs, seeds[i]->naddrs);
	return l;
}

static const struct an_kad_id *cmp_target;

static int by_distance(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a, *y = *(const struct node *const *)b;
	return an_kad_closer(cmp_target, &x->kad, &y->kad);
}

/* The k nodes truly closest to key, answering ones only, self excluded. */
static size_t true_closest(const uint8_t *key, size_t key_len, const struct node *self,
			   struct node **out, size_t k)
{
	static struct node *all[NODES];
	struct an_kad_id target;
	size_t n = 0;
	an_kad_id_from_key(key, key_len, &target);
	for (size_t i = 0; i < NODES; i++)
		if (&nodes[i] != self && !nodes[i].dead && !nodes[i].refuses)
			all[n++] = &nodes[i];
	cmp_target = &target;
	qsort(all, n, sizeof(all[0]), by_distance);
	if (n > k)
		n = k;
	memcpy(out, all, n * sizeof(out[0]));
	return n;
}

static void random_key(uint8_t key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)rng();
}

/* 1 if the lookup's closest answering peers are exactly the true k closest, in order. */
static int found_true_closest(struct an_lookup *l, const uint8_t *key, size_t key_len,
			      const struct node *self)
{
	const struct an_lookup_peer *got[AN_RT_K_DEFAULT];
	struct node *want[AN_RT_K_DEFAULT];
	size_t ng = an_lookup_closest(l, got, AN_RT_K_DEFAULT);
	size_t nw = true_closest(key, key_len, self, want, AN_RT_K_DEFAULT);
	if (ng != nw)
		return 0;
	for (size_t i = 0; i < ng; i++)
		if (!an_peerid_equal(&got[i]->id, &want[i]->id))
			return 0;
	return 1;
}

static void test_find_node_converges(void)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE };
	struct sim_stats st;
	int exact = 0;
	setup_network();
	reset_behaviour();
	for (int t = 0; t < 20; t++) {
		uint8_t key[32];
		struct node *self = &nodes[rng() % NODES];
		struct an_lookup *l;
		random_key(key);
		l = start_lookup(self, &cfg, key, sizeof(key));
		CHECK(l != NULL);
		if (!l)
			return;
		run(l, self, &st);
		CHECK(an_lookup_done(l));
		CHECK(!st.asked_self && !st.twice && !st.bad_server && !st.bad_response);
		CHECK_EQ_INT(st.timeouts, 0);
		exact += found_true_closest(l, key, sizeof(key), self);
		an_lookup_free(l);
	}
	CHECK_EQ_INT(exact, 20);
}

static void test_find_node_a_peer_id(void)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE };
	struct sim_stats st;
	struct node *self = &nodes[3], *wanted = &nodes[400];
	const struct an_lookup_peer *got[AN_RT_K_DEFAULT];
	struct an_lookup *l;
	setup_network();
	reset_behaviour();
	l = start_lookup(self, &cfg, wanted->id.bytes, wanted->id.len);
	CHECK(l != NULL);
	if (!l)
		return;
	run(l, self, &st);
	/* The peer itself is the closest to its own ID. */
	CHECK(an_lookup_closest(l, got, AN_RT_K_DEFAULT) == AN_RT_K_DEFAULT);
	CHECK(an_peerid_equal(&got[0]->id, &wanted->id));
	CHECK_EQ_INT(got[0]->naddrs, 1);
	CHECK(an_multiaddr_equal(&got[0]->addrs[0], &wanted->addr));
	an_lookup_free(l);
}

static void test_dead_and_refusing_peers(void)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE, .request_timeout_ms = 2000 };
	struct sim_stats st;
	int exact = 0;
	size_t timeouts = 0;
	setup_network();
	reset_behaviour();
	for (size_t i = 0; i < NODES; i++) {
		uint64_t r = rng() % 100;
		nodes[i].dead = r < 20;
		nodes[i].refuses = r >= 20 && r < 25;
	}
	for (int t = 0; t < 20; t++) {
		uint8_t key[32];
		struct node *self;
		struct an_lookup *l;
		do
			self = &nodes[rng() % NODES];
		while (self->dead || self->refuses);
		random_key(key);
		l = start_lookup(self, &cfg, key, sizeof(key));
		if (!l) {
			CHECK(l != NULL);
			return;
		}
		run(l, self, &st);
		CHECK(an_lookup_done(l));
		CHECK(!st.twice && !st.bad_response);
		/* Every round of timeouts costs 2 s; a lookup is a handful of rounds. */
		CHECK(st.end_ms - 1000000 < 30 * 2000);
		timeouts += st.timeouts;
		exact += found_true_closest(l, key, sizeof(key), self);
		an_lookup_free(l);
	}
	CHECK(timeouts > 0);
	CHECK(exact >= 19); /* S/Kademlia paths may each miss one behind dead peers */
	reset_behaviour();
}

static void test_disjoint_paths_share_no_peer(void)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE, .paths = 4, .alpha = 2 };
	struct sim_stats st;
	setup_network();
	reset_behaviour();
	for (int t = 0; t < 10; t++) {
		uint8_t key[32];
		struct node *self = &nodes[rng() % NODES];
		struct an_lookup *l;
		random_key(key);
		l = start_lookup(self, &cfg, key, sizeof(key));
		if (!l) {
			CHECK(l != NULL);
			return;
		}
		run(l, self, &st);
		CHECK(!st.twice);
		CHECK(!st.shared);
		for (int p = 0; p < 4; p++)
			CHECK(st.requested_by_path[p] > 0);
		CHECK_EQ_INT(st.requested_by_path[4], 0);
		CHECK(found_true_closest(l, key, sizeof(key), self));
		an_lookup_free(l);
	}
}

static void test_single_path_converges(void)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE, .paths = 1, .alpha = 3 };
	struct sim_stats st;
	int exact = 0;
	setup_network();
	reset_behaviour();
	for (int t = 0; t < 10; t++) {
		uint8_t key[32];
		struct node *self = &nodes[rng() % NODES];
		struct an_lookup *l;
		random_key(key);
		l = start_lookup(self, &cfg, key, sizeof(key));
		if (!l) {
			CHECK(l != NULL);
			return;
		}
		run(l, self, &st);
		CHECK_EQ_INT(st.requested_by_path[1], 0);
		exact += found_true_closest(l, key, sizeof(key), self);
		an_lookup_free(l);
	}
	CHECK_EQ_INT(exact, 10);
}

static struct an_lookup_config value_cfg(size_t quorum)
{
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_GET_VALUE, .quorum = quorum,
					.validate = validate, .compare = compare };
	return cfg;
}

static void test_get_value_quorum_exits_early(void)
{
	struct an_lookup_config early = value_cfg(3), full = value_cfg(1000);
	struct node *holders[AN_RT_K_DEFAULT];
	struct node *self = &nodes[7];
	struct sim_stats st_early, st_full;
	const uint8_t *val;
	size_t len, count;
	struct an_lookup *l;
	setup_network();
	reset_behaviour();
	size_t nh = true_closest((const uint8_t *)sim_key, strlen(sim_key), self, holders, 20);
	for (size_t i = 0; i < nh; i++)
		holders[i]->value = "seq:5";

	l = start_lookup(self, &early, (const uint8_t *)sim_key, strlen(sim_key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st_early);
	CHECK(an_lookup_done(l));
	CHECK_EQ_INT(an_lookup_value(l, &val, &len, &count), 0);
	CHECK(len == 5 && memcmp(val, "seq:5", 5) == 0);
	CHECK(count >= 3);
	an_lookup_free(l);

	l = start_lookup(self, &full, (const uint8_t *)sim_key, strlen(sim_key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st_full);
	CHECK_EQ_INT(an_lookup_value(l, &val, &len, &count), 0);
	CHECK_EQ_INT(count, 20);
	CHECK(st_early.requests < st_full.requests);
	an_lookup_free(l);
}

static void test_get_value_selects_best_and_lists_corrections(void)
{
	struct an_lookup_config cfg = value_cfg(1000);
	struct node *close[AN_RT_K_DEFAULT];
	struct node *self = &nodes[11];
	const struct an_lookup_peer *fix[64];
	struct sim_stats st;
	const uint8_t *val;
	size_t len, count, nfix;
	struct an_lookup *l;
	setup_network();
	reset_behaviour();
	true_closest((const uint8_t *)sim_key, strlen(sim_key), self, close, 20);
	for (size_t i = 0; i < 20; i++)
		close[i]->value = i % 2 ? "seq:7" : i < 10 ? "seq:3" : i < 16 ? "junk" : NULL;
	/* odd: 10 x seq:7; even 0..8: 5 x seq:3; even 10..14: 3 x junk; even 16, 18: none */
	l = start_lookup(self, &cfg, (const uint8_t *)sim_key, strlen(sim_key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st);
	CHECK_EQ_INT(an_lookup_value(l, &val, &len, &count), 0);
	CHECK(len == 5 && memcmp(val, "seq:7", 5) == 0);
	CHECK_EQ_INT(count, 10);
	nfix = an_lookup_corrections(l, fix, 64);
	CHECK_EQ_INT(nfix, 10);
	for (size_t i = 0; i < nfix; i++) {
		struct node *n = node_by_id(&fix[i]->id);
		CHECK(n && (!n->value || strcmp(n->value, "seq:7") != 0));
		CHECK(fix[i]->record != AN_LOOKUP_REC_BEST);
	}
	an_lookup_free(l);
}

static void test_get_value_not_found(void)
{
	struct an_lookup_config cfg = value_cfg(0);
	struct node *self = &nodes[12];
	const struct an_lookup_peer *fix[4];
	struct sim_stats st;
	const uint8_t *val;
	size_t len;
	struct an_lookup *l;
	setup_network();
	reset_behaviour();
	l = start_lookup(self, &cfg, (const uint8_t *)sim_key, strlen(sim_key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st);
	CHECK(an_lookup_done(l));
	CHECK_EQ_INT(an_lookup_value(l, &val, &len, NULL), AN_ENOTFOUND);
	CHECK_EQ_INT(an_lookup_corrections(l, fix, 4), 0);
	CHECK(found_true_closest(l, (const uint8_t *)sim_key, strlen(sim_key), self));
	an_lookup_free(l);
}

static void test_get_providers(void)
{
	struct an_lookup_config few = { .kind = AN_LOOKUP_GET_PROVIDERS, .max_providers = 3 };
	struct an_lookup_config all = { .kind = AN_LOOKUP_GET_PROVIDERS };
	uint8_t key[34] = { 0x12, 0x20 };
	struct node *close[AN_RT_K_DEFAULT];
	struct node *self = &nodes[20];
	const struct an_lookup_peer *got[32];
	struct sim_stats st;
	struct an_lookup *l;
	setup_network();
	reset_behaviour();
	random_key(key + 2);
	true_closest(key, sizeof(key), self, close, 20);
	for (size_t i = 0; i < 5; i++)
		close[i * 3]->provides = true;

	l = start_lookup(self, &few, key, sizeof(key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st);
	CHECK(an_lookup_done(l));
	CHECK_EQ_INT(an_lookup_providers(l, got, 32), 3);
	an_lookup_free(l);

	l = start_lookup(self, &all, key, sizeof(key));
	if (!l) {
		CHECK(l != NULL);
		return;
	}
	run(l, self, &st);
	size_t n = an_lookup_providers(l, got, 32);
	CHECK_EQ_INT(n, 5);
	for (size_t i = 0; i < n; i++) {
		struct node *p = node_by_id(&got[i]->id);
		CHECK(p && p->provides);
		CHECK(got[i]->naddrs == 1 && p && an_multiaddr_equal(&got[i]->addrs[0], &p->addr));
	}
	an_lookup_free(l);
}

/* ---- the machine by hand ---- */

static void peer_n(struct an_peerid *id, int n)
{
	uint8_t b[34] = { 0x12, 0x20 };
	b[2] = (uint8_t)n;
	b[3] = (uint8_t)(n >> 8);
	an_peerid_from_bytes(b, sizeof(b), id);
}

static void test_config_is_checked(void)
{
	struct an_lookup *l = NULL;
	struct an_peerid self;
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_GET_VALUE };
	peer_n(&self, 0);
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"k", 1), -EINVAL);
	cfg.kind = (enum an_lookup_kind)AN_KAD_PUT_VALUE;
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"k", 1), -EINVAL);
	cfg.kind = AN_LOOKUP_FIND_NODE;
	cfg.paths = AN_LOOKUP_PATHS_MAX + 1;
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"k", 1), -EINVAL);
	cfg.paths = 0;
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"k", 0), -EINVAL);
	CHECK(l == NULL);
}

static void test_no_seeds_is_done_at_once(void)
{
	struct an_lookup *l = NULL;
	struct an_peerid self;
	struct an_lookup_request req;
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE };
	const struct an_lookup_peer *got[1];
	peer_n(&self, 0);
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"k", 1), 0);
	if (!l)
		return;
	CHECK_EQ_INT(an_lookup_seed(l, &self, NULL, 0), 0); /* ignored */
	CHECK_EQ_INT(an_lookup_next_request(l, 0, &req), AN_LOOKUP_DONE);
	CHECK(an_lookup_done(l));
	CHECK_EQ_INT(an_lookup_closest(l, got, 1), 0);
	CHECK_EQ_INT(an_lookup_seed(l, &self, NULL, 0), -EALREADY);
	an_lookup_free(l);
}

static void test_request_bytes_and_answers(void)
{
	struct an_lookup *l = NULL;
	struct an_peerid self, a, b, stranger;
	struct an_lookup_request req;
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE, .paths = 1, .alpha = 1,
					.request_timeout_ms = 100 };
	struct an_kad_msg m, resp;
	peer_n(&self, 0);
	peer_n(&a, 1);
	peer_n(&b, 2);
	peer_n(&stranger, 3);
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"key", 3), 0);
	if (!l)
		return;
	an_lookup_seed(l, &a, NULL, 0);
	an_lookup_seed(l, &b, NULL, 0);
	CHECK_EQ_INT(an_lookup_next_request(l, 1000, &req), AN_LOOKUP_REQUEST);
	/* The request is a FIND_NODE for the key. */
	CHECK_EQ_INT(an_kad_msg_decode(req.msg, req.msg_len, 1024, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_FIND_NODE);
	CHECK(m.has_key && m.key.len == 3 && memcmp(m.key.p, "key", 3) == 0);
	an_kad_msg_free(&m);
	struct an_peerid first = req.peer;
	/* alpha = 1: nothing more until it answers */
	CHECK_EQ_INT(an_lookup_next_request(l, 1000, &req), AN_LOOKUP_WAIT);
	CHECK_EQ_INT(an_lookup_next_deadline(l), 1100);
	an_kad_msg_init(&resp);
	resp.type = AN_KAD_FIND_NODE;
	CHECK_EQ_INT(an_lookup_response(l, 1010, &stranger, &resp), AN_ENOTFOUND);
	resp.type = AN_KAD_GET_VALUE;
	CHECK_EQ_INT(an_lookup_response(l, 1010, &first, &resp), AN_EPROTO);
	/* first counts as failed: the other seed is asked, then times out */
	CHECK_EQ_INT(an_lookup_next_request(l, 1020, &req), AN_LOOKUP_REQUEST);
	CHECK(!an_peerid_equal(&req.peer, &first));
	struct an_peerid second = req.peer;
	CHECK_EQ_INT(an_lookup_next_request(l, 1119, &req), AN_LOOKUP_WAIT);
	CHECK_EQ_INT(an_lookup_next_request(l, 1120, &req), AN_LOOKUP_TIMEOUT);
	CHECK(an_peerid_equal(&req.peer, &second));
	resp.type = AN_KAD_FIND_NODE;
	CHECK_EQ_INT(an_lookup_response(l, 1130, &second, &resp), AN_ENOTFOUND); /* too late */
	CHECK_EQ_INT(an_lookup_next_request(l, 1130, &req), AN_LOOKUP_DONE);
	an_lookup_free(l);
}

static void test_hostile_responder_is_bounded(void)
{
	struct an_lookup *l = NULL;
	struct an_peerid self, a, p;
	struct an_lookup_request req;
	struct an_lookup_config cfg = { .kind = AN_LOOKUP_FIND_NODE, .max_candidates = 30 };
	const struct an_lookup_peer *all[64];
	struct an_kad_msg resp;
	peer_n(&self, 0);
	peer_n(&a, 1);
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"key", 3), 0);
	if (!l)
		return;
	an_lookup_seed(l, &a, NULL, 0);
	CHECK_EQ_INT(an_lookup_next_request(l, 0, &req), AN_LOOKUP_REQUEST);
	an_kad_msg_init(&resp);
	resp.type = AN_KAD_FIND_NODE;
	for (int i = 0; i < 200; i++) {
		peer_n(&p, 100 + i);
		an_kad_msg_add_peer(&resp, false, &p, NULL, 0, AN_KAD_NOT_CONNECTED);
	}
	an_kad_msg_add_peer(&resp, false, &self, NULL, 0, AN_KAD_NOT_CONNECTED);
	CHECK_EQ_INT(an_lookup_response(l, 5, &a, &resp), 0);
	/* Only the first k closer peers are looked at. */
	CHECK_EQ_INT(an_lookup_peers(l, all, 64), 1 + AN_LOOKUP_K_DEFAULT);
	an_kad_msg_free(&resp);
	an_lookup_free(l);
}

static void test_wrong_key_record_is_invalid(void)
{
	struct an_lookup *l = NULL;
	struct an_peerid self, a;
	struct an_lookup_request req;
	struct an_lookup_config cfg = value_cfg(1);
	const struct an_lookup_peer *all[4];
	const uint8_t *val;
	size_t len;
	struct an_kad_msg resp;
	peer_n(&self, 0);
	peer_n(&a, 1);
	CHECK_EQ_INT(an_lookup_new(&l, &cfg, &self, (const uint8_t *)"/an/x", 5), 0);
	if (!l)
		return;
	an_lookup_seed(l, &a, NULL, 0);
	CHECK_EQ_INT(an_lookup_next_request(l, 0, &req), AN_LOOKUP_REQUEST);
	an_kad_msg_init(&resp);
	resp.type = AN_KAD_GET_VALUE;
	resp.has_record = true;
	resp.record.key.p = (const uint8_t *)"/an/y";
	resp.record.key.len = 5;
	resp.record.value.p = (const uint8_t *)"seq:9";
	resp.record.value.len = 5;
	CHECK_EQ_INT(an_lookup_response(l, 5, &a, &resp), 0);
	CHECK_EQ_INT(an_lookup_value(l, &val, &len, NULL), AN_ENOTFOUND);
	CHECK_EQ_INT(an_lookup_peers(l, all, 4), 1);
	CHECK_EQ_INT(all[0]->record, AN_LOOKUP_REC_INVALID);
	CHECK_EQ_INT(an_lookup_next_request(l, 6, &req), AN_LOOKUP_DONE);
	an_lookup_free(l);
}

/* ---- Sybil defences: a hand-made neighbourhood of one key ---- */

#define HOOD 40
struct hood_peer {
	struct an_peerid id;
	struct an_multiaddr addr;
	bool sybil;           /* no value, names only other Sybils */
	const char *value;    /* what it returns (honest: "seq:2") */
};
static struct hood_peer hood[HOOD];
static const uint8_t hood_key[] = "/an/hood@key";

/*
 * The HOOD peers closest to hood_key among random ones, closest first; the
 * nsyb closest are Sybils on `syb_ip` (NULL: each on its own /24), the
 * rest honest on distinct /24s holding "seq:2".
 */
static void hood_make(size_t nsyb, const char *syb_ip, const char *syb_value)
{
	static struct node pool[400];
	static struct node *sorted[400];
	struct an_kad_id target;
	an_kad_id_from_key(hood_key, sizeof(hood_key) - 1, &target);
	for (size_t i = 0; i < 400; i++) {
		uint8_t b[34] = {0x12, 0x20};
		for (int j = 2; j < 34; j++)
			b[j] = (uint8_t)rng();
		an_peerid_from_bytes(b, sizeof(b), &pool[i].id);
		an_kad_id_from_peer(&pool[i].id, &pool[i].kad);
		sorted[i] = &pool[i];
	}
	cmp_target = &target;
	qsort(sorted, 400, sizeof(sorted[0]), by_distance);
	for (size_t i = 0; i < HOOD; i++) {
		char text[64];
		hood[i].id = sorted[i]->id;
		hood[i].sybil = i < nsyb;
		hood[i].value = hood[i].sybil ? syb_value : "seq:2";
		if (hood[i].sybil && syb_ip)
			snprintf(text, sizeof(text), "/ip4/%s/tcp/%zu", syb_ip, 5000 + i);
		else
			snprintf(text, sizeof(text), "/ip4/198.%zu.%zu.1/tcp/4001", 18 + i / 200, i % 200);
		an_multiaddr_parse(text, &hood[i].addr);
	}
}

/* Run a GET_VALUE lookup over the hood seeded with every peer; the best value or NULL. */
static const char *hood_get(struct an_lookup_config *cfg, size_t *requests)
{
	static char best[32];
	struct an_peerid self;
	struct an_lookup *l = NULL;
	const uint8_t *v;
	size_t len, count;
	uint64_t now = 1000;
	uint8_t sb[34] = {0x12, 0x20, 0xee};
	an_peerid_from_bytes(sb, sizeof(sb), &self);
	cfg->kind = AN_LOOKUP_GET_VALUE;
	cfg->validate = validate;
	cfg->compare = compare;
	*requests = 0;
	if (an_lookup_new(&l, cfg, &self, hood_key, sizeof(hood_key) - 1) != 0)
		return "error";
	for (size_t i = 0; i < HOOD; i++)
		an_lookup_seed(l, &hood[i].id, &hood[i].addr, 1);
	for (int steps = 0; steps < 10000; steps++) {
		struct an_lookup_request req;
		struct an_kad_msg m;
		struct hood_peer *h = NULL;
		int ev = an_lookup_next_request(l, now, &req);
		if (ev == AN_LOOKUP_DONE || ev == AN_LOOKUP_WAIT)
			break;
		if (ev != AN_LOOKUP_REQUEST)
			continue;
		(*requests)++;
		for (size_t i = 0; i < HOOD; i++)
			if (an_peerid_equal(&hood[i].id, &req.peer))
				h = &hood[i];
		an_kad_msg_init(&m);
		m.type = AN_KAD_GET_VALUE;
		for (size_t i = 0; h && i < HOOD && m.ncloser < 20; i++)
			if (hood[i].sybil == h->sybil && &hood[i] != h)
				an_kad_msg_add_peer_ma(&m, false, &hood[i].id, &hood[i].addr, 1,
						       AN_KAD_NOT_CONNECTED);
		if (h && h->value) {
			m.has_record = true;
			m.record.key.p = hood_key;
			m.record.key.len = sizeof(hood_key) - 1;
			m.record.value.p = (const uint8_t *)h->value;
			m.record.value.len = strlen(h->value);
		}
		an_lookup_response(l, now++, &req.peer, &m);
		an_kad_msg_free(&m);
	}
	if (an_lookup_value(l, &v, &len, &count) != 0 || len >= sizeof(best)) {
		an_lookup_free(l);
		return NULL;
	}
	memcpy(best, v, len);
	best[len] = 0;
	an_lookup_free(l);
	return best;
}

static void test_window_admits_few_of_one_subnet(void)
{
	struct an_lookup_config off = {.k = 8, .paths = 1, .alpha = 1, .quorum = 1};
	struct an_lookup_config on = off;
	const char *v;
	size_t reqs;
	on.max_per_subnet = 3;
	hood_make(12, "203.0.113.7", NULL);
	v = hood_get(&off, &reqs);
	CHECK(v == NULL); /* the window is all Sybils: censored */
	v = hood_get(&on, &reqs);
	CHECK(v != NULL && strcmp(v, "seq:2") == 0);
}

static void test_no_progress_answers_leave_the_window(void)
{
	struct an_lookup_config off = {.k = 8, .paths = 1, .alpha = 1, .quorum = 1,
				       .max_per_subnet = 3};
	struct an_lookup_config on = off;
	const char *v;
	size_t reqs_off, reqs_on;
	on.max_idle = 16;
	hood_make(12, NULL, NULL); /* Sybils on distinct subnets: diversity does not help */
	v = hood_get(&off, &reqs_off);
	CHECK(v == NULL);
	v = hood_get(&on, &reqs_on);
	CHECK(v != NULL && strcmp(v, "seq:2") == 0);
	CHECK(reqs_on <= 12 + 1 + 8); /* bounded: the idle ones, then the window */
}

static void test_quorum_counts_distinct_subnets(void)
{
	struct an_lookup_config off = {.k = 8, .paths = 1, .alpha = 1, .quorum = 3};
	struct an_lookup_config on = off;
	const char *v;
	size_t reqs;
	on.quorum_subnets = true;
	hood_make(4, "203.0.113.7", "seq:1"); /* a stale record from one subnet */
	v = hood_get(&off, &reqs);
	CHECK(v != NULL && strcmp(v, "seq:1") == 0); /* early exit on the stale one */
	v = hood_get(&on, &reqs);
	CHECK(v != NULL && strcmp(v, "seq:2") == 0);
}

int main(void)
{
	RUN(test_find_node_converges);
	RUN(test_find_node_a_peer_id);
	RUN(test_dead_and_refusing_peers);
	RUN(test_disjoint_paths_share_no_peer);
	RUN(test_single_path_converges);
	RUN(test_get_value_quorum_exits_early);
	RUN(test_get_value_selects_best_and_lists_corrections);
	RUN(test_get_value_not_found);
	RUN(test_get_providers);
	RUN(test_config_is_checked);
	RUN(test_no_seeds_is_done_at_once);
	RUN(test_request_bytes_and_answers);
	RUN(test_hostile_responder_is_bounded);
	RUN(test_wrong_key_record_is_invalid);
	RUN(test_window_admits_few_of_one_subnet);
	RUN(test_no_progress_answers_leave_the_window);
	RUN(test_quorum_counts_distinct_subnets);
	for (size_t i = 0; i < NODES; i++)
		an_rt_free(&nodes[i].rt);
	return check_done();
}
