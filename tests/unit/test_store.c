/* Unit tests for libcommon/dht/store: the LMDB record, provider and pin store. */
#include "check.h"
#include "fixtures.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/store.h"
#include "dht/validate.h"
#include "record/record.h"
#include "util/error.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW 1795464000 /* 2026-11-23T20:00:00Z */
#define DAY 86400

static struct an_privkey *key_a, *key_b;
static struct an_peerid peer_x, peer_y;

/* ---- helpers ---- */

/* A signed record, its key and value, ready to put. */
struct rec {
	json_t *json;
	struct an_buf key, value;
};

static void rec_make(struct rec *r, struct an_privkey *k, const char *type, const char *name,
		     const json_t *root, int64_t now, uint64_t seq, int64_t valid_secs)
{
	struct an_pubkey pub;
	struct an_peerid id;
	char ph[17];
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	snprintf(fqdn, sizeof fqdn, "%s", name);
	r->json = fx_sign_at(k, type, name, root, now, seq, valid_secs);
	an_privkey_public(k, &pub);
	an_peerid_from_pubkey(&pub, &id);
	an_peerhash(&id, ph);
	an_buf_init(&r->key, AN_VALIDATE_KEY_MAX);
	an_buf_init(&r->value, AN_RECORD_MAX);
	an_record_dht_key(ph, fqdn, &r->key);
	if (r->json)
		an_record_serialize(r->json, &r->value);
}

static void rec_free(struct rec *r)
{
	json_decref(r->json);
	an_buf_free(&r->key);
	an_buf_free(&r->value);
}

static int put(struct an_store *s, const struct rec *r, unsigned flags, const struct an_peerid *from,
	       int64_t now, enum an_store_outcome *outcome)
{
	struct an_store_put p = {.key = r->key.data, .key_len = r->key.len, .value = r->value.data,
				 .value_len = r->value.len, .flags = flags, .from = from};
	return an_store_put(s, &p, now, outcome, NULL);
}

/* The seq of the record held under r's key at now, or -1. */
static long long held_seq(struct an_store *s, const struct rec *r, int64_t now)
{
	struct an_store_record got;
	long long seq = -1;
	an_store_record_init(&got);
	if (an_store_get(s, r->key.data, r->key.len, now, &got) == 0) {
		json_t *j = json_loadb((const char *)got.value.data, got.value.len, 0, NULL);
		seq = json_integer_value(json_object_get(j, "seq"));
		json_decref(j);
	}
	an_store_record_free(&got);
	return seq;
}

static char tmp_dir[64];

/* A fresh store directory path (the store creates the directory itself). */
static const char *fresh_dir(void)
{
	char parent[] = "/tmp/an-store-test-XXXXXX";
	if (!mkdtemp(parent))
		return NULL;
	snprintf(tmp_dir, sizeof tmp_dir, "%s/store", parent);
	return tmp_dir;
}

static void remove_dir(const char *dir)
{
	char p[128];
	snprintf(p, sizeof p, "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
	snprintf(p, sizeof p, "%s", dir);
	char *slash = strrchr(p, '/');
	if (slash) {
		*slash = 0;
		rmdir(p);
	}
}

static struct an_store *open_store(const struct an_store_config *cfg)
{
	struct an_store *s = NULL;
	const char *dir = fresh_dir();
	if (!dir || an_store_open(&s, dir, cfg) != 0) {
		printf("# cannot open a store in %s\n", dir ? dir : "(none)");
		return NULL;
	}
	return s;
}

static void close_store(struct an_store *s)
{
	an_store_close(s);
	remove_dir(tmp_dir);
}

/* ---- records ---- */

static void test_put_get(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	struct an_store_record got;
	enum an_store_outcome out = 0;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 0);
	an_store_record_init(&got);
	CHECK_EQ_INT(put(s, &r, 0, &peer_x, NOW, &out), 0);
	CHECK_EQ_INT(out, AN_STORE_NEW);
	CHECK_EQ_INT(an_store_get(s, r.key.data, r.key.len, NOW + 5, &got), 0);
	CHECK_EQ_INT(got.value.len, r.value.len);
	CHECK_EQ_MEM(got.value.data, r.value.data, r.value.len);
	CHECK_EQ_MEM(got.key.data, r.key.data, r.key.len);
	CHECK_EQ_INT(got.flags, 0);
	CHECK_EQ_INT(got.time_received, NOW);
	CHECK_EQ_INT(got.expires, NOW + AN_RECORD_VALID_DEFAULT);
	CHECK(got.has_from && an_peerid_equal(&got.from, &peer_x));
	an_store_record_free(&got);
	rec_free(&r);
	close_store(s);
}

static void test_get_absent(void)
{
	struct an_store *s = open_store(NULL);
	struct an_store_record got;
	an_store_record_init(&got);
	CHECK_EQ_INT(an_store_get(s, (const uint8_t *)"/an/x@y", 7, NOW, &got), AN_ENOTFOUND);
	an_store_record_free(&got);
	close_store(s);
}

