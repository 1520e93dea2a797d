/*
 * key.h - libp2p keys: the PublicKey / PrivateKey protobufs of the peer-id
 * spec, Ed25519 signing, and signature checks for every key type a libp2p
 * peer may present (Ed25519 with libsodium; RSA and ECDSA P-256 with
 * libtomcrypt; secp256k1 over libtommath, since libtomcrypt 1.18.2 has no
 * a = 0 curves).
 *
 *   message PublicKey  { required KeyType Type = 1; required bytes Data = 2; }
 *   message PrivateKey { required KeyType Type = 1; required bytes Data = 2; }
 *   enum KeyType { RSA = 0; Ed25519 = 1; Secp256k1 = 2; ECDSA = 3; }
 *
 * Private keys are Ed25519 only (what we generate, and what js-libp2p and
 * rust-libp2p default to); their 64 secret bytes live in sodium_malloc()
 * memory and are wiped on free.
 */
#ifndef AN_CRYPTO_KEY_H
#define AN_CRYPTO_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum an_key_type {
	AN_KEY_RSA = 0,
	AN_KEY_ED25519 = 1,
	AN_KEY_SECP256K1 = 2,
	AN_KEY_ECDSA = 3
};

/* Largest Data accepted in a PublicKey (an 8192-bit RSA key in DER fits). */
#define AN_PUBKEY_DATA_MAX 1100
/* Largest serialized PublicKey protobuf. */
#define AN_PUBKEY_PB_MAX (AN_PUBKEY_DATA_MAX + 8)
/* Largest key file accepted (the Ed25519 PrivateKey protobuf is 68 bytes; legacy 100). */
#define AN_PRIVKEY_FILE_MAX 4096

struct an_pubkey {
	enum an_key_type type;
	size_t len;                          /* bytes in data */
	uint8_t data[AN_PUBKEY_DATA_MAX];    /* Ed25519: 32 raw bytes; RSA: PKIX DER;
	                                        secp256k1: 33-byte compressed; ECDSA: PKIX DER */
};

struct an_privkey; /* opaque; Ed25519 */

/* Short lowercase name: "ed25519", "rsa", "secp256k1", "ecdsa". */
const char *an_key_type_name(enum an_key_type type);

/* New random Ed25519 key in *out (caller frees with an_privkey_free). */
int an_privkey_generate(struct an_privkey **out);

/*
 * Decode a PrivateKey protobuf (Data = seed||pub, 64 bytes; the legacy 96-byte
 * form priv||pub||pub is accepted when both public halves agree; the public
 * half must match the seed).  AN_EKEYTYPE for non-Ed25519 keys,
 * AN_EMALFORMED otherwise.  *out is new.
 */
int an_privkey_decode(const uint8_t *pb, size_t len, struct an_privkey **out);

/*
 * Encode k as a PrivateKey protobuf into sodium_malloc() memory (*out, *len;
 * the caller releases it with sodium_free()).
 */
int an_privkey_encode(const struct an_privkey *k, uint8_t **out, size_t *len);

/* Read and decode a key file (refused if group/others can access it: AN_EKEYPERM). */
int an_privkey_load(const char *path, struct an_privkey **out);

/* Write k to path, mode 0600, O_EXCL unless force (see an_write_secret_file). */
int an_privkey_save(const struct an_privkey *k, const char *path, bool force);

/* NULL-safe; wipes the secret. */
void an_privkey_free(struct an_privkey *k);

/* The public half of k. */
void an_privkey_public(const struct an_privkey *k, struct an_pubkey *out);

/* Ed25519 (RFC 8032) signature of msg into sig. */
int an_privkey_sign(const struct an_privkey *k, const uint8_t *msg, size_t len, uint8_t sig[64]);

/*
 * Decode a PublicKey protobuf of any of the four types into *out.
 * AN_EMALFORMED on bad encoding (including a non-deterministic encoding of
 * any key: fields out of order, repeated or unknown, non-minimal varints;
 * an Ed25519 key that is not 32 bytes; a secp256k1 key that is not a 33-byte
 * compressed point), AN_ETRUNCATED if pb ends early, AN_ETOOBIG if Data
 * exceeds AN_PUBKEY_DATA_MAX, AN_EKEYTYPE on an unknown type.  pb is borrowed.
 */
int an_pubkey_decode(const uint8_t *pb, size_t len, struct an_pubkey *out);

/* Append the deterministic PublicKey protobuf of k to out. */
int an_pubkey_encode(const struct an_pubkey *k, struct an_buf *out);

/*
 * Check sig over msg with k, with each type's libp2p rules (Ed25519 plain;
 * RSA PKCS#1 v1.5 SHA-256, 2048 to 8192-bit keys; secp256k1 and ECDSA DER
 * signatures over SHA-256(msg); ECDSA keys must be P-256 with an
 * uncompressed point, the form js, go and rust libp2p write).  0 if valid,
 * AN_EBADSIG if not, AN_EKEYTYPE if the key cannot be used.  All borrowed.
 */
int an_pubkey_verify(const struct an_pubkey *k, const uint8_t *msg, size_t len,
		     const uint8_t *sig, size_t siglen);

/* Constant-time comparison of two public keys (type and data). */
bool an_pubkey_equal(const struct an_pubkey *a, const struct an_pubkey *b);

#endif
