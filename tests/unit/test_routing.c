/* Routing table and XOR distance tests. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "fixtures.h"
#include "dht/distance.h"
#include "dht/routing.h"
#include "util/error.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	return fx_rng(&rng_state);
}

static void random_peer(struct an_peerid *id)
{
	fx_random_peer(&rng_state, id);
}

/* A random peer that falls into bucket `bucket` of rt. */
static void peer_in_bucket(const struct an_rt *rt, unsigned bucket, struct an_peerid *id)
{
	struct an_kad_id kad;
	do {
		random_peer(id);
		an_kad_id_from_peer(id, &kad);
	} while (an_kad_cpl(&rt->self_kad, &kad) != bucket);
}

static void addr(struct an_multiaddr *ma, int port)
{
	char text[64];
	snprintf(text, sizeof(text), "/ip4/127.0.0.1/tcp/%d", port);
	if (an_multiaddr_parse(text, ma) != 0)
		abort();
}

static void test_kad_id_is_sha256_of_key(void)
{
	struct an_kad_id id;
	unsigned char want[32];
	check_unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	an_kad_id_from_key((const uint8_t *)"abc", 3, &id);
	CHECK_EQ_MEM(id.b, want, 32);
}

static void test_distance_and_cpl(void)
{
	struct an_kad_id a, b, c, d;
	memset(&a, 0, sizeof(a));
	b = a;
	CHECK_EQ_INT(an_kad_cpl(&a, &b), 256);
	b.b[0] = 0x80;
	CHECK_EQ_INT(an_kad_cpl(&a, &b), 0);
	b.b[0] = 0x01;
	CHECK_EQ_INT(an_kad_cpl(&a, &b), 7);
	memset(&b, 0, sizeof(b));
	b.b[31] = 0x01;
	CHECK_EQ_INT(an_kad_cpl(&a, &b), 255);
	an_kad_distance(&a, &b, &d);
	CHECK_EQ_INT(d.b[31], 1);
	/* target 0: c = 0x02.. is farther than b = 0x..01 */
	memset(&c, 0, sizeof(c));
	c.b[30] = 0x02;
	CHECK(an_kad_closer(&a, &b, &c) < 0);
	CHECK(an_kad_closer(&a, &c, &b) > 0);
	CHECK_EQ_INT(an_kad_closer(&a, &c, &c), 0);
	/* XOR, not arithmetic: from target 0x0f.., 0x0e is closer than 0x10 */
	memset(&a, 0, sizeof(a));
	a.b[0] = 0x0f;
	memset(&b, 0, sizeof(b));
	b.b[0] = 0x0e;
	memset(&c, 0, sizeof(c));
	c.b[0] = 0x10;
	CHECK(an_kad_closer(&a, &b, &c) < 0);
}

static void test_key_with_cpl(void)
{
	struct an_kad_id self, pos;
	uint8_t key[34];
	an_kad_id_from_key((const uint8_t *)"self", 4, &self);
	for (unsigned cpl = 0; cpl < 10; cpl++) {
		CHECK_EQ_INT(an_kad_key_with_cpl(&self, cpl, rng(), 1 << 16, key), 0);
		CHECK(key[0] == 0x12 && key[1] == 0x20);
		an_kad_id_from_key(key, sizeof(key), &pos);
		CHECK_EQ_INT(an_kad_cpl(&self, &pos), cpl);
	}
	CHECK_EQ_INT(an_kad_key_with_cpl(&self, 200, 0, 10, key), AN_ENOTFOUND);
	CHECK_EQ_INT(an_kad_key_with_cpl(&self, 256, 0, 10, key), -EINVAL);
}

static void test_bucket_placement(void)
{
	struct an_rt rt;
	struct an_peerid self, id;
	size_t total = 0;
	random_peer(&self);
	CHECK_EQ_INT(an_rt_init(&rt, &self, NULL), 0);
	for (int i = 0; i < 200; i++) {
		random_peer(&id);
		int rc = an_rt_update(&rt, &id, NULL, 0, 1000);
		CHECK(rc == AN_RT_ADDED || rc == AN_RT_PENDING || rc == AN_RT_FULL);
	}
	for (unsigned b = 0; b < AN_RT_BUCKETS; b++) {
		CHECK(an_rt_bucket_size(&rt, b) <= rt.k);
		for (size_t j = 0; j < an_rt_bucket_size(&rt, b); j++) {
			const struct an_rt_entry *e = an_rt_bucket_entry(&rt, b, j);
			CHECK_EQ_INT(an_kad_cpl(&rt.self_kad, &e->kad), b);
			total++;
		}
	}
	CHECK_EQ_INT(total, rt.size);
	CHECK_EQ_INT(an_rt_update(&rt, &self, NULL, 0, 1000), AN_RT_SELF);
	CHECK(an_rt_find(&rt, &self) == NULL);
	an_rt_free(&rt);
}

