/* claim.c - bare-name claims with a proof of work (see claim.h). */
#include "dht/claim.h"

#include <sodium.h>
#include <string.h>

#include "util/error.h"

#define CLAIM_TAG "alternet-claim-v1\n"

void an_claim_nonce_bytes(uint64_t nonce, uint8_t out[AN_CLAIM_NONCE_LEN])
{
	for (int i = 0; i < AN_CLAIM_NONCE_LEN; i++)
		out[i] = (uint8_t)(nonce >> (8 * (AN_CLAIM_NONCE_LEN - 1 - i)));
}

static unsigned leading_zeros(const uint8_t h[32])
{
	unsigned bits = 0;
	for (int i = 0; i < 32; i++) {
		if (h[i] == 0) {
			bits += 8;
			continue;
		}
		for (uint8_t b = h[i]; !(b & 0x80); b <<= 1)
			bits++;
		break;
	}
	return bits;
}

/* The hash state over everything but the nonce, reused for every try. */
static void claim_prefix(crypto_hash_sha256_state *st, const struct an_peerid *id,
			 const char *fqdn, size_t fqdn_len)
{
	crypto_hash_sha256_init(st);
	crypto_hash_sha256_update(st, (const uint8_t *)CLAIM_TAG, sizeof(CLAIM_TAG) - 1);
	crypto_hash_sha256_update(st, id->bytes, id->len);
	crypto_hash_sha256_update(st, (const uint8_t *)"\n", 1);
	crypto_hash_sha256_update(st, (const uint8_t *)fqdn, fqdn_len);
}

static unsigned work_from(const crypto_hash_sha256_state *prefix, uint64_t nonce)
{
	crypto_hash_sha256_state st = *prefix;
	uint8_t nb[AN_CLAIM_NONCE_LEN], h[32];
	an_claim_nonce_bytes(nonce, nb);
	crypto_hash_sha256_update(&st, nb, sizeof(nb));
	crypto_hash_sha256_final(&st, h);
	return leading_zeros(h);
}

unsigned an_claim_work(const struct an_peerid *id, const char *fqdn, size_t fqdn_len,
		       uint64_t nonce)
{
	crypto_hash_sha256_state st;
	claim_prefix(&st, id, fqdn, fqdn_len);
	return work_from(&st, nonce);
}

int an_claim_find(const struct an_peerid *id, const char *fqdn, size_t fqdn_len, unsigned bits,
		  uint64_t max_tries, uint64_t *nonce)
{
	crypto_hash_sha256_state st;
	if (bits > AN_CLAIM_BITS_MAX)
		return AN_EFIELD;
	claim_prefix(&st, id, fqdn, fqdn_len);
	for (uint64_t n = 0; max_tries == 0 || n < max_tries; n++) {
		if (work_from(&st, n) >= bits) {
			*nonce = n;
			return 0;
		}
		if (n == UINT64_MAX)
			break;
	}
	return AN_ELIMIT;
}

int an_claim_verify(const uint8_t *key, size_t key_len, const uint8_t *name, size_t name_len,
		    const uint8_t *value, size_t value_len, const struct an_peerid *id,
		    unsigned bits, unsigned *work)
{
	const size_t plen = sizeof(AN_CLAIM_NAME_PREFIX) - 1;
	uint8_t mh[34];
	uint64_t nonce = 0;
	unsigned w;
	if (work)
		*work = 0;
	if (name_len <= plen || name_len > AN_CLAIM_NAME_MAX ||
	    memcmp(name, AN_CLAIM_NAME_PREFIX, plen) != 0 || value_len != AN_CLAIM_NONCE_LEN ||
	    key_len != sizeof(mh))
		return AN_EMALFORMED;
	mh[0] = 0x12;
	mh[1] = 0x20;
	crypto_hash_sha256(mh + 2, name, name_len);
	if (sodium_memcmp(mh, key, sizeof(mh)) != 0)
		return AN_EMALFORMED;
	for (size_t i = 0; i < AN_CLAIM_NONCE_LEN; i++)
		nonce = nonce << 8 | value[i];
	w = an_claim_work(id, (const char *)name + plen, name_len - plen, nonce);
	if (work)
		*work = w;
	return w >= bits ? 0 : AN_EMISMATCH;
}
