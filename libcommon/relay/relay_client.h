/*
 * relay_client.h - the client side of Circuit Relay v2 at the stream level:
 * reserve a slot on a relay (hop RESERVE), ask a relay for a circuit to a
 * peer (hop CONNECT), and accept circuits the relay opens to us (the stop
 * protocol).  Once a circuit is up, its stream is a raw byte pipe to the
 * other peer, handed to the caller's stream handler.
 *
 * A relayed libp2p connection is that pipe handed to the host:
 * an_host_conn_over_stream (transport/host.h) runs Noise + yamux over it,
 * the dialer as initiator / yamux client (from an_relay_connect's callback,
 * with an_relay_stream_redirect), the target as responder / server (from
 * the stop service's accept callback).
 *
 * Interop (digest section 11): an answer without addrs is accepted (js
 * falls back to the connection's remote address, so do we); a doubled
 * /p2p/<relay>/p2p/<relay> is collapsed (go-libp2p#3003, js workaround); a
 * voucher, when present, is checked (signature, relay, peer) but a bad one
 * only clears voucher_ok, as neither js nor rust checks vouchers.
 */
#ifndef AN_RELAY_RELAY_CLIENT_H
#define AN_RELAY_RELAY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "encoding/multiaddr.h"
#include "relay/circuit.h"
#include "transport/host.h"

/* What a relay answered to RESERVE. */
struct an_relay_reservation_info {
	uint32_t status;          /* AN_RELAY_OK or the refusal */
	uint64_t expire;          /* unix seconds */
	size_t naddrs;
	char addrs[AN_RELAY_MAX_ADDRS][AN_HOST_ADDR_TEXT_MAX]; /* each ends in /p2p/<relay> */
	bool has_voucher, voucher_ok;
	struct an_relay_limit limit;
};

/*
 * err 0 and info (borrowed for the call) when the relay answered, whatever
 * the status; else AN_EPROTO (malformed answer, or OK with an expire not in
 * the future), AN_ENOPROTO (no hop protocol), -ETIMEDOUT, AN_ECLOSED.
 */
typedef void (*an_relay_reserve_fn)(void *arg, int err, const struct an_relay_reservation_info *info);

/*
 * Send RESERVE on a new hop stream of c (a connection to the relay;
 * borrowed) and report the answer once through cb.  timeout_ms bounds the
 * exchange.  0 or the errors of an_host_stream_open (cb is then not called).
 */
int an_relay_reserve(struct an_host_conn *c, int timeout_ms, an_relay_reserve_fn cb, void *arg);

/*
 * Outcome of a CONNECT: err 0 and status AN_RELAY_OK with s the circuit's
 * stream (from now on a byte pipe to the target; its events go to the
 * handler given to an_relay_connect), or err 0 and the relay's refusal
 * status (s NULL), or a negative err as for reserve (s NULL).
 */
typedef void (*an_relay_connect_fn)(void *arg, int err, uint32_t status, struct an_stream *s,
				    const struct an_relay_limit *limit);

/*
 * Ask the relay on c for a circuit to target (copied).  handler and
 * handler_arg (borrowed, must outlive the stream) receive the circuit
 * stream's on_data / on_eof / on_close / on_writable after cb reported OK
 * (on_open is not called).  Bytes the target sent right behind the relay's
 * answer are delivered to on_data right after cb.
 */
int an_relay_connect(struct an_host_conn *c, const struct an_peerid *target, int timeout_ms,
		     an_relay_connect_fn cb, void *arg, const struct an_stream_handler *handler,
		     void *handler_arg);

/*
 * A relay opens a circuit to us: accept (return true) or refuse (false,
 * answered PERMISSION_DENIED).  src is the peer on the other side; limit
 * what the relay announced (both borrowed for the call).  On accept the
 * stream's events go to *handler with *handler_arg, which the callback sets
 * (borrowed, must outlive the stream).
 */
typedef bool (*an_relay_accept_fn)(void *arg, struct an_stream *s, const struct an_peerid *src,
				   const struct an_relay_limit *limit,
				   const struct an_stream_handler **handler, void **handler_arg);

/*
 * From now on send the events of s (a circuit stream reported by
 * an_relay_connect's callback) to handler with handler_arg (borrowed).  The
 * dialer side of a relayed connection calls it from that callback with
 * what an_host_conn_over_stream returned.
 */
void an_relay_stream_redirect(struct an_stream *s, const struct an_stream_handler *handler,
			      void *handler_arg);

/* The stop service's settings; the caller owns it (it must outlive h). */
struct an_relay_stop_service {
	an_relay_accept_fn accept;
	void *arg;
	int timeout_ms; /* the relay's CONNECT must arrive within this; 0 = 10 s */
	struct an_relay_pipe *pipes_; /* internal: stop streams still reading their CONNECT */
};

/*
 * Serve the stop protocol on h: every CONNECT from a relay goes to
 * svc->accept.  A malformed or non-CONNECT message is answered
 * MALFORMED_MESSAGE / UNEXPECTED_MESSAGE.  svc is borrowed.  0 or
 * an_host_handle's errors.
 */
int an_relay_stop_serve(struct an_host *h, struct an_relay_stop_service *svc);

/*
 * Stop using svc (it may be freed when this returns): stop streams still
 * waiting for their CONNECT are reset, new ones are refused
 * (PERMISSION_DENIED), circuits already accepted go on.  The protocol
 * stays registered (with a refusing service).  svc must be the one given
 * to an_relay_stop_serve on h.
 */
void an_relay_stop_unserve(struct an_host *h, struct an_relay_stop_service *svc);

#endif
