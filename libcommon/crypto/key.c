#include "crypto/key.h"

#include "encoding/protobuf.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#define LTM_DESC
#include <tomcrypt.h>
#include <tommath.h>

struct an_privkey {
	uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed(32) || pub(32), libsodium layout */
};

/* libp2p PrivateKey / PublicKey field numbers. */
enum { PB_TYPE = 1, PB_DATA = 2 };

/* Ed25519 PrivateKey protobuf: 08 01 12 40 <64>. */
#define PRIVKEY_PB_LEN (4 + crypto_sign_SECRETKEYBYTES)

const char *an_key_type_name(enum an_key_type type)
{
	switch (type) {
	case AN_KEY_RSA:
		return "rsa";
	case AN_KEY_ED25519:
		return "ed25519";
	case AN_KEY_SECP256K1:
		return "secp256k1";
	case AN_KEY_ECDSA:
		return "ecdsa";
	}
	return "unknown";
}

/*
 * One library-wide setup: libsodium, and libtomcrypt with libtommath as its
 * math provider plus the SHA-256 descriptor the RSA and ECDSA checks use.
 */
static int sha256_idx = -1;
static int init_rc = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void crypto_init_once(void)
{
	if (sodium_init() < 0)
		return;
	ltc_mp = ltm_desc;
	if (register_hash(&sha256_desc) < 0)
		return;
	sha256_idx = find_hash("sha256");
	init_rc = sha256_idx < 0 ? -1 : 0;
}

static int crypto_init(void)
{
	pthread_once(&init_once, crypto_init_once);
	return init_rc == 0 ? 0 : -ENOSYS;
}

/*
 * Read the two fields of a key protobuf.  Each must appear exactly once and
 * nothing else may: a key file or a key on the wire is the deterministic
 * encoding or it is not a key.  *type gets the raw enum value.
 */
static int key_pb_parse(const uint8_t *pb, size_t len, uint64_t *type, const uint8_t **data,
			size_t *datalen)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	bool have_type = false, have_data = false;
	int rc;

	an_pb_reader_init(&r, pb, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == PB_TYPE && f.wire == AN_PB_VARINT && !have_type) {
			*type = f.varint;
			have_type = true;
		} else if (f.number == PB_DATA && f.wire == AN_PB_LEN && !have_data) {
			*data = f.data;
			*datalen = f.len;
			have_data = true;
		} else {
			return AN_EMALFORMED;
		}
	}
	if (rc < 0)
		return rc;
	if (!have_type || !have_data)
		return AN_EMALFORMED;
	return 0;
}

int an_privkey_generate(struct an_privkey **out)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	struct an_privkey *k;

	if (crypto_init() < 0)
		return -ENOSYS;
	k = sodium_malloc(sizeof *k);
	if (!k)
		return -ENOMEM;
	crypto_sign_keypair(pk, k->sk);
	*out = k;
	return 0;
}

int an_privkey_decode(const uint8_t *pb, size_t len, struct an_privkey **out)
{
	uint64_t type = 0;
	const uint8_t *data = NULL;
	size_t datalen = 0;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	struct an_privkey *k = NULL;
	int rc;

	if (crypto_init() < 0)
		return -ENOSYS;
	rc = key_pb_parse(pb, len, &type, &data, &datalen);
	if (rc < 0)
		return rc;
	if (type != AN_KEY_ED25519)
		return AN_EKEYTYPE;
	/*
	 * 64 bytes: seed || pub.  96 bytes: the legacy go-libp2p form, the same
	 * 64 bytes followed by the public key again (peer-ids spec, "Ed25519").
	 */
	if (datalen == 96) {
		if (sodium_memcmp(data + 32, data + 64, 32) != 0)
			return AN_EMALFORMED;
	} else if (datalen != 64) {
		return AN_EMALFORMED;
	}
	k = sodium_malloc(sizeof *k);
	if (!k)
		return -ENOMEM;
	/* Never trust the stored public half: derive it from the seed. */
	crypto_sign_seed_keypair(pk, k->sk, data);
	if (sodium_memcmp(pk, data + 32, sizeof pk) != 0) {
		sodium_free(k);
		return AN_EMALFORMED;
	}
	*out = k;
	return 0;
}

