/*
 * multihash.h - self-describing hashes: uvarint(code) || uvarint(len) || digest
 * (multiformats/multihash).  We produce and fully check two functions:
 * identity (0x00, the digest is the data itself, as in Ed25519 peer IDs) and
 * sha2-256 (0x12, 32-byte digest, as in provider keys and RSA peer IDs).
 * Other codes can be walked over with an_multihash_decode but not checked.
 */
#ifndef AN_ENCODING_MULTIHASH_H
#define AN_ENCODING_MULTIHASH_H

#include <stddef.h>
#include <stdint.h>

#define AN_MULTIHASH_IDENTITY 0x00
#define AN_MULTIHASH_SHA2_256 0x12
#define AN_MULTIHASH_SHA2_256_DIGEST 32
/* A sha2-256 multihash: 0x12 0x20 and the digest. */
#define AN_MULTIHASH_SHA2_256_LEN (2 + AN_MULTIHASH_SHA2_256_DIGEST)
/* Largest digest we accept, for any code (identity keys stay far below). */
#define AN_MULTIHASH_MAX_DIGEST 128
/* Largest binary multihash: two short varints and the biggest digest. */
#define AN_MULTIHASH_MAX (2 * 9 + AN_MULTIHASH_MAX_DIGEST)
/* Text (base58btc) of the largest multihash, NUL included. */
#define AN_MULTIHASH_TEXT_MAX 256

/* A decoded multihash; digest borrows from the input it was decoded from. */
struct an_multihash {
	uint64_t code;
	const uint8_t *digest;
	size_t len;
};

/*
 * Decode the multihash at the start of p[0..len) (borrowed; mh->digest points
 * into it).  *used gets the bytes it spans; bytes after it are left alone.
 * Any code is accepted.  0, AN_EMALFORMED (bad varint), AN_ETOOBIG (digest
 * longer than AN_MULTIHASH_MAX_DIGEST), AN_ETRUNCATED (ends early).
 */
int an_multihash_decode(const uint8_t *p, size_t len, struct an_multihash *mh, size_t *used);

/*
 * Check that p[0..len) is exactly one multihash we support: identity with a
 * digest of 0..AN_MULTIHASH_MAX_DIGEST bytes, or sha2-256 with 32 bytes.
 * 0 or AN_EMALFORMED (also for other codes, trailing bytes, truncation).
 */
int an_multihash_check(const uint8_t *p, size_t len);

/*
 * Build code || len || digest into out (outcap bytes); *outlen gets the
 * length.  0, AN_ETOOBIG (digest over the cap or out too small),
 * AN_EMALFORMED (code over the varint range).  digest is borrowed.
 */
int an_multihash_encode(uint64_t code, const uint8_t *digest, size_t dlen, uint8_t *out,
			size_t outcap, size_t *outlen);

/* The sha2-256 multihash of data[0..len) (borrowed) into out.  Returns 0. */
int an_multihash_sha256(const void *data, size_t len, uint8_t out[AN_MULTIHASH_SHA2_256_LEN]);

/*
 * base58btc text of the multihash p[0..len), which must pass
 * an_multihash_check, into out (outcap bytes with the NUL;
 * AN_MULTIHASH_TEXT_MAX is enough).  0, AN_EMALFORMED, AN_ETOOBIG.
 */
int an_multihash_format(const uint8_t *p, size_t len, char *out, size_t outcap);

/*
 * Parse base58btc text (NUL-terminated, borrowed) into a checked binary
 * multihash in out (outcap bytes); *outlen gets its length.
 * 0, AN_EMALFORMED, AN_ETOOBIG.
 */
int an_multihash_parse(const char *text, uint8_t *out, size_t outcap, size_t *outlen);

#endif
