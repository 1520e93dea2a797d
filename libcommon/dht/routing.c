#include "dht/routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct an_rt_bucket {
	size_t n;
	uint64_t refreshed_ms;
	bool checking;              /* a liveness check is under way */
	uint64_t check_started_ms;
	struct an_peerid check_peer; /* the entry being pinged */
	struct an_rt_entry candidate; /* waiting to replace it */
	struct an_rt_entry entries[]; /* k slots: [0] least recently seen */
};

static const uint8_t snapshot_magic[4] = { 'A', 'N', 'R', 'T' };

int an_rt_init(struct an_rt *rt, const struct an_peerid *self, const struct an_rt_config *cfg)
{
	memset(rt, 0, sizeof(*rt));
	rt->k = cfg && cfg->k ? cfg->k : AN_RT_K_DEFAULT;
	if (rt->k > AN_RT_K_MAX)
		return -EINVAL;
	rt->check_timeout_ms =
		cfg && cfg->check_timeout_ms ? cfg->check_timeout_ms : AN_RT_CHECK_TIMEOUT_DEFAULT;
	rt->flags = cfg ? cfg->flags : 0;
	rt->group_bucket_max =
		cfg && cfg->group_bucket_max ? cfg->group_bucket_max : AN_RT_GROUP_BUCKET_DEFAULT;
	rt->group_table_max =
		cfg && cfg->group_table_max ? cfg->group_table_max : AN_RT_GROUP_TABLE_DEFAULT;
	rt->self = *self;
	an_kad_id_from_peer(self, &rt->self_kad);
	return 0;
}

void an_rt_group_of(const struct an_multiaddr *ma, unsigned flags, struct an_rt_group *g)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t loop6[16] = { [15] = 1 };
	struct an_ma_iter it;
	struct an_ma_component c;
	uint8_t ip[16];

	memset(g, 0, sizeof(*g)); /* no IP: exempt */
	if (!ma)
		return;
	an_ma_iter_init(&it, ma);
	while (an_ma_next(&it, &c) == 1) {
		if (c.code == AN_MA_IP4 && c.len == 4) {
			memcpy(ip, v4mapped, 12);
			memcpy(ip + 12, c.value, 4);
		} else if (c.code == AN_MA_IP6 && c.len == 16) {
			memcpy(ip, c.value, 16);
		} else {
			continue;
		}
		if (ip[12] == 127 && memcmp(ip, v4mapped, 12) == 0) {
			g->kind = (flags & AN_RT_LOOPBACK_SUBNETS) ? 1 : 0;
			memcpy(g->net, ip, 16);
		} else if (memcmp(ip, loop6, 16) == 0) {
			g->kind = (flags & AN_RT_LOOPBACK_SUBNETS) ? 1 : 0;
			memcpy(g->net, ip, 16);
		} else if (memcmp(ip, v4mapped, 12) == 0) {
			g->kind = 4;
			memcpy(g->net, ip, 15); /* the /24 */
		} else {
			g->kind = 6;
			memcpy(g->net, ip, 6); /* the /48 */
		}
		if (g->kind == 0)
			memset(g->net, 0, sizeof(g->net));
		return;
	}
}

bool an_rt_group_equal(const struct an_rt_group *a, const struct an_rt_group *b)
{
	return a->kind && a->kind == b->kind && memcmp(a->net, b->net, sizeof(a->net)) == 0;
}

/* Entries of group g in bucket b (NULL: none), and in the whole table. */
static size_t group_count(const struct an_rt_bucket *b, const struct an_rt_group *g)
{
	size_t n = 0;
	for (size_t j = 0; b && j < b->n; j++)
		n += an_rt_group_equal(&b->entries[j].group, g);
	return n;
}

static bool group_allows(const struct an_rt *rt, const struct an_rt_bucket *b,
			 const struct an_rt_group *g)
{
	size_t total = 0;
	if ((rt->flags & AN_RT_NO_DIVERSITY) || g->kind == 0)
		return true;
	if (group_count(b, g) >= rt->group_bucket_max)
		return false;
	for (size_t i = 0; i < AN_RT_BUCKETS; i++)
		total += group_count(rt->buckets[i], g);
	return total < rt->group_table_max;
}