int an_privkey_encode(const struct an_privkey *k, uint8_t **out, size_t *len)
{
	uint8_t *p = sodium_malloc(PRIVKEY_PB_LEN);

	if (!p)
		return -ENOMEM;
	p[0] = (PB_TYPE << 3) | AN_PB_VARINT;
	p[1] = AN_KEY_ED25519;
	p[2] = (PB_DATA << 3) | AN_PB_LEN;
	p[3] = crypto_sign_SECRETKEYBYTES;
	memcpy(p + 4, k->sk, crypto_sign_SECRETKEYBYTES);
	*out = p;
	*len = PRIVKEY_PB_LEN;
	return 0;
}

int an_privkey_load(const char *path, struct an_privkey **out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	rc = an_read_secret_file(path, AN_PRIVKEY_FILE_MAX, &data, &len);
	if (rc < 0)
		return rc;
	rc = an_privkey_decode(data, len, out);
	sodium_free(data);
	return rc;
}

int an_privkey_save(const struct an_privkey *k, const char *path, bool force)
{
	uint8_t *pb = NULL;
	size_t len = 0;
	int rc;

	rc = an_privkey_encode(k, &pb, &len);
	if (rc < 0)
		return rc;
	rc = an_write_secret_file(path, pb, len, force);
	sodium_free(pb);
	return rc;
}

void an_privkey_free(struct an_privkey *k)
{
	if (k)
		sodium_free(k); /* wipes */
}

void an_privkey_public(const struct an_privkey *k, struct an_pubkey *out)
{
	memset(out, 0, sizeof *out);
	out->type = AN_KEY_ED25519;
	out->len = crypto_sign_PUBLICKEYBYTES;
	memcpy(out->data, k->sk + crypto_sign_SEEDBYTES, crypto_sign_PUBLICKEYBYTES);
}

int an_privkey_sign(const struct an_privkey *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	if (crypto_sign_detached(sig, NULL, msg, len, k->sk) != 0)
		return -EINVAL;
	return 0;
}

int an_pubkey_decode(const uint8_t *pb, size_t len, struct an_pubkey *out)
{
	uint64_t type = 0;
	const uint8_t *data = NULL;
	size_t datalen = 0;
	uint8_t canon[AN_PUBKEY_PB_MAX];
	struct an_buf b;
	int rc;

	rc = key_pb_parse(pb, len, &type, &data, &datalen);
	if (rc < 0)
		return rc;
	if (type > AN_KEY_ECDSA)
		return AN_EKEYTYPE;
	if (datalen > AN_PUBKEY_DATA_MAX)
		return AN_ETOOBIG;
	if (datalen == 0)
		return AN_EMALFORMED;
	if (type == AN_KEY_ED25519 && datalen != crypto_sign_PUBLICKEYBYTES)
		return AN_EMALFORMED;
	if (type == AN_KEY_SECP256K1 && (datalen != 33 || (data[0] != 2 && data[0] != 3)))
		return AN_EMALFORMED;
	memset(out, 0, sizeof *out);
	out->type = (enum an_key_type)type;
	out->len = datalen;
	memcpy(out->data, data, datalen);
	/*
	 * The peer ID hashes the serialized key, so only the deterministic
	 * encoding (peer-ids spec) names one peer: re-encode and compare.
	 */
	an_buf_init(&b, sizeof canon);
	rc = an_pubkey_encode(out, &b);
	if (rc == 0 && (b.len != len || memcmp(b.data, pb, len) != 0))
		rc = AN_EMALFORMED;
	an_buf_free(&b);
	return rc;
}

int an_pubkey_encode(const struct an_pubkey *k, struct an_buf *out)
{
	size_t mark = out->len;
	int rc;

	if (k->len > AN_PUBKEY_DATA_MAX)
		return AN_ETOOBIG;
	/* The type is written even when it is 0 (RSA): proto2 `required`. */
	rc = an_pb_put_varint(out, PB_TYPE, (uint64_t)k->type);
	if (rc == 0)
		rc = an_pb_put_bytes(out, PB_DATA, k->data, k->len);
	if (rc < 0)
		out->len = mark;
	return rc;
}

static int verify_ed25519(const struct an_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
			  size_t siglen)
{
	if (k->len != crypto_sign_PUBLICKEYBYTES)
		return AN_EKEYTYPE;
	if (siglen != crypto_sign_BYTES)
		return AN_EBADSIG;
	return crypto_sign_verify_detached(sig, msg, len, k->data) == 0 ? 0 : AN_EBADSIG;
}

