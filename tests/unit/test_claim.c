/* Unit tests for libcommon/dht/claim (bare-name proofs of work) and the
 * store's ranking of verified claims (dht/store.c). */
#include "check.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/claim.h"
#include "dht/kad_msg.h"
#include "dht/kad_server.h"
#include "dht/routing.h"
#include "dht/store.h"
#include "record/record.h"
#include "util/error.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1795464000 /* 2026-11-23T20:00:00Z */
#define BITS 8

static struct an_peerid peer_x, peer_y;

static void new_peer(struct an_peerid *id)
{
	struct an_privkey *k = NULL;
	struct an_pubkey pub;
	an_privkey_generate(&k);
	an_privkey_public(k, &pub);
	an_peerid_from_pubkey(&pub, id);
	an_privkey_free(k);
}

/* ---- proofs ---- */

/* The claim of id on fqdn at bits: name, nonce bytes, key. */
struct claim {
	char name[64];
	size_t name_len;
	uint8_t nonce[AN_CLAIM_NONCE_LEN];
	uint64_t n;
	uint8_t key[34];
};

static int claim_make(struct claim *c, const struct an_peerid *id, const char *fqdn, unsigned bits)
{
	int rc = an_claim_find(id, fqdn, strlen(fqdn), bits, 0, &c->n);
	c->name_len = (size_t)snprintf(c->name, sizeof(c->name), "/an-name/%s", fqdn);
	an_claim_nonce_bytes(c->n, c->nonce);
	an_record_name_key(fqdn, c->key);
	return rc;
}

static int verify(const struct claim *c, const struct an_peerid *id, unsigned bits, unsigned *work)
{
	return an_claim_verify(c->key, sizeof(c->key), (const uint8_t *)c->name, c->name_len, c->nonce,
			       sizeof(c->nonce), id, bits, work);
}

static void test_find_verify(void)
{
	struct claim c;
	unsigned work = 0;
	CHECK_EQ_INT(claim_make(&c, &peer_x, "mysite", BITS), 0);
	CHECK_EQ_INT(verify(&c, &peer_x, BITS, &work), 0);
	CHECK(work >= BITS);
	CHECK_EQ_INT(an_claim_work(&peer_x, "mysite", 6, c.n), work);
	/* Deterministic: the first nonce from 0 that has the work. */
	for (uint64_t n = 0; n < c.n; n++)
		CHECK(an_claim_work(&peer_x, "mysite", 6, n) < BITS);
	uint64_t again = 0;
	CHECK_EQ_INT(an_claim_find(&peer_x, "mysite", 6, BITS, 0, &again), 0);
	CHECK_EQ_INT(again, c.n);
}

