/*
 * mss.h - multistream-select 1.0 (specs connections/README.md), sans-I/O.
 *
 * Wire: every message is uvarint(len) || bytes || '\n', len counting the
 * '\n'.  Both sides first exchange the header "/multistream/1.0.0"; the
 * dialer then proposes protocol IDs one at a time, the listener echoes the
 * one it accepts or answers "na".  "ls" asks the listener for its list.
 *
 * Shape (the nghttp2 mem_recv / mem_send style of DESIGN.md): no sockets and
 * no clock inside.  The caller hands input bytes to an_mss_recv(), which
 * consumes whole messages only and reports how many bytes it used; a partial
 * message is left unconsumed for the caller to present again with more bytes
 * appended (so the caller's input buffer never needs more than
 * AN_MSS_MSG_MAX + 2 bytes for this layer).  Output goes to a caller-owned
 * capped an_buf.  Once a protocol is selected, the bytes after the selecting
 * message are NOT consumed: they belong to the next layer (rust-libp2p
 * dials with Version::V1Lazy and pipelines the first Noise or yamux bytes
 * right after its proposal; digest K10).  The negotiation timeout (10 s in
 * js) is the caller's.
 *
 * Limits: a message carries at most AN_MSS_MSG_MAX bytes (js reads with
 * maxDataLength 1024 and a 2-byte length); protocol IDs must start with '/'
 * (rust refuses others, digest K16); a listener answers at most
 * AN_MSS_MAX_REJECTS proposals with "na" before giving up with AN_EPROTO.
 * The deprecated simultaneous-open extension "/libp2p/simultaneous-connect"
 * is answered "na" like any protocol not supported (specs#573).
 *
 * The callers propose one protocol at a time and let the next layer speak
 * right behind the proposal ("lazy" select: transport/conn.c sends Noise's
 * first message, transport/host.c a stream's first bytes).  With one
 * proposal that is sound; with several it is not (go-multistream#20), and
 * this module never sends anything but multistream lines itself.
 */
#ifndef AN_TRANSPORT_MSS_H
#define AN_TRANSPORT_MSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_MSS_HEADER "/multistream/1.0.0"
/* Most bytes in one message after its length prefix ('\n' included). */
#define AN_MSS_MSG_MAX 1024
/* Longest protocol ID (the message minus its '\n'). */
#define AN_MSS_PROTO_MAX (AN_MSS_MSG_MAX - 1)
/* Proposals a listener refuses ("na") before it fails the negotiation. */
#define AN_MSS_MAX_REJECTS 32
/* Room for a failure reason, NUL included. */
#define AN_MSS_REASON_MAX 128

enum an_mss_role { AN_MSS_DIALER, AN_MSS_LISTENER };

/*
 * Listener predicate for protocol IDs not in the static list (e.g. the
 * host's handler registry).  proto is NUL-terminated, borrowed for the call.
 * Return true to accept (the listener then echoes it).
 */
typedef bool (*an_mss_supported_fn)(void *ctx, const char *proto);

/* One negotiation, dialer or listener.  Fields are private; embed freely. */
struct an_mss {
	enum an_mss_role role;
	int state;
	const char *const *protos; /* borrowed: dialer proposals / listener list */
	size_t n_protos;
	size_t next;               /* dialer: index of the outstanding proposal */
	an_mss_supported_fn supported;
	void *supported_ctx;
	unsigned rejects;          /* listener: "na" answers so far */
	int error;                 /* sticky once failed */
	char selected[AN_MSS_PROTO_MAX + 1];
	char reason[AN_MSS_REASON_MAX];
};

/*
 * Dialer proposing protos[0..n) in order (n >= 1).  protos and the strings
 * are borrowed and must outlive m.  -EINVAL if n == 0 or an ID is empty,
 * longer than AN_MSS_PROTO_MAX, does not start with '/', or contains '\n'.
 */
int an_mss_dialer_init(struct an_mss *m, const char *const *protos, size_t n);

/*
 * Listener accepting the IDs protos[0..n) (borrowed, may be NULL with n 0;
 * these are also the answer to "ls") and, if supported is non-NULL, any ID
 * it accepts.  -EINVAL on an invalid ID in protos (rules as for the dialer).
 */
int an_mss_listener_init(struct an_mss *m, const char *const *protos, size_t n,
			 an_mss_supported_fn supported, void *ctx);

/*
 * Dialer: append the header and the first proposal to out in one piece
 * (js and rust both pipeline them).  Listener: nothing (it answers the
 * dialer's header with its own, exactly once).  0 or out's error.
 */
int an_mss_start(struct an_mss *m, struct an_buf *out);

/*
 * Feed in[0..len) (borrowed).  Whole messages are consumed and answered
 * (answers appended to out); *used is set to the bytes consumed.
 *   0            more input is needed (a partial message is left unconsumed)
 *   1            a protocol is selected (an_mss_selected); in[*used..len)
 *                belongs to the next layer
 *   AN_ENOPROTO  dialer: every proposal was refused with "na"
 *   AN_EPROTO    peer violated the protocol (reason in an_mss_reason)
 *   AN_ELIMIT    listener: the "ls" answer would exceed 16383 bytes
 *   AN_ETOOBIG / -ENOMEM from out: the message that needed room is left
 *                unconsumed, so the caller may drain out and call again
 * On a peer error, out may still hold answers written for earlier messages
 * of the same call (typically the "na" to a protocol a V1Lazy dialer
 * proposed together with its next-layer bytes): send out before closing, so
 * the dialer learns of the refusal (digest K10).  Peer errors are sticky: later calls return the same code and consume
 * nothing.  After success, later calls return 1 and consume nothing.
 */
int an_mss_recv(struct an_mss *m, const uint8_t *in, size_t len, size_t *used,
		struct an_buf *out);

/* The selected protocol ID (borrowed from m), or NULL before selection. */
const char *an_mss_selected(const struct an_mss *m);

/* Why the negotiation failed ("" if it did not); borrowed from m. */
const char *an_mss_reason(const struct an_mss *m);

/*
 * Append one multistream message (uvarint(len+1) || s || '\n') to out.
 * Exposed for callers and tests that speak the framing directly.
 */
int an_mss_put_message(struct an_buf *out, const char *s, size_t len);

#endif