/* RSA: Data is a PKIX SubjectPublicKeyInfo; PKCS#1 v1.5 over SHA-256(msg). */
static int verify_rsa(const struct an_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
		      size_t siglen)
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	rsa_key key;
	int stat = 0, rc, bits;

	if (rsa_import(k->data, (unsigned long)k->len, &key) != CRYPT_OK)
		return AN_EKEYTYPE;
	/* go-libp2p and rust-libp2p refuse keys under 2048 bits; so do we. */
	bits = mp_count_bits(key.N);
	if (key.type != PK_PUBLIC || bits < 2048 || bits > 8192) {
		rc = AN_EKEYTYPE;
		goto out;
	}
	crypto_hash_sha256(hash, msg, len);
	rc = rsa_verify_hash_ex(sig, (unsigned long)siglen, hash, sizeof hash, LTC_PKCS_1_V1_5,
				sha256_idx, 0, &stat, &key);
	rc = (rc == CRYPT_OK && stat == 1) ? 0 : AN_EBADSIG;
out:
	rsa_free(&key);
	return rc;
}

/*
 * ECDSA: Data is a PKIX SubjectPublicKeyInfo of a P-256 key (the only curve
 * js-libp2p and go-libp2p produce by default; rust-libp2p supports only
 * P-256).  DER is unique, so the header of such a key is fixed bytes:
 * SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 04||X||Y }.
 */
static const uint8_t p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};

static const ltc_ecc_set_type *p256_curve(void)
{
	for (int i = 0; ltc_ecc_sets[i].size != 0; i++)
		if (!strcmp(ltc_ecc_sets[i].name, "ECC-256"))
			return &ltc_ecc_sets[i];
	return NULL;
}

static int verify_ecdsa(const struct an_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
			size_t siglen)
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	const size_t plen = sizeof p256_spki_prefix;
	const ltc_ecc_set_type *dp = p256_curve();
	ecc_key key;
	int stat = 0, rc;

	if (!dp || k->len != plen + 65 || memcmp(k->data, p256_spki_prefix, plen) != 0 ||
	    k->data[plen] != 0x04)
		return AN_EKEYTYPE;
	if (ecc_ansi_x963_import_ex(k->data + plen, 65, &key, (ltc_ecc_set_type *)dp) != CRYPT_OK)
		return AN_EKEYTYPE;
	crypto_hash_sha256(hash, msg, len);
	rc = ecc_verify_hash(sig, (unsigned long)siglen, hash, sizeof hash, &stat, &key);
	rc = (rc == CRYPT_OK && stat == 1) ? 0 : AN_EBADSIG;
	ecc_free(&key);
	return rc;
}

/*
 * secp256k1.  libtomcrypt 1.18.2 cannot do it: its curve table and point
 * arithmetic assume a = -3 (the NIST curves) and secp256k1 has a = 0.  So
 * the check is written here over libtommath: affine points, a plain
 * double-and-add.  It handles only public data (a verification), so it
 * needs no constant-time care; it is slow (~ms) and secp256k1 peers are rare.
 * Curve: SEC 2 v2, section 2.4.1.
 */
static const char k1_p[] = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F";
static const char k1_n[] = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141";
static const char k1_gx[] = "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798";
static const char k1_gy[] = "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8";

struct k1_point {
	mp_int x, y;
	bool inf;
};

#define MPTRY(expr)                          \
	do {                                 \
		if ((err = (expr)) != MP_OKAY) \
			goto out;            \
	} while (0)

static mp_err k1_point_init(struct k1_point *pt)
{
	pt->inf = true;
	return mp_init_multi(&pt->x, &pt->y, NULL);
}

static void k1_point_clear(struct k1_point *pt)
{
	mp_clear_multi(&pt->x, &pt->y, NULL);
}

