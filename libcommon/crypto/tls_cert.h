/*
 * tls_cert.h - the libp2p TLS certificate (libp2p/specs tls/tls.md): the
 * self-signed X.509 certificate a host shows in /tls/1.0.0 over TCP and in
 * QUIC, binding a throwaway certificate key to the host's identity key.
 *
 * Making: a fresh ECDSA P-256 key per certificate (go and rust do the same;
 * js makes one per connection), a positive random 8-byte serial, validity
 * now - 1 h to now + 100 years, empty subject and issuer, and one extension
 * - the libp2p Public Key Extension, OID 1.3.6.1.4.1.53594.1.1, critical
 * (rust and js mark it critical; go does not) - holding
 *
 *   SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }
 *
 * where publicKey is the host's PublicKey protobuf and signature the host
 * key's signature over "libp2p-tls-handshake:" || the certificate key's DER
 * SubjectPublicKeyInfo.  It is the only extension, so also the first (js
 * @libp2p/tls reads extensions[0]).
 *
 * Verifying a peer's certificate, in this order, each refusal with its own
 * code and a reason: DER that GnuTLS parses (AN_EMALFORMED), the validity
 * period against now (AN_ENOTYET, AN_EEXPIRED), the self-signature with a
 * signature algorithm GnuTLS considers secure (AN_EBADSIG), the libp2p
 * extension present exactly once and no other critical extension
 * (AN_EFIELD), its SignedKey in strict DER and the PublicKey protobuf in it
 * (AN_EMALFORMED, AN_EKEYTYPE), the host signature (AN_EBADSIG), and the
 * peer ID against the expected one (AN_EMISMATCH).  A non-critical
 * extension is accepted: the spec's own test vectors and go-libp2p write it
 * so.
 *
 * GnuTLS (gnutls_global_init is implicit in GnuTLS >= 3.3) does the X.509;
 * the SignedKey parser is our own (fuzz/fuzz_tls_cert.c).
 */
#ifndef AN_CRYPTO_TLS_CERT_H
#define AN_CRYPTO_TLS_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "crypto/peerid.h"

#define AN_TLS_EXT_OID "1.3.6.1.4.1.53594.1.1"
#define AN_TLS_SIG_PREFIX "libp2p-tls-handshake:"
#define AN_TLS_CERT_DER_MAX 4096 /* a certificate we accept from a peer */
#define AN_TLS_SIGNED_KEY_MAX (AN_PUBKEY_PB_MAX + 1024)
#define AN_TLS_REASON_MAX 128

struct an_tls_cert; /* ours: the certificate and its private key */

/*
 * A new certificate for host (borrowed for the call), valid from now_s -
 * 3600 to now_s + 100 years (now_s: Unix seconds).  *out is new; free with
 * an_tls_cert_free.  0, -ENOMEM, AN_EKEYTYPE, or AN_EPROTO for a GnuTLS
 * failure.
 */
int an_tls_cert_new(const struct an_privkey *host, int64_t now_s, struct an_tls_cert **out);

/* NULL-safe; wipes the certificate key. */
void an_tls_cert_free(struct an_tls_cert *c);

/* The certificate's DER (borrowed from c). */
const uint8_t *an_tls_cert_der(const struct an_tls_cert *c, size_t *len);

/*
 * The certificate and its key as GnuTLS objects (borrowed from c), for
 * gnutls_certificate_set_x509_key: a gnutls_x509_crt_t and a
 * gnutls_x509_privkey_t, as void * so that this header needs no GnuTLS.
 */
void *an_tls_cert_gnutls_crt(const struct an_tls_cert *c);
void *an_tls_cert_gnutls_key(const struct an_tls_cert *c);

/*
 * The SignedKey of the extension.  parse: strict DER (definite minimal
 * lengths, nothing after the sequence), both fields non-empty; *pk and
 * *sig borrow from p.  0 or AN_EMALFORMED.  encode: into out (cap bytes),
 * *len set; AN_ETOOBIG if it does not fit.
 */
int an_tls_signed_key_parse(const uint8_t *p, size_t len, const uint8_t **pk, size_t *pk_len,
			    const uint8_t **sig, size_t *sig_len);
int an_tls_signed_key_encode(const uint8_t *pk, size_t pk_len, const uint8_t *sig, size_t sig_len,
			     uint8_t *out, size_t cap, size_t *len);

/*
 * Check a peer's certificate (DER, borrowed) at now_s as described above.
 * expected (may be NULL: anyone) is the peer ID the dialer wants.  On 0,
 * *key (may be NULL) is the peer's host key and *id its peer ID.  reason
 * (may be NULL; reason_cap bytes) gets why a certificate was refused.
 */
int an_tls_cert_verify(const uint8_t *der, size_t len, int64_t now_s,
		       const struct an_peerid *expected, struct an_pubkey *key, struct an_peerid *id,
		       char *reason, size_t reason_cap);

#endif