static void test_higher_seq_replaces(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r1, r2;
	enum an_store_outcome out = 0;
	rec_make(&r1, key_a, "root", "mysite", NULL, NOW, 1, 0);
	rec_make(&r2, key_a, "root", "mysite", NULL, NOW, 2, 0);
	CHECK_EQ_INT(put(s, &r1, 0, NULL, NOW, &out), 0);
	CHECK_EQ_INT(put(s, &r2, 0, NULL, NOW, &out), 0);
	CHECK_EQ_INT(out, AN_STORE_REPLACED);
	CHECK_EQ_INT(held_seq(s, &r1, NOW), 2);
	rec_free(&r1);
	rec_free(&r2);
	close_store(s);
}

static void test_lower_seq_refused(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r1, r2;
	rec_make(&r1, key_a, "root", "mysite", NULL, NOW, 1, 10 * DAY);
	rec_make(&r2, key_a, "root", "mysite", NULL, NOW, 2, 0);
	CHECK_EQ_INT(put(s, &r2, 0, NULL, NOW, NULL), 0);
	/* Lower seq loses even with the later validity. */
	CHECK_EQ_INT(put(s, &r1, 0, NULL, NOW, NULL), AN_ESTALE);
	CHECK_EQ_INT(held_seq(s, &r1, NOW), 2);
	rec_free(&r1);
	rec_free(&r2);
	close_store(s);
}

static void test_same_seq_later_expiry_wins(void)
{
	struct an_store *s = open_store(NULL);
	struct rec early, late;
	struct an_store_record got;
	enum an_store_outcome out = 0;
	rec_make(&early, key_a, "root", "mysite", NULL, NOW, 3, 0);
	rec_make(&late, key_a, "root", "mysite", NULL, NOW + 60, 3, 0);
	an_store_record_init(&got);
	CHECK_EQ_INT(put(s, &early, 0, NULL, NOW + 60, NULL), 0);
	CHECK_EQ_INT(put(s, &late, 0, NULL, NOW + 60, &out), 0);
	CHECK_EQ_INT(out, AN_STORE_REPLACED);
	CHECK_EQ_INT(put(s, &early, 0, NULL, NOW + 60, NULL), AN_ESTALE);
	CHECK_EQ_INT(an_store_get(s, late.key.data, late.key.len, NOW + 60, &got), 0);
	CHECK_EQ_INT(got.expires, NOW + 60 + AN_RECORD_VALID_DEFAULT);
	an_store_record_free(&got);
	rec_free(&early);
	rec_free(&late);
	close_store(s);
}

static void test_equal_put_unchanged(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	struct an_store_record got;
	enum an_store_outcome out = 0;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 0);
	an_store_record_init(&got);
	CHECK_EQ_INT(put(s, &r, 0, &peer_x, NOW, NULL), 0);
	CHECK_EQ_INT(put(s, &r, 0, &peer_y, NOW + 100, &out), 0);
	CHECK_EQ_INT(out, AN_STORE_UNCHANGED);
	/* Nothing rewritten: first sender and time kept. */
	CHECK_EQ_INT(an_store_get(s, r.key.data, r.key.len, NOW + 100, &got), 0);
	CHECK_EQ_INT(got.time_received, NOW);
	CHECK(an_peerid_equal(&got.from, &peer_x));
	/* Except that an owner's put of the same record marks it ours. */
	CHECK_EQ_INT(put(s, &r, AN_STORE_OURS, NULL, NOW + 100, &out), 0);
	CHECK_EQ_INT(an_store_get(s, r.key.data, r.key.len, NOW + 100, &got), 0);
	CHECK_EQ_INT(got.flags, AN_STORE_OURS);
	an_store_record_free(&got);
	rec_free(&r);
	close_store(s);
}

static void test_invalid_never_stored(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	struct an_store_put p = {0};
	struct an_record_error e;
	size_t n = 99;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 0);
	/* Flip one signature digit. */
	char *sig = strstr((char *)r.value.data, "ed25519=");
	sig[10] = sig[10] == '0' ? '1' : '0';
	p.key = r.key.data;
	p.key_len = r.key.len;
	p.value = r.value.data;
	p.value_len = r.value.len;
	CHECK_EQ_INT(an_store_put(s, &p, NOW, NULL, &e), AN_EBADSIG);
	CHECK_EQ_STR(e.field, "signature");
	p.key = (const uint8_t *)"/ipns/x";
	p.key_len = 7;
	CHECK_EQ_INT(an_store_put(s, &p, NOW, NULL, &e), AN_ENOPROTO);
	CHECK_EQ_INT(an_store_stat(s, &n, NULL), 0);
	CHECK_EQ_INT(n, 0);
	rec_free(&r);
	close_store(s);
}

