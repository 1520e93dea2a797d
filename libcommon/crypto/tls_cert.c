#include "crypto/tls_cert.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"

struct an_tls_cert {
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	gnutls_datum_t der;
};

#define PREFIX_LEN (sizeof(AN_TLS_SIG_PREFIX) - 1)
#define SPKI_MAX 1024
#define VALIDITY_S (100LL * 365 * 86400)

/* ---- SignedKey, strict DER ---- */

/* One TLV of tag at p[*off..len): its value; definite, minimal lengths only. */
static int der_take(const uint8_t *p, size_t len, size_t *off, uint8_t tag, const uint8_t **val,
		    size_t *vlen)
{
	size_t i = *off, n;
	if (len - i < 2 || p[i] != tag)
		return AN_EMALFORMED;
	uint8_t b = p[i + 1];
	i += 2;
	if (b < 0x80) {
		n = b;
	} else {
		size_t k = b & 0x7f;
		if (k == 0 || k > 2 || len - i < k || p[i] == 0)
			return AN_EMALFORMED; /* indefinite, too long, or not minimal */
		n = 0;
		for (size_t j = 0; j < k; j++)
			n = n << 8 | p[i + j];
		i += k;
		if (n < 0x80)
			return AN_EMALFORMED; /* long form for a short length */
	}
	if (len - i < n)
		return AN_EMALFORMED;
	*val = p + i;
	*vlen = n;
	*off = i + n;
	return 0;
}

int an_tls_signed_key_parse(const uint8_t *p, size_t len, const uint8_t **pk, size_t *pk_len,
			    const uint8_t **sig, size_t *sig_len)
{
	const uint8_t *seq;
	size_t seq_len, off = 0, in = 0;
	if (!p || len > AN_TLS_SIGNED_KEY_MAX)
		return AN_EMALFORMED;
	if (der_take(p, len, &off, 0x30, &seq, &seq_len) < 0 || off != len)
		return AN_EMALFORMED;
	if (der_take(seq, seq_len, &in, 0x04, pk, pk_len) < 0 ||
	    der_take(seq, seq_len, &in, 0x04, sig, sig_len) < 0 || in != seq_len)
		return AN_EMALFORMED;
	if (*pk_len == 0 || *sig_len == 0)
		return AN_EMALFORMED;
	return 0;
}

static size_t der_header(uint8_t tag, size_t n, uint8_t *out)
{
	out[0] = tag;
	if (n < 0x80) {
		out[1] = (uint8_t)n;
		return 2;
	}
	if (n < 0x100) {
		out[1] = 0x81;
		out[2] = (uint8_t)n;
		return 3;
	}
	out[1] = 0x82;
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	return 4;
}

int an_tls_signed_key_encode(const uint8_t *pk, size_t pk_len, const uint8_t *sig, size_t sig_len,
			     uint8_t *out, size_t cap, size_t *len)
{
	uint8_t h1[4], h2[4], h0[4];
	if (pk_len > 0xffff || sig_len > 0xffff)
		return AN_ETOOBIG;
	size_t l1 = der_header(0x04, pk_len, h1), l2 = der_header(0x04, sig_len, h2);
	size_t body = l1 + pk_len + l2 + sig_len;
	if (body > 0xffff)
		return AN_ETOOBIG;
	size_t l0 = der_header(0x30, body, h0);
	if (l0 + body > cap)
		return AN_ETOOBIG;
	uint8_t *o = out;
	memcpy(o, h0, l0), o += l0;
	memcpy(o, h1, l1), o += l1;
	memcpy(o, pk, pk_len), o += pk_len;
	memcpy(o, h2, l2), o += l2;
	memcpy(o, sig, sig_len), o += sig_len;
	*len = (size_t)(o - out);
	return 0;
}

/* ---- making ---- */

static int gnutls_err(int rc)
{
	return rc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : AN_EPROTO;
}

/* The DER SubjectPublicKeyInfo of crt's key into spki (cap bytes). */
static int crt_spki(gnutls_x509_crt_t crt, uint8_t *spki, size_t *len)
{
	gnutls_pubkey_t pk = NULL;
	size_t sz = *len;
	int rc = gnutls_pubkey_init(&pk);
	if (rc == 0)
		rc = gnutls_pubkey_import_x509(pk, crt, 0);
	if (rc == 0)
		rc = gnutls_pubkey_export(pk, GNUTLS_X509_FMT_DER, spki, &sz);
	gnutls_pubkey_deinit(pk);
	if (rc < 0)
		return rc == GNUTLS_E_SHORT_MEMORY_BUFFER ? AN_ETOOBIG : gnutls_err(rc);
	*len = sz;
	return 0;
}

