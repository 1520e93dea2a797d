/* Unit tests for libcommon/dht/validate: the /an/ and /pk/ validators and the selector. */
#include "check.h"
#include "fixtures.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/validate.h"
#include "record/record.h"
#include "util/error.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1795464000 /* 2026-11-23T20:00:00Z */

static struct an_privkey *key_a, *key_b;

static json_t *sign_new(struct an_privkey *k, const char *type, const char *name, const json_t *root)
{
	return fx_sign_at(k, type, name, root, NOW, 0, 0);
}

/* The canonical bytes of rec into b (initialised here). */
static void value_of(const json_t *rec, struct an_buf *b)
{
	an_buf_init(b, AN_RECORD_MAX * 2);
	if (an_record_serialize(rec, b))
		printf("# serialize failed\n");
}

/* The DHT key of name published by k into b (initialised here). */
static void key_of(struct an_privkey *k, const char *fqdn, struct an_buf *b)
{
	struct an_pubkey pub;
	struct an_peerid id;
	char ph[17];
	an_privkey_public(k, &pub);
	an_peerid_from_pubkey(&pub, &id);
	an_peerhash(&id, ph);
	an_buf_init(b, AN_VALIDATE_KEY_MAX);
	an_record_dht_key(ph, fqdn, b);
}

/* Validate rec under k's key for fqdn with ctx. */
static int check_rec(const struct an_validate_ctx *ctx, struct an_privkey *k, const char *fqdn,
		     const json_t *rec, struct an_validate_info *info, struct an_record_error *e)
{
	struct an_buf key, val;
	key_of(k, fqdn, &key);
	value_of(rec, &val);
	int rc = an_validate(ctx, key.data, key.len, val.data, val.len, info, e);
	an_buf_free(&key);
	an_buf_free(&val);
	return rc;
}

static void test_valid_root_record(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_validate_info info;
	struct an_record_error e;
	json_t *r = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 7, 0);
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, &info, &e), 0);
	CHECK_EQ_INT(info.ns, AN_NS_AN);
	CHECK(info.is_root);
	CHECK_EQ_INT(info.seq, 7);
	CHECK_EQ_INT(info.expires, NOW + AN_RECORD_VALID_DEFAULT);
	json_decref(r);
}

static void test_bad_signature(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	char sig[140];
	snprintf(sig, sizeof sig, "%s", json_string_value(json_object_get(r, "signature")));
	sig[20] = sig[20] == '0' ? '1' : '0';
	json_object_set_new(r, "signature", json_string(sig));
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, NULL, &e), AN_EBADSIG);
	CHECK_EQ_STR(e.field, "signature");
	json_decref(r);
}

static void test_tampered_field(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	json_object_set_new(r, "seq", json_integer(99));
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, NULL, &e), AN_EBADSIG);
	json_decref(r);
}

static void test_wrong_key_for_peer_hash(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	json_t *ra = sign_new(key_a, "root", "mysite", NULL);
	json_t *rb = sign_new(key_b, "root", "mysite", NULL);
	/* b's record claiming a's key: lookup still carries b's peer hash. */
	json_object_set(rb, "publisherPublicKey", json_object_get(ra, "publisherPublicKey"));
	CHECK_EQ_INT(check_rec(&ctx, key_b, "mysite", rb, NULL, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "lookup");
	json_decref(ra);
	json_decref(rb);
}

static void test_expired(void)
{
	struct an_validate_ctx ctx = {.now = NOW + AN_RECORD_VALID_DEFAULT};
	struct an_record_error e;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, NULL, &e), AN_EEXPIRED);
	CHECK_EQ_STR(e.field, "expires");
	ctx.now = NOW + AN_RECORD_VALID_DEFAULT - 1;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, NULL, &e), 0);
	json_decref(r);
}

static void test_not_yet_valid(void)
{
	struct an_validate_ctx ctx = {.now = NOW - AN_RECORD_SKEW - 1};
	struct an_record_error e;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	CHECK_EQ_INT(check_rec(&ctx, key_a, "mysite", r, NULL, &e), AN_ENOTYET);
	json_decref(r);
}

static void test_oversized_value(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	struct an_buf key, val;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	key_of(key_a, "mysite", &key);
	value_of(r, &val);
	/* Valid JSON once parsed, but over the byte cap as sent. */
	while (val.len <= AN_RECORD_MAX)
		an_buf_putc(&val, ' ');
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, val.data, val.len, NULL, &e), AN_ETOOBIG);
	/* Spacing within the cap is accepted. */
	an_buf_free(&val);
	value_of(r, &val);
	an_buf_append(&val, "\n", 1);
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, val.data, val.len, NULL, &e), 0);
	an_buf_free(&key);
	an_buf_free(&val);
	json_decref(r);
}

