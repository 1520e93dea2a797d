/*
 * test_tls_cert.c - the libp2p TLS certificate (crypto/tls_cert.h): ours
 * verify, and every refusal has its code and reason; the spec's vector and
 * one made by js-libp2p's @libp2p/tls verify in C (the reverse direction,
 * js checking ours, is tests/interop/tls.bats).
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "crypto/tls_cert.h"
#include "util/error.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static struct an_privkey *host;

/* libp2p/specs tls/tls.md, test vector 1 (Ed25519 host key; the extension
   is not critical; valid 1975 to 4096). */
static const char spec_ed25519[] =
	"308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c696270"
	"32702e696f310a300806035504051301313020170d3735303130313133303030305a180f343039363031303131333030"
	"30305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d"
	"020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd60133"
	"1c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a"
	"0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d"
	"2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde"
	"92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c"
	"9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a3"
	"1b77";
static const char spec_ed25519_id[] = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv";

/* Made by tests/interop/js/tls-cert.mjs gen (@libp2p/tls 3.1.10,
   2026-12-07; valid for 100 years from an hour before). */
static const char js_cert[] =
	"308201783082011da00302010202083295854131702942300a06082a8648ce3d04030230003020170d32363132303731"
	"39333432365a180f32313236313131333230333432365a30003059301306072a8648ce3d020106082a8648ce3d030107"
	"03420004e322f59f76b78432913083d355cef073c7c9154a0ed0483455dcf654233f197d2d3776b0bb0680630821fa50"
	"b0087e87d7770505d4fa16f8e664fe370d35ce9ea37f307d307b060a2b0601040183a25a01010101ff046a3068042408"
	"011220ac725903659fccdb83cfd0d11be035dcce17b0fa587eaea0cc37b4d658fa311a044015f0c613ff81f959f35532"
	"522e8e2ea9f3c752b8b884b14d11bc60723109ae6206ff584628db7b5fb43ebe045bf3aa892564305c2d4e92f1c4718e"
	"e0ad230207300a06082a8648ce3d040302034900304602210097df4ebdf5cc756c9066750600983b51649bc74894780f"
	"9b688f7720bc37a80e02210093138f207f47791ac71d3995a56c378b3ec1d20272078f01487cf725a5a02e78";
static const char js_cert_id[] = "12D3KooWMRXRTbzA4m2PhaNJumEw97kQ5fWM3FXkTzrMRXDXQgAV";
#define JS_CERT_NOW 1796688000 /* 2026-12-08 */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n, NULL) < 0)
		return 0;
	return n;
}

static void id_text(const struct an_peerid *id, char *out, size_t cap)
{
	an_peerid_format(id, out, cap);
}

static void test_ours_verifies(void)
{
	struct an_tls_cert *c;
	struct an_peerid id, mine;
	struct an_pubkey k, hk;
	char why[AN_TLS_REASON_MAX];
	size_t len;
	int64_t now = time(NULL);
	an_privkey_public(host, &hk);
	an_peerid_from_pubkey(&hk, &mine);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &c), 0);
	const uint8_t *der = an_tls_cert_der(c, &len);
	CHECK(len > 200 && len < 600 && der[0] == 0x30);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now, &mine, &k, &id, why, sizeof(why)), 0);
	CHECK(an_peerid_equal(&id, &mine));
	CHECK(an_pubkey_equal(&k, &hk));
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now, NULL, NULL, &id, why, sizeof(why)), 0);
	/* the libp2p extension is the only one, first, and critical */
	gnutls_x509_crt_t crt = an_tls_cert_gnutls_crt(c);
	char oid[64];
	size_t oid_len = sizeof(oid);
	unsigned crit = 0;
	CHECK_EQ_INT(gnutls_x509_crt_get_extension_info(crt, 0, oid, &oid_len, &crit), 0);
	CHECK_EQ_STR(oid, AN_TLS_EXT_OID);
	CHECK_EQ_INT(crit, 1);
	oid_len = sizeof(oid);
	CHECK_EQ_INT(gnutls_x509_crt_get_extension_info(crt, 1, oid, &oid_len, &crit),
		     GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	an_tls_cert_free(c);
}

static void test_each_certificate_has_its_own_key(void)
{
	struct an_tls_cert *a, *b;
	size_t la, lb;
	int64_t now = time(NULL);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &a), 0);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &b), 0);
	const uint8_t *da = an_tls_cert_der(a, &la), *db = an_tls_cert_der(b, &lb);
	CHECK(la != lb || memcmp(da, db, la) != 0);
	an_tls_cert_free(a);
	an_tls_cert_free(b);
}