void an_rt_free(struct an_rt *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < AN_RT_BUCKETS; i++) {
		free(rt->buckets[i]);
		rt->buckets[i] = NULL;
	}
	rt->size = 0;
	rt->nevents = 0;
}

static unsigned bucket_index(const struct an_rt *rt, const struct an_kad_id *kad)
{
	return an_kad_cpl(&rt->self_kad, kad); /* 256 only for our own ID */
}

static int bucket_get(struct an_rt *rt, unsigned i, struct an_rt_bucket **out)
{
	if (!rt->buckets[i]) {
		rt->buckets[i] = calloc(1, sizeof(struct an_rt_bucket) + rt->k * sizeof(struct an_rt_entry));
		if (!rt->buckets[i])
			return -ENOMEM;
	}
	*out = rt->buckets[i];
	return 0;
}

static long bucket_find(const struct an_rt_bucket *b, const struct an_peerid *id)
{
	if (!b)
		return -1;
	for (size_t j = 0; j < b->n; j++)
		if (an_peerid_equal(&b->entries[j].id, id))
			return (long)j;
	return -1;
}

/* Put addrs in front of e's addresses, dropping duplicates and the oldest past the cap. */
static void merge_addrs(struct an_rt_entry *e, const struct an_multiaddr *addrs, size_t naddrs)
{
	struct an_multiaddr merged[AN_RT_ADDRS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < naddrs && n < AN_RT_ADDRS_MAX; i++) {
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = an_multiaddr_equal(&merged[j], &addrs[i]);
		if (!dup)
			merged[n++] = addrs[i];
	}
	for (size_t i = 0; i < e->naddrs && n < AN_RT_ADDRS_MAX; i++) {
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = an_multiaddr_equal(&merged[j], &e->addrs[i]);
		if (!dup)
			merged[n++] = e->addrs[i];
	}
	memcpy(e->addrs, merged, n * sizeof(merged[0]));
	e->naddrs = n;
}

/* Move entry j to the most-recent end. */
static void bucket_bump(struct an_rt_bucket *b, size_t j)
{
	if (j + 1 == b->n)
		return;
	struct an_rt_entry e = b->entries[j];
	memmove(&b->entries[j], &b->entries[j + 1], (b->n - j - 1) * sizeof(e));
	b->entries[b->n - 1] = e;
}

static void bucket_delete(struct an_rt *rt, struct an_rt_bucket *b, size_t j)
{
	memmove(&b->entries[j], &b->entries[j + 1], (b->n - j - 1) * sizeof(b->entries[0]));
	b->n--;
	rt->size--;
}

static void bucket_append(struct an_rt *rt, struct an_rt_bucket *b, const struct an_rt_entry *e,
			  uint64_t now_ms)
{
	b->entries[b->n++] = *e;
	rt->size++;
	if (now_ms > b->refreshed_ms)
		b->refreshed_ms = now_ms;
}

static void make_entry(struct an_rt_entry *e, const struct an_peerid *id,
		       const struct an_kad_id *kad, const struct an_multiaddr *addrs, size_t naddrs,
		       uint64_t now_ms)
{
	memset(e, 0, sizeof(*e));
	e->id = *id;
	e->kad = *kad;
	e->last_seen_ms = now_ms;
	merge_addrs(e, addrs, naddrs);
}

/* Resolve bucket b's check: the pinged entry is dead or alive. */
static void finish_check(struct an_rt *rt, struct an_rt_bucket *b, bool alive, uint64_t now_ms)
{
	long j = bucket_find(b, &b->check_peer);

	b->checking = false;
	if (alive) {
		if (j >= 0) {
			b->entries[j].last_seen_ms = now_ms;
			bucket_bump(b, (size_t)j);
		}
		return;
	}
	if (j >= 0)
		bucket_delete(rt, b, (size_t)j);
	if (b->n < rt->k && bucket_find(b, &b->candidate.id) < 0 &&
	    group_allows(rt, b, &b->candidate.group))
		bucket_append(rt, b, &b->candidate, now_ms);
}