static void test_key_name_mismatch(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	/* a's valid record under another name of a's, and under b's peer hash. */
	CHECK_EQ_INT(check_rec(&ctx, key_a, "othersite", r, NULL, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "lookup");
	CHECK(strstr(e.message, "not for this key") != NULL);
	CHECK_EQ_INT(check_rec(&ctx, key_b, "mysite", r, NULL, &e), AN_EMISMATCH);
	json_decref(r);
}

static void test_not_json(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	struct an_buf key;
	key_of(key_a, "mysite", &key);
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, (const uint8_t *)"{\"a\":", 5, NULL, &e),
		     AN_EMALFORMED);
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, (const uint8_t *)"[1]", 3, NULL, &e),
		     AN_EMALFORMED);
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, (const uint8_t *)"{\"a\":1,\"a\":2}", 13, NULL, &e),
		     AN_EMALFORMED);
	/* An object that is no record: the record checks name the field. */
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, (const uint8_t *)"{}", 2, NULL, &e), AN_EFIELD);
	an_buf_free(&key);
}

static void test_unknown_namespace(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	static const char *keys[] = {"/ipns/abc", "/an", "an/x@y", "/anx/y", "", "/pk"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		CHECK_EQ_INT(an_validate(&ctx, (const uint8_t *)keys[i], strlen(keys[i]),
					 (const uint8_t *)"{}", 2, NULL, &e),
			     AN_ENOPROTO);
	an_validate(&ctx, (const uint8_t *)"/ipns/abc", 9, (const uint8_t *)"x", 1, NULL, &e);
	CHECK(strstr(e.message, "\"ipns\"") != NULL);
	struct an_validate_value v = {(const uint8_t *)"x", 1};
	size_t best;
	CHECK_EQ_INT(an_validate_select((const uint8_t *)"/ipns/abc", 9, &v, 1, &best), AN_ENOPROTO);
}

/* "/pk/" + binary peer ID of k, and k's PublicKey protobuf. */
static void pk_pair(struct an_privkey *k, struct an_buf *key, struct an_buf *val)
{
	struct an_pubkey pub;
	struct an_peerid id;
	an_privkey_public(k, &pub);
	an_peerid_from_pubkey(&pub, &id);
	an_buf_init(key, AN_VALIDATE_KEY_MAX);
	an_buf_init(val, AN_PUBKEY_PB_MAX);
	an_buf_append(key, "/pk/", 4);
	an_buf_append(key, id.bytes, id.len);
	an_pubkey_encode(&pub, val);
}

static void test_pk_valid(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_validate_info info;
	struct an_record_error e;
	struct an_buf key, val;
	pk_pair(key_a, &key, &val);
	CHECK_EQ_INT(an_validate(&ctx, key.data, key.len, val.data, val.len, &info, &e), 0);
	CHECK_EQ_INT(info.ns, AN_NS_PK);
	CHECK_EQ_INT(info.expires, 0);
	an_buf_free(&key);
	an_buf_free(&val);
}

static void test_pk_invalid(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	struct an_buf ka, va, kb, vb;
	pk_pair(key_a, &ka, &va);
	pk_pair(key_b, &kb, &vb);
	/* b's key under a's peer ID. */
	CHECK_EQ_INT(an_validate(&ctx, ka.data, ka.len, vb.data, vb.len, NULL, &e), AN_EMISMATCH);
	/* Not a PublicKey protobuf. */
	CHECK_EQ_INT(an_validate(&ctx, ka.data, ka.len, (const uint8_t *)"\x08\x01\x12", 3, NULL, &e),
		     AN_EMALFORMED);
	/* A key whose suffix is no peer ID multihash. */
	CHECK_EQ_INT(an_validate(&ctx, (const uint8_t *)"/pk/zz", 6, va.data, va.len, NULL, &e),
		     AN_EMALFORMED);
	an_buf_free(&ka);
	an_buf_free(&va);
	an_buf_free(&kb);
	an_buf_free(&vb);
}

static void test_subdomain_with_root_passed(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	struct an_validate_ctx ctx = {.now = NOW, .root = root};
	struct an_validate_info info;
	struct an_record_error e;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, &info, &e), 0);
	CHECK(!info.is_root);
	json_decref(sub);
	json_decref(root);
}

