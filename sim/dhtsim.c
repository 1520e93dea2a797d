/*
 * dhtsim - a discrete-event Kademlia simulator over the real sans-I/O kad
 * code (routing.c, lookup.c, kad_server.c, kad_msg.c, validate.c, record.c).
 *
 * One process, one virtual clock (ms), one binary heap of events.  Every
 * virtual node owns a routing table that is a real struct an_rt while it is
 * in use (an LRU cache of "hydrated" tables; out of the cache a table is
 * kept compact, as node indices in bucket and recency order, and rebuilt
 * with an_rt_update: see README "DHT simulator").  Requests are the real
 * encoded an_kad_msg bytes an_lookup produces; servers decode them and
 * answer with an_kad_server_handle; clients decode the answer and feed
 * an_lookup_response.  Records are real signed /an/ records checked by
 * an_validate on every put and by the lookup's validator on every get.
 *
 * Not the real code (documented in bench/README.md): the LMDB store (one
 * environment per node cannot scale to 100k) is an in-memory list per node
 * that calls an_validate/an_validate_compare exactly as store.c does; the
 * network (RTT from a log-normal, connection setup as extra RTTs); the
 * adversaries, which answer with hand-built messages.
 *
 * Output: JSON lines on stdout, progress on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/kad_node.h" /* the daemon's defaults and defence knobs */
#include "dht/kad_server.h"
#include "dht/lookup.h"
#include "dht/routing.h"
#include "dht/validate.h"
#include "record/record.h"
#include "util/buf.h"
#include "util/error.h"

/*
 * The Sybil defences of issue 16 the code has, each compiled in when its
 * header has it: routing.c's diversity and lookup.c's knobs (routing.h
 * AN_RT_NO_DIVERSITY), kad_ops's verified puts and wider corrections
 * (kad_node.h AN_KAD_DEF_VERIFY, AN_KAD_DEF_CORRECT).  The values are
 * kad_node's (its constants once kad_node.h has them).
 */
#ifdef AN_KAD_SUBNET_WINDOW
#define SIM_SUBNET_WINDOW AN_KAD_SUBNET_WINDOW
#else
#define SIM_SUBNET_WINDOW 3
#endif
#ifdef AN_KAD_IDLE_MAX
#define SIM_IDLE_MAX AN_KAD_IDLE_MAX
#else
#define SIM_IDLE_MAX 8
#endif
#ifdef AN_RT_NO_DIVERSITY
#define SIM_DEF_LOOKUP "diversity,window,progress,quorum"
#else
#define SIM_DEF_LOOKUP ""
#endif
#ifdef AN_KAD_DEF_VERIFY
#define SIM_DEF_VERIFY ",verify"
#else
#define SIM_DEF_VERIFY ""
#endif
#ifdef AN_KAD_DEF_CORRECT
#define SIM_DEF_CORRECT ",correct"
#else
#define SIM_DEF_CORRECT ""
#endif

#define SIM_T0_S 1795464000LL /* virtual time 0 = 2026-11-23T20:00:00Z: records are signed then */
#define SIM_MAX_NODES 400000
#define DEPTH_CAP 2048 /* > AN_LOOKUP_CANDIDATES_DEFAULT */

/* ---------------------------------------------------------------- options */

static struct {
	size_t nodes;
	uint64_t seed;
	size_t lookups;
	size_t names, publishers, resolvers;
	double churn;
	double on_shape, on_scale_s;
	size_t sybils, subnets, grind_rank, targets;
	double droppers, stale;
	size_t eclipse;
	size_t concurrency;
	size_t cache;
	double setup_rtts, rtt_median, rtt_sigma;
	size_t k, alpha, paths, quorum;
	uint64_t timeout_ms;
	int quiet;
	int defences; /* 1: the code's Sybil defences as the daemon sets them (default); 0: off */
	const char *label;
} opt = {
	.nodes = 1000, .seed = 1, .lookups = 200, .names = 0, .publishers = 4, .resolvers = 5,
	.churn = 0, .on_shape = 0.5, .on_scale_s = 1800, .sybils = 0, .subnets = 1, .grind_rank = 1,
	.targets = 0, .droppers = 0, .stale = 0, .eclipse = 0, .concurrency = 8, .cache = 96,
	.setup_rtts = 2, .rtt_median = 100, .rtt_sigma = 0.6, .k = 0, .alpha = 0, .paths = 0,
	.quorum = 0, .timeout_ms = 0, .quiet = 0, .defences = 1, .label = "",
};

/* ---------------------------------------------------------------- random */

static uint64_t rng_s[4];

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rnd(void) /* xoshiro256** */
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

static void rng_seed(uint64_t s)
{
	for (int i = 0; i < 4; i++) {
		s += 0x9e3779b97f4a7c15ULL;
		uint64_t z = s;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		rng_s[i] = z ^ (z >> 31);
	}
}

static double urand(void) { return ((rnd() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static double normal(void)
{
	return sqrt(-2 * log(urand())) * cos(2 * M_PI * urand());
}

/* Round-trip time in ms: log-normal with the configured median and sigma. */
static double rtt_ms(void) { return opt.rtt_median * exp(opt.rtt_sigma * normal()); }

static double weibull(double shape, double scale) { return scale * pow(-log(urand()), 1.0 / shape); }

/* ---------------------------------------------------------------- nodes */

enum kind { K_HONEST = 0, K_SYBIL, K_DROPPER, K_STALE };

struct simrec {
	struct simrec *next;
	uint8_t *key, *val;
	size_t klen, vlen;
	int64_t received;
};

struct node {
	struct an_peerid id;
	struct an_kad_id kad;
	uint32_t ip;
	uint8_t kind;
	bool online;
	int32_t slot;     /* hydrated table in the cache, or -1 */
	uint32_t *tab;    /* compact table: node indices, bucket then recency order */
	uint16_t ntab;
	struct simrec *recs;
};

static struct node *nodes;
static size_t nnodes, nhonest;
static uint32_t *sorted;  /* all node indices by kad ID */
static size_t nsorted;
static uint32_t *sybil_idx; /* the Sybils */
static size_t nsybil;

static uint64_t now_ms;

/* peer ID -> node index: open addressing on a hash of the ID bytes */
static uint32_t *pmap;
static size_t pmap_mask;

static uint64_t id_hash(const struct an_peerid *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < id->len; i++)
		h = (h ^ id->bytes[i]) * 1099511628211ULL;
	return h;
}

static void pmap_put(uint32_t idx)
{
	size_t i = id_hash(&nodes[idx].id) & pmap_mask;
	while (pmap[i] != UINT32_MAX)
		i = (i + 1) & pmap_mask;
	pmap[i] = idx;
}

static long peer_index(const struct an_peerid *id)
{
	size_t i = id_hash(id) & pmap_mask;
	while (pmap[i] != UINT32_MAX) {
		if (an_peerid_equal(&nodes[pmap[i]].id, id))
			return pmap[i];
		i = (i + 1) & pmap_mask;
	}
	return -1;
}

static void make_addr(uint32_t ip, struct an_multiaddr *ma)
{
	uint8_t b[8] = {0x04, (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip,
			0x06, 0x0f, 0xa1}; /* /ip4/a.b.c.d/tcp/4001 */
	an_multiaddr_from_bytes(b, sizeof b, ma);
}

/* A random identity-multihash peer ID shaped like an Ed25519 one. */
static void make_id(struct an_peerid *id, struct an_kad_id *kad)
{
	static const uint8_t pre[6] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
	memcpy(id->bytes, pre, 6);
	for (int i = 0; i < 4; i++) {
		uint64_t r = rnd();
		memcpy(id->bytes + 6 + 8 * i, &r, 8);
	}
	id->len = 38;
	an_kad_id_from_peer(id, kad);
}

static uint32_t random_public_ip(void)
{
	for (;;) {
		uint32_t ip = (uint32_t)rnd();
		uint8_t a = ip >> 24;
		if (a == 0 || a == 10 || a == 127 || a >= 224 || a == 198 || a == 192 || a == 172 || a == 100)
			continue;
		return ip;
	}
}

/* ---------------------------------------------------------------- routing-table cache */

struct slot {
	struct an_rt rt;
	long owner; /* -1: free */
	uint64_t used;
	int pins;
	bool dirty;
};

static struct slot *slots;
static size_t nslots;
static uint64_t use_clock;
static struct an_rt_config rt_cfg;
static uint64_t stat_hydrate, stat_evict;

static void dehydrate(struct slot *s)
{
	struct node *n = &nodes[s->owner];
	struct an_rt_event ev;
	while (an_rt_next_event(&s->rt, &ev) == 1)
		;
	if (s->dirty) {
		size_t c = 0;
		uint32_t *t = realloc(n->tab, (s->rt.size ? s->rt.size : 1) * sizeof(uint32_t));
		if (!t) {
			fprintf(stderr, "dhtsim: out of memory\n");
			exit(1);
		}
		n->tab = t;
		for (unsigned i = 0; i < AN_RT_BUCKETS; i++)
			for (size_t j = 0; j < an_rt_bucket_size(&s->rt, i); j++) {
				long x = peer_index(&an_rt_bucket_entry(&s->rt, i, j)->id);
				if (x >= 0 && c < 65535)
					t[c++] = (uint32_t)x;
			}
		n->ntab = (uint16_t)c;
	}
	an_rt_free(&s->rt);
	n->slot = -1;
	s->owner = -1;
}

/* The real routing table of node x (hydrated into the cache if needed). */
static struct an_rt *rt_of(uint32_t x)
{
	struct node *n = &nodes[x];
	struct slot *s;
	if (n->slot >= 0) {
		s = &slots[n->slot];
		s->used = ++use_clock;
		return &s->rt;
	}
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i].owner < 0) {
			best = i;
			break;
		}
		if (!slots[i].pins && (best == SIZE_MAX || slots[i].used < slots[best].used))
			best = i;
	}
	if (best == SIZE_MAX) {
		fprintf(stderr, "dhtsim: every cached routing table is pinned (raise --cache)\n");
		exit(1);
	}
	s = &slots[best];
	if (s->owner >= 0) {
		dehydrate(s);
		stat_evict++;
	}
	an_rt_init(&s->rt, &n->id, &rt_cfg);
	for (size_t i = 0; i < n->ntab; i++) {
		struct an_multiaddr ma;
		make_addr(nodes[n->tab[i]].ip, &ma);
		an_rt_update(&s->rt, &nodes[n->tab[i]].id, &ma, 1, 0);
	}
	s->owner = x;
	s->pins = 0;
	s->dirty = false;
	s->used = ++use_clock;
	n->slot = (int32_t)best;
	stat_hydrate++;
	return &s->rt;
}

