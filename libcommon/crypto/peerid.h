/*
 * peerid.h - libp2p peer IDs and the Alternet peer hash.
 *
 * A peer ID is the multihash of the serialized PublicKey: identity multihash
 * (0x00, len, bytes) when that is at most 42 bytes (every Ed25519 key), else
 * sha2-256 (0x12 0x20 digest).  Text: base58btc ("12D3KooW...", "Qm...");
 * the CIDv1 form (multibase 'b' base32 of 0x01 0x72 multihash) parses too.
 *
 * Peer hash (Alternet): lowercase base32, no padding, of the first 80 bits
 * of SHA-256 over the binary peer ID: 16 characters.
 */
#ifndef AN_CRYPTO_PEERID_H
#define AN_CRYPTO_PEERID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"

#define AN_PEERID_MAX 64       /* binary multihash bytes */
#define AN_PEERID_TEXT_MAX 128 /* base58 or CID text, NUL included */
#define AN_PEERHASH_LEN 16     /* characters, NUL not included */

struct an_peerid {
	size_t len;
	uint8_t bytes[AN_PEERID_MAX];
};

/* The peer ID of a public key. */
int an_peerid_from_pubkey(const struct an_pubkey *k, struct an_peerid *out);

/* Take a binary multihash (from a protobuf field): checks it is a identity or sha2-256 multihash. */
int an_peerid_from_bytes(const uint8_t *p, size_t len, struct an_peerid *out);

/* Parse the text forms (base58btc multihash or CIDv1 with codec libp2p-key). */
int an_peerid_parse(const char *text, struct an_peerid *out);

/* base58btc text into out (AN_PEERID_TEXT_MAX bytes is enough). */
int an_peerid_format(const struct an_peerid *id, char *out, size_t outcap);

/* CIDv1 text ("bafz...") into out. */
int an_peerid_format_cid(const struct an_peerid *id, char *out, size_t outcap);

/*
 * The public key inlined in an identity-multihash peer ID.  AN_ENOTFOUND for
 * sha2-256 peer IDs (RSA): their key must come from elsewhere.
 */
int an_peerid_pubkey(const struct an_peerid *id, struct an_pubkey *out);

bool an_peerid_equal(const struct an_peerid *a, const struct an_peerid *b);

/* The 16-character peer hash of id into out (room for 17). */
int an_peerhash(const struct an_peerid *id, char out[AN_PEERHASH_LEN + 1]);

/* True if text looks like a syntactically valid peer hash (16 lowercase base32 chars). */
bool an_peerhash_valid(const char *text);

#endif