static void test_expired_put_refused(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 0);
	CHECK_EQ_INT(put(s, &r, 0, NULL, NOW + AN_RECORD_VALID_DEFAULT, NULL), AN_EEXPIRED);
	rec_free(&r);
	close_store(s);
}

static void test_subdomain_needs_held_root(void)
{
	struct an_store *s = open_store(NULL);
	struct rec root, sub;
	struct an_store_record got;
	rec_make(&root, key_a, "root", "mysite", NULL, NOW, 0, 3600);
	rec_make(&sub, key_a, "A", "api.mysite", root.json, NOW, 0, 0);
	an_store_record_init(&got);
	CHECK_EQ_INT(put(s, &sub, 0, NULL, NOW, NULL), AN_EROOT);
	CHECK_EQ_INT(put(s, &root, 0, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(put(s, &sub, 0, NULL, NOW, NULL), 0);
	/* Valid only as long as its root: 1 h. */
	CHECK_EQ_INT(an_store_get(s, sub.key.data, sub.key.len, NOW, &got), 0);
	CHECK_EQ_INT(got.expires, NOW + 3600);
	CHECK_EQ_INT(an_store_get(s, sub.key.data, sub.key.len, NOW + 3600, &got), AN_ENOTFOUND);
	an_store_record_free(&got);
	rec_free(&root);
	rec_free(&sub);
	close_store(s);
}

static void test_subdomain_root_passed_along(void)
{
	struct an_store *s = open_store(NULL);
	struct rec root, sub;
	struct an_store_put p = {0};
	struct an_record_error e;
	rec_make(&root, key_a, "root", "mysite", NULL, NOW, 0, 0);
	rec_make(&sub, key_a, "A", "a.mysite", root.json, NOW, 0, 0);
	p.key = sub.key.data;
	p.key_len = sub.key.len;
	p.value = sub.value.data;
	p.value_len = sub.value.len;
	p.root = root.json;
	CHECK_EQ_INT(an_store_put(s, &p, NOW, NULL, &e), 0);
	rec_free(&root);
	rec_free(&sub);
	close_store(s);
}

static void test_pk_record(void)
{
	struct an_store *s = open_store(NULL);
	struct an_pubkey pub;
	struct an_peerid id;
	struct an_buf key, val;
	struct an_store_record got;
	struct an_store_put p = {0};
	an_privkey_public(key_b, &pub);
	an_peerid_from_pubkey(&pub, &id);
	an_buf_init(&key, AN_VALIDATE_KEY_MAX);
	an_buf_init(&val, AN_PUBKEY_PB_MAX);
	an_buf_append(&key, "/pk/", 4);
	an_buf_append(&key, id.bytes, id.len);
	an_pubkey_encode(&pub, &val);
	an_store_record_init(&got);
	p.key = key.data;
	p.key_len = key.len;
	p.value = val.data;
	p.value_len = val.len;
	CHECK_EQ_INT(an_store_put(s, &p, NOW, NULL, NULL), 0);
	CHECK_EQ_INT(an_store_get(s, key.data, key.len, NOW, &got), 0);
	CHECK_EQ_INT(got.expires, NOW + AN_STORE_RECORD_TTL_DEFAULT);
	an_store_record_free(&got);
	an_buf_free(&key);
	an_buf_free(&val);
	close_store(s);
}

static void test_expiry_injected_clock(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	size_t n = 99;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 0);
	CHECK_EQ_INT(put(s, &r, 0, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(held_seq(s, &r, NOW + AN_RECORD_VALID_DEFAULT - 1), 1);
	CHECK_EQ_INT(held_seq(s, &r, NOW + AN_RECORD_VALID_DEFAULT), -1);
	/* The get that met it expired deleted it. */
	CHECK_EQ_INT(an_store_stat(s, &n, NULL), 0);
	CHECK_EQ_INT(n, 0);
	rec_free(&r);
	close_store(s);
}

static void test_sweep(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r[3];
	size_t n = 99, removed = 99, bytes = 99;
	rec_make(&r[0], key_a, "root", "one", NULL, NOW, 0, 3600);
	rec_make(&r[1], key_a, "root", "two", NULL, NOW, 0, 7200);
	rec_make(&r[2], key_a, "root", "three", NULL, NOW, 0, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(put(s, &r[i], 0, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(an_store_sweep(s, NOW + 3599, 0, &removed), 0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(an_store_sweep(s, NOW + 7200, 0, &removed), 0);
	CHECK_EQ_INT(removed, 2);
	CHECK_EQ_INT(an_store_stat(s, &n, &bytes), 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(bytes, r[2].key.len + r[2].value.len);
	CHECK_EQ_INT(held_seq(s, &r[2], NOW + 7200), 0);
	for (int i = 0; i < 3; i++)
		rec_free(&r[i]);
	close_store(s);
}

static void test_sweep_in_slices(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r[3];
	size_t removed = 99;
	rec_make(&r[0], key_a, "root", "one", NULL, NOW, 0, 3600);
	rec_make(&r[1], key_a, "root", "two", NULL, NOW, 0, 3600);
	rec_make(&r[2], key_a, "root", "three", NULL, NOW, 0, 3600);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(put(s, &r[i], 0, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(an_store_sweep(s, NOW + 3600, 2, &removed), 0);
	CHECK_EQ_INT(removed, 2);
	CHECK_EQ_INT(an_store_sweep(s, NOW + 3600, 2, &removed), 0);
	CHECK_EQ_INT(removed, 1);
	for (int i = 0; i < 3; i++)
		rec_free(&r[i]);
	close_store(s);
}

static void test_own_expired_kept_as_template(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r, newer;
	struct an_store_record it;
	size_t n = 0, removed = 99;
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 1, 3600);
	an_store_record_init(&it);
	CHECK_EQ_INT(put(s, &r, AN_STORE_OURS, NULL, NOW, NULL), 0);
	/* Never served once expired... */
	CHECK_EQ_INT(held_seq(s, &r, NOW + 3600), -1);
	CHECK_EQ_INT(an_store_next(s, AN_STORE_ALL, NOW + 3600, &it), AN_ENOTFOUND);
	/* ...but kept, and due for its owner's re-signing. */
	CHECK_EQ_INT(an_store_sweep(s, NOW + 3600, 0, &removed), 0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(an_store_stat(s, &n, NULL), 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(an_store_next(s, AN_STORE_REPUBLISH_DUE, NOW + AN_STORE_REPUBLISH_DEFAULT, &it), 0);
	CHECK_EQ_MEM(it.value.data, r.value.data, r.value.len);
	/* The re-signed record (even with the same seq) replaces it. */
	rec_make(&newer, key_a, "root", "mysite", NULL, NOW + DAY, 1, 0);
	CHECK_EQ_INT(put(s, &newer, AN_STORE_OURS, NULL, NOW + DAY, NULL), 0);
	CHECK_EQ_INT(held_seq(s, &r, NOW + DAY), 1);
	an_store_record_free(&it);
	rec_free(&r);
	rec_free(&newer);
	close_store(s);
}

/* Count what a filter returns at now, checking key order. */
static int count_filter(struct an_store *s, enum an_store_filter f, int64_t now)
{
	struct an_store_record it;
	struct an_buf prev;
	int n = 0;
	an_store_record_init(&it);
	an_buf_init(&prev, AN_VALIDATE_KEY_MAX);
	while (n < 1000 && an_store_next(s, f, now, &it) == 0) {
		size_t m = prev.len < it.key.len ? prev.len : it.key.len;
		int c = memcmp(prev.data ? prev.data : (const uint8_t *)"", it.key.data, m);
		CHECK(n == 0 || c < 0 || (c == 0 && prev.len < it.key.len));
		an_buf_reset(&prev);
		an_buf_append(&prev, it.key.data, it.key.len);
		n++;
	}
	an_buf_free(&prev);
	an_store_record_free(&it);
	return n;
}

static void test_iterate_all(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r[5];
	static const char *names[] = {"e", "b", "d", "a", "c"};
	for (int i = 0; i < 5; i++) {
		rec_make(&r[i], i % 2 ? key_b : key_a, "root", names[i], NULL, NOW, 0, 0);
		CHECK_EQ_INT(put(s, &r[i], 0, NULL, NOW, NULL), 0);
	}
	CHECK_EQ_INT(count_filter(s, AN_STORE_ALL, NOW), 5);
	CHECK_EQ_INT(count_filter(s, AN_STORE_ALL, NOW + AN_RECORD_VALID_DEFAULT), 0);
	for (int i = 0; i < 5; i++)
		rec_free(&r[i]);
	close_store(s);
}

static void test_replicate_due(void)
{
	struct an_store_config cfg = {.replicate_interval = 60};
	struct an_store *s = open_store(&cfg);
	struct rec r[3];
	static const char *names[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++) {
		rec_make(&r[i], key_a, "root", names[i], NULL, NOW, 0, 0);
		CHECK_EQ_INT(put(s, &r[i], 0, NULL, NOW, NULL), 0);
	}
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPLICATE_DUE, NOW + 59), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPLICATE_DUE, NOW + 60), 3);
	CHECK_EQ_INT(an_store_mark_replicated(s, r[1].key.data, r[1].key.len, NOW + 60), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPLICATE_DUE, NOW + 60), 2);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPLICATE_DUE, NOW + 120), 3);
	CHECK_EQ_INT(an_store_mark_replicated(s, (const uint8_t *)"/an/none", 8, NOW), AN_ENOTFOUND);
	for (int i = 0; i < 3; i++)
		rec_free(&r[i]);
	close_store(s);
}

static void test_republish_due(void)
{
	struct an_store_config cfg = {.republish_interval = 600};
	struct an_store *s = open_store(&cfg);
	struct rec own, pinned, other;
	struct an_store_record it;
	rec_make(&own, key_a, "root", "mine", NULL, NOW, 0, 0);
	rec_make(&pinned, key_b, "root", "theirs", NULL, NOW, 0, 0);
	rec_make(&other, key_b, "root", "other", NULL, NOW, 0, 0);
	an_store_record_init(&it);
	CHECK_EQ_INT(an_store_pin(s, pinned.key.data, pinned.key.len, NOW), 0);
	CHECK_EQ_INT(put(s, &own, AN_STORE_OURS, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(put(s, &pinned, 0, &peer_x, NOW, NULL), 0);
	CHECK_EQ_INT(put(s, &other, 0, &peer_x, NOW, NULL), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPUBLISH_DUE, NOW + 599), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPUBLISH_DUE, NOW + 600), 2);
	CHECK_EQ_INT(an_store_get(s, pinned.key.data, pinned.key.len, NOW, &it), 0);
	CHECK_EQ_INT(it.flags, AN_STORE_PINNED);
	CHECK_EQ_INT(an_store_mark_republished(s, own.key.data, own.key.len, NOW + 600), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPUBLISH_DUE, NOW + 600), 1);
	/* Unpinned: no longer republished. */
	CHECK_EQ_INT(an_store_unpin(s, pinned.key.data, pinned.key.len), 0);
	CHECK_EQ_INT(count_filter(s, AN_STORE_REPUBLISH_DUE, NOW + 600), 0);
	an_store_record_free(&it);
	rec_free(&own);
	rec_free(&pinned);
	rec_free(&other);
	close_store(s);
}

static void test_pins(void)
{
	struct an_store *s = open_store(NULL);
	struct an_buf key;
	an_buf_init(&key, AN_VALIDATE_KEY_MAX);
	CHECK_EQ_INT(an_store_pin(s, (const uint8_t *)"/an/b@x", 7, NOW), 0);
	CHECK_EQ_INT(an_store_pin(s, (const uint8_t *)"/an/a@x", 7, NOW), 0);
	CHECK_EQ_INT(an_store_pin(s, (const uint8_t *)"/an/a@x", 7, NOW), 0);
	CHECK_EQ_INT(an_store_pin(s, (const uint8_t *)"/ipns/x", 7, NOW), AN_ENOPROTO);
	CHECK_EQ_INT(an_store_pin_next(s, &key), 0);
	CHECK(key.len == 7 && memcmp(key.data, "/an/a@x", 7) == 0);
	CHECK_EQ_INT(an_store_pin_next(s, &key), 0);
	CHECK(key.len == 7 && memcmp(key.data, "/an/b@x", 7) == 0);
	CHECK_EQ_INT(an_store_pin_next(s, &key), AN_ENOTFOUND);
	CHECK_EQ_INT(an_store_unpin(s, (const uint8_t *)"/an/a@x", 7), 0);
	CHECK_EQ_INT(an_store_unpin(s, (const uint8_t *)"/an/a@x", 7), AN_ENOTFOUND);
	an_buf_reset(&key);
	CHECK_EQ_INT(an_store_pin_next(s, &key), 0);
	CHECK(key.len == 7 && memcmp(key.data, "/an/b@x", 7) == 0);
	an_buf_free(&key);
	close_store(s);
}

static void test_size_policy_records(void)
{
	struct an_store_config cfg = {.max_records = 3};
	struct an_store *s = open_store(&cfg);
	struct rec r[6], r0b;
	static const char *names[] = {"a", "b", "c", "d", "e", "f"};
	struct an_store_put p = {0};
	struct an_record_error e;
	for (int i = 0; i < 6; i++)
		rec_make(&r[i], key_a, "root", names[i], NULL, NOW, 0, i < 3 ? 3600 : 0);
	rec_make(&r0b, key_a, "root", "a", NULL, NOW, 1, 3600);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(put(s, &r[i], 0, &peer_x, NOW, NULL), 0);
	/* Full: a new key from another node is refused, with a reason. */
	p.key = r[3].key.data;
	p.key_len = r[3].key.len;
	p.value = r[3].value.data;
	p.value_len = r[3].value.len;
	p.from = &peer_x;
	CHECK_EQ_INT(an_store_put(s, &p, NOW, NULL, &e), AN_ELIMIT);
	CHECK(strstr(e.message, "full") != NULL);
	/* A better value for a held key is still taken. */
	CHECK_EQ_INT(put(s, &r0b, 0, &peer_x, NOW, NULL), 0);
	/* Own and pinned records are never refused for size, and nothing was evicted. */
	CHECK_EQ_INT(put(s, &r[4], AN_STORE_OURS, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(an_store_pin(s, r[5].key.data, r[5].key.len, NOW), 0);
	CHECK_EQ_INT(put(s, &r[5], 0, &peer_x, NOW, NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK(held_seq(s, &r[i], NOW) >= 0);
	/* Once the first three expire, the put sweeps them and there is room. */
	CHECK_EQ_INT(put(s, &r[3], 0, &peer_x, NOW + 3600, NULL), 0);
	for (int i = 0; i < 6; i++)
		rec_free(&r[i]);
	rec_free(&r0b);
	close_store(s);
}

static void test_size_policy_bytes(void)
{
	struct rec r[2];
	rec_make(&r[0], key_a, "root", "a", NULL, NOW, 0, 0);
	rec_make(&r[1], key_a, "root", "b", NULL, NOW, 0, 0);
	/* Room for one record's key and value, not two. */
	struct an_store_config cfg = {.max_bytes = r[0].key.len + r[0].value.len + 10};
	struct an_store *s = open_store(&cfg);
	size_t bytes = 0;
	CHECK_EQ_INT(put(s, &r[0], 0, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(put(s, &r[1], 0, NULL, NOW, NULL), AN_ELIMIT);
	CHECK_EQ_INT(an_store_stat(s, NULL, &bytes), 0);
	CHECK_EQ_INT(bytes, r[0].key.len + r[0].value.len);
	CHECK_EQ_INT(an_store_del(s, r[0].key.data, r[0].key.len), 0);
	CHECK_EQ_INT(an_store_del(s, r[0].key.data, r[0].key.len), AN_ENOTFOUND);
	CHECK_EQ_INT(put(s, &r[1], 0, NULL, NOW, NULL), 0);
	rec_free(&r[0]);
	rec_free(&r[1]);
	close_store(s);
}

static void test_restart_persistence(void)
{
	struct an_store *s = open_store(NULL);
	struct rec r;
	struct an_store_record got;
	struct an_store_provider prov[4];
	struct an_buf pin;
	uint8_t mh[34];
	size_t n = 0;
	char dir[64];
	snprintf(dir, sizeof dir, "%s", tmp_dir);
	rec_make(&r, key_a, "root", "mysite", NULL, NOW, 4, 0);
	an_record_name_key("mysite", mh);
	an_store_record_init(&got);
	an_buf_init(&pin, AN_VALIDATE_KEY_MAX);
	CHECK_EQ_INT(put(s, &r, AN_STORE_OURS, NULL, NOW, NULL), 0);
	CHECK_EQ_INT(an_store_pin(s, (const uint8_t *)"/an/p@q", 7, NOW), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_x, NULL, 0, NOW), 0);
	an_store_close(s);
	s = NULL;
	CHECK_EQ_INT(an_store_open(&s, dir, NULL), 0);
	CHECK_EQ_INT(an_store_get(s, r.key.data, r.key.len, NOW, &got), 0);
	CHECK_EQ_MEM(got.value.data, r.value.data, r.value.len);
	CHECK_EQ_INT(got.flags, AN_STORE_OURS);
	CHECK_EQ_INT(an_store_pin_next(s, &pin), 0);
	CHECK(pin.len == 7 && memcmp(pin.data, "/an/p@q", 7) == 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW, prov, 4, &n), 0);
	CHECK_EQ_INT(n, 1);
	an_buf_free(&pin);
	an_store_record_free(&got);
	rec_free(&r);
	close_store(s);
}

static void test_open_not_a_store(void)
{
	struct an_store *s = NULL;
	char path[] = "/tmp/an-store-test-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
	/* A plain file where the directory should be. */
	CHECK(an_store_open(&s, path, NULL) < 0);
	CHECK(s == NULL);
	unlink(path);
}

/* ---- providers ---- */

static void test_providers_add_get(void)
{
	struct an_store *s = open_store(NULL);
	struct an_store_provider out[4];
	struct an_multiaddr addrs[6];
	uint8_t mh[34];
	size_t n = 0;
	an_record_name_key("mysite", mh);
	for (int i = 0; i < 6; i++) {
		char text[64];
		snprintf(text, sizeof text, "/ip4/127.0.0.1/tcp/%d", 4000 + i);
		an_multiaddr_parse(text, &addrs[i]);
	}
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_x, addrs, 2, NOW), 0);
	/* More addrs than kept: the first AN_STORE_PROVIDER_ADDRS_MAX. */
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_y, addrs, 6, NOW), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW, out, 4, &n), 0);
	CHECK_EQ_INT(n, 2);
	for (size_t i = 0; i < n; i++) {
		bool is_x = an_peerid_equal(&out[i].id, &peer_x);
		CHECK(is_x || an_peerid_equal(&out[i].id, &peer_y));
		CHECK_EQ_INT(out[i].naddrs, is_x ? 2 : AN_STORE_PROVIDER_ADDRS_MAX);
		CHECK(an_multiaddr_equal(&out[i].addrs[1], &addrs[1]));
		CHECK_EQ_INT(out[i].expires, NOW + AN_STORE_PROVIDER_TTL_DEFAULT);
	}
	/* Another key has none. */
	uint8_t other[34];
	an_record_name_key("othersite", other);
	CHECK_EQ_INT(an_store_providers_get(s, other, 34, NOW, out, 4, &n), 0);
	CHECK_EQ_INT(n, 0);
	/* Not a multihash. */
	CHECK_EQ_INT(an_store_provider_add(s, (const uint8_t *)"/an/x", 5, &peer_x, NULL, 0, NOW),
		     AN_EMALFORMED);
	close_store(s);
}

static void test_providers_expiry_and_refresh(void)
{
	struct an_store_config cfg = {.provider_ttl = 100};
	struct an_store *s = open_store(&cfg);
	struct an_store_provider out[4];
	uint8_t mh[34];
	size_t n = 0, removed = 0;
	an_record_name_key("mysite", mh);
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_x, NULL, 0, NOW), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_y, NULL, 0, NOW), 0);
	/* x refreshes at +50: valid until +150; y lapses at +100. */
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_x, NULL, 0, NOW + 50), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 100, out, 4, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(an_peerid_equal(&out[0].id, &peer_x));
	CHECK_EQ_INT(an_store_sweep(s, NOW + 100, 0, &removed), 0);
	CHECK_EQ_INT(removed, 1);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 150, out, 4, &n), 0);
	CHECK_EQ_INT(n, 0);
	close_store(s);
}