static void test_wrong_claims_refused(void)
{
	struct claim c, other;
	CHECK_EQ_INT(claim_make(&c, &peer_x, "mysite", BITS), 0);
	/* Another peer cannot reuse the proof (odds of a chance pass: 2^-8). */
	unsigned wy = an_claim_work(&peer_y, "mysite", 6, c.n);
	CHECK_EQ_INT(verify(&c, &peer_y, BITS, NULL), wy >= BITS ? 0 : AN_EMISMATCH);
	/* Another name under the same key: the key no longer matches. */
	other = c;
	memcpy(other.name, "/an-name/othersite", 18);
	other.name_len = 18;
	CHECK_EQ_INT(verify(&other, &peer_x, BITS, NULL), AN_EMALFORMED);
	/* The proof for another name under that name's own key. */
	CHECK_EQ_INT(claim_make(&other, &peer_x, "othersite", 0), 0);
	memcpy(other.nonce, c.nonce, sizeof(c.nonce));
	CHECK_EQ_INT(verify(&other, &peer_x, BITS, NULL),
		     an_claim_work(&peer_x, "othersite", 9, c.n) >= BITS ? 0 : AN_EMISMATCH);
	/* A wrong nonce: the first one before it has less work. */
	other = c;
	an_claim_nonce_bytes(c.n ? c.n - 1 : 1, other.nonce);
	CHECK_EQ_INT(verify(&other, &peer_x, BITS, NULL), AN_EMISMATCH);
	/* Not the bare-name namespace, a nonce of the wrong length, a wrong key. */
	other = c;
	memcpy(other.name, "/an/xx", 6);
	other.name_len = 6;
	CHECK_EQ_INT(verify(&other, &peer_x, BITS, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(an_claim_verify(c.key, sizeof(c.key), (const uint8_t *)c.name, c.name_len, c.nonce,
				     7, &peer_x, BITS, NULL),
		     AN_EMALFORMED);
	other = c;
	other.key[5] ^= 1;
	CHECK_EQ_INT(verify(&other, &peer_x, BITS, NULL), AN_EMALFORMED);
}

static void test_bits_tunable(void)
{
	struct claim lo, hi;
	unsigned work = 0;
	CHECK_EQ_INT(claim_make(&lo, &peer_x, "mysite", 2), 0);
	CHECK_EQ_INT(claim_make(&hi, &peer_x, "mysite", 12), 0);
	CHECK(hi.n >= lo.n);
	CHECK_EQ_INT(verify(&hi, &peer_x, 12, &work), 0);
	CHECK(work >= 12);
	/* A node requiring more than the proof has refuses it. */
	CHECK_EQ_INT(verify(&hi, &peer_x, work + 1, NULL), AN_EMISMATCH);
	CHECK_EQ_INT(verify(&lo, &peer_x, 0, NULL), 0);
	/* Bounded search, and a cap on what may be asked for. */
	uint64_t n = 0;
	CHECK_EQ_INT(an_claim_find(&peer_x, "mysite", 6, 12, hi.n, &n), AN_ELIMIT);
	CHECK_EQ_INT(an_claim_find(&peer_x, "mysite", 6, AN_CLAIM_BITS_MAX + 1, 1, &n), AN_EFIELD);
}

/* ---- the store's ranking ---- */

static char tmp_parent[64];

static struct an_store *open_store(const struct an_store_config *cfg)
{
	struct an_store *s = NULL;
	char dir[96];
	snprintf(tmp_parent, sizeof(tmp_parent), "/tmp/an-claim-test-XXXXXX");
	if (!mkdtemp(tmp_parent))
		return NULL;
	snprintf(dir, sizeof(dir), "%s/store", tmp_parent);
	if (an_store_open(&s, dir, cfg) != 0)
		return NULL;
	return s;
}

static void close_store(struct an_store *s)
{
	char p[128];
	an_store_close(s);
	snprintf(p, sizeof(p), "%s/store/data.mdb", tmp_parent);
	unlink(p);
	snprintf(p, sizeof(p), "%s/store/lock.mdb", tmp_parent);
	unlink(p);
	snprintf(p, sizeof(p), "%s/store", tmp_parent);
	rmdir(p);
	rmdir(tmp_parent);
}

static bool listed(const struct an_store_provider *out, size_t n, const struct an_peerid *id)
{
	for (size_t i = 0; i < n; i++)
		if (an_peerid_equal(&out[i].id, id))
			return true;
	return false;
}

static void test_fresh_claims_cannot_displace(void)
{
	struct an_store *s = open_store(NULL);
	struct an_store_provider out[AN_STORE_PROVIDERS_PER_KEY_DEFAULT];
	uint8_t mh[34];
	size_t n = 0;
	if (!s) {
		CHECK(s != NULL);
		return;
	}
	an_record_name_key("mysite", mh);
	CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &peer_x, NULL, 0, true, 20, NOW), 0);
	/* 20 fresh keys with valid proofs: 19 fit, the 20th finds the key full. */
	for (int i = 0; i < 20; i++) {
		struct an_peerid id;
		new_peer(&id);
		CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &id, NULL, 0, true, 30, NOW + 1 + i),
			     i < 19 ? 0 : AN_ELIMIT);
	}
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 30, out, 20, &n), 0);
	CHECK_EQ_INT(n, 20);
	CHECK(an_peerid_equal(&out[0].id, &peer_x)); /* the established claimant first */
	CHECK(out[0].verified);
	CHECK_EQ_INT(out[0].first_seen, NOW);
	/* A refresh without a proof keeps the claim and its first-seen time. */
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &peer_x, NULL, 0, NOW + 40), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 40, out, 1, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(an_peerid_equal(&out[0].id, &peer_x));
	CHECK(out[0].verified);
	CHECK_EQ_INT(out[0].first_seen, NOW);
	close_store(s);
}

static void test_verified_evicts_unverified(void)
{
	struct an_store_config cfg = {.max_providers_per_key = 3};
	struct an_store *s = open_store(&cfg);
	struct an_store_provider out[4];
	struct an_peerid ids[3];
	uint8_t mh[34];
	size_t n = 0;
	if (!s) {
		CHECK(s != NULL);
		return;
	}
	an_record_name_key("mysite", mh);
	for (int i = 0; i < 3; i++) {
		new_peer(&ids[i]);
		CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &ids[i], NULL, 0, NOW + i), 0);
	}
	CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &peer_x, NULL, 0, true, 20, NOW + 10), 0);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 10, out, 4, &n), 0);
	CHECK_EQ_INT(n, 3);
	CHECK(an_peerid_equal(&out[0].id, &peer_x)); /* verified first */
	CHECK(!listed(out, n, &ids[2]));             /* the youngest unverified went */
	CHECK(listed(out, n, &ids[0]) && listed(out, n, &ids[1]));
	/* Unverified ones follow, oldest first. */
	CHECK(an_peerid_equal(&out[1].id, &ids[0]));
	close_store(s);
}

