/* Unit tests for libcommon/record/record: sign, verify, re-sign, select, keys. */
#include "check.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "record/jcs.h"
#include "record/record.h"
#include "util/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1795464000 /* 2026-11-23T20:00:00Z */

static struct an_privkey *key_a, *key_b;

static json_t *sign_new(struct an_privkey *k, const char *type, const char *name, const json_t *root)
{
	static const char *addrs[] = {"/ip4/198.51.100.7/tcp/4001"};
	struct an_record_sign_opts o = {.now = NOW, .name = name, .type = type, .root = root};
	if (!strcmp(type, "root") || !strcmp(type, "A")) {
		o.addrs = addrs;
		o.naddrs = 1;
	}
	if (!strcmp(type, "TXT"))
		o.text = "hello";
	json_t *rec = json_object();
	struct an_record_error e;
	int rc = an_record_sign(rec, k, &o, &e);
	if (rc) {
		printf("# sign %s %s: %d %s: %s\n", type, name, rc, e.field, e.message);
		json_decref(rec);
		return NULL;
	}
	return rec;
}

static int verify(const json_t *rec, const json_t *root, int64_t now, struct an_record_error *e)
{
	return an_record_verify(rec, root, now, 0, e);
}

static void test_root_sign_verify(void)
{
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	struct an_record_error e;
	CHECK(r != NULL);
	CHECK_EQ_INT(verify(r, NULL, NOW, &e), 0);
	CHECK_EQ_STR(json_string_value(json_object_get(r, "version")), "1.0.0");
	CHECK_EQ_STR(json_string_value(json_object_get(r, "expires")), "2026-11-25T20:00:00Z");
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(r, "ttl"), "timestampRepublished")),
		     "2026-11-23T20:00:00Z");
	CHECK(strncmp(json_string_value(json_object_get(r, "signature")), "ed25519=", 8) == 0);
	CHECK(json_is_true(json_object_get(json_object_get(r, "dns"), "isRoot")));
	json_decref(r);
}

static void test_did_and_lookup(void)
{
	json_t *r = sign_new(key_a, "root", "MySite.", NULL);
	struct an_pubkey pub;
	struct an_peerid id;
	char ph[17], lookup[64], did[AN_RECORD_DID_MAX];
	an_privkey_public(key_a, &pub);
	an_peerid_from_pubkey(&pub, &id);
	an_peerhash(&id, ph);
	snprintf(lookup, sizeof lookup, "an://%s@mysite", ph);
	CHECK_EQ_STR(json_string_value(json_object_get(r, "lookup")), lookup);
	CHECK_EQ_INT(an_record_did(lookup, did), 0);
	CHECK_EQ_STR(json_string_value(json_object_get(r, "did")), did);
	CHECK(strncmp(did, "dns:", 4) == 0 && strlen(did) >= 4 + 21);
	json_decref(r);
}

static void test_tampered_fields_fail(void)
{
	static const char *const edits[][2] = {
		{"seq", "7"},
		{"expires", "\"2026-11-26T20:00:00Z\""},
		{"multiaddrs", "[\"/ip4/203.0.113.9/tcp/4001\"]"},
		{"extra", "1"},
	};
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		json_t *t = json_deep_copy(r);
		json_object_set_new(t, edits[i][0], json_loads(edits[i][1], JSON_DECODE_ANY, NULL));
		struct an_record_error e;
		CHECK_EQ_INT(verify(t, NULL, NOW, &e), AN_EBADSIG);
		CHECK_EQ_STR(e.field, "signature");
		json_decref(t);
	}
	json_decref(r);
}

static void test_unknown_fields_signed_and_kept(void)
{
	json_t *r = json_pack("{s:s, s:s, s:[i]}", "type", "root", "note", "kept", "x", 1);
	struct an_record_sign_opts o = {.now = NOW, .name = "mysite"};
	struct an_record_error e;
	CHECK_EQ_INT(an_record_sign(r, key_a, &o, &e), 0);
	CHECK_EQ_STR(json_string_value(json_object_get(r, "note")), "kept");
	CHECK_EQ_INT(verify(r, NULL, NOW, &e), 0);
	json_decref(r);
}