static void test_providers_cap_per_key(void)
{
	struct an_store_config cfg = {.max_providers_per_key = 3, .provider_ttl = 100};
	struct an_store *s = open_store(&cfg);
	struct an_store_provider out[8];
	struct an_peerid ids[4];
	struct an_privkey *k;
	uint8_t mh[34];
	size_t n = 0;
	an_record_name_key("mysite", mh);
	for (int i = 0; i < 4; i++) {
		struct an_pubkey pub;
		an_privkey_generate(&k);
		an_privkey_public(k, &pub);
		an_peerid_from_pubkey(&pub, &ids[i]);
		an_privkey_free(k);
	}
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &ids[i], NULL, 0, NOW), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &ids[3], NULL, 0, NOW), AN_ELIMIT);
	/* A refresh of one already there is fine. */
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &ids[0], NULL, 0, NOW + 10), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 10, out, 8, &n), 0);
	CHECK_EQ_INT(n, 3);
	/* Once the others lapse (at +100) there is room again. */
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &ids[3], NULL, 0, NOW + 100), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 100, out, 8, &n), 0);
	CHECK_EQ_INT(n, 2);
	close_store(s);
}

static void test_providers_cap_total(void)
{
	struct an_store_config cfg = {.max_providers = 2, .provider_ttl = 100};
	struct an_store *s = open_store(&cfg);
	uint8_t mh[3][34];
	an_record_name_key("a", mh[0]);
	an_record_name_key("b", mh[1]);
	an_record_name_key("c", mh[2]);
	CHECK_EQ_INT(an_store_provider_add(s, mh[0], 34, &peer_x, NULL, 0, NOW), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh[1], 34, &peer_x, NULL, 0, NOW + 50), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh[2], 34, &peer_x, NULL, 0, NOW + 50), AN_ELIMIT);
	/* The first lapses at +100: the add sweeps it and fits. */
	CHECK_EQ_INT(an_store_provider_add(s, mh[2], 34, &peer_x, NULL, 0, NOW + 100), 0);
	close_store(s);
}