static void test_seen_again_moves_to_most_recent(void)
{
	struct an_rt rt;
	struct an_peerid self, a, b;
	struct an_multiaddr ma[6];
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	peer_in_bucket(&rt, 1, &a);
	peer_in_bucket(&rt, 1, &b);
	for (int i = 0; i < 6; i++)
		addr(&ma[i], 4000 + i);
	CHECK_EQ_INT(an_rt_update(&rt, &a, &ma[0], 2, 10), AN_RT_ADDED);
	CHECK_EQ_INT(an_rt_update(&rt, &b, NULL, 0, 20), AN_RT_ADDED);
	CHECK(an_peerid_equal(&an_rt_bucket_entry(&rt, 1, 0)->id, &a));
	CHECK_EQ_INT(an_rt_update(&rt, &a, &ma[2], 4, 30), AN_RT_UPDATED);
	CHECK(an_peerid_equal(&an_rt_bucket_entry(&rt, 1, 1)->id, &a));
	const struct an_rt_entry *e = an_rt_find(&rt, &a);
	CHECK(e && e->last_seen_ms == 30);
	/* Newest addresses first, capped at 4. */
	CHECK_EQ_INT(e->naddrs, AN_RT_ADDRS_MAX);
	CHECK(an_multiaddr_equal(&e->addrs[0], &ma[2]));
	CHECK(an_multiaddr_equal(&e->addrs[3], &ma[5]));
	an_rt_free(&rt);
}

/* Fill bucket 0 of rt with k peers seen at times 1..k; keep them in peers[]. */
static void fill_bucket0(struct an_rt *rt, struct an_peerid *peers)
{
	for (size_t i = 0; i < rt->k; i++) {
		peer_in_bucket(rt, 0, &peers[i]);
		if (an_rt_update(rt, &peers[i], NULL, 0, 1 + i) != AN_RT_ADDED)
			abort();
	}
}

static void test_full_bucket_dead_entry_is_replaced(void)
{
	struct an_rt rt;
	struct an_peerid self, peers[AN_RT_K_DEFAULT], cand, other;
	struct an_rt_event ev;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	fill_bucket0(&rt, peers);
	peer_in_bucket(&rt, 0, &cand);
	peer_in_bucket(&rt, 0, &other);
	CHECK_EQ_INT(an_rt_update(&rt, &cand, NULL, 0, 100), AN_RT_PENDING);
	CHECK_EQ_INT(an_rt_next_event(&rt, &ev), 1);
	CHECK(an_peerid_equal(&ev.ping, &peers[0])); /* least recently seen */
	CHECK(an_peerid_equal(&ev.candidate, &cand));
	CHECK_EQ_INT(an_rt_next_event(&rt, &ev), 0);
	/* One check per bucket at a time. */
	CHECK_EQ_INT(an_rt_update(&rt, &other, NULL, 0, 101), AN_RT_FULL);
	CHECK(an_rt_find(&rt, &cand) == NULL);
	CHECK_EQ_INT(an_rt_check_result(&rt, &peers[0], false, 102), 0);
	CHECK(an_rt_find(&rt, &peers[0]) == NULL);
	CHECK(an_rt_find(&rt, &cand) != NULL);
	CHECK_EQ_INT(an_rt_bucket_size(&rt, 0), rt.k);
	CHECK_EQ_INT(an_rt_check_result(&rt, &peers[0], false, 103), AN_ENOTFOUND);
	an_rt_free(&rt);
}