int an_tls_cert_new(const struct an_privkey *host, int64_t now_s, struct an_tls_cert **out)
{
	struct an_tls_cert *c = NULL;
	struct an_pubkey hpk;
	struct an_buf pb;
	uint8_t spki[SPKI_MAX], msg[PREFIX_LEN + SPKI_MAX], sig[64], ext[AN_TLS_SIGNED_KEY_MAX];
	uint8_t serial[8];
	size_t spki_len = sizeof(spki), ext_len;
	int rc;

	*out = NULL;
	an_buf_init(&pb, AN_PUBKEY_PB_MAX);
	an_privkey_public(host, &hpk);
	if (hpk.type != AN_KEY_ED25519)
		return AN_EKEYTYPE; /* an_privkey_sign signs Ed25519 only */
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if ((rc = gnutls_x509_privkey_init(&c->key)) < 0 ||
	    (rc = gnutls_x509_privkey_generate(c->key, GNUTLS_PK_ECDSA,
					       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (rc = gnutls_x509_crt_init(&c->crt)) < 0 || (rc = gnutls_x509_crt_set_version(c->crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_key(c->crt, c->key)) < 0) {
		rc = gnutls_err(rc);
		goto out;
	}
	if ((rc = crt_spki(c->crt, spki, &spki_len)) < 0)
		goto out;
	memcpy(msg, AN_TLS_SIG_PREFIX, PREFIX_LEN);
	memcpy(msg + PREFIX_LEN, spki, spki_len);
	if ((rc = an_privkey_sign(host, msg, PREFIX_LEN + spki_len, sig)) < 0 ||
	    (rc = an_pubkey_encode(&hpk, &pb)) < 0 ||
	    (rc = an_tls_signed_key_encode(pb.data, pb.len, sig, sizeof(sig), ext, sizeof(ext),
					   &ext_len)) < 0)
		goto out;
	if ((rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0) {
		rc = gnutls_err(rc);
		goto out;
	}
	serial[0] &= 0x7f; /* positive (go rejects negative serials) */
	serial[0] |= 0x01; /* and minimal: no leading zero byte */
	if ((rc = gnutls_x509_crt_set_extension_by_oid(c->crt, AN_TLS_EXT_OID, ext, ext_len, 1)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(c->crt, serial, sizeof(serial))) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(c->crt, (time_t)(now_s - 3600))) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(c->crt, (time_t)(now_s + VALIDITY_S))) < 0 ||
	    (rc = gnutls_x509_crt_sign2(c->crt, c->crt, c->key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (rc = gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_DER, &c->der)) < 0) {
		rc = gnutls_err(rc);
		goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	an_buf_free(&pb);
	an_tls_cert_free(c);
	return rc;
}

void an_tls_cert_free(struct an_tls_cert *c)
{
	if (!c)
		return;
	if (c->crt)
		gnutls_x509_crt_deinit(c->crt);
	if (c->key)
		gnutls_x509_privkey_deinit(c->key); /* GnuTLS zeroes the key material */
	gnutls_free(c->der.data);
	free(c);
}

const uint8_t *an_tls_cert_der(const struct an_tls_cert *c, size_t *len)
{
	*len = c->der.size;
	return c->der.data;
}

void *an_tls_cert_gnutls_crt(const struct an_tls_cert *c)
{
	return c->crt;
}

void *an_tls_cert_gnutls_key(const struct an_tls_cert *c)
{
	return c->key;
}

/* ---- verifying ---- */

static int refuse(char *reason, size_t cap, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(char *reason, size_t cap, int err, const char *fmt, ...)
{
	if (reason && cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(reason, cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* The libp2p extension's value (gnutls_free it), checking the others. */
static int find_extension(gnutls_x509_crt_t crt, gnutls_datum_t *val, char *reason, size_t cap)
{
	int found = -1;
	for (unsigned i = 0; i < 64; i++) {
		char oid[128];
		size_t oid_len = sizeof(oid);
		unsigned crit = 0;
		int rc = gnutls_x509_crt_get_extension_info(crt, i, oid, &oid_len, &crit);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0)
			return refuse(reason, cap, AN_EMALFORMED, "unreadable extension %u", i);
		if (strcmp(oid, AN_TLS_EXT_OID) == 0) {
			if (found >= 0)
				return refuse(reason, cap, AN_EFIELD, "libp2p extension repeated");
			found = (int)i;
		} else if (crit) {
			return refuse(reason, cap, AN_EFIELD, "unknown critical extension %s", oid);
		}
	}
	if (found < 0)
		return refuse(reason, cap, AN_EFIELD, "no libp2p public key extension");
	if (gnutls_x509_crt_get_extension_data2(crt, (unsigned)found, val) < 0)
		return refuse(reason, cap, AN_EMALFORMED, "unreadable libp2p extension");
	return 0;
}

int an_tls_cert_verify(const uint8_t *der, size_t len, int64_t now_s,
		       const struct an_peerid *expected, struct an_pubkey *key, struct an_peerid *id,
		       char *reason, size_t reason_cap)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t ext = {NULL, 0};
	struct an_pubkey hk;
	struct an_peerid pid;
	uint8_t spki[SPKI_MAX], msg[PREFIX_LEN + SPKI_MAX];
	size_t spki_len = sizeof(spki);
	const uint8_t *pk, *sig;
	size_t pk_len, sig_len;
	unsigned status = 0;
	int rc;

	if (reason && reason_cap)
		reason[0] = '\0';
	if (!der || len == 0 || len > AN_TLS_CERT_DER_MAX)
		return refuse(reason, reason_cap, AN_EMALFORMED, "certificate of %zu bytes", len);
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
	if (gnutls_x509_crt_init(&crt) < 0)
		return -ENOMEM;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		rc = refuse(reason, reason_cap, AN_EMALFORMED, "certificate does not parse");
		goto out;
	}
	time_t nb = gnutls_x509_crt_get_activation_time(crt);
	time_t na = gnutls_x509_crt_get_expiration_time(crt);
	if (nb == (time_t)-1 || na == (time_t)-1) {
		rc = refuse(reason, reason_cap, AN_EMALFORMED, "certificate without a validity period");
		goto out;
	}
	if (now_s < (int64_t)nb) {
		rc = refuse(reason, reason_cap, AN_ENOTYET, "certificate not valid yet");
		goto out;
	}
	if (now_s > (int64_t)na) {
		rc = refuse(reason, reason_cap, AN_EEXPIRED, "certificate expired");
		goto out;
	}
	/*
	 * The self-signature.  A certificate that is its own trust anchor is
	 * accepted by gnutls_x509_crt_verify without its signature checked
	 * unless DO_NOT_ALLOW_SAME; then it is INVALID (not a CA, unknown
	 * critical extension: ours), and only other bits mean a refusal
	 * (SIGNATURE_FAILURE, INSECURE_ALGORITHM, ...).  Time is checked above
	 * against now_s.
	 */
	rc = gnutls_x509_crt_verify(crt, &crt, 1,
				    GNUTLS_VERIFY_DO_NOT_ALLOW_SAME | GNUTLS_VERIFY_DISABLE_CA_SIGN |
					    GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
				    &status);
	if (rc < 0 || (status & ~(unsigned)(GNUTLS_CERT_INVALID | GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS))) {
		rc = refuse(reason, reason_cap, AN_EBADSIG, "certificate self-signature refused (0x%x)",
			    status);
		goto out;
	}
	if ((rc = find_extension(crt, &ext, reason, reason_cap)) < 0)
		goto out;
	if (an_tls_signed_key_parse(ext.data, ext.size, &pk, &pk_len, &sig, &sig_len) < 0) {
		rc = refuse(reason, reason_cap, AN_EMALFORMED, "libp2p extension is not a SignedKey");
		goto out;
	}
	if ((rc = an_pubkey_decode(pk, pk_len, &hk)) < 0) {
		rc = refuse(reason, reason_cap, rc, "libp2p extension public key: %s", an_strerror(rc));
		goto out;
	}
	if ((rc = crt_spki(crt, spki, &spki_len)) < 0) {
		rc = refuse(reason, reason_cap, AN_EMALFORMED, "certificate key unreadable");
		goto out;
	}
	memcpy(msg, AN_TLS_SIG_PREFIX, PREFIX_LEN);
	memcpy(msg + PREFIX_LEN, spki, spki_len);
	if ((rc = an_pubkey_verify(&hk, msg, PREFIX_LEN + spki_len, sig, sig_len)) < 0) {
		rc = refuse(reason, reason_cap, rc == AN_EKEYTYPE ? AN_EKEYTYPE : AN_EBADSIG,
			    "libp2p extension signature does not verify");
		goto out;
	}
	if ((rc = an_peerid_from_pubkey(&hk, &pid)) < 0) {
		rc = refuse(reason, reason_cap, rc, "no peer ID for the host key");
		goto out;
	}
	if (expected && !an_peerid_equal(expected, &pid)) {
		char want[AN_PEERID_TEXT_MAX], got[AN_PEERID_TEXT_MAX];
		an_peerid_format(expected, want, sizeof(want));
		an_peerid_format(&pid, got, sizeof(got));
		rc = refuse(reason, reason_cap, AN_EMISMATCH, "peer is %s, not %s", got, want);
		goto out;
	}
	if (key)
		*key = hk;
	if (id)
		*id = pid;
	rc = 0;
out:
	gnutls_free(ext.data);
	gnutls_x509_crt_deinit(crt);
	return rc;
}