/* ---- crash safety ---- */

#define CRASH_NAMES 50
#define CRASH_ROUNDS 20

/*
 * The child: put records (name i % CRASH_NAMES, seq i) in a loop, and
 * after each committed put write i to fd.  Never returns.
 */
static void crash_child(const char *dir, int fd, uint64_t start)
{
	struct an_store *s = NULL;
	if (an_store_open(&s, dir, NULL) != 0)
		_exit(3);
	for (uint64_t i = start; i < start + 100000; i++) {
		char name[16];
		struct rec r;
		snprintf(name, sizeof name, "n%u", (unsigned)(i % CRASH_NAMES));
		rec_make(&r, key_a, "root", name, NULL, NOW, i, 0);
		if (put(s, &r, 0, &peer_x, NOW, NULL) != 0)
			_exit(4);
		rec_free(&r);
		if (write(fd, &i, sizeof i) != (ssize_t)sizeof i)
			_exit(5);
	}
	_exit(0);
}

/* Read one committed seq from fd within 5 s: 1, or 0 at EOF / timeout. */
static int read_seq(int fd, uint64_t *seq)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return 0;
	return read(fd, seq, sizeof *seq) == (ssize_t)sizeof *seq;
}

/*
 * The crash timing (how many puts commit, how long until the kill) comes
 * from a seeded generator (splitmix64): the seed is AN_TEST_SEED when set,
 * else random, and is printed, so a failing run can be repeated.
 */