static void test_full_bucket_live_entry_stays(void)
{
	struct an_rt rt;
	struct an_peerid self, peers[AN_RT_K_DEFAULT], cand;
	struct an_rt_event ev;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	fill_bucket0(&rt, peers);
	peer_in_bucket(&rt, 0, &cand);
	CHECK_EQ_INT(an_rt_update(&rt, &cand, NULL, 0, 100), AN_RT_PENDING);
	CHECK_EQ_INT(an_rt_next_event(&rt, &ev), 1);
	CHECK_EQ_INT(an_rt_check_result(&rt, &ev.ping, true, 150), 0);
	CHECK(an_rt_find(&rt, &cand) == NULL);
	const struct an_rt_entry *last = an_rt_bucket_entry(&rt, 0, rt.k - 1);
	CHECK(an_peerid_equal(&last->id, &peers[0]));
	CHECK_EQ_INT(last->last_seen_ms, 150);
	/* The next newcomer checks the new least recently seen entry. */
	CHECK_EQ_INT(an_rt_update(&rt, &cand, NULL, 0, 160), AN_RT_PENDING);
	CHECK_EQ_INT(an_rt_next_event(&rt, &ev), 1);
	CHECK(an_peerid_equal(&ev.ping, &peers[1]));
	an_rt_free(&rt);
}

static void test_unanswered_check_expires(void)
{
	struct an_rt rt;
	struct an_rt_config cfg = { .k = 4, .check_timeout_ms = 500 };
	struct an_peerid self, peers[4], cand;
	random_peer(&self);
	CHECK_EQ_INT(an_rt_init(&rt, &self, &cfg), 0);
	fill_bucket0(&rt, peers);
	peer_in_bucket(&rt, 0, &cand);
	CHECK_EQ_INT(an_rt_update(&rt, &cand, NULL, 0, 1000), AN_RT_PENDING);
	CHECK_EQ_INT(an_rt_expire_checks(&rt, 1499), 0);
	CHECK(an_rt_find(&rt, &cand) == NULL);
	CHECK_EQ_INT(an_rt_expire_checks(&rt, 1500), 1);
	CHECK(an_rt_find(&rt, &cand) != NULL);
	CHECK(an_rt_find(&rt, &peers[0]) == NULL);
	an_rt_free(&rt);
}

static void test_pinged_entry_heard_from_is_alive(void)
{
	struct an_rt rt;
	struct an_rt_config cfg = { .k = 4 };
	struct an_peerid self, peers[4], cand;
	random_peer(&self);
	an_rt_init(&rt, &self, &cfg);
	fill_bucket0(&rt, peers);
	peer_in_bucket(&rt, 0, &cand);
	CHECK_EQ_INT(an_rt_update(&rt, &cand, NULL, 0, 100), AN_RT_PENDING);
	CHECK_EQ_INT(an_rt_update(&rt, &peers[0], NULL, 0, 101), AN_RT_UPDATED);
	CHECK_EQ_INT(an_rt_check_result(&rt, &peers[0], false, 102), AN_ENOTFOUND);
	CHECK(an_rt_find(&rt, &peers[0]) != NULL);
	CHECK(an_rt_find(&rt, &cand) == NULL);
	an_rt_free(&rt);
}

static void test_remove(void)
{
	struct an_rt rt;
	struct an_peerid self, a;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	random_peer(&a);
	CHECK_EQ_INT(an_rt_update(&rt, &a, NULL, 0, 1), AN_RT_ADDED);
	CHECK_EQ_INT(rt.size, 1);
	CHECK_EQ_INT(an_rt_remove(&rt, &a), 0);
	CHECK_EQ_INT(rt.size, 0);
	CHECK(an_rt_find(&rt, &a) == NULL);
	CHECK_EQ_INT(an_rt_remove(&rt, &a), AN_ENOTFOUND);
	an_rt_free(&rt);
}

static const struct an_kad_id *sort_target;

static int by_distance(const void *a, const void *b)
{
	const struct an_rt_entry *ea = *(const struct an_rt_entry *const *)a;
	const struct an_rt_entry *eb = *(const struct an_rt_entry *const *)b;
	return an_kad_closer(sort_target, &ea->kad, &eb->kad);
}

