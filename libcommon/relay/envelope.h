/*
 * envelope.h - libp2p signed envelopes (specs RFC/0002-signed-envelopes.md)
 * and the Circuit Relay v2 reservation voucher carried in one
 * (relay/circuit-v2.md, "Reservation Vouchers").
 *
 *   message Envelope { bytes public_key = 1;    serialized PublicKey protobuf
 *                      bytes payload_type = 2;  multicodec, e.g. 0x03 0x02
 *                      bytes payload = 3;
 *                      bytes signature = 5; }   tag 5: there is no tag 4
 *
 * The signature covers uvarint(len(domain)) || domain ||
 * uvarint(len(payload_type)) || payload_type || uvarint(len(payload)) ||
 * payload.  The domain is not in the envelope: the verifier supplies it.
 *
 *   message Voucher { bytes relay = 1; bytes peer = 2; uint64 expiration = 3; }
 *
 * signed by the relay with domain "libp2p-relay-rsvp", payload type 0x0302.
 * Neither js nor rust checks vouchers (they are advisory), but js decodes
 * Reservation.voucher as an envelope: a malformed one makes the whole
 * HopMessage fail to decode there, so what we send must be well formed.
 */
#ifndef AN_RELAY_ENVELOPE_H
#define AN_RELAY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "util/buf.h"

#define AN_VOUCHER_DOMAIN "libp2p-relay-rsvp"
/* Envelope payload types are small multicodecs; anything longer is refused. */
#define AN_ENVELOPE_TYPE_MAX 16
/* Largest envelope accepted (a voucher envelope is ~150 bytes; RSA keys fit). */
#define AN_ENVELOPE_MAX 4096

extern const uint8_t an_voucher_payload_type[2]; /* 0x03 0x02 */

/* An opened envelope; payload_type and payload borrow from the input. */
struct an_envelope {
	struct an_pubkey key;
	const uint8_t *payload_type;
	size_t payload_type_len;
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * Sign payload (borrowed) with k under domain (NUL-terminated) and append
 * the Envelope protobuf to out.  0; AN_ETOOBIG at out's cap (out
 * unchanged); -ENOMEM; -EINVAL for an empty domain or payload type.
 */
int an_envelope_seal(const struct an_privkey *k, const char *domain, const uint8_t *type,
		     size_t type_len, const uint8_t *payload, size_t len, struct an_buf *out);

/*
 * Decode p[0..len) (borrowed; *env borrows from it) and check the
 * signature with the embedded key under domain.  0; AN_ETOOBIG over
 * AN_ENVELOPE_MAX or a payload type over AN_ENVELOPE_TYPE_MAX;
 * AN_EMALFORMED / AN_ETRUNCATED for bad encoding; AN_EFIELD for a missing
 * key, payload type or signature; AN_EBADSIG; AN_EKEYTYPE from the key.
 */
int an_envelope_open(const char *domain, const uint8_t *p, size_t len, struct an_envelope *env);

struct an_voucher {
	struct an_peerid relay;
	struct an_peerid peer;
	uint64_t expiration; /* unix seconds, UTC */
};

/* Append the Voucher protobuf of v to out (fields in tag order). */
int an_voucher_encode(const struct an_voucher *v, struct an_buf *out);

/*
 * Decode a Voucher protobuf (borrowed).  0; AN_EFIELD if relay, peer or
 * expiration is missing; AN_EMALFORMED for bad encoding or peer IDs.
 */
int an_voucher_decode(const uint8_t *p, size_t len, struct an_voucher *v);

/*
 * The relay's side: a voucher for peer until expiration, signed with the
 * relay key k (whose peer ID becomes v.relay), as an envelope appended to
 * out.  Errors of an_envelope_seal.
 */
int an_voucher_sign(const struct an_privkey *k, const struct an_peerid *peer,
		    uint64_t expiration, struct an_buf *out);

/*
 * The client's side: open an envelope p[0..len) (borrowed), check the
 * domain, payload type and signature, decode the voucher into *v, and
 * check that the signing key is v->relay's.  0; AN_EMISMATCH for another
 * payload type or a key that is not the relay's; errors of
 * an_envelope_open and an_voucher_decode.  Expiry is left to the caller.
 */
int an_voucher_open(const uint8_t *p, size_t len, struct an_voucher *v);

#endif