static void rt_pin(uint32_t x, int d)
{
	rt_of(x);
	slots[nodes[x].slot].pins += d;
}

/* The daemon's rt_seen: we heard from peer; a full bucket's liveness check is answered at once. */
static void rt_seen(uint32_t x, uint32_t peer)
{
	struct an_rt *rt = rt_of(x);
	struct an_multiaddr ma;
	struct an_rt_event ev;
	make_addr(nodes[peer].ip, &ma);
	int rc = an_rt_update(rt, &nodes[peer].id, &ma, 1, now_ms);
	if (rc == AN_RT_ADDED || rc == AN_RT_PENDING)
		slots[nodes[x].slot].dirty = true;
	while (an_rt_next_event(rt, &ev) == 1) {
		long p = peer_index(&ev.ping);
		an_rt_check_result(rt, &ev.ping, p >= 0 && nodes[p].online, now_ms);
	}
}

/* ---------------------------------------------------------------- fast fill */

static int cmp_kad_idx(const void *a, const void *b)
{
	return an_kad_id_cmp(&nodes[*(const uint32_t *)a].kad, &nodes[*(const uint32_t *)b].kad);
}

/* Compare the first nbits of x with prefix p. */
static int prefix_cmp(const struct an_kad_id *x, const struct an_kad_id *p, unsigned nbits)
{
	unsigned full = nbits / 8, rem = nbits % 8;
	int c = memcmp(x->b, p->b, full);
	if (c || !rem)
		return c;
	uint8_t m = (uint8_t)(0xff << (8 - rem));
	return (int)(x->b[full] & m) - (int)(p->b[full] & m);
}

/* [lo, hi) of sorted nodes whose first nbits equal p's. */
static void prefix_range(const struct an_kad_id *p, unsigned nbits, size_t *lo, size_t *hi)
{
	size_t a = 0, b = nsorted;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (prefix_cmp(&nodes[sorted[m]].kad, p, nbits) < 0)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	b = nsorted;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (prefix_cmp(&nodes[sorted[m]].kad, p, nbits) <= 0)
			a = m + 1;
		else
			b = m;
	}
	*hi = a;
}

/*
 * Fill node x's table from the global sorted ID list: for each bucket i, the
 * nodes sharing exactly i bits with x are one range; they are offered to the
 * real an_rt_update in random order until the bucket is full (admission is
 * the table's own decision).
 */
static void fast_fill(uint32_t x, uint32_t *scratch)
{
	struct an_rt *rt = rt_of(x);
	const struct an_kad_id *self = &nodes[x].kad;
	slots[nodes[x].slot].dirty = true;
	for (unsigned i = 0; i < AN_KAD_BITS; i++) {
		size_t lo, hi, own_lo, own_hi;
		struct an_kad_id p = *self;
		prefix_range(self, i + 1, &own_lo, &own_hi);
		p.b[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		prefix_range(&p, i + 1, &lo, &hi);
		size_t r = hi - lo, offers = 0;
		if (r <= 4 * rt->k) {
			for (size_t j = 0; j < r; j++)
				scratch[j] = sorted[lo + j];
			for (size_t j = r; j > 1; j--) {
				size_t q = rnd_below(j);
				uint32_t t = scratch[j - 1];
				scratch[j - 1] = scratch[q];
				scratch[q] = t;
			}
			for (size_t j = 0; j < r && an_rt_bucket_size(rt, i) < rt->k; j++)
				rt_seen(x, scratch[j]);
		} else {
			while (an_rt_bucket_size(rt, i) < rt->k && offers++ < 8 * rt->k)
				rt_seen(x, sorted[lo + rnd_below(r)]);
		}
		if (own_hi - own_lo <= 1)
			break;
	}
}

/* ---------------------------------------------------------------- events */

enum ev_type { EV_REQ = 1, EV_RESP, EV_WAKE, EV_CHURN };
enum msg_kind { MK_LOOKUP = 0, MK_PUT, MK_READBACK };

struct msg {
	struct op *op;
	uint32_t gen;
	uint32_t from, to;
	int failed;      /* response: the stream was reset (negative server return) */
	uint8_t *bytes;
	size_t len;
	int kind;        /* MK_LOOKUP, MK_PUT, MK_READBACK */
};

struct ev {
	uint64_t t;
	uint64_t seq;
	int type;
	uint32_t a;
	void *p;
};

static struct ev *heap;
static size_t nheap, heap_cap;
static uint64_t ev_seq;

static bool ev_less(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void ev_push(uint64_t t, int type, uint32_t a, void *p)
{
	if (nheap == heap_cap) {
		heap_cap = heap_cap ? heap_cap * 2 : 1024;
		heap = realloc(heap, heap_cap * sizeof(*heap));
		if (!heap) {
			fprintf(stderr, "dhtsim: out of memory\n");
			exit(1);
		}
	}
	size_t i = nheap++;
	struct ev e = {.t = t, .seq = ev_seq++, .type = type, .a = a, .p = p};
	while (i && ev_less(&e, &heap[(i - 1) / 2])) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = e;
}

static struct ev ev_pop(void)
{
	struct ev top = heap[0], last = heap[--nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= nheap)
			break;
		if (c + 1 < nheap && ev_less(&heap[c + 1], &heap[c]))
			c++;
		if (!ev_less(&heap[c], &last))
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap)
		heap[i] = last;
	return top;
}

/* ---------------------------------------------------------------- churn */

static double off_mean_s(void)
{
	double on_mean = opt.on_scale_s * tgamma(1 + 1 / opt.on_shape);
	return on_mean * opt.churn / (1 - opt.churn);
}

static uint64_t next_session_ms(bool online)
{
	double s = online ? weibull(opt.on_shape, opt.on_scale_s) : -log(urand()) * off_mean_s();
	return (uint64_t)(s * 1000) + 1;
}

/* ---------------------------------------------------------------- store glue */

static struct simrec *rec_find(struct node *n, const uint8_t *key, size_t klen)
{
	for (struct simrec *r = n->recs; r; r = r->next)
		if (r->klen == klen && !memcmp(r->key, key, klen))
			return r;
	return NULL;
}

static int root_get(void *arg, const uint8_t *key, size_t klen, struct an_buf *out)
{
	struct simrec *r = rec_find(arg, key, klen);
	return r ? an_buf_append(out, r->val, r->vlen) : AN_ENOTFOUND;
}

static int64_t now_s(void) { return SIM_T0_S + (int64_t)(now_ms / 1000); }

static int rec_set(struct node *n, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct simrec *r = rec_find(n, key, klen);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->key = malloc(klen))) {
			free(r);
			return -ENOMEM;
		}
		memcpy(r->key, key, klen);
		r->klen = klen;
		r->next = n->recs;
		n->recs = r;
	}
	uint8_t *v = malloc(vlen);
	if (!v)
		return -ENOMEM;
	memcpy(v, val, vlen);
	free(r->val);
	r->val = v;
	r->vlen = vlen;
	r->received = now_s();
	return 0;
}