size_t an_rt_expire_checks(struct an_rt *rt, uint64_t now_ms)
{
	size_t n = 0;
	for (size_t i = 0; i < AN_RT_BUCKETS; i++) {
		struct an_rt_bucket *b = rt->buckets[i];
		if (b && b->checking && now_ms >= b->check_started_ms + rt->check_timeout_ms) {
			finish_check(rt, b, false, now_ms);
			n++;
		}
	}
	return n;
}

int an_rt_update(struct an_rt *rt, const struct an_peerid *id, const struct an_multiaddr *addrs,
		 size_t naddrs, uint64_t now_ms)
{
	return an_rt_update_from(rt, id, addrs, naddrs, NULL, now_ms);
}

int an_rt_update_from(struct an_rt *rt, const struct an_peerid *id, const struct an_multiaddr *addrs,
		      size_t naddrs, const struct an_multiaddr *seen_at, uint64_t now_ms)
{
	struct an_rt_group group;
	struct an_kad_id kad;
	struct an_rt_bucket *b;
	unsigned i;
	long j;
	int rc;

	an_kad_id_from_peer(id, &kad);
	i = bucket_index(rt, &kad);
	if (i >= AN_RT_BUCKETS || an_peerid_equal(id, &rt->self))
		return AN_RT_SELF;
	rc = bucket_get(rt, i, &b);
	if (rc < 0)
		return rc;
	if (b->checking && now_ms >= b->check_started_ms + rt->check_timeout_ms)
		finish_check(rt, b, false, now_ms);
	j = bucket_find(b, id);
	if (j >= 0) {
		struct an_rt_entry *e = &b->entries[j];
		e->last_seen_ms = now_ms;
		merge_addrs(e, addrs, naddrs);
		bucket_bump(b, (size_t)j);
		/* A pinged entry that speaks to us is alive. */
		if (b->checking && an_peerid_equal(&b->check_peer, id))
			finish_check(rt, b, true, now_ms);
		return AN_RT_UPDATED;
	}
	an_rt_group_of(seen_at ? seen_at : naddrs ? &addrs[0] : NULL, rt->flags, &group);
	if (!group_allows(rt, b, &group))
		return AN_RT_GROUP_FULL;
	if (b->n < rt->k) {
		struct an_rt_entry e;
		make_entry(&e, id, &kad, addrs, naddrs, now_ms);
		e.group = group;
		bucket_append(rt, b, &e, now_ms);
		return AN_RT_ADDED;
	}
	if (b->checking || rt->nevents >= AN_RT_EVENTS_MAX)
		return AN_RT_FULL;
	b->checking = true;
	b->check_started_ms = now_ms;
	b->check_peer = b->entries[0].id;
	make_entry(&b->candidate, id, &kad, addrs, naddrs, now_ms);
	b->candidate.group = group;
	rt->events[rt->nevents].ping = b->check_peer;
	rt->events[rt->nevents].candidate = *id;
	rt->nevents++;
	return AN_RT_PENDING;
}

int an_rt_next_event(struct an_rt *rt, struct an_rt_event *ev)
{
	if (!rt->nevents)
		return 0;
	*ev = rt->events[0];
	memmove(&rt->events[0], &rt->events[1], (rt->nevents - 1) * sizeof(rt->events[0]));
	rt->nevents--;
	return 1;
}

int an_rt_check_result(struct an_rt *rt, const struct an_peerid *peer, bool alive,
		       uint64_t now_ms)
{
	struct an_kad_id kad;
	unsigned i;
	struct an_rt_bucket *b;

	an_kad_id_from_peer(peer, &kad);
	i = bucket_index(rt, &kad);
	if (i >= AN_RT_BUCKETS)
		return AN_ENOTFOUND;
	b = rt->buckets[i];
	if (!b || !b->checking || !an_peerid_equal(&b->check_peer, peer))
		return AN_ENOTFOUND;
	finish_check(rt, b, alive, now_ms);
	return 0;
}

