/*
 * conn.h - one libp2p connection as a sans-I/O pipeline over any byte stream:
 *
 *   mss(/noise) -> Noise XX -> mss(/yamux/1.0.0) (skipped when Noise's early
 *   muxer negotiation agreed on yamux) -> yamux
 *   mss(/tls/1.0.0) -> TLS 1.3 (transport/tls.h) -> mss(/yamux/1.0.0) -> yamux
 *
 * A listener accepts either security protocol (/noise first); a dialer
 * proposes one, /noise unless the config asks for TLS.
 *
 * The conn never touches a socket or a clock: the owner (the TCP transport
 * in host.c, or later a relayed stream carrying a whole session inside
 * another connection's stream) feeds it the bytes it read, writes out the
 * bytes it produces, and polls events.  Time comes in as now_ms.
 *
 * Roles are explicit and independent of who called connect(): the
 * initiator speaks first in multistream and is the Noise initiator; the
 * yamux role is separate (DCUtR sets both after a hole punch; normally the
 * dialer is initiator and yamux client).
 *
 * Once established, streams are driven through the yamux session
 * (an_conn_yamux) except writes, which go through an_conn_stream_write so
 * the conn can encrypt them.  Per-stream protocol negotiation is the
 * owner's (host.c).
 *
 * Memory per conn is bounded by the caps below plus yamux's own bounds.
 */
#ifndef AN_TRANSPORT_CONN_H
#define AN_TRANSPORT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "transport/yamux.h"
#include "util/buf.h"

/*
 * Reads offered by an_conn_input_buffer: AN_CONN_READ_MIN at first, doubling
 * while reads fill what was offered, up to AN_CONN_READ_MAX (a bulk
 * transfer reads two Noise frames per call; an idle connection's buffer
 * stays small, and is freed after a small read that was processed whole).
 */
#define AN_CONN_READ_MIN 4096
#define AN_CONN_READ_MAX (128 * 1024)
/* Raw (ciphertext) input buffered: the largest read plus one partial frame. */
#define AN_CONN_RAW_IN_MAX (AN_CONN_READ_MAX + 65537)
/* Plaintext buffered between Noise and mss/yamux. */
#define AN_CONN_PLAIN_IN_MAX (2 * 65519)
/* Ciphertext waiting for the byte stream to take it.  (Plaintext waiting to
   be encrypted is one Noise message, filled by stream writes and sealed
   when full or on an_conn_flush.) */
#define AN_CONN_RAW_OUT_MAX (1024 * 1024)

struct an_conn_config {
	const struct an_privkey *key;      /* borrowed, must outlive the conn */
	bool initiator;                    /* mss dialer and Noise initiator */
	bool yamux_client;                 /* odd stream ids */
	const struct an_peerid *expected;  /* borrowed (copied); NULL = anyone */
	const struct an_yamux_config *yamux; /* borrowed (copied); NULL = defaults */
	bool no_early_muxer;               /* don't announce stream_muxers in Noise */
	bool tls;                          /* dialer: propose /tls/1.0.0, not /noise */
	int64_t now_s;                     /* TLS certificates' clock (Unix s); 0: time() */
};

enum an_conn_state {
	AN_CONN_MSS_SECURITY,
	AN_CONN_NOISE,
	AN_CONN_TLS,
	AN_CONN_MSS_MUXER,
	AN_CONN_ESTABLISHED,
	AN_CONN_FAILED
};

enum an_conn_event_type {
	AN_CONN_EV_NONE = 0,
	AN_CONN_EV_READY, /* upgrade complete: an_conn_peer() is authenticated */
	AN_CONN_EV_YAMUX, /* a yamux event (ev.yamux) */
	AN_CONN_EV_ERROR  /* the connection failed: err, reason */
};

struct an_conn_event {
	enum an_conn_event_type type;
	struct an_yamux_event yamux;
	int err;
	const char *reason; /* borrowed from the conn, valid until it is freed */
};

struct an_conn;

