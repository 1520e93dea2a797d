/*
 * noise.h - the libp2p Noise secure channel (/noise, specs noise/README.md),
 * sans-I/O: Noise_XX_25519_ChaChaPoly_SHA256 with libsodium.
 *
 *   -> e                    (32 bytes, empty payload: rust refuses any other)
 *   <- e, ee, s, es, payload
 *   -> s, se, payload
 *
 * Every handshake and transport message travels as u16 big-endian length ||
 * message (at most AN_NOISE_MSG_MAX bytes).  The prologue is empty (js and
 * rust both default to it).  The payload of messages 2 and 3 is the libp2p
 * NoiseHandshakePayload protobuf: identity_key (a PublicKey protobuf),
 * identity_sig (the identity key's signature over "noise-libp2p-static-key:"
 * || the sender's static X25519 public key) and extensions (stream_muxers).
 * The static X25519 key pair is generated per an_noise and, like the
 * ephemeral one, wiped when the handshake ends.
 *
 * Roles are the caller's choice (cfg.role), independent of who called
 * connect(): DCUtR decides them after a hole punch.
 *
 * Early muxer negotiation (connections/inlined-muxer-negotiation.md): each
 * side announces cfg.muxers in its payload.  If BOTH payloads carry a
 * non-empty stream_muxers list, the muxer is the first entry of the
 * initiator's list that the responder lists too, and the caller skips the
 * multistream muxer round; with no overlap the handshake fails
 * (AN_ENOPROTO), as the spec and js-libp2p-noise >= 16.1 do.  If either list
 * is empty or absent, an_noise_muxer() is NULL and the caller runs
 * multistream-select for the muxer.  (js-libp2p-noise 16.1..17.0 picks the
 * first entry of the REMOTE's list it supports on both sides, which agrees
 * with the spec rule whenever one list has a single entry, as our default
 * ["/yamux/1.0.0"] does; rust-libp2p ignores stream_muxers and always runs
 * multistream, which our NULL answer matches.)
 *
 * I/O shape: an_noise_recv() consumes whole frames only and reports the bytes
 * used; a partial frame is left for the caller to present again with more
 * bytes (the caller's input buffer needs at most AN_NOISE_FRAME_MAX bytes for
 * this layer).  Output goes to caller-owned capped an_bufs.  The handshake
 * timeout (10 s inbound upgrade in js) is the caller's.
 */
#ifndef AN_TRANSPORT_NOISE_H
#define AN_TRANSPORT_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "util/buf.h"

#define AN_NOISE_PROTOCOL "/noise"
/* Largest Noise message (the u16 length prefix bounds it). */
#define AN_NOISE_MSG_MAX 65535
/* A framed message: 2-byte length + message. */
#define AN_NOISE_FRAME_MAX (AN_NOISE_MSG_MAX + 2)
#define AN_NOISE_TAG_LEN 16
/* Largest plaintext in one transport frame (js chunks at the same size). */
#define AN_NOISE_PLAINTEXT_MAX (AN_NOISE_MSG_MAX - AN_NOISE_TAG_LEN)
/* Muxers we announce at most; entries at most AN_NOISE_MUXER_ID_MAX bytes. */
#define AN_NOISE_MUXERS_MAX 8
#define AN_NOISE_MUXER_ID_MAX 255
#define AN_NOISE_REASON_MAX 128
#define AN_NOISE_DEFAULT_MUXER "/yamux/1.0.0"

enum an_noise_role { AN_NOISE_INITIATOR, AN_NOISE_RESPONDER };

struct an_noise_config {
	enum an_noise_role role;
	/* Our identity, borrowed: must outlive the handshake (an_noise_recv
	   returning 1).  Required. */
	const struct an_privkey *identity;
	/* If non-NULL (borrowed, copied by an_noise_new): the peer we dialed a
	   /p2p/<id> address for; any other identity fails with AN_EMISMATCH. */
	const struct an_peerid *expected_remote;
	/* Muxers announced, in preference order (borrowed, copied by
	   an_noise_new).  n_muxers 0 announces none. */
	const char *const *muxers;
	size_t n_muxers;
};

/*
 * Opaque.  Secrets live in sodium_malloc() memory: the handshake state in a
 * block of its own, freed when the handshake ends or fails; an established
 * session's two CipherStates in a slot of slabs shared by all sessions of
 * the process (thread-safe), so a session costs ~100 bytes of locked memory.
 */
struct an_noise;

/*
 * Defaults: initiator, no identity, no expected peer, muxers
 * ["/yamux/1.0.0"] (a static array, so the config needs no freeing).
 */
void an_noise_config_init(struct an_noise_config *cfg);

/*
 * New handshake for cfg (its pointers are read now; identity is kept
 * borrowed).  Takes the identity's static X25519 key (made once a process)
 * and an ephemeral pair (made now, or ahead: an_noise_prepare).  *out is new;
 * free with an_noise_free().  -EINVAL on a missing identity or bad muxer
 * list (more than AN_NOISE_MUXERS_MAX, an ID empty or longer than
 * AN_NOISE_MUXER_ID_MAX), -ENOMEM.
 */
int an_noise_new(const struct an_noise_config *cfg, struct an_noise **out);

/* NULL-safe; wipes every key. */
void an_noise_free(struct an_noise *n);

/*
 * Work done ahead for later handshakes, for an event loop to call when it
 * is about to wait: makes the ephemeral key pair of one kept handshake
 * block (finished handshakes leave up to 4 blocks, wiped, for the next
 * ones).  Returns whether it did anything (call again while true, if the
 * loop is still idle).  Cheap when there is nothing to do.  Thread-safe.
 */
bool an_noise_prepare(void);

