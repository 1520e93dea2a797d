/*
 * relay_server.h - the Circuit Relay v2 relay ("hop") service on an an_host
 * (specs relay/circuit-v2.md; digest section 11).
 *
 * RESERVE (client A on /libp2p/circuit/relay/0.2.0/hop): A gets a
 * reservation until expire (unix seconds), the relay's addresses with
 * /p2p/<relay> and without /p2p-circuit, a voucher signed by the relay
 * (relay/envelope.h) and the circuit Limit.  A reservation lasts while it
 * is unexpired and A stays connected; a new RESERVE refreshes it.
 *
 * CONNECT (client B, peer = A): the relay checks A's reservation, opens
 * /libp2p/circuit/relay/0.2.0/stop on A's connection with
 * {CONNECT, peer: B, limit}, waits for A's STATUS OK, answers B
 * {STATUS OK, limit}, then splices the two streams into one byte pipe.
 * Splice backpressure: a side whose queue reaches AN_STREAM_QUEUE_HIGH holds
 * reading the other side (an_stream_pause), so yamux windows slow the
 * sender.  Half-closes are passed through; a reset on either side resets
 * the other.
 *
 * Limits, advertised in Limit and enforced: circuit duration (both streams
 * reset when it passes) and data per direction (both reset past it; the
 * spec counts per direction, js counts both directions together - a js
 * client only sees the reset either way).
 *
 * Refusals (HopMessage STATUS): over a relayed connection (one made by
 * an_host_conn_over_stream, an_host_conn_relayed) PERMISSION_DENIED;
 * reservation table full or too many for one IP or network:
 * RESOURCE_LIMIT_EXCEEDED;
 * no address to offer: RESERVATION_REFUSED; too many circuits (in all,
 * from one source peer, or from one address or network):
 * RESOURCE_LIMIT_EXCEEDED; target without an
 * unexpired reservation or no longer connected: NO_RESERVATION; stop
 * stream refused or answered with anything but OK: CONNECTION_FAILED; an
 * undecodable request: MALFORMED_MESSAGE; a STATUS request:
 * UNEXPECTED_MESSAGE.  Every hop stream is bounded by hop_timeout_ms until
 * it is spliced.
 */
#ifndef AN_RELAY_RELAY_SERVER_H
#define AN_RELAY_RELAY_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "transport/host.h"

/*
 * Per address: one address, or one network (a /24 of IPv4, a /64 of IPv6;
 * on loopback every address alone), as the host keys its own limits
 * (an_host_conn_addr_key in transport/host.h).  A peer holds one
 * reservation; its circuits are capped per source peer, and the circuits
 * of all peers at one address or network together, so fresh peer IDs from
 * one place cannot take every circuit (four of them took all 16 before).
 */
struct an_relay_config {
	uint32_t reservation_ttl_s;     /* reservation lifetime */
	size_t max_reservations;        /* in all */
	size_t max_reservations_per_ip; /* reserving peers behind one IP address */
	size_t max_reservations_per_net; /* ... behind one network */
	size_t max_circuits;            /* spliced or being set up, in all */
	size_t max_circuits_per_peer;   /* from one source peer */
	size_t max_circuits_per_ip;     /* from source peers at one IP address */
	size_t max_circuits_per_net;    /* ... in one network */
	uint32_t circuit_duration_s;    /* 0 = unlimited (no Limit.duration sent) */
	uint64_t circuit_data;          /* bytes per direction; 0 = unlimited */
	int hop_timeout_ms;             /* a hop or stop exchange before the splice */
};

/* Defaults: rust-libp2p's relay, and js's hop timeout. */
#define AN_RELAY_DEFAULT_TTL_S 3600
#define AN_RELAY_DEFAULT_MAX_RESERVATIONS 128
#define AN_RELAY_DEFAULT_MAX_RESERVATIONS_PER_IP 4
#define AN_RELAY_DEFAULT_MAX_RESERVATIONS_PER_NET 8
#define AN_RELAY_DEFAULT_MAX_CIRCUITS 16
#define AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_PEER 4
#define AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_IP 4  /* a quarter of the total */
#define AN_RELAY_DEFAULT_MAX_CIRCUITS_PER_NET 8 /* half */
#define AN_RELAY_DEFAULT_DURATION_S 120
#define AN_RELAY_DEFAULT_DATA (128 * 1024)
#define AN_RELAY_DEFAULT_HOP_TIMEOUT_MS 30000

/* Fill cfg with the defaults above. */
void an_relay_config_init(struct an_relay_config *cfg);

struct an_relay_stats {
	size_t reservations;            /* live now */
	size_t circuits;                /* spliced or being set up now */
	uint64_t reservations_accepted; /* since start, refreshes included */
	uint64_t reservations_refused;
	uint64_t circuits_opened;       /* reached the splice */
	uint64_t circuits_refused;      /* CONNECTs answered with a failure status */
	uint64_t circuits_limited;      /* reset by the duration or data limit */
	uint64_t bytes_relayed;         /* both directions */
};

struct an_relay_server;

/*
 * Start the hop service on h (borrowed; must outlive the server): registers
 * the hop protocol.  cfg is copied (NULL = defaults; zero per-network and
 * per-address circuit limits take theirs).  *out is new; free
 * with an_relay_server_free before freeing the host.  0, -ENOMEM, errors
 * of an_host_handle.
 */
int an_relay_server_new(struct an_host *h, const struct an_relay_config *cfg,
			struct an_relay_server **out);

/*
 * Unregister the protocol, reset every hop, stop and spliced stream, drop
 * the reservations, free r.  NULL-safe.
 */
void an_relay_server_free(struct an_relay_server *r);

/* Counters now. */
void an_relay_server_stats(const struct an_relay_server *r, struct an_relay_stats *out);

#endif
