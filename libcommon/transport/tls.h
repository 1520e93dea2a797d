/*
 * tls.h - a libp2p TLS 1.3 session (libp2p/specs tls/tls.md) as a sans-I/O
 * machine over GnuTLS: the security stage of /tls/1.0.0 over TCP, the
 * sibling of noise.h.  Not yet wired into conn.c (issue 13, step 5).
 *
 * TLS 1.3 only, ALPN "libp2p" (so the muxer is then negotiated with
 * multistream-select), no SNI sent, a client certificate required by the
 * server, session tickets off.  Each session shows a fresh certificate of
 * crypto/tls_cert.h for the host key, and checks the peer's with
 * an_tls_cert_verify from GnuTLS's verify callback: a refused certificate
 * fails the handshake (alert bad_certificate) with the reason kept.
 *
 * The owner moves bytes: ciphertext read from the wire goes in with
 * an_tls_feed, ciphertext to send comes out of an_tls_output.  Memory is
 * bounded: AN_TLS_IN_MAX of unprocessed input, AN_TLS_OUT_MAX of output.
 */
#ifndef AN_TRANSPORT_TLS_H
#define AN_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "crypto/peerid.h"

#define AN_TLS_PROTOCOL "/tls/1.0.0"
#define AN_TLS_ALPN "libp2p"
#define AN_TLS_IN_MAX (256 * 1024)
#define AN_TLS_OUT_MAX (1024 * 1024)

struct an_tls_config {
	const struct an_privkey *key;      /* borrowed for an_tls_new only */
	bool server;                       /* TLS server (the listener) */
	const struct an_peerid *expected;  /* borrowed (copied); NULL = anyone */
	int64_t now_s;                     /* for certificates: Unix seconds */
};

struct an_tls;

/* *out is new (an_tls_free).  0, -ENOMEM, AN_EPROTO (GnuTLS setup). */
int an_tls_new(const struct an_tls_config *cfg, struct an_tls **out);

/* NULL-safe. */
void an_tls_free(struct an_tls *t);

/* Ciphertext from the wire (copied).  AN_ELIMIT past AN_TLS_IN_MAX held. */
int an_tls_feed(struct an_tls *t, const uint8_t *p, size_t n);

/*
 * Run the handshake as far as the input allows: 1 when done (an_tls_peer
 * is then authenticated), 0 when it waits for input, or an error: the
 * peer's certificate refused (its an_tls_cert_verify code: AN_EMISMATCH,
 * AN_EBADSIG, AN_EFIELD, AN_EEXPIRED, ...) or AN_EPROTO; an_tls_reason
 * says why.  Output (a client's first flight at once) may follow each call.
 */
int an_tls_handshake(struct an_tls *t);

/* Ciphertext to send (borrowed until the next call); consume what was sent. */
void an_tls_output(const struct an_tls *t, const uint8_t **p, size_t *len);
void an_tls_output_consume(struct an_tls *t, size_t n);

/* After the handshake: encrypt p (copied) into the output.  AN_ELIMIT when
   the output is full. */
int an_tls_write(struct an_tls *t, const uint8_t *p, size_t n);

/*
 * After the handshake: plaintext into out (cap bytes), *got set (0 when
 * the input holds no whole record).  0, AN_ECLOSED after the peer's
 * close_notify, AN_EPROTO for a bad record.
 */
int an_tls_read(struct an_tls *t, uint8_t *out, size_t cap, size_t *got);

/* The authenticated peer (borrowed), NULL before the handshake ends. */
const struct an_peerid *an_tls_peer(const struct an_tls *t);
const struct an_pubkey *an_tls_remote_key(const struct an_tls *t);

/* Why the session failed ("" if it did not; borrowed). */
const char *an_tls_reason(const struct an_tls *t);

#endif
