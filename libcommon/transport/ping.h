/*
 * ping.h - the libp2p ping protocol (/ipfs/ping/1.0.0), sans-I/O.
 *
 * Wire (specs ping/ping.md): no framing.  The dialer writes 32 random bytes,
 * the listener echoes the same 32 bytes; this may repeat on one stream.  The
 * dialer may half-close right after writing (js-libp2p does, one stream per
 * ping), so the responder must still echo after the remote's FIN.
 *
 * Both halves only transform bytes: the caller moves them to and from a
 * stream and owns the clock (now_ms) and the timeout.
 */
#ifndef AN_TRANSPORT_PING_H
#define AN_TRANSPORT_PING_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_PING_PROTOCOL "/ipfs/ping/1.0.0"
#define AN_PING_SIZE 32
/* Default round-trip deadline (js and the digest's table use 10 s). */
#define AN_PING_TIMEOUT_MS 10000

/* Responder: echoes whole 32-byte payloads; a partial one waits for the rest. */
struct an_ping_responder {
	uint8_t pending[AN_PING_SIZE];
	size_t have;
	uint64_t echoed; /* payloads echoed so far */
};

void an_ping_responder_init(struct an_ping_responder *r);

/*
 * Consume all of in[0..len) (borrowed), appending every completed 32-byte
 * payload to out.  0, or AN_ETOOBIG / -ENOMEM from out (nothing consumed
 * past the payload that did not fit is lost: the caller should close).
 */
int an_ping_responder_feed(struct an_ping_responder *r, const uint8_t *in, size_t len,
			   struct an_buf *out);

/* Client: one outstanding payload at a time. */
struct an_ping_client {
	uint8_t payload[AN_PING_SIZE];
	size_t got;       /* echoed bytes matched so far */
	uint64_t sent_ms; /* when the payload was written */
	int outstanding;  /* 1 between start and the full echo */
};

void an_ping_client_init(struct an_ping_client *c);

/*
 * Start one ping: a fresh random payload appended to out, sent_ms = now_ms.
 * AN_EPROTO if a ping is still outstanding; errors of out.
 */
int an_ping_client_start(struct an_ping_client *c, uint64_t now_ms, struct an_buf *out);

/*
 * Feed echoed bytes.  Sets *used to the bytes consumed (at most the rest of
 * the payload; anything after it belongs to a later ping or is junk).
 * Returns 0 with *rtt_ms set when the echo is complete and matches,
 * AN_EAGAIN when more bytes are needed, AN_EPROTO when the echo differs or
 * nothing was outstanding.
 */
int an_ping_client_feed(struct an_ping_client *c, const uint8_t *in, size_t len, uint64_t now_ms,
			size_t *used, uint64_t *rtt_ms);

/* ---- the service on a host (transport/host.h) ---- */

struct an_host;
struct an_host_conn;

/* Answer /ipfs/ping/1.0.0 on h: echo every payload, also after the peer's FIN. */
int an_ping_service_register(struct an_host *h);

/*
 * Outcome of one ping: err 0 and rtt_ms, or AN_EPROTO (bad echo),
 * -ETIMEDOUT, AN_ENOPROTO (peer has no ping), AN_ECLOSED / AN_ERESET.
 */
typedef void (*an_ping_result_fn)(void *arg, int err, uint64_t rtt_ms);

/*
 * One ping on c over a fresh stream, half-closed right after the payload
 * (what js-libp2p's client does).  cb (arg borrowed) is called exactly once,
 * never from inside this call unless it returns an error (then never).
 */
int an_ping_once(struct an_host_conn *c, int timeout_ms, an_ping_result_fn cb, void *arg);

#endif