/* *out is new (free with an_conn_free).  0, -EINVAL, -ENOMEM. */
int an_conn_new(const struct an_conn_config *cfg, struct an_conn **out);

/* NULL-safe. */
void an_conn_free(struct an_conn *c);

/* Initiator: queue the first multistream messages.  Call once. */
int an_conn_start(struct an_conn *c, uint64_t now_ms);

/* How many input bytes an_conn_feed will take now (0: poll events and flush first). */
size_t an_conn_input_room(const struct an_conn *c);

/*
 * Bytes from the byte stream (borrowed).  *consumed gets what was taken
 * (at most an_conn_input_room).  Processes as far as possible; events and
 * output follow.  Returns 0 or the connection's error (also as an event).
 */
int an_conn_feed(struct an_conn *c, const uint8_t *in, size_t len, size_t *consumed,
		 uint64_t now_ms);

/*
 * Zero-copy input: *p (borrowed, valid until the next call on c) gets room
 * for *room bytes of the byte stream (0: poll events and flush first).  Read
 * into it, then hand the count to an_conn_input_commit, which processes like
 * an_conn_feed.  0 or the connection's error (-ENOMEM).
 */
int an_conn_input_buffer(struct an_conn *c, uint8_t **p, size_t *room);

/* n (<= the room given) bytes were written at an_conn_input_buffer's
   pointer.  0, -EINVAL for too many, or the connection's error. */
int an_conn_input_commit(struct an_conn *c, size_t n, uint64_t now_ms);

/* Next event: 1 and *ev, or 0 when none. */
int an_conn_next_event(struct an_conn *c, struct an_conn_event *ev);

/*
 * Move pending yamux output through Noise into the output buffer (the
 * partly filled message too), and go on processing input that waited for
 * room.  Call after every stream operation and before writing output.
 * 0 or the connection's error.
 */
int an_conn_flush(struct an_conn *c, uint64_t now_ms);

/* Bytes ready for the byte stream (borrowed, valid until the next call).
   Taking part of them (an_conn_output_consume) moves nothing. */
void an_conn_output(const struct an_conn *c, const uint8_t **p, size_t *len);

/* The byte stream took n of them. */
void an_conn_output_consume(struct an_conn *c, size_t n);

/*
 * Heap bytes the conn's byte buffers hold now (their allocations), for
 * memory accounting and tests.  An idle connection frees them after a small
 * input (less than AN_CONN_READ_MIN / 2 bytes, e.g. a keep-alive ping) that
 * left them drained; until then they keep their high-water size.
 */
size_t an_conn_buffer_bytes(const struct an_conn *c);

/*
 * True when the conn holds output it could not move into the output
 * buffer for lack of room (a full Noise message not yet sealed): once the
 * byte stream has taken the output, call an_conn_flush (and retry stream
 * writes) again.  An owner that waits only for input would stall here.
 */
bool an_conn_output_blocked(const struct an_conn *c);

/* The yamux session (borrowed), NULL before READY. */
struct an_yamux *an_conn_yamux(struct an_conn *c);

/*
 * Write stream data (p borrowed, copied); *accepted may be short (window,
 * buffers): wait for AN_YAMUX_EV_WRITABLE or for the output to drain, then
 * write the rest.  Data fills Noise messages of the full 65519 bytes, each
 * sealed as it fills; the last, partly filled one goes out on
 * an_conn_flush.
 */
int an_conn_stream_write(struct an_conn *c, uint32_t id, const uint8_t *p, size_t n,
			 size_t *accepted);

enum an_conn_state an_conn_state(const struct an_conn *c);

/* The authenticated remote (borrowed), NULL before READY. */
const struct an_peerid *an_conn_peer(const struct an_conn *c);
const struct an_pubkey *an_conn_remote_key(const struct an_conn *c);

/* The error and its reason ("" if none; borrowed). */
int an_conn_error(const struct an_conn *c, const char **reason);

/* Fail the connection from outside (timeouts, limits); reason is copied. */
void an_conn_fail(struct an_conn *c, int err, const char *reason);

#endif
