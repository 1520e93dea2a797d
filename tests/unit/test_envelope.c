/*
 * test_envelope.c - signed envelopes and relay reservation vouchers.
 *
 * Vectors: tests/interop/js/relay-vectors.mjs prints them as the pinned js
 * packages (@libp2p/circuit-relay-v2 4.2.13, @libp2p/peer-record) encode
 * them, with Ed25519 keys from the seeds 32 x 0x01 (relay) and 32 x 0x02
 * (peer).  Ed25519 signatures are deterministic, so a sealed voucher must
 * equal js's byte for byte.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>

#include "check.h"
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "relay/envelope.h"
#include "util/error.h"

#define RELAY_ID "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
#define PEER_ID "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
#define EXPIRATION 1700000000ULL

static const char voucher_hex[] =
	"0a260024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	"12260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	"1880e2cfaa06";

static const char envelope_hex[] =
	"0a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	"12020302"
	"1a56" "0a260024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	"12260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	"1880e2cfaa06"
	"2a4031285ce1e0c9c3b03e318e845c0a2c505908f76e0321c92c4c84e7651285a62f4331fbcc4e5761"
	"1df9c73f46dace9ca3a38c51365d148c2acd54ee8838f07702";

/* The Ed25519 key whose 32-byte seed is all `fill`. */
static struct an_privkey *key_from_seed(unsigned char fill)
{
	unsigned char seed[32], pk[32], sk[64], pb[68] = {0x08, 0x01, 0x12, 0x40};
	struct an_privkey *k = NULL;
	memset(seed, fill, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memcpy(pb + 4, sk, 64); /* libsodium's secret key is seed || pub */
	if (an_privkey_decode(pb, sizeof(pb), &k) < 0)
		return NULL;
	return k;
}

static int unhex(const char *hex, uint8_t *out, size_t cap)
{
	return check_unhex(hex, out, cap);
}

static void test_voucher_encode_matches_js(void)
{
	struct an_voucher v;
	struct an_buf b;
	uint8_t want[256];
	int n = unhex(voucher_hex, want, sizeof(want));
	CHECK_EQ_INT(an_peerid_parse(RELAY_ID, &v.relay), 0);
	CHECK_EQ_INT(an_peerid_parse(PEER_ID, &v.peer), 0);
	v.expiration = EXPIRATION;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_voucher_encode(&v, &b), 0);
	CHECK_EQ_INT(b.len, n);
	if ((int)b.len == n)
		CHECK_EQ_MEM(b.data, want, b.len);
	an_buf_free(&b);
}

static void test_voucher_sign_matches_js(void)
{
	struct an_privkey *relay = key_from_seed(1);
	struct an_peerid peer;
	struct an_buf b;
	uint8_t want[512];
	int n = unhex(envelope_hex, want, sizeof(want));
	CHECK(relay != NULL);
	CHECK_EQ_INT(an_peerid_parse(PEER_ID, &peer), 0);
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_voucher_sign(relay, &peer, EXPIRATION, &b), 0);
	CHECK_EQ_INT(b.len, n);
	if ((int)b.len == n)
		CHECK_EQ_MEM(b.data, want, b.len);
	an_buf_free(&b);
	an_privkey_free(relay);
}

static void test_voucher_open_js(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_voucher v;
	struct an_peerid relay, peer;
	CHECK_EQ_INT(an_voucher_open(env, (size_t)n, &v), 0);
	CHECK_EQ_INT(an_peerid_parse(RELAY_ID, &relay), 0);
	CHECK_EQ_INT(an_peerid_parse(PEER_ID, &peer), 0);
	CHECK(an_peerid_equal(&v.relay, &relay));
	CHECK(an_peerid_equal(&v.peer, &peer));
	CHECK_EQ_INT(v.expiration, EXPIRATION);
}

static void test_envelope_open_fields(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_envelope e;
	CHECK_EQ_INT(an_envelope_open(AN_VOUCHER_DOMAIN, env, (size_t)n, &e), 0);
	CHECK_EQ_INT(e.key.type, AN_KEY_ED25519);
	CHECK_EQ_INT(e.payload_type_len, 2);
	CHECK_EQ_MEM(e.payload_type, an_voucher_payload_type, 2);
	CHECK_EQ_INT(e.payload_len, 0x56);
}

static void test_envelope_bad_signature(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_voucher v;
	env[n - 1] ^= 0x01; /* last signature byte */
	CHECK_EQ_INT(an_voucher_open(env, (size_t)n, &v), AN_EBADSIG);
}

static void test_envelope_payload_tampered(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_voucher v;
	/* the expiration varint's first byte, inside the payload */
	size_t off = 38 + 4 + 2 + 0x56 - 5;
	CHECK_EQ_INT(env[off], 0x80);
	env[off] = 0x81;
	CHECK_EQ_INT(an_voucher_open(env, (size_t)n, &v), AN_EBADSIG);
}

static void test_envelope_wrong_domain(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_envelope e;
	CHECK_EQ_INT(an_envelope_open("libp2p-peer-record", env, (size_t)n, &e), AN_EBADSIG);
}

static void test_envelope_seal_open_roundtrip(void)
{
	struct an_privkey *k = key_from_seed(7);
	static const uint8_t type[] = {0x03, 0x01};
	static const uint8_t payload[] = "hello";
	struct an_buf b;
	struct an_envelope e;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_envelope_seal(k, "test-domain", type, 2, payload, 5, &b), 0);
	CHECK_EQ_INT(an_envelope_open("test-domain", b.data, b.len, &e), 0);
	CHECK_EQ_INT(e.payload_len, 5);
	CHECK_EQ_MEM(e.payload, payload, 5);
	an_buf_free(&b);
	an_privkey_free(k);
}