int an_rt_remove(struct an_rt *rt, const struct an_peerid *id)
{
	struct an_kad_id kad;
	unsigned i;
	long j;

	an_kad_id_from_peer(id, &kad);
	i = bucket_index(rt, &kad);
	if (i >= AN_RT_BUCKETS)
		return AN_ENOTFOUND;
	j = bucket_find(rt->buckets[i], id);
	if (j < 0)
		return AN_ENOTFOUND;
	bucket_delete(rt, rt->buckets[i], (size_t)j);
	return 0;
}

const struct an_rt_entry *an_rt_find(const struct an_rt *rt, const struct an_peerid *id)
{
	struct an_kad_id kad;
	unsigned i;
	long j;

	an_kad_id_from_peer(id, &kad);
	i = bucket_index(rt, &kad);
	if (i >= AN_RT_BUCKETS)
		return NULL;
	j = bucket_find(rt->buckets[i], id);
	return j < 0 ? NULL : &rt->buckets[i]->entries[j];
}

size_t an_rt_closest(const struct an_rt *rt, const struct an_kad_id *target,
		     const struct an_peerid *exclude, const struct an_rt_entry **out, size_t n)
{
	size_t have = 0;

	if (!n)
		return 0;
	/* Insertion into a sorted window of n: O(size * n), fine for <= 256 * k entries. */
	for (size_t i = 0; i < AN_RT_BUCKETS; i++) {
		const struct an_rt_bucket *b = rt->buckets[i];
		for (size_t j = 0; b && j < b->n; j++) {
			const struct an_rt_entry *e = &b->entries[j];
			size_t pos;
			if (exclude && an_peerid_equal(&e->id, exclude))
				continue;
			if (have == n && an_kad_closer(target, &e->kad, &out[n - 1]->kad) >= 0)
				continue;
			pos = have < n ? have : n - 1;
			while (pos > 0 && an_kad_closer(target, &e->kad, &out[pos - 1]->kad) < 0) {
				out[pos] = out[pos - 1];
				pos--;
			}
			out[pos] = e;
			if (have < n)
				have++;
		}
	}
	return have;
}

size_t an_rt_bucket_size(const struct an_rt *rt, unsigned i)
{
	if (i >= AN_RT_BUCKETS || !rt->buckets[i])
		return 0;
	return rt->buckets[i]->n;
}

const struct an_rt_entry *an_rt_bucket_entry(const struct an_rt *rt, unsigned i, size_t j)
{
	if (i >= AN_RT_BUCKETS || !rt->buckets[i] || j >= rt->buckets[i]->n)
		return NULL;
	return &rt->buckets[i]->entries[j];
}

void an_rt_bucket_touch(struct an_rt *rt, unsigned i, uint64_t now_ms)
{
	struct an_rt_bucket *b;
	if (i >= AN_RT_BUCKETS || bucket_get(rt, i, &b) < 0)
		return;
	if (now_ms > b->refreshed_ms)
		b->refreshed_ms = now_ms;
}

size_t an_rt_stale_buckets(const struct an_rt *rt, uint64_t now_ms, uint64_t interval_ms,
			   unsigned max_cpl, unsigned *out, size_t cap)
{
	unsigned deepest = 0, limit;
	size_t n = 0;

	for (unsigned i = 0; i < AN_RT_BUCKETS; i++)
		if (rt->buckets[i] && rt->buckets[i]->n)
			deepest = i + 1;
	limit = deepest < max_cpl ? deepest : max_cpl;
	for (unsigned i = 0; i <= limit && i < AN_RT_BUCKETS && n < cap; i++) {
		const struct an_rt_bucket *b = rt->buckets[i];
		uint64_t last = b ? b->refreshed_ms : 0;
		if (now_ms >= last + interval_ms)
			out[n++] = i;
	}
	return n;
}

/* ---- snapshot ---- */

static int put_be(struct an_buf *out, uint64_t v, size_t n)
{
	uint8_t b[8];
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return an_buf_append(out, b, n);
}