/* r = a + b (r may alias a or b); p is the field prime. */
static mp_err k1_add(struct k1_point *r, const struct k1_point *a, const struct k1_point *b,
		     const mp_int *p)
{
	mp_int lam, t, x3;
	mp_err err;

	if (a->inf || b->inf) {
		const struct k1_point *src = a->inf ? b : a;
		r->inf = src->inf;
		if ((err = mp_copy(&src->x, &r->x)) != MP_OKAY)
			return err;
		return mp_copy(&src->y, &r->y);
	}
	if ((err = mp_init_multi(&lam, &t, &x3, NULL)) != MP_OKAY)
		return err;
	if (mp_cmp(&a->x, &b->x) == MP_EQ) {
		if (mp_cmp(&a->y, &b->y) != MP_EQ || mp_iszero(&a->y)) {
			r->inf = true; /* P + (-P) */
			goto out;
		}
		/* Doubling, a = 0: lambda = 3x^2 / 2y. */
		MPTRY(mp_sqrmod(&a->x, p, &lam));
		mp_set(&t, 3);
		MPTRY(mp_mulmod(&lam, &t, p, &lam));
		MPTRY(mp_addmod(&a->y, &a->y, p, &t));
	} else {
		MPTRY(mp_submod(&b->y, &a->y, p, &lam));
		MPTRY(mp_submod(&b->x, &a->x, p, &t));
	}
	MPTRY(mp_invmod(&t, p, &t));
	MPTRY(mp_mulmod(&lam, &t, p, &lam));
	/* x3 = lambda^2 - ax - bx; y3 = lambda (ax - x3) - ay */
	MPTRY(mp_sqrmod(&lam, p, &x3));
	MPTRY(mp_submod(&x3, &a->x, p, &x3));
	MPTRY(mp_submod(&x3, &b->x, p, &x3));
	MPTRY(mp_submod(&a->x, &x3, p, &t));
	MPTRY(mp_mulmod(&lam, &t, p, &t));
	MPTRY(mp_submod(&t, &a->y, p, &r->y));
	MPTRY(mp_copy(&x3, &r->x));
	r->inf = false;
out:
	mp_clear_multi(&lam, &t, &x3, NULL);
	return err;
}

/* r = r + k * pt, k in [0, n) (r must not alias pt). */
static mp_err k1_mul_add(struct k1_point *r, const mp_int *k, const struct k1_point *pt, const mp_int *p)
{
	uint8_t bytes[32];
	size_t n = 0;
	struct k1_point acc;
	mp_err err;

	if ((err = k1_point_init(&acc)) != MP_OKAY)
		return err;
	MPTRY(mp_to_ubin(k, bytes, sizeof bytes, &n));
	for (size_t i = 0; i < n; i++) {
		for (int bit = 7; bit >= 0; bit--) {
			MPTRY(k1_add(&acc, &acc, &acc, p));
			if (bytes[i] >> bit & 1)
				MPTRY(k1_add(&acc, &acc, pt, p));
		}
	}
	MPTRY(k1_add(r, r, &acc, p));
out:
	k1_point_clear(&acc);
	return err;
}

/* The point of a 33-byte compressed key (SEC 1, 2.3.4); AN_EKEYTYPE if none. */
static int k1_decompress(const uint8_t key[33], const mp_int *p, struct k1_point *out)
{
	mp_int rhs, e, y2;
	mp_err err;
	int rc = AN_EKEYTYPE;

	if ((err = mp_init_multi(&rhs, &e, &y2, NULL)) != MP_OKAY)
		return -ENOMEM;
	MPTRY(mp_from_ubin(&out->x, key + 1, 32));
	if (mp_cmp(&out->x, p) != MP_LT)
		goto out;
	/* y^2 = x^3 + 7; p = 3 mod 4, so y = rhs^((p + 1) / 4). */
	MPTRY(mp_sqrmod(&out->x, p, &rhs));
	MPTRY(mp_mulmod(&rhs, &out->x, p, &rhs));
	mp_set(&e, 7);
	MPTRY(mp_addmod(&rhs, &e, p, &rhs));
	MPTRY(mp_add_d(p, 1, &e));
	MPTRY(mp_div_2d(&e, 2, &e, NULL));
	MPTRY(mp_exptmod(&rhs, &e, p, &out->y));
	MPTRY(mp_sqrmod(&out->y, p, &y2));
	if (mp_cmp(&y2, &rhs) != MP_EQ)
		goto out; /* x is not on the curve */
	if ((mp_isodd(&out->y) ? 3 : 2) != key[0])
		MPTRY(mp_sub(p, &out->y, &out->y));
	out->inf = false;
	rc = 0;
out:
	mp_clear_multi(&rhs, &e, &y2, NULL);
	return err != MP_OKAY ? -ENOMEM : rc;
}