static void test_unexpected_peer_refused(void)
{
	struct an_tls_cert *c;
	struct an_privkey *other;
	struct an_pubkey ok;
	struct an_peerid oid, id;
	char why[AN_TLS_REASON_MAX];
	size_t len;
	int64_t now = time(NULL);
	an_privkey_generate(&other);
	an_privkey_public(other, &ok);
	an_peerid_from_pubkey(&ok, &oid);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &c), 0);
	const uint8_t *der = an_tls_cert_der(c, &len);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now, &oid, NULL, &id, why, sizeof(why)), AN_EMISMATCH);
	CHECK(strstr(why, "not ") != NULL);
	an_tls_cert_free(c);
	an_privkey_free(other);
}

static void test_validity_period(void)
{
	struct an_tls_cert *c;
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	size_t len;
	int64_t now = time(NULL);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &c), 0);
	const uint8_t *der = an_tls_cert_der(c, &len);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now - 3500, NULL, NULL, &id, why, sizeof(why)), 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now - 3700, NULL, NULL, &id, why, sizeof(why)),
		     AN_ENOTYET);
	CHECK_EQ_STR(why, "certificate not valid yet");
	CHECK_EQ_INT(an_tls_cert_verify(der, len, now + 101LL * 365 * 86400, NULL, NULL, &id, why,
					sizeof(why)), AN_EEXPIRED);
	CHECK_EQ_STR(why, "certificate expired");
	an_tls_cert_free(c);
}

static void test_tampered_self_signature_refused(void)
{
	struct an_tls_cert *c;
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	size_t len;
	uint8_t bad[2048];
	int64_t now = time(NULL);
	CHECK_EQ_INT(an_tls_cert_new(host, now, &c), 0);
	const uint8_t *der = an_tls_cert_der(c, &len);
	memcpy(bad, der, len);
	bad[len - 5] ^= 0x01; /* inside the ECDSA signature's s */
	CHECK_EQ_INT(an_tls_cert_verify(bad, len, now, NULL, NULL, &id, why, sizeof(why)), AN_EBADSIG);
	CHECK(strstr(why, "self-signature") != NULL);
	an_tls_cert_free(c);
}

/*
 * A certificate made here the way an_tls_cert_new does, with one thing
 * wrong: no extension (ext NULL), or the given extension value.
 */
static int odd_cert(const uint8_t *ext, size_t ext_len, const char *oid2, int crit2, uint8_t *out,
		    size_t *out_len)
{
	gnutls_x509_privkey_t k;
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);
	uint8_t serial[1] = {7};
	int rc = 0;
	gnutls_x509_privkey_init(&k);
	gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	gnutls_x509_crt_init(&crt);
	gnutls_x509_crt_set_version(crt, 3);
	gnutls_x509_crt_set_key(crt, k);
	gnutls_x509_crt_set_serial(crt, serial, 1);
	gnutls_x509_crt_set_activation_time(crt, now - 60);
	gnutls_x509_crt_set_expiration_time(crt, now + 86400);
	if (ext)
		rc |= gnutls_x509_crt_set_extension_by_oid(crt, AN_TLS_EXT_OID, ext, ext_len, 1);
	if (oid2)
		rc |= gnutls_x509_crt_set_extension_by_oid(crt, oid2, "\x05\x00", 2, (unsigned)crit2);
	rc |= gnutls_x509_crt_sign2(crt, crt, k, GNUTLS_DIG_SHA256, 0);
	rc |= gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_DER, out, out_len);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(k);
	return rc;
}

/* A SignedKey with host's key and a signature over something else. */
static size_t wrong_signed_key(uint8_t *out, size_t cap)
{
	struct an_pubkey hk;
	struct an_buf pb;
	uint8_t sig[64];
	size_t n = 0;
	an_privkey_public(host, &hk);
	an_buf_init(&pb, AN_PUBKEY_PB_MAX);
	an_pubkey_encode(&hk, &pb);
	an_privkey_sign(host, (const uint8_t *)"libp2p-tls-handshake:not the key", 32, sig);
	an_tls_signed_key_encode(pb.data, pb.len, sig, 64, out, cap, &n);
	an_buf_free(&pb);
	return n;
}

static void test_missing_extension_refused(void)
{
	uint8_t der[2048];
	size_t len = sizeof(der);
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	CHECK_EQ_INT(odd_cert(NULL, 0, NULL, 0, der, &len), 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EFIELD);
	CHECK_EQ_STR(why, "no libp2p public key extension");
}

static void test_wrong_host_signature_refused(void)
{
	uint8_t der[2048], sk[512];
	size_t len = sizeof(der), sk_len = wrong_signed_key(sk, sizeof(sk));
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	CHECK(sk_len > 0);
	CHECK_EQ_INT(odd_cert(sk, sk_len, NULL, 0, der, &len), 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EBADSIG);
	CHECK_EQ_STR(why, "libp2p extension signature does not verify");
}