static uint64_t crash_rng;

static uint32_t crash_uniform(uint32_t n)
{
	uint64_t z = (crash_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) % n);
}

static void crash_seed(void)
{
	const char *env = getenv("AN_TEST_SEED");
	char *end;
	if (env && *env) {
		errno = 0;
		crash_rng = strtoull(env, &end, 10);
		if (errno || *end) {
			printf("# AN_TEST_SEED '%s' is not a number\n", env);
			CHECK(0);
		}
	} else {
		randombytes_buf(&crash_rng, sizeof crash_rng);
	}
	printf("# crash timing seed %llu (AN_TEST_SEED=%llu repeats it)\n", (unsigned long long)crash_rng,
	       (unsigned long long)crash_rng);
}

static void test_crash_kill9(void)
{
	long long committed[CRASH_NAMES];
	uint64_t next = 0;
	char dir[64];
	struct an_store *s = open_store(NULL);
	crash_seed();
	for (int i = 0; i < CRASH_NAMES; i++)
		committed[i] = -1;
	snprintf(dir, sizeof dir, "%s", tmp_dir);
	an_store_close(s); /* the children open it; never across a fork */
	for (int round = 0; round < CRASH_ROUNDS; round++) {
		int fds[2];
		uint64_t seq;
		CHECK(pipe(fds) == 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			crash_child(dir, fds[1], next);
		}
		close(fds[1]);
		/* Let a random number of puts commit, then kill at a random moment. */
		unsigned want = 1 + crash_uniform(40), got = 0;
		while (got < want && read_seq(fds[0], &seq)) {
			committed[seq % CRASH_NAMES] = (long long)seq;
			next = seq + 1;
			got++;
		}
		usleep(crash_uniform(3000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		/* Reports written before the kill are commits too. */
		while (read_seq(fds[0], &seq)) {
			committed[seq % CRASH_NAMES] = (long long)seq;
			next = seq + 1;
		}
		close(fds[0]);
		CHECK(got == want);
		/* A put may have committed without being reported: skip its seq. */
		next += 1;
	}
	/* Reopen: every committed record readable, valid, at least as new. */
	s = NULL;
	CHECK_EQ_INT(an_store_open(&s, dir, NULL), 0);
	if (!s)
		return;
	size_t held = 0, bytes = 0, sum = 0;
	struct an_store_record it;
	struct an_validate_ctx ctx = {.now = NOW};
	an_store_record_init(&it);
	while (an_store_next(s, AN_STORE_ALL, NOW, &it) == 0 && held < 1000) {
		struct an_record_error e;
		CHECK_EQ_INT(an_validate(&ctx, it.key.data, it.key.len, it.value.data, it.value.len, NULL, &e), 0);
		sum += it.key.len + it.value.len;
		held++;
	}
	CHECK_EQ_INT(an_store_stat(s, NULL, &bytes), 0);
	CHECK_EQ_INT(bytes, sum);
	for (int i = 0; i < CRASH_NAMES; i++) {
		if (committed[i] < 0)
			continue;
		char name[16];
		struct rec r;
		snprintf(name, sizeof name, "n%d", i);
		rec_make(&r, key_a, "root", name, NULL, NOW, 0, 0);
		CHECK(held_seq(s, &r, NOW) >= committed[i]);
		rec_free(&r);
	}
	/* And the store still takes writes. */
	struct rec r;
	rec_make(&r, key_a, "root", "n0", NULL, NOW, next + 1000, 0);
	CHECK_EQ_INT(put(s, &r, 0, NULL, NOW, NULL), 0);
	rec_free(&r);
	an_store_record_free(&it);
	close_store(s);
}

int main(void)
{
	struct an_pubkey pub;
	if (sodium_init() < 0 || an_privkey_generate(&key_a) || an_privkey_generate(&key_b))
		return 1;
	an_privkey_public(key_a, &pub);
	an_peerid_from_pubkey(&pub, &peer_x);
	an_privkey_public(key_b, &pub);
	an_peerid_from_pubkey(&pub, &peer_y);
	RUN(test_put_get);
	RUN(test_get_absent);
	RUN(test_higher_seq_replaces);
	RUN(test_lower_seq_refused);
	RUN(test_same_seq_later_expiry_wins);
	RUN(test_equal_put_unchanged);
	RUN(test_invalid_never_stored);
	RUN(test_expired_put_refused);
	RUN(test_subdomain_needs_held_root);
	RUN(test_subdomain_root_passed_along);
	RUN(test_pk_record);
	RUN(test_expiry_injected_clock);
	RUN(test_sweep);
	RUN(test_sweep_in_slices);
	RUN(test_own_expired_kept_as_template);
	RUN(test_iterate_all);
	RUN(test_replicate_due);
	RUN(test_republish_due);
	RUN(test_pins);
	RUN(test_size_policy_records);
	RUN(test_size_policy_bytes);
	RUN(test_restart_persistence);
	RUN(test_open_not_a_store);
	RUN(test_providers_add_get);
	RUN(test_providers_expiry_and_refresh);
	RUN(test_providers_cap_per_key);
	RUN(test_providers_cap_total);
	RUN(test_crash_kill9);
	an_privkey_free(key_a);
	an_privkey_free(key_b);
	return check_done();
}