/* As kad_node.c's ops_get over store.c's get: the held value and its timeReceived. */
static int ops_get(void *arg, const uint8_t *key, size_t klen, struct an_buf *value,
		   char when[AN_KAD_TIME_LEN + 1], uint64_t ms)
{
	(void)ms;
	struct simrec *r;
	if (klen > AN_VALIDATE_KEY_MAX || an_validate_namespace(key, klen) == AN_NS_UNKNOWN)
		return AN_ENOTFOUND;
	r = rec_find(arg, key, klen);
	if (!r)
		return AN_ENOTFOUND;
	if (an_kad_time_format(r->received, 0, when) < 0)
		when[0] = 0;
	return an_buf_append(value, r->val, r->vlen);
}

/* As store.c's an_store_put: validate in full, keep the better value, refuse a worse one. */
static int ops_put(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
		   uint64_t ms)
{
	(void)ms;
	struct node *n = arg;
	struct an_validate_ctx ctx = {.now = now_s(), .get_root = root_get, .arg = n};
	struct simrec *r;
	int rc;
	if (klen > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	rc = an_validate(&ctx, key, klen, val, vlen, NULL, NULL);
	if (rc < 0)
		return rc;
	if (n->kind == K_DROPPER || n->kind == K_STALE)
		return 0; /* accept and drop (a stale server keeps serving its old value) */
	r = rec_find(n, key, klen);
	if (r) {
		int c = an_validate_compare(key, klen, val, vlen, r->val, r->vlen);
		if (c < 0)
			return AN_ESTALE;
		if (c == 0)
			return 0;
	}
	return rec_set(n, key, klen, val, vlen);
}

/* ---------------------------------------------------------------- records */

struct name {
	struct an_buf key;
	struct an_buf val;     /* the current record (seq 2) */
	struct an_buf old;     /* an older one (seq 1), what stale servers hold */
	struct an_kad_id kad;
};

static struct name *names;

static int sign_name(struct an_privkey *k, const char *fqdn, uint64_t seq, struct an_buf *out)
{
	static const char *addrs[] = {"/ip4/198.51.100.7/tcp/4001"};
	struct an_record_sign_opts o = {.now = SIM_T0_S - 60, .name = fqdn, .type = "root",
					.addrs = addrs, .naddrs = 1, .has_seq = true, .seq = seq};
	struct an_record_error e;
	json_t *rec = json_object();
	int rc = rec ? an_record_sign(rec, k, &o, &e) : -ENOMEM;
	an_buf_init(out, AN_RECORD_MAX * 2);
	if (rc == 0)
		rc = an_record_serialize(rec, out);
	json_decref(rec);
	return rc;
}

static int make_names(void)
{
	struct an_privkey *pubs[64];
	size_t np = opt.publishers > 64 ? 64 : opt.publishers ? opt.publishers : 1;
	names = calloc(opt.names, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t p = 0; p < np; p++) {
		/* Ed25519 keys from the seed, so a run is reproducible: PrivateKey protobuf of seed||pk */
		uint8_t pb[4 + 64] = {0x08, 0x01, 0x12, 0x40}, pk[32], seed[32];
		for (int i = 0; i < 4; i++) {
			uint64_t r = rnd();
			memcpy(seed + 8 * i, &r, 8);
		}
		crypto_sign_seed_keypair(pk, pb + 4, seed);
		if (an_privkey_decode(pb, sizeof pb, &pubs[p]) < 0)
			return AN_EFIELD;
		sodium_memzero(pb, sizeof pb);
	}
	for (size_t i = 0; i < opt.names; i++) {
		struct an_privkey *k = pubs[i % np];
		struct an_pubkey pub;
		struct an_peerid id;
		char ph[17], fqdn[64];
		snprintf(fqdn, sizeof fqdn, "name%zu", i);
		an_privkey_public(k, &pub);
		an_peerid_from_pubkey(&pub, &id);
		an_peerhash(&id, ph);
		an_buf_init(&names[i].key, AN_VALIDATE_KEY_MAX);
		if (an_record_dht_key(ph, fqdn, &names[i].key) < 0 || sign_name(k, fqdn, 2, &names[i].val) < 0 ||
		    sign_name(k, fqdn, 1, &names[i].old) < 0)
			return AN_EFIELD;
		an_kad_id_from_key(names[i].key.data, names[i].key.len, &names[i].kad);
	}
	for (size_t p = 0; p < np; p++)
		an_privkey_free(pubs[p]);
	return 0;
}

/* ---------------------------------------------------------------- operations */

enum op_kind { OP_FIND = 1, OP_PUT, OP_GET };

struct depth_ent {
	uint32_t idx;
	uint8_t depth;
};

struct op {
	enum op_kind kind;
	uint32_t origin;
	size_t name;           /* OP_PUT / OP_GET */
	struct an_kad_id target;
	uint8_t key[AN_KAD_KEY_MAX];
	size_t klen;
	struct an_lookup *l;
	struct an_validate_ctx vctx;
	uint32_t gen;
	uint64_t start, end;
	uint64_t wake_at;
	int phase;             /* 0 lookup, 1 puts, 2 done */
	size_t requests;
	/* put targets (kad_ops's put_send_all) */
	uint32_t *tg;
	size_t ntg, tnext, inflight, goal, done_ok;
	bool replace, verify;
	struct an_buf put_msg, get_msg;
	const uint8_t *val; /* borrowed: the name's value or the lookup's (freed after the op) */
	size_t vlen;
	struct depth_ent depth[DEPTH_CAP];
	/* results */
	int hops;
	bool ok;
	struct op *next;       /* free list / queue */
};

static uint32_t gen_counter;
static size_t active_ops;

static int depth_get(struct op *o, uint32_t idx)
{
	size_t i = (idx * 2654435761u) & (DEPTH_CAP - 1);
	for (size_t n = 0; n < DEPTH_CAP; n++, i = (i + 1) & (DEPTH_CAP - 1)) {
		if (o->depth[i].depth == 0)
			return 0;
		if (o->depth[i].idx == idx)
			return o->depth[i].depth;
	}
	return 0;
}

static void depth_set(struct op *o, uint32_t idx, int d)
{
	size_t i = (idx * 2654435761u) & (DEPTH_CAP - 1);
	for (size_t n = 0; n < DEPTH_CAP; n++, i = (i + 1) & (DEPTH_CAP - 1)) {
		if (o->depth[i].depth == 0) {
			o->depth[i].idx = idx;
			o->depth[i].depth = (uint8_t)(d > 255 ? 255 : d);
			return;
		}
		if (o->depth[i].idx == idx)
			return;
	}
}

static void send_msg(struct op *o, uint32_t to, const uint8_t *bytes, size_t len, int kind)
{
	struct msg *m = calloc(1, sizeof(*m));
	double rtt = rtt_ms();
	if (!m || !(m->bytes = malloc(len ? len : 1))) {
		fprintf(stderr, "dhtsim: out of memory\n");
		exit(1);
	}
	memcpy(m->bytes, bytes, len);
	m->len = len;
	m->op = o;
	m->gen = o->gen;
	m->from = o->origin;
	m->to = to;
	m->kind = kind;
	o->requests++;
	/* connection setup (setup_rtts) then the request: it arrives half an RTT later */
	ev_push(now_ms + (uint64_t)(rtt * (opt.setup_rtts + 0.5)), EV_REQ, (uint32_t)(rtt * 1000 > 4e9 ? 4e9 : rtt * 1000), m);
}

static void op_finish(struct op *o);
static void op_pump(struct op *o);

#ifdef AN_KAD_DEF_VERIFY
/* peers[0..c) with at most AN_KAD_SUBNET_WINDOW of one /24, in place (kad_ops's subnet_filter). */
static size_t subnet_filter(const struct an_lookup_peer **peers, size_t c)
{
	size_t out = 0;
	uint32_t *sub = malloc((c ? c : 1) * sizeof(uint32_t));
	if (!sub)
		return c;
	for (size_t i = 0; i < c; i++) {
		long x = peer_index(&peers[i]->id);
		size_t same = 0;
		if (x < 0)
			continue;
		for (size_t j = 0; j < out; j++)
			same += sub[j] == nodes[x].ip >> 8;
		if (same < SIM_SUBNET_WINDOW) {
			sub[out] = nodes[x].ip >> 8;
			peers[out++] = peers[i];
		}
	}
	free(sub);
	return out;
}
#endif

/* Send the next targets while fewer than goal are done or in flight. */
static void targets_launch(struct op *o)
{
	while (o->tnext < o->ntg && o->done_ok + o->inflight < o->goal) {
		send_msg(o, o->tg[o->tnext++], o->put_msg.data, o->put_msg.len, MK_PUT);
		o->inflight++;
	}
}

/*
 * PUT_VALUE of val to peers[0..c): all of them (goal = c), or with replace
 * the first goal and the next in place of each that did not take it (or,
 * with verify, did not return it on a read-back GET_VALUE).
 */
static void targets_send(struct op *o, const struct an_lookup_peer *const *peers, size_t c,
			 const uint8_t *val, size_t len)
{
	struct an_kad_msg m;
	o->tg = calloc(c ? c : 1, sizeof(uint32_t));
	o->ntg = 0;
	for (size_t i = 0; o->tg && i < c; i++) {
		long x = peer_index(&peers[i]->id);
		if (x >= 0)
			o->tg[o->ntg++] = (uint32_t)x;
	}
	if (!o->replace)
		o->goal = o->ntg;
	an_kad_msg_init(&m);
	m.type = AN_KAD_GET_VALUE;
	m.has_key = true;
	m.key.p = o->key;
	m.key.len = o->klen;
	an_buf_init(&o->get_msg, AN_KAD_MSG_SEND_MAX);
	an_buf_init(&o->put_msg, AN_KAD_MSG_SEND_MAX);
	if (an_kad_msg_encode(&m, &o->get_msg) < 0)
		o->verify = false;
	m.type = AN_KAD_PUT_VALUE;
	m.has_record = true;
	m.record.key = m.key;
	m.record.value.p = val;
	m.record.value.len = len;
	if (an_kad_msg_encode(&m, &o->put_msg) < 0)
		return;
	o->val = val;
	o->vlen = len;
	targets_launch(o);
}

/* The lookup is done: judge it, then (PUT) send the puts, (GET) the corrections. */
static void lookup_done(struct op *o)
{
	const struct an_lookup_peer *best[AN_RT_K_MAX];
	size_t nb = an_lookup_closest(o->l, best, 1);
	o->end = now_ms;
	if (o->kind == OP_FIND) {
		/* success: the closest peer found is the closest live routing node of all */
		long truth = -1;
		struct an_kad_id dt, dx;
		for (size_t i = 0; i < nnodes; i++) {
			if (i == o->origin || !nodes[i].online || nodes[i].kind == K_SYBIL)
				continue;
			an_kad_distance(&nodes[i].kad, &o->target, &dx);
			if (truth < 0 || an_kad_id_cmp(&dx, &dt) < 0) {
				truth = (long)i;
				dt = dx;
			}
		}
		o->ok = nb && truth >= 0 && an_peerid_equal(&best[0]->id, &nodes[truth].id);
		o->hops = nb ? depth_get(o, (uint32_t)peer_index(&best[0]->id)) : 0;
		op_finish(o);
		return;
	}
	if (o->kind == OP_GET) {
		const uint8_t *val;
		size_t len, count;
		const struct an_lookup_peer *all[1024];
		size_t na = an_lookup_peers(o->l, all, 1024);
		o->ok = an_lookup_value(o->l, &val, &len, &count) == 0 && len == names[o->name].val.len &&
			!memcmp(val, names[o->name].val.data, len);
		o->hops = 0;
		for (size_t i = 0; i < na; i++)
			if (all[i]->record == AN_LOOKUP_REC_BEST) {
				int d = depth_get(o, (uint32_t)peer_index(&all[i]->id));
				if (d && (!o->hops || d < o->hops))
					o->hops = d;
			}
		if (o->ok) {
			/* corrections, as kad_node's get_finish: the k closest that lacked it,
			 * or (CORRECT defence) every peer that lacked it, k of them taking it */
			const struct an_lookup_peer *corr[1024];
			size_t nc;
#ifdef AN_KAD_DEF_CORRECT
			if (opt.defences) {
				nc = an_lookup_lacking(o->l, corr, 1024);
				o->goal = rt_cfg.k;
				o->replace = true;
				/* the resolver caches the signed record it verified (get_cache) */
				ops_put(&nodes[o->origin], o->key, o->klen, val, len, now_ms);
			} else
#endif
				nc = an_lookup_corrections(o->l, corr, rt_cfg.k);
			targets_send(o, corr, nc, val, len);
		}
		o->phase = 1;
		if (!o->inflight)
			op_finish(o);
		return;
	}
	/* OP_PUT: PUT_VALUE to the k closest that answered, or (VERIFY) until r read back */
	{
		const struct an_lookup_peer *cl[1024];
		size_t nc = an_lookup_closest(o->l, cl, rt_cfg.k);
#ifdef AN_KAD_DEF_VERIFY
		if (opt.defences) {
			nc = an_lookup_closest(o->l, cl, 1024);
			nc = subnet_filter(cl, nc);
			o->goal = AN_KAD_REPLICATION_DEFAULT;
			o->replace = o->verify = true;
		}
#endif
		targets_send(o, cl, nc, names[o->name].val.data, names[o->name].val.len);
		o->phase = 1;
		if (!o->inflight)
			op_finish(o);
	}
}

static void op_pump(struct op *o)
{
	struct an_lookup_request req;
	if (o->phase != 0)
		return;
	for (;;) {
		int ev = an_lookup_next_request(o->l, now_ms, &req);
		if (ev == AN_LOOKUP_REQUEST) {
			long x = peer_index(&req.peer);
			if (x < 0) {
				an_lookup_failure(o->l, now_ms, &req.peer);
				continue;
			}
			send_msg(o, (uint32_t)x, req.msg, req.msg_len, MK_LOOKUP);
			continue;
		}
		if (ev == AN_LOOKUP_TIMEOUT)
			continue;
		if (ev == AN_LOOKUP_DONE) {
			lookup_done(o);
			return;
		}
		uint64_t d = an_lookup_next_deadline(o->l);
		if (d != UINT64_MAX && (o->wake_at <= now_ms || d < o->wake_at)) {
			o->wake_at = d;
			ev_push(d, EV_WAKE, o->gen, o);
		}
		return;
	}
}

/* ---------------------------------------------------------------- servers */

/* A Sybil's answer: up to k Sybils closest to the key, no value, a PUT echoed. */
static int sybil_answer(uint32_t self, const struct an_kad_msg *req, struct an_buf *resp)
{
	struct an_kad_msg m;
	struct an_kad_id t, da, db;
	uint32_t best[AN_RT_K_MAX];
	struct an_multiaddr ma[AN_RT_K_MAX];
	size_t nb = 0;
	int rc;
	if (req->type == AN_KAD_PUT_VALUE)
		return an_kad_msg_encode(req, resp);
	if (req->type == AN_KAD_ADD_PROVIDER)
		return AN_KAD_SERVER_NO_RESPONSE;
	an_kad_msg_init(&m);
	m.type = req->type;
	m.has_key = req->has_key;
	m.key = req->key;
	an_kad_id_from_key(req->key.p, req->key.len, &t);
	for (size_t i = 0; i < nsybil; i++) {
		uint32_t s = sybil_idx[i];
		size_t j;
		if (s == self)
			continue;
		an_kad_distance(&nodes[s].kad, &t, &da);
		for (j = nb; j > 0; j--) {
			an_kad_distance(&nodes[best[j - 1]].kad, &t, &db);
			if (an_kad_id_cmp(&db, &da) <= 0)
				break;
			if (j < rt_cfg.k)
				best[j] = best[j - 1];
		}
		if (j < rt_cfg.k) {
			best[j] = s;
			if (nb < rt_cfg.k)
				nb++;
		}
	}
	for (size_t i = 0; i < nb; i++) {
		make_addr(nodes[best[i]].ip, &ma[i]);
		an_kad_msg_add_peer_ma(&m, false, &nodes[best[i]].id, &ma[i], 1, AN_KAD_NOT_CONNECTED);
	}
	rc = an_kad_msg_encode(&m, resp);
	an_kad_msg_free(&m);
	return rc;
}

static uint64_t stat_requests, stat_resets;

static void handle_req(struct msg *m, double rtt)
{
	struct node *srvn = &nodes[m->to];
	struct an_kad_msg req;
	struct an_buf resp;
	int rc;
	stat_requests++;
	if (!srvn->online) {
		/* no answer: the requester's timeout fires (a lookup's own; a put's here) */
		free(m->bytes);
		m->bytes = NULL;
		m->len = 0;
		m->failed = 1;
		ev_push(now_ms + (opt.timeout_ms ? opt.timeout_ms : AN_LOOKUP_TIMEOUT_DEFAULT), EV_RESP, 0, m);
		return;
	}
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	rc = an_kad_msg_decode(m->bytes, m->len, AN_KAD_MSG_MAX_DEFAULT, &req);
	bool decoded = rc == 0;
	if (rc == 0 && srvn->kind == K_SYBIL) {
		rc = sybil_answer(m->to, &req, &resp);
	} else if (rc == 0) {
		struct an_multiaddr self_ma;
		struct an_kad_server srv = {0};
		const char *err = NULL;
		make_addr(srvn->ip, &self_ma);
		srv.self = srvn->id;
		srv.self_addrs = &self_ma;
		srv.nself_addrs = 1;
		srv.rt = rt_of(m->to);
		srv.store.get = ops_get;
		srv.store.put = ops_put;
		srv.store.arg = srvn;
		srv.k = rt_cfg.k;
		rc = an_kad_server_handle(&srv, &nodes[m->from].id, &req, now_ms, &resp, &err);
		/* the daemon adds a server-mode requester to its table (kad_rt_seen) */
		rt_seen(m->to, m->from);
	}
	if (decoded)
		an_kad_msg_free(&req);
	free(m->bytes);
	m->bytes = NULL;
	m->len = 0;
	if (rc == AN_KAD_SERVER_NO_RESPONSE) {
		an_buf_free(&resp);
		free(m);
		return;
	}
	if (rc < 0) {
		stat_resets++;
		m->failed = 1;
	} else {
		m->bytes = resp.data; /* take the buffer */
		m->len = resp.len;
		resp.data = NULL;
	}
	an_buf_free(&resp);
	ev_push(now_ms + (uint64_t)(rtt / 2) + 1, EV_RESP, 0, m);
}

static void handle_resp(struct msg *m)
{
	struct op *o = m->op;
	struct an_kad_msg resp;
	bool live = o->gen == m->gen;
	if (live && m->kind == MK_PUT) {
		/* a PUT_VALUE answer: an echo is "stored" (today's count), or with verify the read-back decides */
		bool ok = false;
		if (!m->failed && an_kad_msg_decode(m->bytes, m->len, AN_KAD_MSG_MAX_DEFAULT, &resp) == 0) {
			ok = resp.type == AN_KAD_PUT_VALUE;
			an_kad_msg_free(&resp);
		}
		if (ok && o->verify) {
			send_msg(o, m->to, o->get_msg.data, o->get_msg.len, MK_READBACK);
		} else {
			o->done_ok += ok;
			o->inflight--;
			if (o->replace)
				targets_launch(o);
			if (!o->inflight)
				op_finish(o);
		}
	} else if (live && m->kind == MK_READBACK) {
		bool ok = false;
		if (!m->failed && an_kad_msg_decode(m->bytes, m->len, AN_KAD_MSG_MAX_DEFAULT, &resp) == 0) {
			ok = resp.has_record && resp.record.value.len == o->vlen &&
			     !memcmp(resp.record.value.p, o->val, o->vlen);
			an_kad_msg_free(&resp);
		}
		o->done_ok += ok;
		o->inflight--;
		targets_launch(o);
		if (!o->inflight)
			op_finish(o);
	} else if (live && o->phase == 0) {
		const struct an_peerid *peer = &nodes[m->to].id;
		if (m->failed || an_kad_msg_decode(m->bytes, m->len, AN_KAD_MSG_MAX_DEFAULT, &resp) < 0) {
			an_lookup_failure(o->l, now_ms, peer);
		} else {
			int d = depth_get(o, m->to);
			if (an_lookup_response(o->l, now_ms, peer, &resp) == 0) {
				for (size_t i = 0; i < resp.ncloser; i++) {
					long x = peer_index(&resp.closer[i].id);
					if (x >= 0 && !depth_get(o, (uint32_t)x))
						depth_set(o, (uint32_t)x, d + 1);
				}
				rt_seen(o->origin, m->to);
			}
			an_kad_msg_free(&resp);
		}
		op_pump(o);
	}
	free(m->bytes);
	free(m);
}

/* ---------------------------------------------------------------- op driver */

struct stats {
	double *hops, *lat;
	size_t n, ok, cap;
	double acks, holders;
	size_t puts;
};

static struct stats st;
static struct op *pending, *pending_tail;
static size_t started, finished;

static void stats_add(double hops, double lat, bool ok)
{
	if (st.n == st.cap) {
		st.cap = st.cap ? st.cap * 2 : 256;
		st.hops = realloc(st.hops, st.cap * sizeof(double));
		st.lat = realloc(st.lat, st.cap * sizeof(double));
		if (!st.hops || !st.lat)
			exit(1);
	}
	st.hops[st.n] = hops;
	st.lat[st.n] = lat;
	st.n++;
	st.ok += ok;
}

static size_t count_holders(size_t name)
{
	size_t h = 0;
	for (size_t i = 0; i < nnodes; i++) {
		struct simrec *r;
		if (nodes[i].kind != K_HONEST)
			continue;
		r = rec_find(&nodes[i], names[name].key.data, names[name].key.len);
		if (r && r->vlen == names[name].val.len && !memcmp(r->val, names[name].val.data, r->vlen))
			h++;
	}
	return h;
}

static size_t *name_fail;
static struct op *done_ops;

static void op_finish(struct op *o)
{
	o->phase = 2;
	if (o->kind == OP_PUT) {
		st.acks += (double)o->done_ok;
		st.holders += (double)count_holders(o->name);
		st.puts++;
	} else {
		stats_add(o->hops, (double)(o->end - o->start), o->ok);
		if (o->kind == OP_GET && !o->ok)
			name_fail[o->name]++;
	}
	o->gen = 0;
	an_lookup_free(o->l); /* o->val may point into it: no use after this */
	o->l = NULL;
	o->val = NULL;
	free(o->tg);
	o->tg = NULL;
	an_buf_free(&o->put_msg);
	an_buf_free(&o->get_msg);
	rt_pin(o->origin, -1);
	active_ops--;
	finished++;
	o->next = done_ops; /* freed by run_ops once no event can point at it */
	done_ops = o;
}

static uint32_t random_live_honest(void)
{
	for (;;) {
		uint32_t x = (uint32_t)rnd_below(nnodes);
		if (nodes[x].online && nodes[x].kind == K_HONEST)
			return x;
	}
}

static void op_start(struct op *o)
{
	struct an_lookup_config lc = {
		.kind = o->kind == OP_FIND || o->kind == OP_PUT ? AN_LOOKUP_FIND_NODE : AN_LOOKUP_GET_VALUE,
		.k = opt.k, .alpha = opt.alpha, .paths = opt.paths,
		.request_timeout_ms = opt.timeout_ms ? opt.timeout_ms : AN_LOOKUP_TIMEOUT_DEFAULT,
		.quorum = opt.quorum,
	};
	const struct an_rt_entry *close[AN_RT_K_MAX];
	struct an_rt *rt;
#ifdef AN_RT_NO_DIVERSITY
	if (opt.defences) { /* as kad_ops's lookup_begin sets them (issue 16) */
		lc.max_per_subnet = SIM_SUBNET_WINDOW;
		if (lc.kind == AN_LOOKUP_GET_VALUE) {
			lc.max_idle = SIM_IDLE_MAX;
			lc.quorum_subnets = true;
		}
	}
#endif
	size_t c;
	if (!nodes[o->origin].online)
		o->origin = random_live_honest();
	if (o->kind == OP_GET) {
		o->vctx.now = now_s();
		o->vctx.get_root = root_get;
		o->vctx.arg = &nodes[o->origin];
		lc.validate = an_validate_cb;
		lc.compare = an_validate_compare_cb;
		lc.arg = &o->vctx;
	}
	o->gen = ++gen_counter;
	o->start = now_ms;
	if (an_lookup_new(&o->l, &lc, &nodes[o->origin].id, o->key, o->klen) < 0) {
		fprintf(stderr, "dhtsim: an_lookup_new failed\n");
		exit(1);
	}
	rt_pin(o->origin, 1);
	rt = rt_of(o->origin);
	c = an_rt_closest(rt, &o->target, NULL, close, rt_cfg.k);
	for (size_t i = 0; i < c; i++) {
		long x = peer_index(&close[i]->id);
		an_lookup_seed(o->l, &close[i]->id, close[i]->addrs, close[i]->naddrs);
		if (x >= 0)
			depth_set(o, (uint32_t)x, 1);
	}
	active_ops++;
	started++;
	op_pump(o);
}

static struct op *op_new(enum op_kind kind, size_t name)
{
	struct op *o = calloc(1, sizeof(*o));
	if (!o)
		exit(1);
	o->kind = kind;
	o->name = name;
	o->origin = random_live_honest();
	if (kind == OP_FIND) {
		for (int i = 0; i < 4; i++) {
			uint64_t r = rnd();
			memcpy(o->key + 8 * i, &r, 8);
		}
		o->klen = 32;
		an_kad_id_from_key(o->key, o->klen, &o->target);
	} else {
		memcpy(o->key, names[name].key.data, names[name].key.len);
		o->klen = names[name].key.len;
		o->target = names[name].kad;
	}
	return o;
}

static void queue_op(struct op *o)
{
	if (pending_tail)
		pending_tail->next = o;
	else
		pending = o;
	pending_tail = o;
}

/* Run every queued op, at most opt.concurrency at a time, with churn going on. */
static void run_ops(void)
{
	size_t total = started;
	for (struct op *o = pending; o; o = o->next)
		total++;
	time_t last = time(NULL);
	while (pending || active_ops) {
		while (pending && active_ops < opt.concurrency) {
			struct op *o = pending;
			pending = o->next;
			if (!pending)
				pending_tail = NULL;
			o->next = NULL;
			op_start(o);
		}
		if (!nheap)
			break;
		struct ev e = ev_pop();
		now_ms = e.t;
		if (e.type == EV_REQ) {
			handle_req(e.p, e.a / 1000.0);
		} else if (e.type == EV_RESP) {
			handle_resp(e.p);
		} else if (e.type == EV_WAKE) {
			struct op *o = e.p;
			if (o->gen == e.a && o->phase == 0)
				op_pump(o);
		} else if (e.type == EV_CHURN) {
			struct node *n = &nodes[e.a];
			n->online = !n->online;
			ev_push(now_ms + next_session_ms(n->online), EV_CHURN, e.a, NULL);
		}
		if (!opt.quiet && time(NULL) != last) {
			last = time(NULL);
			fprintf(stderr, "dhtsim: %zu/%zu ops, t=%.1fs, %zu events, %llu hydrations\n", finished,
				total, now_ms / 1000.0, nheap, (unsigned long long)stat_hydrate);
		}
	}
	/* late answers and wakes of finished ops go; churn stays */
	size_t keep = 0;
	struct ev *old = malloc((nheap ? nheap : 1) * sizeof(*old));
	if (!old)
		exit(1);
	memcpy(old, heap, nheap * sizeof(*old));
	size_t n = nheap;
	nheap = 0;
	for (size_t i = 0; i < n; i++) {
		if (old[i].type == EV_CHURN) {
			ev_push(old[i].t, EV_CHURN, old[i].a, NULL);
			keep++;
		} else if (old[i].type == EV_REQ || old[i].type == EV_RESP) {
			struct msg *m = old[i].p;
			free(m->bytes);
			free(m);
		}
	}
	free(old);
	while (done_ops) {
		struct op *o = done_ops;
		done_ops = o->next;
		free(o);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(double), cmp_double);
	size_t i = (size_t)ceil(p * (double)n) - 1;
	return v[i >= n ? n - 1 : i];
}

static void stats_reset(void)
{
	free(st.hops);
	free(st.lat);
	memset(&st, 0, sizeof st);
}

#ifdef AN_RT_NO_DIVERSITY
#define HAVE_DEFENCES 1
#else
#define HAVE_DEFENCES 0
#endif

static void print_common(FILE *f, const char *scenario)
{
	fprintf(f, "{\"scenario\":\"%s\",\"label\":\"%s\",\"defences\":\"%s%s\",\"nodes\":%zu,\"honest\":%zu,\"seed\":%llu,"
		   "\"k\":%zu,\"alpha\":%zu,\"paths\":%zu,\"churn\":%.2f,\"sybils\":%zu,\"subnets\":%zu,"
		   "\"droppers\":%.2f,\"stale\":%.2f",
		scenario, opt.label, !HAVE_DEFENCES ? "none" : opt.defences ? "on:" : "off",
		HAVE_DEFENCES && opt.defences ? SIM_DEF_LOOKUP SIM_DEF_VERIFY SIM_DEF_CORRECT : "", nnodes, nhonest, (unsigned long long)opt.seed, rt_cfg.k,
		opt.alpha ? opt.alpha : AN_LOOKUP_ALPHA_DEFAULT, opt.paths ? opt.paths : AN_LOOKUP_PATHS_DEFAULT,
		opt.churn, nsybil, nsybil ? opt.subnets : 0, opt.droppers, opt.stale);
}

/* ---------------------------------------------------------------- setup */

/* The distance of the r-th closest honest node to t. */
static struct an_kad_id rank_distance(const struct an_kad_id *t, size_t r)
{
	struct an_kad_id *best = calloc(r, sizeof(*best)), d, out;
	size_t nb = 0;
	for (size_t i = 0; i < nhonest; i++) {
		size_t j;
		an_kad_distance(&nodes[i].kad, t, &d);
		if (nb == r && an_kad_id_cmp(&d, &best[r - 1]) >= 0)
			continue;
		for (j = nb < r ? nb : r - 1; j > 0 && an_kad_id_cmp(&best[j - 1], &d) > 0; j--)
			best[j] = best[j - 1];
		best[j] = d;
		if (nb < r)
			nb++;
	}
	out = best[nb ? nb - 1 : 0];
	free(best);
	return out;
}

/* Grind count Sybil IDs closer to t than the rank-th honest node. */
static size_t grind(const struct an_kad_id *t, size_t rank, size_t first, size_t count, uint64_t *tries)
{
	struct an_kad_id lim = rank_distance(t, rank), d;
	for (size_t i = 0; i < count; i++) {
		struct node *n = &nodes[first + i];
		do {
			make_id(&n->id, &n->kad);
			an_kad_distance(&n->kad, t, &d);
			(*tries)++;
		} while (an_kad_id_cmp(&d, &lim) >= 0);
	}
	return count;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dhtsim [options]\n"
		"  --nodes N          honest DHT servers (1000)\n"
		"  --seed S           random seed (1)\n"
		"  --lookups L        FIND_NODE lookups for random keys: hops, latency (200)\n"
		"  --names M          names to publish (PUT) then resolve (GET) (0)\n"
		"  --resolvers R      honest resolvers per name (5)\n"
		"  --publishers P     publisher keys signing the names (4)\n"
		"  --churn F          fraction of nodes offline at any time (0)\n"
		"  --session-shape A  Weibull shape of online sessions (0.5)\n"
		"  --session-scale S  Weibull scale of online sessions, seconds (1800)\n"
		"  --sybils B         attacker IDs ground near the names' keys (0)\n"
		"  --subnets S        /24 subnets the Sybils (and eclipse IDs) sit on (1)\n"
		"  --targets T        names attacked (0: all)\n"
		"  --grind-rank R     each Sybil closer than the R-th closest honest node (1)\n"
		"  --eclipse B        attacker IDs ground near one victim's own ID (0)\n"
		"  --droppers F       fraction of nodes that ack PUT_VALUE and drop it (0)\n"
		"  --stale F          fraction of nodes that serve seq 1 and drop newer puts (0)\n"
		"  --concurrency C    operations in flight (8)\n"
		"  --cache C          hydrated routing tables kept (96)\n"
		"  --rtt-median MS    log-normal RTT median (100)\n"
		"  --rtt-sigma S      log-normal RTT sigma (0.6)\n"
		"  --setup-rtts X     RTTs of connection setup per request (2)\n"
		"  --k K --alpha A --paths D --quorum Q --timeout MS   lookup config (code defaults)\n"
		"  --defences on|off  the code's Sybil defences as the daemon sets them (on);\n"
		"                     \"defences\":\"none\" in the output: this code has none\n"
		"  --label TEXT       copied into every JSON line\n"
		"  --quiet            no progress on stderr\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"nodes", 1, 0, 'n'}, {"seed", 1, 0, 's'}, {"lookups", 1, 0, 'l'}, {"names", 1, 0, 'm'},
		{"resolvers", 1, 0, 'r'}, {"publishers", 1, 0, 'P'}, {"churn", 1, 0, 'c'},
		{"session-shape", 1, 0, 1}, {"session-scale", 1, 0, 2}, {"sybils", 1, 0, 'b'},
		{"subnets", 1, 0, 'S'}, {"targets", 1, 0, 'T'}, {"grind-rank", 1, 0, 3}, {"eclipse", 1, 0, 'e'},
		{"droppers", 1, 0, 4}, {"stale", 1, 0, 5}, {"concurrency", 1, 0, 6}, {"cache", 1, 0, 7},
		{"rtt-median", 1, 0, 8}, {"rtt-sigma", 1, 0, 9}, {"setup-rtts", 1, 0, 10}, {"k", 1, 0, 11},
		{"alpha", 1, 0, 12}, {"paths", 1, 0, 13}, {"quorum", 1, 0, 14}, {"timeout", 1, 0, 15},
		{"label", 1, 0, 16}, {"defences", 1, 0, 17}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': opt.nodes = strtoul(optarg, NULL, 10); break;
		case 's': opt.seed = strtoull(optarg, NULL, 10); break;
		case 'l': opt.lookups = strtoul(optarg, NULL, 10); break;
		case 'm': opt.names = strtoul(optarg, NULL, 10); break;
		case 'r': opt.resolvers = strtoul(optarg, NULL, 10); break;
		case 'P': opt.publishers = strtoul(optarg, NULL, 10); break;
		case 'c': opt.churn = strtod(optarg, NULL); break;
		case 1: opt.on_shape = strtod(optarg, NULL); break;
		case 2: opt.on_scale_s = strtod(optarg, NULL); break;
		case 'b': opt.sybils = strtoul(optarg, NULL, 10); break;
		case 'S': opt.subnets = strtoul(optarg, NULL, 10); break;
		case 'T': opt.targets = strtoul(optarg, NULL, 10); break;
		case 3: opt.grind_rank = strtoul(optarg, NULL, 10); break;
		case 'e': opt.eclipse = strtoul(optarg, NULL, 10); break;
		case 4: opt.droppers = strtod(optarg, NULL); break;
		case 5: opt.stale = strtod(optarg, NULL); break;
		case 6: opt.concurrency = strtoul(optarg, NULL, 10); break;
		case 7: opt.cache = strtoul(optarg, NULL, 10); break;
		case 8: opt.rtt_median = strtod(optarg, NULL); break;
		case 9: opt.rtt_sigma = strtod(optarg, NULL); break;
		case 10: opt.setup_rtts = strtod(optarg, NULL); break;
		case 11: opt.k = strtoul(optarg, NULL, 10); break;
		case 12: opt.alpha = strtoul(optarg, NULL, 10); break;
		case 13: opt.paths = strtoul(optarg, NULL, 10); break;
		case 14: opt.quorum = strtoul(optarg, NULL, 10); break;
		case 15: opt.timeout_ms = strtoull(optarg, NULL, 10); break;
		case 16: opt.label = optarg; break;
		case 17:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				usage(stderr);
				return 2;
			}
			opt.defences = !strcmp(optarg, "on");
			break;
		case 'q': opt.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || opt.nodes < 2 || opt.nodes > SIM_MAX_NODES || opt.churn < 0 || opt.churn >= 1 ||
	    opt.grind_rank < 1 || opt.subnets < 1 || !opt.concurrency || opt.cache < opt.concurrency + 4 ||
	    opt.k > AN_RT_K_MAX || opt.sybils + opt.eclipse > SIM_MAX_NODES || opt.on_shape <= 0) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	rng_seed(opt.seed);
	rt_cfg.k = opt.k ? opt.k : AN_RT_K_DEFAULT;