static void test_unknown_critical_extension_refused(void)
{
	uint8_t der[2048], sk[512];
	size_t len = sizeof(der), sk_len = wrong_signed_key(sk, sizeof(sk));
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	CHECK_EQ_INT(odd_cert(sk, sk_len, "1.2.3.4.5", 1, der, &len), 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EFIELD);
	CHECK(strstr(why, "unknown critical extension") != NULL);
}

static void test_garbage_refused(void)
{
	uint8_t junk[300];
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	memset(junk, 0x30, sizeof(junk));
	CHECK_EQ_INT(an_tls_cert_verify(junk, sizeof(junk), time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_cert_verify(junk, 0, time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EMALFORMED);
}

static void test_spec_vector(void)
{
	uint8_t der[1024];
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX], text[AN_PEERID_TEXT_MAX];
	size_t len = unhex(spec_ed25519, der, sizeof(der));
	CHECK(len > 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, time(NULL), NULL, NULL, &id, why, sizeof(why)), 0);
	id_text(&id, text, sizeof(text));
	CHECK_EQ_STR(text, spec_ed25519_id);
	/* a byte of the extension changed: the certificate's self-signature
	   no longer covers it (the last 84 bytes are the signature and its
	   algorithm; the SignedKey ends right before them) */
	der[len - 90] ^= 0x01;
	CHECK_EQ_INT(an_tls_cert_verify(der, len, time(NULL), NULL, NULL, &id, why, sizeof(why)),
		     AN_EBADSIG);
}

static void test_js_certificate(void)
{
	uint8_t der[1024];
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX], text[AN_PEERID_TEXT_MAX];
	size_t len = unhex(js_cert, der, sizeof(der));
	CHECK(len > 0);
	CHECK_EQ_INT(an_tls_cert_verify(der, len, JS_CERT_NOW, NULL, NULL, &id, why, sizeof(why)), 0);
	id_text(&id, text, sizeof(text));
	CHECK_EQ_STR(text, js_cert_id);
}

static void test_signed_key_der(void)
{
	const uint8_t *pk, *sig;
	size_t pl, sl, n;
	uint8_t buf[600], pkb[300];
	static const uint8_t ok[] = {0x30, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb};
	CHECK_EQ_INT(an_tls_signed_key_parse(ok, sizeof(ok), &pk, &pl, &sig, &sl), 0);
	CHECK(pl == 1 && pk[0] == 0xaa && sl == 1 && sig[0] == 0xbb);
	static const uint8_t trailing[] = {0x30, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00};
	static const uint8_t indefinite[] = {0x30, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0, 0};
	static const uint8_t long_short[] = {0x30, 0x81, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb};
	static const uint8_t empty_pk[] = {0x30, 0x05, 0x04, 0x00, 0x04, 0x01, 0xbb};
	static const uint8_t bitstring[] = {0x30, 0x06, 0x03, 0x01, 0xaa, 0x04, 0x01, 0xbb};
	static const uint8_t overrun[] = {0x30, 0x06, 0x04, 0x09, 0xaa, 0x04, 0x01, 0xbb};
	static const uint8_t extra_in[] = {0x30, 0x08, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x05, 0x00};
	CHECK_EQ_INT(an_tls_signed_key_parse(trailing, sizeof(trailing), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(indefinite, sizeof(indefinite), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(long_short, sizeof(long_short), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(empty_pk, sizeof(empty_pk), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(bitstring, sizeof(bitstring), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(overrun, sizeof(overrun), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	CHECK_EQ_INT(an_tls_signed_key_parse(extra_in, sizeof(extra_in), &pk, &pl, &sig, &sl), AN_EMALFORMED);
	/* long forms round-trip: 300-byte key, 64-byte signature */
	memset(pkb, 0x5a, sizeof(pkb));
	CHECK_EQ_INT(an_tls_signed_key_encode(pkb, sizeof(pkb), ok, 8, buf, sizeof(buf), &n), 0);
	CHECK_EQ_INT(n, 4 + 4 + 300 + 2 + 8);
	CHECK_EQ_INT(an_tls_signed_key_parse(buf, n, &pk, &pl, &sig, &sl), 0);
	CHECK(pl == 300 && sl == 8 && memcmp(sig, ok, 8) == 0);
	CHECK_EQ_INT(an_tls_signed_key_encode(pkb, sizeof(pkb), ok, 8, buf, 100, &n), AN_ETOOBIG);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&host) < 0)
		return 1;
	RUN(test_ours_verifies);
	RUN(test_each_certificate_has_its_own_key);
	RUN(test_unexpected_peer_refused);
	RUN(test_validity_period);
	RUN(test_tampered_self_signature_refused);
	RUN(test_missing_extension_refused);
	RUN(test_wrong_host_signature_refused);
	RUN(test_unknown_critical_extension_refused);
	RUN(test_garbage_refused);
	RUN(test_spec_vector);
	RUN(test_js_certificate);
	RUN(test_signed_key_der);
	an_privkey_free(host);
	return check_done();
}