static void test_wrong_key(void)
{
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	json_t *other = sign_new(key_b, "root", "mysite", NULL);
	struct an_record_error e;
	/* b's signature on a's record. */
	json_object_set(r, "signature", json_object_get(other, "signature"));
	CHECK_EQ_INT(verify(r, NULL, NOW, &e), AN_EBADSIG);
	/* a's publisher claimed in b's record: the peer hash in lookup disagrees. */
	json_object_set(other, "publisherPublicKey", json_object_get(r, "publisherPublicKey"));
	CHECK_EQ_INT(verify(other, NULL, NOW, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "lookup");
	json_decref(r);
	json_decref(other);
}

static void test_validity_window(void)
{
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	struct an_record_error e;
	CHECK_EQ_INT(verify(r, NULL, NOW + 48 * 3600 - 1, &e), 0);
	CHECK_EQ_INT(verify(r, NULL, NOW + 48 * 3600, &e), AN_EEXPIRED);
	CHECK_EQ_STR(e.field, "expires");
	CHECK_EQ_INT(verify(r, NULL, NOW - AN_RECORD_SKEW, &e), 0);
	CHECK_EQ_INT(verify(r, NULL, NOW - AN_RECORD_SKEW - 1, &e), AN_ENOTYET);
	CHECK_EQ_STR(e.field, "ttl.timestampRepublished");
	json_decref(r);
}

static void test_subdomain(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	struct an_record_error e;
	CHECK(sub != NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(sub, "dns"), "name")), "api");
	CHECK_EQ_INT(verify(sub, root, NOW, &e), 0);
	CHECK_EQ_INT(an_record_verify(sub, root, NOW, AN_RECORD_ROOT_VERIFIED, &e), 0);
	/* Missing root. */
	CHECK_EQ_INT(verify(sub, NULL, NOW, &e), AN_EROOT);
	CHECK_EQ_STR(e.field, "root");
	/* A re-signed root has a new signature: the old reference no longer matches. */
	json_t *root2 = json_deep_copy(root);
	struct an_record_sign_opts o = {.now = NOW + 10, .resign = true};
	CHECK_EQ_INT(an_record_sign(root2, key_a, &o, &e), 0);
	CHECK_EQ_INT(verify(sub, root2, NOW + 10, &e), AN_EROOT);
	CHECK_EQ_STR(e.field, "root[0].signature");
	CHECK_EQ_STR(e.message, "does not match the root record");
	json_decref(root2);
	json_decref(sub);
	json_decref(root);
}

/* Re-sign rec exactly as it is (no field filled in), as a hostile signer would. */
static void sign_raw(json_t *rec, const struct an_privkey *k)
{
	uint8_t d[32], sig[64];
	char hex[8 + 129] = "ed25519=";
	json_object_del(rec, "signature");
	CHECK_EQ_INT(an_record_digest(rec, d), 0);
	CHECK_EQ_INT(an_privkey_sign(k, d, 32, sig), 0);
	sodium_bin2hex(hex + 8, 129, sig, 64);
	json_object_set_new(rec, "signature", json_string(hex));
}

static void test_subdomain_dns_name_is_one_label(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "a.b.mysite", root);
	struct an_record_error e;
	CHECK(sub != NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(sub, "dns"), "name")), "a");
	/* Signed correctly, but dns.name spans two labels: refused, naming the field. */
	json_object_set_new(json_object_get(sub, "dns"), "name", json_string("a.b"));
	sign_raw(sub, key_a);
	CHECK_EQ_INT(verify(sub, root, NOW, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "dns.name");
	json_object_set_new(json_object_get(sub, "dns"), "name", json_string("a"));
	sign_raw(sub, key_a);
	CHECK_EQ_INT(verify(sub, root, NOW, &e), 0);
	json_decref(sub);
	json_decref(root);
}

static void test_subdomain_other_publisher_root(void)
{
	json_t *root_a = sign_new(key_a, "root", "mysite", NULL);
	json_t *root_b = sign_new(key_b, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "TXT", "api.mysite", root_a);
	struct an_record_error e;
	/* Signing under someone else's root is refused. */
	CHECK(sign_new(key_b, "A", "api.mysite", root_a) == NULL);
	CHECK_EQ_INT(verify(sub, root_b, NOW, &e), AN_EROOT);
	CHECK_EQ_STR(e.field, "publisherPublicKey");
	/* A name outside the root's is refused when signing. */
	CHECK(sign_new(key_a, "A", "api.othersite", root_a) == NULL);
	json_decref(sub);
	json_decref(root_a);
	json_decref(root_b);
}

static void test_resign_counters(void)
{
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	struct an_record_error e;
	struct an_record_sign_opts o = {.now = NOW + 86400, .resign = true, .bump_seq = true};
	CHECK_EQ_INT(an_record_sign(r, key_a, &o, &e), 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r, "ttl"), "timesRepublished")), 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "seq")), 1);
	CHECK_EQ_STR(json_string_value(json_object_get(r, "expires")), "2026-11-26T20:00:00Z");
	CHECK_EQ_INT(verify(r, NULL, NOW + 86400, &e), 0);
	/* Re-signing with another key is refused: it is not that key's record. */
	CHECK_EQ_INT(an_record_sign(r, key_b, &o, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "publisherPublicKey");
	json_decref(r);
}

