/*
 * claim.h - bare-name claims that cost the claimant: a proof of work bound
 * to the claimant's peer ID and the name.
 *
 * A bare name an://<fqdn> is resolved by listing the providers of its
 * bare-name key, the SHA-256 multihash of "/an-name/<fqdn>"
 * (an_record_name_key).  Anyone may announce themselves there, so a claim
 * carries a proof: a 64-bit nonce such that
 *
 *   SHA-256("alternet-claim-v1\n" || binary peer ID || "\n" || fqdn ||
 *           nonce as 8 bytes big-endian)
 *
 * has at least B leading zero bits; B is the claim's work.  Storing nodes
 * require AN_CLAIM_BITS_DEFAULT (tunable); a fresh key costs 2^B hashes on
 * average, and the proof cannot be moved to another key or another name.
 *
 * On the wire the proof rides in ADD_PROVIDER's record field (kad Message
 * field 3): record.key = "/an-name/<fqdn>", record.value = the 8-byte
 * nonce.  js-libp2p and rust-libp2p ignore that field on ADD_PROVIDER.
 */
#ifndef AN_DHT_CLAIM_H
#define AN_DHT_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"

/* Measured here: libsodium's crypto_hash_sha256 of a ~100-byte input runs
   at 0.57-1 M/s on one core, so 2^20 tries is 1-2 s. */
#define AN_CLAIM_BITS_DEFAULT 20
#define AN_CLAIM_BITS_MAX 40        /* a node cannot require more */
#define AN_CLAIM_NAME_PREFIX "/an-name/"
#define AN_CLAIM_NAME_MAX 512       /* bytes of record.key */
#define AN_CLAIM_NONCE_LEN 8

/*
 * The work of nonce for id (borrowed) and fqdn (borrowed, fqdn_len bytes):
 * the leading zero bits of the hash above, 0..256.
 */
unsigned an_claim_work(const struct an_peerid *id, const char *fqdn, size_t fqdn_len,
		       uint64_t nonce);

/*
 * The first nonce from 0 whose work is at least bits, trying at most
 * max_tries nonces (0: no cap but 2^64).  Deterministic: the same id, name
 * and bits always give the same nonce.  0 (*nonce set), AN_ELIMIT (not
 * found within max_tries), AN_EFIELD (bits over AN_CLAIM_BITS_MAX).
 */
int an_claim_find(const struct an_peerid *id, const char *fqdn, size_t fqdn_len, unsigned bits,
		  uint64_t max_tries, uint64_t *nonce);

/*
 * Check a claim carried on ADD_PROVIDER for key (borrowed multihash, the
 * request's key) from id (borrowed, the sender): name (record.key) must be
 * "/an-name/<fqdn>" whose SHA-256 multihash is key, value (record.value)
 * the 8-byte nonce, and its work at least bits.  *work (may be NULL) gets
 * the work.  0, AN_EMALFORMED (name, key or nonce length wrong),
 * AN_EMISMATCH (not enough work).
 */
int an_claim_verify(const uint8_t *key, size_t key_len, const uint8_t *name, size_t name_len,
		    const uint8_t *value, size_t value_len, const struct an_peerid *id,
		    unsigned bits, unsigned *work);

/* The nonce's 8 bytes, big-endian, into out. */
void an_claim_nonce_bytes(uint64_t nonce, uint8_t out[AN_CLAIM_NONCE_LEN]);

#endif