int an_rt_save(const struct an_rt *rt, struct an_buf *out)
{
	int rc = an_buf_append(out, snapshot_magic, sizeof(snapshot_magic));
	if (rc == 0)
		rc = an_buf_putc(out, 1);
	if (rc == 0)
		rc = put_be(out, rt->size, 4);
	for (size_t i = 0; rc == 0 && i < AN_RT_BUCKETS; i++) {
		const struct an_rt_bucket *b = rt->buckets[i];
		for (size_t j = 0; rc == 0 && b && j < b->n; j++) {
			const struct an_rt_entry *e = &b->entries[j];
			rc = an_buf_putc(out, (uint8_t)e->id.len);
			if (rc == 0)
				rc = an_buf_append(out, e->id.bytes, e->id.len);
			if (rc == 0)
				rc = put_be(out, e->last_seen_ms, 8);
			if (rc == 0)
				rc = an_buf_putc(out, (uint8_t)e->naddrs);
			for (size_t a = 0; rc == 0 && a < e->naddrs; a++) {
				rc = put_be(out, e->addrs[a].len, 2);
				if (rc == 0)
					rc = an_buf_append(out, e->addrs[a].bytes, e->addrs[a].len);
			}
		}
	}
	return rc;
}

struct rd {
	const uint8_t *p, *end;
};

static int get_be(struct rd *r, size_t n, uint64_t *v)
{
	if ((size_t)(r->end - r->p) < n)
		return AN_ETRUNCATED;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = (*v << 8) | *r->p++;
	return 0;
}

static int get_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if ((size_t)(r->end - r->p) < n)
		return AN_ETRUNCATED;
	*p = r->p;
	r->p += n;
	return 0;
}

int an_rt_load(struct an_rt *rt, const uint8_t *p, size_t len)
{
	struct rd r = { p, p + len };
	const uint8_t *magic, *bytes;
	uint64_t version, count, v;
	int rc;

	if ((rc = get_bytes(&r, 4, &magic)) < 0 || (rc = get_be(&r, 1, &version)) < 0 ||
	    (rc = get_be(&r, 4, &count)) < 0)
		return rc;
	if (memcmp(magic, snapshot_magic, 4) != 0 || version != 1)
		return AN_EMALFORMED;
	for (uint64_t c = 0; c < count; c++) {
		struct an_peerid id;
		struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
		struct an_kad_id kad;
		struct an_rt_bucket *b;
		struct an_rt_entry e;
		uint64_t seen, naddrs;
		unsigned i;

		if ((rc = get_be(&r, 1, &v)) < 0 || (rc = get_bytes(&r, v, &bytes)) < 0)
			return rc;
		if (an_peerid_from_bytes(bytes, v, &id) < 0)
			return AN_EMALFORMED;
		if ((rc = get_be(&r, 8, &seen)) < 0 || (rc = get_be(&r, 1, &naddrs)) < 0)
			return rc;
		if (naddrs > AN_RT_ADDRS_MAX)
			return AN_EMALFORMED;
		for (uint64_t a = 0; a < naddrs; a++) {
			if ((rc = get_be(&r, 2, &v)) < 0 || (rc = get_bytes(&r, v, &bytes)) < 0)
				return rc;
			if (an_multiaddr_from_bytes(bytes, v, &addrs[a]) < 0)
				return AN_EMALFORMED;
		}
		an_kad_id_from_peer(&id, &kad);
		i = bucket_index(rt, &kad);
		if (i >= AN_RT_BUCKETS)
			continue; /* ourselves */
		if ((rc = bucket_get(rt, i, &b)) < 0)
			return rc;
		if (b->n >= rt->k || bucket_find(b, &id) >= 0)
			continue;
		make_entry(&e, &id, &kad, addrs, naddrs, seen);
		an_rt_group_of(naddrs ? &addrs[0] : NULL, rt->flags, &e.group);
		if (!group_allows(rt, b, &e.group))
			continue;
		/* Keep the least-recently-seen-first order: insert by last_seen. */
		size_t pos = b->n;
		while (pos > 0 && b->entries[pos - 1].last_seen_ms > seen)
			pos--;
		memmove(&b->entries[pos + 1], &b->entries[pos], (b->n - pos) * sizeof(e));
		b->entries[pos] = e;
		b->n++;
		rt->size++;
	}
	if (r.p != r.end)
		return AN_EMALFORMED;
	return 0;
}