static void test_shape_errors_name_the_field(void)
{
	static const struct {
		const char *path, *value, *field;
		int code;
	} cases[] = {
		{"version", "\"2.0.0\"", "version", AN_EFIELD},
		{"type", "\"MX\"", "type", AN_EFIELD},
		{"seq", "9007199254740992", "seq", AN_ETOOBIG},
		{"seq", "-1", "seq", AN_EFIELD},
		{"seq", "\"1\"", "seq", AN_EFIELD},
		{"expires", "\"tomorrow\"", "expires", AN_EFIELD},
		{"did", "\"dns:xyz\"", "did", AN_EMISMATCH},
		{"lookup", "\"an://mysite\"", "lookup", AN_EFIELD},
		{"publisherPublicKey", "\"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N\"", "publisherPublicKey", AN_EKEYTYPE},
		{"multiaddrs", "[\"not an address\"]", "multiaddrs[0]", AN_EFIELD},
		{"root", "[]", "root", AN_EFIELD},
		{"signature", "\"sha256=00\"", "signature", AN_EFIELD},
		{"unknown", "{\"deep\":[1,18446744073709551]}", "unknown.deep[1]", AN_ETOOBIG},
	};
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *t = json_deep_copy(r);
		json_object_set_new(t, cases[i].path, json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
		struct an_record_error e;
		int rc = verify(t, NULL, NOW, &e);
		if (rc != cases[i].code || strcmp(e.field, cases[i].field) != 0)
			printf("#   case %zu: %d %s: %s\n", i, rc, e.field, e.message);
		CHECK_EQ_INT(rc, cases[i].code);
		CHECK_EQ_STR(e.field, cases[i].field);
		json_decref(t);
	}
	json_t *dns = json_object_get(r, "dns");
	json_object_set_new(dns, "isRoot", json_false());
	struct an_record_error e;
	CHECK_EQ_INT(verify(r, NULL, NOW, &e), AN_EMISMATCH);
	CHECK_EQ_STR(e.field, "dns.isRoot");
	json_decref(r);
}

static void test_oversized_record(void)
{
	json_t *r = json_pack("{s:s}", "type", "root");
	char *big = malloc(8200);
	memset(big, 'x', 8199);
	big[8199] = 0;
	json_object_set_new(r, "pad", json_string(big));
	struct an_record_sign_opts o = {.now = NOW, .name = "mysite"};
	struct an_record_error e;
	CHECK_EQ_INT(an_record_sign(r, key_a, &o, &e), AN_ETOOBIG);
	free(big);
	json_decref(r);
}

static void test_compare(void)
{
	json_t *a = sign_new(key_a, "root", "mysite", NULL);
	json_t *b = json_deep_copy(a);
	struct an_record_sign_opts o = {.now = NOW + 60, .resign = true};
	struct an_record_error e;
	an_record_sign(b, key_a, &o, &e);
	CHECK(an_record_compare(b, a) > 0); /* same seq, later expiry */
	CHECK(an_record_compare(a, b) < 0);
	CHECK_EQ_INT(an_record_compare(a, a), 0);
	json_object_set_new(a, "seq", json_integer(5));
	CHECK(an_record_compare(a, b) > 0); /* seq first */
	json_decref(a);
	json_decref(b);
}

static void test_keys(void)
{
	struct an_buf b;
	an_buf_init(&b, 300);
	CHECK_EQ_INT(an_record_dht_key("abcdefghijklmnop", "api.mysite", &b), 0);
	CHECK_EQ_STR((char *)b.data, "/an/abcdefghijklmnop@api.mysite");
	an_buf_free(&b);
	uint8_t k[34], h[32];
	CHECK_EQ_INT(an_record_name_key("mysite", k), 0);
	crypto_hash_sha256(h, (const uint8_t *)"/an-name/mysite", 15);
	CHECK(k[0] == 0x12 && k[1] == 0x20);
	CHECK_EQ_MEM(k + 2, h, 32);
}

static void test_names_and_times(void)
{
	CHECK(an_record_fqdn_valid("a.b-c.d0"));
	CHECK(!an_record_fqdn_valid("A.b"));
	CHECK(!an_record_fqdn_valid("-a.b"));
	CHECK(!an_record_fqdn_valid("a..b"));
	CHECK(!an_record_fqdn_valid(""));
	char label[70];
	memset(label, 'a', 64);
	label[64] = 0;
	CHECK(!an_record_fqdn_valid(label));
	label[63] = 0;
	CHECK(an_record_fqdn_valid(label));
	int64_t t;
	CHECK_EQ_INT(an_record_parse_time("2026-11-23T20:00:00Z", &t), 0);
	CHECK_EQ_INT(t, NOW);
	CHECK_EQ_INT(an_record_parse_time("2026-02-30T20:00:00Z", &t), AN_EFIELD);
	CHECK_EQ_INT(an_record_parse_time("2026-11-23T20:00:00+00:00", &t), AN_EFIELD);
	CHECK_EQ_INT(an_record_parse_time("2026-11-23 20:00:00Z", &t), AN_EFIELD);
	char ph[17], fq[AN_RECORD_FQDN_MAX + 1];
	CHECK_EQ_INT(an_record_parse_name("an://mysite", true, ph, fq), 0);
	CHECK_EQ_STR(fq, "mysite");
	CHECK_EQ_INT(an_record_parse_name("an://mysite", false, ph, fq), AN_EFIELD);
	CHECK_EQ_INT(an_record_parse_name("https://mysite", true, ph, fq), AN_EFIELD);
}