/*
 * Initiator: append framed message 1 to out.  Responder: nothing.
 * 0, or out's error (AN_ETOOBIG, -ENOMEM).  Call once, before an_noise_recv.
 */
int an_noise_start(struct an_noise *n, struct an_buf *out);

/*
 * Handshake input: feed in[0..len) (borrowed); every whole frame present is
 * handled and *used gets the bytes consumed.  Replies are appended to out.
 *   0             more input needed
 *   1             handshake complete: the remote is authenticated, transport
 *                 keys are ready; in[*used..len) is already transport data
 *                 (call an_noise_decrypt on it).  For the initiator, out now
 *                 holds message 3: send it before (or with) transport data
 *   AN_EPROTO     malformed or undecryptable message (an_noise_reason)
 *   AN_EBADSIG    the identity signature over the static key is wrong
 *   AN_EMISMATCH  the remote is not cfg.expected_remote
 *   AN_EKEYTYPE   the remote's identity key type cannot be used
 *   AN_ENOPROTO   both sides announced muxers without a common one
 *   AN_ETOOBIG / -ENOMEM from out
 * Errors are sticky (later calls return the first error).
 */
int an_noise_recv(struct an_noise *n, const uint8_t *in, size_t len, size_t *used,
		  struct an_buf *out);

/* True once the handshake completed. */
bool an_noise_established(const struct an_noise *n);

/*
 * Encrypt p[0..len) (borrowed) as transport frames of at most
 * AN_NOISE_PLAINTEXT_MAX plaintext bytes each, appended to out.  All or
 * nothing: AN_ETOOBIG (out unchanged) if the frames do not fit under out's
 * cap.  AN_ELIMIT when the send nonce would reach 2^64-1 (the channel is
 * then dead: the nonce never wraps).  -EINVAL before the handshake ends.
 * len 0 sends nothing.
 */
int an_noise_encrypt(struct an_noise *n, const uint8_t *p, size_t len, struct an_buf *out);

/*
 * Decrypt whole transport frames from in[0..len) (borrowed) into plain while
 * their plaintext fits under plain's cap; *used gets the bytes consumed.  A
 * partial frame, or one whose plaintext does not fit yet, is left unconsumed
 * (drain plain and call again).  0 on success (even if nothing was consumed);
 * AN_EPROTO on a frame that fails authentication (sticky); AN_ELIMIT at the
 * nonce limit; AN_ETOOBIG if plain is empty and still cannot hold the next
 * frame; -EINVAL before the handshake ends.
 */
int an_noise_decrypt(struct an_noise *n, const uint8_t *in, size_t len, size_t *used,
		     struct an_buf *plain);

/* After the handshake: the remote identity key and peer ID (borrowed from n). */
const struct an_pubkey *an_noise_remote_key(const struct an_noise *n);
const struct an_peerid *an_noise_remote_peer(const struct an_noise *n);

/* The early-negotiated muxer (borrowed from n), or NULL: run multistream. */
const char *an_noise_muxer(const struct an_noise *n);

/* The final handshake hash h (channel binding), valid once established. */
int an_noise_handshake_hash(const struct an_noise *n, uint8_t out[32]);

/* Why the handshake or a transport call failed ("" if none); borrowed. */
const char *an_noise_reason(const struct an_noise *n);

/*
 * The libp2p handshake payload codec (exposed for tests and fuzzers).
 */
struct an_noise_payload {
	struct an_pubkey key;        /* decoded identity_key */
	const uint8_t *sig;          /* identity_sig, borrowed from the input */
	size_t sig_len;
	const uint8_t *extensions;   /* NoiseExtensions bytes, borrowed; NULL if absent */
	size_t extensions_len;
	size_t n_muxers;             /* entries in extensions.stream_muxers */
};

/*
 * Decode p[0..len) (borrowed; out points into it).  Unknown fields are
 * skipped.  AN_EPROTO if identity_key or identity_sig is missing or a field
 * is malformed; an_pubkey_decode's codes for a bad identity_key.
 */
int an_noise_payload_decode(const uint8_t *p, size_t len, struct an_noise_payload *out);

/*
 * Check the payload's identity_sig over "noise-libp2p-static-key:" ||
 * remote_static.  0, AN_EBADSIG, AN_EKEYTYPE.
 */
int an_noise_payload_verify(const struct an_noise_payload *pl, const uint8_t remote_static[32]);

/*
 * Append the payload for our identity and static public key, with
 * extensions.stream_muxers = muxers[0..n) (no extensions field when n is 0).
 */
int an_noise_payload_encode(const struct an_privkey *id, const uint8_t static_pub[32],
			    const char *const *muxers, size_t n, struct an_buf *out);

/*
 * Test hooks (unit tests and fuzzers only; never in production paths).
 * Replace the X25519 secrets (32 bytes each, either may be NULL) and the
 * prologue before an_noise_start / the first an_noise_recv, so published
 * vectors (cacophony) can be reproduced.  The raw functions run one
 * handshake message with an arbitrary payload instead of the libp2p one
 * (no framing, no payload checks); after the last message they split the
 * keys like the real path.  Nonces can be moved to test the 2^64-1 limit.
 */
int an_noise_set_keys_for_test(struct an_noise *n, const uint8_t *static_sk,
			       const uint8_t *ephemeral_sk);
int an_noise_set_prologue_for_test(struct an_noise *n, const uint8_t *p, size_t len);
int an_noise_write_raw_for_test(struct an_noise *n, const uint8_t *payload, size_t len,
				struct an_buf *msg);
int an_noise_read_raw_for_test(struct an_noise *n, const uint8_t *msg, size_t len,
			       struct an_buf *payload);
void an_noise_set_nonces_for_test(struct an_noise *n, uint64_t send, uint64_t recv);

#endif