static void test_subdomain_without_root(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	json_t *other = sign_new(key_a, "root", "other", NULL);
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, NULL, &e), AN_EROOT);
	CHECK_EQ_STR(e.field, "root");
	/* A root of another name passed along is not taken for this one. */
	ctx.root = other;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, NULL, &e), AN_EROOT);
	json_decref(other);
	json_decref(sub);
	json_decref(root);
}

/* get_root over one stored key/value; counts calls and remembers the key asked. */
struct fake_store {
	const struct an_buf *key, *val;
	int calls;
	char asked[AN_VALIDATE_KEY_MAX + 1];
};

static int fake_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out)
{
	struct fake_store *f = arg;
	f->calls++;
	snprintf(f->asked, sizeof f->asked, "%.*s", (int)key_len, (const char *)key);
	if (!f->key || key_len != f->key->len || memcmp(key, f->key->data, key_len))
		return AN_ENOTFOUND;
	return an_buf_append(out, f->val->data, f->val->len);
}

static void test_subdomain_root_from_store(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "TXT", "a.b.mysite", root);
	struct an_buf rkey, rval;
	struct fake_store f = {0};
	struct an_validate_ctx ctx = {.now = NOW, .get_root = fake_get, .arg = &f};
	struct an_record_error e;
	key_of(key_a, "mysite", &rkey);
	value_of(root, &rval);
	/* Not held: refused, and the message says to put the root first. */
	CHECK_EQ_INT(check_rec(&ctx, key_a, "a.b.mysite", sub, NULL, &e), AN_EROOT);
	CHECK(strstr(e.message, "put it first") != NULL);
	CHECK_EQ_STR(f.asked, (const char *)rkey.data);
	/* Held: accepted. */
	f.key = &rkey;
	f.val = &rval;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "a.b.mysite", sub, NULL, &e), 0);
	CHECK_EQ_INT(f.calls, 2);
	an_buf_free(&rkey);
	an_buf_free(&rval);
	json_decref(sub);
	json_decref(root);
}

static void test_subdomain_expiry_bounded_by_root(void)
{
	/* Root valid 1 h, subdomain 48 h: the pair is valid 1 h. */
	json_t *root = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 0, 3600);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	struct an_validate_ctx ctx = {.now = NOW, .root = root};
	struct an_validate_info info;
	struct an_record_error e;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, &info, &e), 0);
	CHECK_EQ_INT(info.expires, NOW + 3600);
	/* Past the root's validity the subdomain is refused too. */
	ctx.now = NOW + 3600;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, NULL, &e), AN_EROOT);
	json_decref(sub);
	json_decref(root);
}

static void test_subdomain_root_resigned(void)
{
	/* The held root was re-signed since: the subdomain's reference is stale. */
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	json_t *root2 = fx_sign_at(key_a, "root", "mysite", NULL, NOW + 5, 1, 0);
	struct an_validate_ctx ctx = {.now = NOW + 10, .root = root2};
	struct an_record_error e;
	CHECK_EQ_INT(check_rec(&ctx, key_a, "api.mysite", sub, NULL, &e), AN_EROOT);
	CHECK_EQ_STR(e.field, "root[0].signature");
	json_decref(root2);
	json_decref(sub);
	json_decref(root);
}

/* Compare two records under a's "mysite" key. */
static int cmp(const json_t *a, const json_t *b)
{
	struct an_buf key, va, vb;
	key_of(key_a, "mysite", &key);
	value_of(a, &va);
	value_of(b, &vb);
	int rc = an_validate_compare(key.data, key.len, va.data, va.len, vb.data, vb.len);
	an_buf_free(&key);
	an_buf_free(&va);
	an_buf_free(&vb);
	return rc;
}

static void test_compare_seq_then_expiry(void)
{
	json_t *s1 = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 1, 0);
	json_t *s2 = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 2, 0);
	json_t *s2_later = fx_sign_at(key_a, "root", "mysite", NULL, NOW + 60, 2, 0);
	json_t *s1_much_later = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 1, 10 * 86400);
	CHECK(cmp(s2, s1) > 0);
	CHECK(cmp(s1, s2) < 0);
	/* A lower seq loses even with a later validity. */
	CHECK(cmp(s1_much_later, s2) < 0);
	/* Same seq: the later expires wins. */
	CHECK(cmp(s2_later, s2) > 0);
	CHECK_EQ_INT(cmp(s2, s2), 0);
	json_decref(s1);
	json_decref(s2);
	json_decref(s2_later);
	json_decref(s1_much_later);
}