/* The signature covers the domain-separated digest of the JCS form, as the spec says. */
/* begin / signature / end give an_record_verify's verdict, the signature checked apart. */
static void test_check_steps(void)
{
	json_t *root = sign_new(key_a, "root", "mysite", NULL);
	json_t *sub = sign_new(key_a, "A", "api.mysite", root);
	struct an_record_check c;
	struct an_record_error e;
	struct an_buf scratch;
	an_buf_init(&scratch, 16); /* raised to AN_RECORD_MAX */
	CHECK(root && sub);
	CHECK_EQ_INT(an_record_check_begin(sub, &scratch, &c), 0);
	CHECK_EQ_INT(an_record_check_signature(&c), 0);
	CHECK_EQ_INT(an_record_check_end(sub, &c, 0, root, NOW, 0, &e), 0);
	CHECK_EQ_STR(e.field, "");
	/* A failed signature check is reported as an_record_verify reports it. */
	CHECK_EQ_INT(an_record_check_end(sub, &c, AN_EBADSIG, root, NOW, 0, &e), AN_EBADSIG);
	CHECK_EQ_STR(e.field, "signature");
	/* The clock and the root are end's, after a good signature. */
	CHECK_EQ_INT(an_record_check_end(sub, &c, 0, root, NOW + 3 * 86400, 0, &e), AN_EEXPIRED);
	CHECK_EQ_INT(an_record_check_end(sub, &c, 0, NULL, NOW, 0, &e), AN_EROOT);
	/* A tampered record digests differently: its signature fails alone. */
	json_object_set_new(sub, "seq", json_integer(5));
	CHECK_EQ_INT(an_record_check_begin(sub, &scratch, &c), 0);
	CHECK_EQ_INT(an_record_check_signature(&c), AN_EBADSIG);
	/* A shape error stops at begin; end repeats it whatever sig_rc says. */
	json_object_set_new(sub, "seq", json_string("5"));
	CHECK_EQ_INT(an_record_check_begin(sub, &scratch, &c), AN_EFIELD);
	CHECK_EQ_INT(an_record_check_end(sub, &c, 0, root, NOW, 0, &e), AN_EFIELD);
	CHECK_EQ_STR(e.field, "seq");
	an_buf_free(&scratch);
	json_decref(sub);
	json_decref(root);
}

static void test_signature_input(void)
{
	json_t *r = sign_new(key_a, "root", "mysite", NULL);
	struct an_buf b;
	an_buf_init(&b, AN_RECORD_MAX);
	CHECK_EQ_INT(an_jcs_serialize_without(r, "signature", &b), 0);
	crypto_hash_sha256_state st;
	uint8_t d1[32], d2[32], sig[64];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)"alternet-record-v1\0", 19);
	crypto_hash_sha256_update(&st, b.data, b.len);
	crypto_hash_sha256_final(&st, d1);
	CHECK_EQ_INT(an_record_digest(r, d2), 0);
	CHECK_EQ_MEM(d1, d2, 32);
	struct an_pubkey pub;
	an_privkey_public(key_a, &pub);
	const char *s = json_string_value(json_object_get(r, "signature")) + 8;
	CHECK_EQ_INT(sodium_hex2bin(sig, 64, s, 128, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(crypto_sign_verify_detached(sig, d1, 32, pub.data), 0);
	an_buf_free(&b);
	json_decref(r);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&key_a) || an_privkey_generate(&key_b))
		return 1;
	RUN(test_root_sign_verify);
	RUN(test_did_and_lookup);
	RUN(test_tampered_fields_fail);
	RUN(test_unknown_fields_signed_and_kept);
	RUN(test_wrong_key);
	RUN(test_validity_window);
	RUN(test_subdomain);
	RUN(test_subdomain_dns_name_is_one_label);
	RUN(test_subdomain_other_publisher_root);
	RUN(test_resign_counters);
	RUN(test_shape_errors_name_the_field);
	RUN(test_oversized_record);
	RUN(test_compare);
	RUN(test_keys);
	RUN(test_names_and_times);
	RUN(test_signature_input);
	RUN(test_check_steps);
	an_privkey_free(key_a);
	an_privkey_free(key_b);
	return check_done();
}