static void test_unverified_cannot_enter_full_claims(void)
{
	struct an_store_config cfg = {.max_providers_per_key = 2};
	struct an_store *s = open_store(&cfg);
	struct an_store_provider out[4];
	uint8_t mh[34];
	size_t n = 0;
	struct an_peerid z;
	if (!s) {
		CHECK(s != NULL);
		return;
	}
	new_peer(&z);
	an_record_name_key("mysite", mh);
	CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &peer_x, NULL, 0, true, 20, NOW), 0);
	CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &peer_y, NULL, 0, true, 20, NOW + 1), 0);
	CHECK_EQ_INT(an_store_provider_add(s, mh, 34, &z, NULL, 0, NOW + 2), AN_ELIMIT);
	CHECK_EQ_INT(an_store_provider_claim(s, mh, 34, &z, NULL, 0, true, 30, NOW + 2), AN_ELIMIT);
	CHECK_EQ_INT(an_store_providers_get(s, mh, 34, NOW + 2, out, 4, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK(an_peerid_equal(&out[0].id, &peer_x));
	CHECK(an_peerid_equal(&out[1].id, &peer_y));
	close_store(s);
}

/* ---- the server's side: ADD_PROVIDER with and without a claim ---- */

static struct an_kad_provider added;
static int nadded;

static int stub_add_provider(void *arg, const uint8_t *key, size_t key_len,
			     const struct an_kad_provider *p, uint64_t now_ms)
{
	(void)arg; (void)key; (void)key_len; (void)now_ms;
	added = *p;
	nadded++;
	return 0;
}

/* ADD_PROVIDER of key from `from`, with the claim c (NULL: no record field), handled by srv. */
static int add_provider(const struct an_kad_server *srv, const struct an_peerid *from,
			const uint8_t *key, const struct claim *c)
{
	struct an_kad_msg m, req;
	struct an_buf body, resp;
	struct an_multiaddr a;
	int rc = -1;
	nadded = 0;
	an_kad_msg_init(&m);
	an_buf_init(&body, AN_KAD_MSG_SEND_MAX);
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	m.type = AN_KAD_ADD_PROVIDER;
	m.has_key = true;
	m.key.p = key;
	m.key.len = 34;
	if (c) {
		m.has_record = true;
		m.record.key.p = (const uint8_t *)c->name;
		m.record.key.len = c->name_len;
		m.record.value.p = c->nonce;
		m.record.value.len = sizeof(c->nonce);
	}
	if (an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &a) == 0 &&
	    an_kad_msg_add_peer_ma(&m, true, from, &a, 1, AN_KAD_CONNECTED) == 0 &&
	    an_kad_msg_encode(&m, &body) == 0 &&
	    an_kad_msg_decode(body.data, body.len, AN_KAD_MSG_MAX_DEFAULT, &req) == 0) {
		rc = an_kad_server_handle(srv, from, &req, 0, &resp, NULL);
		an_kad_msg_free(&req);
	}
	an_kad_msg_free(&m);
	an_buf_free(&body);
	an_buf_free(&resp);
	return rc;
}

static void test_server_checks_claims(void)
{
	struct an_kad_server srv;
	struct an_rt rt;
	struct claim c, weak;
	memset(&srv, 0, sizeof(srv));
	new_peer(&srv.self);
	an_rt_init(&rt, &srv.self, NULL);
	srv.rt = &rt;
	srv.store.add_provider = stub_add_provider;
	srv.claim_bits = BITS;
	CHECK_EQ_INT(claim_make(&c, &peer_x, "mysite", BITS), 0);
	/* A good claim is stored verified, with its work. */
	CHECK_EQ_INT(add_provider(&srv, &peer_x, c.key, &c), AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(nadded, 1);
	CHECK(added.verified);
	CHECK(added.work >= BITS);
	/* The same proof from another peer, or short of the bits, is refused. */
	CHECK_EQ_INT(add_provider(&srv, &peer_y, c.key, &c), AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(nadded, an_claim_work(&peer_y, "mysite", 6, c.n) >= BITS ? 1 : 0);
	weak = c;
	an_claim_nonce_bytes(c.n ? c.n - 1 : 1, weak.nonce);
	CHECK_EQ_INT(add_provider(&srv, &peer_x, c.key, &weak), AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(nadded, 0);
	/* Without a record field (js, rust, IPFS): stored unverified. */
	CHECK_EQ_INT(add_provider(&srv, &peer_x, c.key, NULL), AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(nadded, 1);
	CHECK(!added.verified);
	/* The bits are the server's to set. */
	srv.claim_bits = an_claim_work(&peer_x, "mysite", 6, c.n) + 1;
	CHECK_EQ_INT(add_provider(&srv, &peer_x, c.key, &c), AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(nadded, 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	new_peer(&peer_x);
	new_peer(&peer_y);
	RUN(test_find_verify);
	RUN(test_wrong_claims_refused);
	RUN(test_bits_tunable);
	RUN(test_server_checks_claims);
	RUN(test_fresh_claims_cannot_displace);
	RUN(test_verified_evicts_unverified);
	RUN(test_unverified_cannot_enter_full_claims);
	return check_done();
}