#ifdef AN_RT_NO_DIVERSITY
	if (!opt.defences)
		rt_cfg.flags |= AN_RT_NO_DIVERSITY;
#endif

	clock_t c0 = clock();
	nhonest = opt.nodes;
	nnodes = nhonest + opt.sybils + opt.eclipse;
	nodes = calloc(nnodes, sizeof(*nodes));
	if (!nodes)
		return 1;
	for (size_t i = 0; i < nhonest; i++) {
		make_id(&nodes[i].id, &nodes[i].kad);
		nodes[i].ip = random_public_ip();
		double u = urand();
		nodes[i].kind = u < opt.droppers ? K_DROPPER : u < opt.droppers + opt.stale ? K_STALE : K_HONEST;
	}
	if (opt.names && make_names() < 0) {
		fprintf(stderr, "dhtsim: signing the records failed\n");
		return 1;
	}
	/* adversaries: Sybils near the attacked names, eclipse IDs near a victim */
	uint32_t subnet_base[256];
	for (size_t s = 0; s < 256; s++)
		subnet_base[s] = random_public_ip() & 0xffffff00u;
	uint64_t tries = 0;
	size_t targets = opt.targets && opt.targets < opt.names ? opt.targets : opt.names;
	nsybil = opt.sybils + opt.eclipse;
	sybil_idx = calloc(nsybil ? nsybil : 1, sizeof(uint32_t));
	if (opt.sybils && !targets) {
		fprintf(stderr, "dhtsim: --sybils needs --names\n");
		return 2;
	}
	for (size_t t = 0, at = nhonest; t < targets && opt.sybils; t++) {
		size_t cnt = opt.sybils / targets + (t < opt.sybils % targets);
		grind(&names[t].kad, opt.grind_rank, at, cnt, &tries);
		at += cnt;
	}
	uint32_t victim = 0;
	if (opt.eclipse)
		/* the victim is its own closest honest node (distance 0): rank past it */
		grind(&nodes[victim].kad, opt.grind_rank + 1, nhonest + opt.sybils, opt.eclipse, &tries);
	for (size_t i = 0; i < nsybil; i++) {
		struct node *n = &nodes[nhonest + i];
		n->kind = K_SYBIL;
		n->ip = subnet_base[i % opt.subnets % 256] | (uint32_t)(1 + (i / opt.subnets) % 254);
		sybil_idx[i] = (uint32_t)(nhonest + i);
	}
	/* the peer map and the sorted ID list */
	size_t cap = 1;
	while (cap < 2 * nnodes)
		cap <<= 1;
	pmap = malloc(cap * sizeof(uint32_t));
	sorted = malloc(nnodes * sizeof(uint32_t));
	if (!pmap || !sorted)
		return 1;
	memset(pmap, 0xff, cap * sizeof(uint32_t));
	pmap_mask = cap - 1;
	for (size_t i = 0; i < nnodes; i++) {
		nodes[i].slot = -1;
		nodes[i].online = true;
		pmap_put((uint32_t)i);
		sorted[i] = (uint32_t)i;
	}
	nsorted = nnodes;
	qsort(sorted, nsorted, sizeof(uint32_t), cmp_kad_idx);
	/* routing tables: fast fill (every node but the Sybils, which need none) */
	nslots = opt.cache;
	slots = calloc(nslots, sizeof(*slots));
	uint32_t *scratch = malloc(8 * rt_cfg.k * sizeof(uint32_t));
	if (!slots || !scratch)
		return 1;
	for (size_t i = 0; i < nslots; i++)
		slots[i].owner = -1;
	size_t entries = 0;
	for (size_t i = 0; i < nhonest; i++) {
		fast_fill((uint32_t)i, scratch);
		if (!opt.quiet && i % 10000 == 9999)
			fprintf(stderr, "dhtsim: filled %zu/%zu tables\n", i + 1, nhonest);
	}
	for (size_t i = 0; i < nslots; i++)
		if (slots[i].owner >= 0)
			dehydrate(&slots[i]);
	free(scratch);
	size_t sybil_entries = 0;
	for (size_t i = 0; i < nhonest; i++) {
		entries += nodes[i].ntab;
		for (size_t j = 0; j < nodes[i].ntab; j++)
			sybil_entries += nodes[nodes[i].tab[j]].kind == K_SYBIL;
	}
	/* stale servers hold seq 1 of every name */
	for (size_t i = 0; i < nhonest && opt.names; i++)
		if (nodes[i].kind == K_STALE)
			for (size_t m = 0; m < opt.names; m++)
				rec_set(&nodes[i], names[m].key.data, names[m].key.len, names[m].old.data,
					names[m].old.len);
	/* churn: stationary start, then alternating sessions */
	if (opt.churn > 0)
		for (size_t i = 0; i < nhonest; i++) {
			nodes[i].online = urand() >= opt.churn;
			ev_push(next_session_ms(nodes[i].online), EV_CHURN, (uint32_t)i, NULL);
		}
	double setup_s = (double)(clock() - c0) / CLOCKS_PER_SEC;
	print_common(stdout, "setup");
	printf(",\"setup_cpu_s\":%.2f,\"table_entries_mean\":%.1f,\"sybil_entry_share\":%.4f,"
	       "\"grind_hashes\":%llu,\"compact_table_bytes\":%zu}\n",
	       setup_s, (double)entries / (double)nhonest, entries ? (double)sybil_entries / (double)entries : 0,
	       (unsigned long long)tries, entries * sizeof(uint32_t));
	fflush(stdout);

	/* 1. FIND_NODE lookups for random keys */
	if (opt.lookups) {
		clock_t c1 = clock();
		uint64_t t0 = now_ms, r0 = stat_requests;
		for (size_t i = 0; i < opt.lookups; i++)
			queue_op(op_new(OP_FIND, 0));
		run_ops();
		size_t n = st.n;
		print_common(stdout, "lookups");
		printf(",\"lookups\":%zu,\"success\":%.4f,\"hops_p50\":%.0f,\"hops_p90\":%.0f,\"hops_p99\":%.0f,"
		       "\"hops_max\":%.0f,\"log2_n\":%.2f,\"log2_n_over_k\":%.2f,\"latency_ms_p50\":%.0f,"
		       "\"latency_ms_p90\":%.0f,\"latency_ms_p99\":%.0f,\"requests_per_lookup\":%.1f,"
		       "\"virtual_s\":%.1f,\"cpu_s\":%.2f}\n",
		       n, n ? (double)st.ok / (double)n : 0, pct(st.hops, n, 0.5), pct(st.hops, n, 0.9),
		       pct(st.hops, n, 0.99), pct(st.hops, n, 1.0), log2((double)nhonest),
		       log2((double)nhonest / (double)rt_cfg.k), pct(st.lat, n, 0.5), pct(st.lat, n, 0.9),
		       pct(st.lat, n, 0.99), n ? (double)(stat_requests - r0) / (double)n : 0,
		       (now_ms - t0) / 1000.0, (double)(clock() - c1) / CLOCKS_PER_SEC);
		fflush(stdout);
		stats_reset();
	}

	/* 2. names: publish each (FIND_NODE + PUT_VALUE to the k closest), then resolve */
	if (opt.names) {
		clock_t c1 = clock();
		name_fail = calloc(opt.names, sizeof(size_t));
		for (size_t i = 0; i < opt.names; i++)
			queue_op(op_new(OP_PUT, i));
		run_ops();
		double acks = st.puts ? st.acks / (double)st.puts : 0;
		double holders = st.puts ? st.holders / (double)st.puts : 0;
		size_t unheld = 0;
		for (size_t i = 0; i < opt.names; i++)
			unheld += count_holders(i) == 0;
		stats_reset();
		for (size_t r = 0; r < opt.resolvers; r++)
			for (size_t i = 0; i < opt.names; i++)
				queue_op(op_new(OP_GET, i));
		run_ops();
		size_t censored = 0, censored_t = 0, all_failed = 0;
		for (size_t i = 0; i < opt.names; i++) {
			bool cz = 2 * name_fail[i] > opt.resolvers;
			censored += cz;
			censored_t += cz && i < targets && opt.sybils;
			all_failed += name_fail[i] == opt.resolvers;
		}
		size_t n = st.n;
		print_common(stdout, "names");
		printf(",\"names\":%zu,\"targets\":%zu,\"grind_rank\":%zu,\"resolvers\":%zu,"
		       "\"put_acks_mean\":%.2f,\"honest_holders_mean\":%.2f,\"names_unheld_after_put\":%zu,"
		       "\"get_success\":%.4f,\"censored\":%.4f,\"censored_targets\":%.4f,"
		       "\"all_resolvers_failed\":%.4f,\"get_hops_p50\":%.0f,\"get_latency_ms_p50\":%.0f,"
		       "\"get_latency_ms_p99\":%.0f,\"cpu_s\":%.2f}\n",
		       opt.names, opt.sybils ? targets : 0, opt.grind_rank, opt.resolvers, acks, holders, unheld,
		       n ? (double)st.ok / (double)n : 0, (double)censored / (double)opt.names,
		       targets && opt.sybils ? (double)censored_t / (double)targets : 0,
		       (double)all_failed / (double)opt.names, pct(st.hops, n, 0.5), pct(st.lat, n, 0.5),
		       pct(st.lat, n, 0.99), (double)(clock() - c1) / CLOCKS_PER_SEC);
		fflush(stdout);
		stats_reset();
	}

	/* 3. eclipse: how much of the victim's table is hostile, and can others still find it */
	if (opt.eclipse) {
		struct an_rt *rt = rt_of(victim);
		size_t hostile = 0, tries2 = opt.lookups ? opt.lookups : 50;
		for (unsigned b = 0; b < AN_RT_BUCKETS; b++)
			for (size_t j = 0; j < an_rt_bucket_size(rt, b); j++) {
				long x = peer_index(&an_rt_bucket_entry(rt, b, j)->id);
				hostile += x >= 0 && nodes[x].kind == K_SYBIL;
			}
		size_t vsize = rt->size;
		/* FIND_NODE(victim's peer ID) from random honest nodes: is the victim among the k closest? */
		for (size_t i = 0; i < tries2; i++) {
			struct op *o = op_new(OP_FIND, 0);
			memcpy(o->key, nodes[victim].id.bytes, nodes[victim].id.len);
			o->klen = nodes[victim].id.len;
			an_kad_id_from_key(o->key, o->klen, &o->target);
			queue_op(o);
		}
		/* success of a FIND_NODE is "the closest found is the closest live node": the victim */
		run_ops();
		double found = st.n ? (double)st.ok / (double)st.n : 0;
		stats_reset();
		/* the victim's own FIND_NODE lookups for random keys */
		for (size_t i = 0; i < tries2; i++) {
			struct op *o = op_new(OP_FIND, 0);
			o->origin = victim;
			queue_op(o);
		}
		run_ops();
		print_common(stdout, "eclipse");
		printf(",\"eclipse_ids\":%zu,\"victim_table\":%zu,\"victim_table_hostile\":%zu,"
		       "\"victim_found\":%.4f,\"victim_lookup_success\":%.4f}\n",
		       opt.eclipse, vsize, hostile, found, st.n ? (double)st.ok / (double)st.n : 0);
		stats_reset();
	}
	if (!opt.quiet)
		fprintf(stderr, "dhtsim: done: %llu requests, %llu resets, %llu hydrations, %llu evictions, %.1f s CPU\n",
			(unsigned long long)stat_requests, (unsigned long long)stat_resets,
			(unsigned long long)stat_hydrate, (unsigned long long)stat_evict,
			(double)clock() / CLOCKS_PER_SEC);
	return 0;
}