static int verify_secp256k1(const struct an_pubkey *k, const uint8_t *msg, size_t len,
			    const uint8_t *sig, size_t siglen)
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	mp_int p, n, r, s, e, w, u1, u2;
	struct k1_point g, q, acc;
	mp_err err = MP_OKAY;
	int rc = AN_EBADSIG;

	if (k->len != 33 || (k->data[0] != 2 && k->data[0] != 3))
		return AN_EKEYTYPE;
	/* DER SEQUENCE { INTEGER r, INTEGER s } in exactly siglen bytes (<= 72). */
	if (siglen < 8 || siglen > 72 || sig[0] != 0x30 || sig[1] != siglen - 2)
		return AN_EBADSIG;
	if (mp_init_multi(&p, &n, &r, &s, &e, &w, &u1, &u2, NULL) != MP_OKAY)
		return -ENOMEM;
	if (k1_point_init(&g) != MP_OKAY)
		goto nomem_g;
	if (k1_point_init(&q) != MP_OKAY)
		goto nomem_q;
	if (k1_point_init(&acc) != MP_OKAY)
		goto nomem_acc;
	MPTRY(mp_read_radix(&p, k1_p, 16));
	MPTRY(mp_read_radix(&n, k1_n, 16));
	MPTRY(mp_read_radix(&g.x, k1_gx, 16));
	MPTRY(mp_read_radix(&g.y, k1_gy, 16));
	g.inf = false;
	if (der_decode_sequence_multi(sig, (unsigned long)siglen, LTC_ASN1_INTEGER, 1UL, &r,
				      LTC_ASN1_INTEGER, 1UL, &s, LTC_ASN1_EOL, 0UL, NULL) != CRYPT_OK)
		goto out;
	if (mp_cmp_d(&r, 0) != MP_GT || mp_cmp(&r, &n) != MP_LT || mp_cmp_d(&s, 0) != MP_GT ||
	    mp_cmp(&s, &n) != MP_LT)
		goto out;
	rc = k1_decompress(k->data, &p, &q);
	if (rc < 0)
		goto out;
	rc = AN_EBADSIG;
	/* SHA-256 is as wide as n: e is the digest, no truncation. */
	crypto_hash_sha256(hash, msg, len);
	MPTRY(mp_from_ubin(&e, hash, sizeof hash));
	MPTRY(mp_invmod(&s, &n, &w));
	MPTRY(mp_mulmod(&e, &w, &n, &u1));
	MPTRY(mp_mulmod(&r, &w, &n, &u2));
	MPTRY(k1_mul_add(&acc, &u1, &g, &p));
	MPTRY(k1_mul_add(&acc, &u2, &q, &p));
	if (acc.inf)
		goto out;
	MPTRY(mp_mod(&acc.x, &n, &acc.x));
	if (mp_cmp(&acc.x, &r) == MP_EQ)
		rc = 0;
out:
	if (err != MP_OKAY)
		rc = -ENOMEM;
	k1_point_clear(&acc);
nomem_acc:
	k1_point_clear(&q);
nomem_q:
	k1_point_clear(&g);
nomem_g:
	mp_clear_multi(&p, &n, &r, &s, &e, &w, &u1, &u2, NULL);
	return rc;
}

int an_pubkey_verify(const struct an_pubkey *k, const uint8_t *msg, size_t len,
		     const uint8_t *sig, size_t siglen)
{
	if (crypto_init() < 0)
		return -ENOSYS;
	switch (k->type) {
	case AN_KEY_ED25519:
		return verify_ed25519(k, msg, len, sig, siglen);
	case AN_KEY_RSA:
		return verify_rsa(k, msg, len, sig, siglen);
	case AN_KEY_ECDSA:
		return verify_ecdsa(k, msg, len, sig, siglen);
	case AN_KEY_SECP256K1:
		return verify_secp256k1(k, msg, len, sig, siglen);
	}
	return AN_EKEYTYPE;
}

bool an_pubkey_equal(const struct an_pubkey *a, const struct an_pubkey *b)
{
	if (a->type != b->type || a->len != b->len)
		return false;
	return sodium_memcmp(a->data, b->data, a->len) == 0;
}