static void test_envelope_empty_payload(void)
{
	struct an_privkey *k = key_from_seed(7);
	static const uint8_t type[] = {0x03, 0x01};
	struct an_buf b;
	struct an_envelope e;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_envelope_seal(k, "d", type, 2, NULL, 0, &b), 0);
	CHECK_EQ_INT(an_envelope_open("d", b.data, b.len, &e), 0);
	CHECK_EQ_INT(e.payload_len, 0);
	an_buf_free(&b);
	an_privkey_free(k);
}

static void test_envelope_seal_refuses_empty_domain(void)
{
	struct an_privkey *k = key_from_seed(7);
	static const uint8_t type[] = {0x03, 0x01};
	struct an_buf b;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_envelope_seal(k, "", type, 2, NULL, 0, &b), -EINVAL);
	CHECK_EQ_INT(an_envelope_seal(k, "d", type, 0, NULL, 0, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
	an_privkey_free(k);
}

static void test_envelope_seal_cap(void)
{
	struct an_privkey *k = key_from_seed(7);
	static const uint8_t type[] = {0x03, 0x01};
	struct an_buf b;
	an_buf_init(&b, 50);
	CHECK_EQ_INT(an_envelope_seal(k, "d", type, 2, (const uint8_t *)"x", 1, &b), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
	an_privkey_free(k);
}

static void test_envelope_missing_signature(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_envelope e;
	/* drop the trailing signature field (2a 40 + 64 bytes) */
	CHECK_EQ_INT(an_envelope_open(AN_VOUCHER_DOMAIN, env, (size_t)n - 66, &e), AN_EFIELD);
}

static void test_envelope_truncated(void)
{
	uint8_t env[512];
	int n = unhex(envelope_hex, env, sizeof(env));
	struct an_envelope e;
	CHECK_EQ_INT(an_envelope_open(AN_VOUCHER_DOMAIN, env, (size_t)n - 1, &e), AN_ETRUNCATED);
}

static void test_envelope_too_big(void)
{
	static uint8_t big[AN_ENVELOPE_MAX + 1];
	struct an_envelope e;
	CHECK_EQ_INT(an_envelope_open(AN_VOUCHER_DOMAIN, big, sizeof(big), &e), AN_ETOOBIG);
}

static void test_voucher_other_payload_type(void)
{
	struct an_privkey *relay = key_from_seed(1);
	static const uint8_t peer_record_type[] = {0x03, 0x01};
	uint8_t payload[256];
	int n = unhex(voucher_hex, payload, sizeof(payload));
	struct an_buf b;
	struct an_voucher v;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_envelope_seal(relay, AN_VOUCHER_DOMAIN, peer_record_type, 2, payload,
				      (size_t)n, &b), 0);
	CHECK_EQ_INT(an_voucher_open(b.data, b.len, &v), AN_EMISMATCH);
	an_buf_free(&b);
	an_privkey_free(relay);
}

static void test_voucher_signed_by_other_key(void)
{
	/* the payload names the relay (seed 1) but the peer (seed 2) signs */
	struct an_privkey *other = key_from_seed(2);
	uint8_t payload[256];
	int n = unhex(voucher_hex, payload, sizeof(payload));
	struct an_buf b;
	struct an_voucher v;
	an_buf_init(&b, 1024);
	CHECK_EQ_INT(an_envelope_seal(other, AN_VOUCHER_DOMAIN, an_voucher_payload_type, 2, payload,
				      (size_t)n, &b), 0);
	CHECK_EQ_INT(an_voucher_open(b.data, b.len, &v), AN_EMISMATCH);
	an_buf_free(&b);
	an_privkey_free(other);
}

static void test_voucher_missing_expiration(void)
{
	uint8_t payload[256];
	int n = unhex(voucher_hex, payload, sizeof(payload));
	struct an_voucher v;
	CHECK_EQ_INT(an_voucher_decode(payload, (size_t)n - 6, &v), AN_EFIELD);
}

static void test_voucher_bad_peer_id(void)
{
	static const uint8_t bad[] = {0x0a, 0x02, 0x99, 0x00, 0x12, 0x00, 0x18, 0x01};
	struct an_voucher v;
	CHECK_EQ_INT(an_voucher_decode(bad, sizeof(bad), &v), AN_EMALFORMED);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_voucher_encode_matches_js);
	RUN(test_voucher_sign_matches_js);
	RUN(test_voucher_open_js);
	RUN(test_envelope_open_fields);
	RUN(test_envelope_bad_signature);
	RUN(test_envelope_payload_tampered);
	RUN(test_envelope_wrong_domain);
	RUN(test_envelope_seal_open_roundtrip);
	RUN(test_envelope_empty_payload);
	RUN(test_envelope_seal_refuses_empty_domain);
	RUN(test_envelope_seal_cap);
	RUN(test_envelope_missing_signature);
	RUN(test_envelope_truncated);
	RUN(test_envelope_too_big);
	RUN(test_voucher_other_payload_type);
	RUN(test_voucher_signed_by_other_key);
	RUN(test_voucher_missing_expiration);
	RUN(test_voucher_bad_peer_id);
	return check_done();
}