static void test_select(void)
{
	json_t *recs[4] = {
		fx_sign_at(key_a, "root", "mysite", NULL, NOW, 3, 0),
		fx_sign_at(key_a, "root", "mysite", NULL, NOW, 5, 0),
		fx_sign_at(key_a, "root", "mysite", NULL, NOW + 30, 5, 0),
		fx_sign_at(key_a, "root", "mysite", NULL, NOW, 4, 0),
	};
	struct an_buf key, vals[5];
	struct an_validate_value v[5];
	size_t best = 99;
	key_of(key_a, "mysite", &key);
	for (int i = 0; i < 4; i++) {
		value_of(recs[i], &vals[i]);
		v[i].data = vals[i].data;
		v[i].len = vals[i].len;
	}
	/* A value that does not parse never wins. */
	v[4].data = (const uint8_t *)"garbage";
	v[4].len = 7;
	CHECK_EQ_INT(an_validate_select(key.data, key.len, v, 5, &best), 0);
	CHECK_EQ_INT(best, 2);
	CHECK_EQ_INT(an_validate_select(key.data, key.len, v + 4, 1, &best), 0);
	CHECK_EQ_INT(best, 0);
	CHECK_EQ_INT(an_validate_select(key.data, key.len, v, 0, &best), -EINVAL);
	/* pk: the first. */
	CHECK_EQ_INT(an_validate_select((const uint8_t *)"/pk/x", 5, v, 3, &best), 0);
	CHECK_EQ_INT(best, 0);
	for (int i = 0; i < 4; i++) {
		an_buf_free(&vals[i]);
		json_decref(recs[i]);
	}
	an_buf_free(&key);
}

static void test_lookup_adapters(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	json_t *r1 = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 1, 0);
	json_t *r2 = fx_sign_at(key_a, "root", "mysite", NULL, NOW, 2, 0);
	struct an_buf key, v1, v2;
	key_of(key_a, "mysite", &key);
	value_of(r1, &v1);
	value_of(r2, &v2);
	CHECK_EQ_INT(an_validate_cb(&ctx, key.data, key.len, v1.data, v1.len), 0);
	CHECK_EQ_INT(an_validate_cb(&ctx, key.data, key.len - 1, v1.data, v1.len), AN_EMISMATCH);
	CHECK(an_validate_compare_cb(&ctx, key.data, key.len, v2.data, v2.len, v1.data, v1.len) > 0);
	an_buf_free(&key);
	an_buf_free(&v1);
	an_buf_free(&v2);
	json_decref(r1);
	json_decref(r2);
}

static void test_name_key(void)
{
	struct an_buf key;
	uint8_t got[34], want[34];
	key_of(key_a, "api.mysite", &key);
	CHECK_EQ_INT(an_validate_name_key(key.data, key.len, got), 0);
	an_record_name_key("api.mysite", want);
	CHECK_EQ_MEM(got, want, 34);
	CHECK_EQ_INT(an_validate_name_key((const uint8_t *)"/an/nopeerhash", 14, got), AN_EMALFORMED);
	CHECK_EQ_INT(an_validate_name_key((const uint8_t *)"/pk/x", 5, got), AN_EMALFORMED);
	an_buf_free(&key);
}

static void test_key_too_long(void)
{
	struct an_validate_ctx ctx = {.now = NOW};
	struct an_record_error e;
	uint8_t key[AN_VALIDATE_KEY_MAX + 1];
	memset(key, 'a', sizeof key);
	memcpy(key, "/an/", 4);
	CHECK_EQ_INT(an_validate(&ctx, key, sizeof key, (const uint8_t *)"{}", 2, NULL, &e), AN_ETOOBIG);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&key_a) || an_privkey_generate(&key_b))
		return 1;
	RUN(test_valid_root_record);
	RUN(test_bad_signature);
	RUN(test_tampered_field);
	RUN(test_wrong_key_for_peer_hash);
	RUN(test_expired);
	RUN(test_not_yet_valid);
	RUN(test_oversized_value);
	RUN(test_key_name_mismatch);
	RUN(test_not_json);
	RUN(test_unknown_namespace);
	RUN(test_pk_valid);
	RUN(test_pk_invalid);
	RUN(test_subdomain_with_root_passed);
	RUN(test_subdomain_without_root);
	RUN(test_subdomain_root_from_store);
	RUN(test_subdomain_expiry_bounded_by_root);
	RUN(test_subdomain_root_resigned);
	RUN(test_compare_seq_then_expiry);
	RUN(test_select);
	RUN(test_lookup_adapters);
	RUN(test_name_key);
	RUN(test_key_too_long);
	an_privkey_free(key_a);
	an_privkey_free(key_b);
	return check_done();
}