static void test_closest_matches_brute_force(void)
{
	struct an_rt rt;
	struct an_rt_config cfg = { .k = AN_RT_K_MAX };
	struct an_peerid self, id;
	static const struct an_rt_entry *all[AN_RT_BUCKETS * AN_RT_K_MAX];
	static const struct an_rt_entry *got[200];
	size_t n = 0;
	random_peer(&self);
	an_rt_init(&rt, &self, &cfg);
	for (int i = 0; i < 1000; i++) {
		random_peer(&id);
		an_rt_update(&rt, &id, NULL, 0, (uint64_t)i);
	}
	CHECK(rt.size > 200);
	for (unsigned b = 0; b < AN_RT_BUCKETS; b++)
		for (size_t j = 0; j < an_rt_bucket_size(&rt, b); j++)
			all[n++] = an_rt_bucket_entry(&rt, b, j);
	CHECK_EQ_INT(n, rt.size);
	for (int t = 0; t < 20; t++) {
		struct an_kad_id target;
		for (int i = 0; i < 32; i++)
			target.b[i] = (uint8_t)rng();
		if (t == 0)
			target = rt.self_kad;
		sort_target = &target;
		qsort(all, n, sizeof(all[0]), by_distance);
		static const size_t counts[] = { 1, 20, 200 };
		for (size_t c = 0; c < 3; c++) {
			size_t got_n = an_rt_closest(&rt, &target, NULL, got, counts[c]);
			CHECK_EQ_INT(got_n, counts[c]);
			for (size_t i = 0; i < got_n; i++)
				CHECK(got[i] == all[i]);
		}
		/* Excluding the closest shifts the list by one. */
		size_t got_n = an_rt_closest(&rt, &target, &all[0]->id, got, 20);
		CHECK_EQ_INT(got_n, 20);
		for (size_t i = 0; i < got_n; i++)
			CHECK(got[i] == all[i + 1]);
	}
	an_rt_free(&rt);
}

static void test_closest_small_table(void)
{
	struct an_rt rt;
	struct an_peerid self, a;
	const struct an_rt_entry *got[20];
	struct an_kad_id target = { { 0 } };
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	CHECK_EQ_INT(an_rt_closest(&rt, &target, NULL, got, 20), 0);
	random_peer(&a);
	an_rt_update(&rt, &a, NULL, 0, 1);
	CHECK_EQ_INT(an_rt_closest(&rt, &target, NULL, got, 20), 1);
	CHECK_EQ_INT(an_rt_closest(&rt, &target, &a, got, 20), 0);
	CHECK_EQ_INT(an_rt_closest(&rt, &target, NULL, got, 0), 0);
	an_rt_free(&rt);
}

static void test_snapshot_round_trip(void)
{
	struct an_rt rt, back;
	struct an_peerid self, id;
	struct an_multiaddr ma[3];
	struct an_buf snap;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	an_rt_init(&back, &self, NULL);
	for (int i = 0; i < 3; i++)
		addr(&ma[i], 5000 + i);
	for (int i = 0; i < 300; i++) {
		random_peer(&id);
		an_rt_update(&rt, &id, ma, (size_t)(i % 4), 1000 + (uint64_t)i);
	}
	an_buf_init(&snap, 1 << 20);
	CHECK_EQ_INT(an_rt_save(&rt, &snap), 0);
	CHECK_EQ_INT(an_rt_load(&back, snap.data, snap.len), 0);
	CHECK_EQ_INT(back.size, rt.size);
	for (unsigned b = 0; b < AN_RT_BUCKETS; b++) {
		CHECK_EQ_INT(an_rt_bucket_size(&back, b), an_rt_bucket_size(&rt, b));
		for (size_t j = 0; j < an_rt_bucket_size(&rt, b); j++) {
			const struct an_rt_entry *x = an_rt_bucket_entry(&rt, b, j);
			const struct an_rt_entry *y = an_rt_bucket_entry(&back, b, j);
			if (!x || !y) {
				CHECK(x && y);
				continue;
			}
			CHECK(an_peerid_equal(&x->id, &y->id));
			CHECK_EQ_INT(x->last_seen_ms, y->last_seen_ms);
			CHECK_EQ_INT(x->naddrs, y->naddrs);
			for (size_t a = 0; a < x->naddrs && a < y->naddrs; a++)
				CHECK(an_multiaddr_equal(&x->addrs[a], &y->addrs[a]));
		}
	}
	an_rt_free(&back);
	an_rt_free(&rt);
	an_buf_free(&snap);
}

static void test_snapshot_rejects_bad_input(void)
{
	struct an_rt rt, back;
	struct an_peerid self, id;
	struct an_buf snap;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	for (int i = 0; i < 5; i++) {
		random_peer(&id);
		an_rt_update(&rt, &id, NULL, 0, 1);
	}
	an_buf_init(&snap, 1 << 16);
	CHECK_EQ_INT(an_rt_save(&rt, &snap), 0);
	for (size_t cut = 0; cut < snap.len; cut++) {
		an_rt_init(&back, &self, NULL);
		CHECK_EQ_INT(an_rt_load(&back, snap.data, cut), AN_ETRUNCATED);
		an_rt_free(&back);
	}
	an_rt_init(&back, &self, NULL);
	snap.data[0] = 'X';
	CHECK_EQ_INT(an_rt_load(&back, snap.data, snap.len), AN_EMALFORMED);
	snap.data[0] = 'A';
	CHECK_EQ_INT(an_buf_putc(&snap, 0), 0); /* trailing junk */
	CHECK_EQ_INT(an_rt_load(&back, snap.data, snap.len), AN_EMALFORMED);
	an_rt_free(&back);
	an_rt_free(&rt);
	an_buf_free(&snap);
}

static void test_stale_buckets(void)
{
	struct an_rt rt;
	struct an_peerid self, id;
	unsigned out[32];
	size_t n;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	peer_in_bucket(&rt, 2, &id);
	an_rt_update(&rt, &id, NULL, 0, 10000);
	/* Buckets 0..3 (deepest non-empty + 1); only 2 was refreshed at 10000. */
	n = an_rt_stale_buckets(&rt, 20000, 15000, 15, out, 32);
	CHECK_EQ_INT(n, 3);
	CHECK(out[0] == 0 && out[1] == 1 && out[2] == 3);
	an_rt_bucket_touch(&rt, 0, 19000);
	n = an_rt_stale_buckets(&rt, 26000, 15000, 15, out, 32);
	CHECK_EQ_INT(n, 3);
	CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3);
	CHECK_EQ_INT(an_rt_stale_buckets(&rt, 26000, 15000, 1, out, 32), 1);
	CHECK_EQ_INT(an_rt_stale_buckets(&rt, 26000, 15000, 15, out, 2), 2);
	an_rt_free(&rt);
}

static void ip_addr(struct an_multiaddr *ma, const char *ip, int port)
{
	char text[96];
	snprintf(text, sizeof(text), "/ip%c/%s/tcp/%d", strchr(ip, ':') ? '6' : '4', ip, port);
	if (an_multiaddr_parse(text, ma) != 0)
		abort();
}

/* Offer n new peers of bucket `bucket` at ip; how many got in. */
static size_t offer(struct an_rt *rt, unsigned bucket, const char *ip, size_t n)
{
	size_t in = 0;
	for (size_t i = 0; i < n; i++) {
		struct an_peerid id;
		struct an_multiaddr ma;
		peer_in_bucket(rt, bucket, &id);
		ip_addr(&ma, ip, 4001 + (int)i);
		in += an_rt_update(rt, &id, &ma, 1, 1) == AN_RT_ADDED;
	}
	return in;
}

static void test_diversity_caps_a_subnet_per_bucket_and_table(void)
{
	struct an_rt rt;
	struct an_peerid self;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	/* one /24: 2 in a bucket, 3 in the table */
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.7", 10), AN_RT_GROUP_BUCKET_DEFAULT);
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.99", 10), 0);
	CHECK_EQ_INT(offer(&rt, 1, "203.0.113.8", 10), 1);
	CHECK_EQ_INT(offer(&rt, 2, "203.0.113.9", 10), 0);
	CHECK_EQ_INT(rt.size, AN_RT_GROUP_TABLE_DEFAULT);
	/* other subnets are not held back */
	CHECK_EQ_INT(offer(&rt, 0, "203.0.114.1", 1), 1);
	CHECK_EQ_INT(offer(&rt, 0, "198.51.100.1", 1), 1);
	/* IPv6: one /48 is one group */
	CHECK_EQ_INT(offer(&rt, 3, "2001:db8:1:2::1", 1), 1);
	CHECK_EQ_INT(offer(&rt, 3, "2001:db8:1:ffff::9", 5), 1);
	CHECK_EQ_INT(offer(&rt, 3, "2001:db8:2::1", 1), 1);
	an_rt_free(&rt);
}

static void test_diversity_group_is_where_the_peer_was_seen(void)
{
	struct an_rt rt;
	struct an_peerid self;
	struct an_multiaddr seen;
	size_t in = 0;
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	ip_addr(&seen, "203.0.113.7", 4001);
	/* each advertises its own /24, all connect from one: 3 in */
	for (int i = 0; i < 10; i++) {
		struct an_peerid id;
		struct an_multiaddr adv;
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.%d.1", i);
		ip_addr(&adv, ip, 4001);
		random_peer(&id);
		in += an_rt_update_from(&rt, &id, &adv, 1, &seen, 1) == AN_RT_ADDED;
	}
	CHECK_EQ_INT(in, AN_RT_GROUP_TABLE_DEFAULT);
	an_rt_free(&rt);
}

static void test_diversity_loopback_exempt_unless_asked(void)
{
	struct an_rt rt;
	struct an_peerid self;
	struct an_rt_config cfg = {.flags = AN_RT_LOOPBACK_SUBNETS};
	random_peer(&self);
	an_rt_init(&rt, &self, NULL);
	CHECK_EQ_INT(offer(&rt, 0, "127.0.0.1", 10), 10);
	CHECK_EQ_INT(offer(&rt, 0, "::1", 5), 5);
	an_rt_free(&rt);
	an_rt_init(&rt, &self, &cfg);
	/* each loopback address its own group: 127.0.0.2 is one attacker */
	CHECK_EQ_INT(offer(&rt, 0, "127.0.0.2", 10), 2);
	CHECK_EQ_INT(offer(&rt, 1, "127.0.0.2", 10), 1);
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "127.0.1.%d", i + 1);
		CHECK_EQ_INT(offer(&rt, 0, ip, 1), 1);
	}
	an_rt_free(&rt);
}

static void test_diversity_off_and_other_caps(void)
{
	struct an_rt rt;
	struct an_peerid self;
	struct an_rt_config off = {.flags = AN_RT_NO_DIVERSITY};
	struct an_rt_config wide = {.group_bucket_max = 5, .group_table_max = 7};
	random_peer(&self);
	an_rt_init(&rt, &self, &off);
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.7", 10), 10);
	an_rt_free(&rt);
	an_rt_init(&rt, &self, &wide);
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.7", 10), 5);
	CHECK_EQ_INT(offer(&rt, 1, "203.0.113.7", 10), 2);
	an_rt_free(&rt);
}

static void test_diversity_applies_to_snapshots_and_replacements(void)
{
	struct an_rt rt, back;
	struct an_rt_config off = {.flags = AN_RT_NO_DIVERSITY, .k = 4};
	struct an_rt_config on = {.k = 4};
	struct an_peerid self, id;
	struct an_multiaddr ma;
	struct an_rt_event ev;
	struct an_buf b;
	random_peer(&self);
	an_rt_init(&rt, &self, &off);
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.7", 4), 4);
	an_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(an_rt_save(&rt, &b), 0);
	an_rt_init(&back, &self, &on);
	CHECK_EQ_INT(an_rt_load(&back, b.data, b.len), 0);
	CHECK_EQ_INT(back.size, 2);
	an_buf_free(&b);
	an_rt_free(&rt);
	/* a full bucket: a candidate from a full group is refused before any ping */
	an_rt_init(&rt, &self, &on);
	CHECK_EQ_INT(offer(&rt, 0, "203.0.113.7", 2), 2);
	CHECK_EQ_INT(offer(&rt, 0, "198.51.100.1", 1), 1);
	CHECK_EQ_INT(offer(&rt, 0, "198.51.101.1", 1), 1);
	peer_in_bucket(&rt, 0, &id);
	ip_addr(&ma, "203.0.113.50", 1);
	CHECK_EQ_INT(an_rt_update(&rt, &id, &ma, 1, 2), AN_RT_GROUP_FULL);
	CHECK_EQ_INT(an_rt_next_event(&rt, &ev), 0);
	an_rt_free(&rt);
	an_rt_free(&back);
}

int main(void)
{
	RUN(test_kad_id_is_sha256_of_key);
	RUN(test_distance_and_cpl);
	RUN(test_key_with_cpl);
	RUN(test_bucket_placement);
	RUN(test_seen_again_moves_to_most_recent);
	RUN(test_full_bucket_dead_entry_is_replaced);
	RUN(test_full_bucket_live_entry_stays);
	RUN(test_unanswered_check_expires);
	RUN(test_pinged_entry_heard_from_is_alive);
	RUN(test_remove);
	RUN(test_closest_matches_brute_force);
	RUN(test_closest_small_table);
	RUN(test_snapshot_round_trip);
	RUN(test_snapshot_rejects_bad_input);
	RUN(test_stale_buckets);
	RUN(test_diversity_caps_a_subnet_per_bucket_and_table);
	RUN(test_diversity_group_is_where_the_peer_was_seen);
	RUN(test_diversity_loopback_exempt_unless_asked);
	RUN(test_diversity_off_and_other_caps);
	RUN(test_diversity_applies_to_snapshots_and_replacements);
	return check_done();
}
