/*
 * reservation.h - staying reachable through relays: keep a Circuit Relay
 * v2 reservation on each of a set of relays, and accept the circuits they
 * open to us as inbound relayed connections (what a node behind NAT does;
 * an-serve --relay).
 *
 * Per relay: dial it (its address must end in /p2p/RELAY), RESERVE, then
 * RESERVE again on the same connection at three quarters of the slot's
 * remaining life (js-libp2p refreshes 5 min before expiry; rust at 3/4 of
 * it).  A lost connection or a failed reservation is retried with
 * exponential backoff (retry_min_ms doubling up to retry_max_ms, reset
 * by a success); a relay that restarts is reserved on again.  The host
 * has no hook for a closing connection, so the connection to each relay
 * is looked at every check_ms.
 *
 * Circuits: the stop service is registered on the host; every CONNECT
 * from a relay we hold a connection to is accepted and upgraded with
 * an_host_conn_over_stream as Noise responder / yamux server, the source
 * peer the one that must answer.  The new connection is reported through
 * the host's on_connection hook like any inbound one; its protocols are
 * served by the host's handlers.  CONNECTs on connections to peers that
 * are not our relays are refused (PERMISSION_DENIED).
 *
 * Our addresses through relay i: each address the relay gave (ending in
 * /p2p/RELAY) + /p2p-circuit; a peer dials them with /p2p/<us> appended
 * (relay_dial.h).
 */
#ifndef AN_RELAY_RESERVATION_H
#define AN_RELAY_RESERVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/circuit.h"
#include "relay/relay_client.h"
#include "transport/host.h"

#define AN_RSV_MAX_RELAYS 8
#define AN_RSV_DEFAULT_RETRY_MIN_MS 1000
#define AN_RSV_DEFAULT_RETRY_MAX_MS 60000
#define AN_RSV_DEFAULT_CHECK_MS 5000

enum an_rsv_event {
	AN_RSV_RESERVED,  /* a first reservation, or one after a loss: addresses changed */
	AN_RSV_REFRESHED, /* the same slot renewed (addresses unchanged) */
	AN_RSV_FAILED,    /* the dial or RESERVE failed or the relay refused; retrying */
	AN_RSV_LOST       /* the connection to the relay closed; retrying */
};

struct an_rsv_report {
	enum an_rsv_event event;
	size_t relay;          /* index, in the order of an_rsv_add */
	const char *relay_addr;/* as given to an_rsv_add (borrowed) */
	int err;               /* FAILED/LOST: the cause (a dial or reserve code) */
	uint32_t status;       /* FAILED by a relay's answer: its refusal status, else 0 */
	uint64_t expire;       /* RESERVED/REFRESHED: unix seconds */
	int retry_ms;          /* FAILED/LOST: when the next attempt starts */
};

/* Reports for the program (arg as given); r borrowed for the call. */
typedef void (*an_rsv_fn)(void *arg, const struct an_rsv_report *r);

struct an_rsv_config {
	int timeout_ms;   /* each dial and RESERVE; 0 = 10 s */
	int retry_min_ms; /* 0 = AN_RSV_DEFAULT_RETRY_MIN_MS */
	int retry_max_ms; /* 0 = AN_RSV_DEFAULT_RETRY_MAX_MS */
	int check_ms;     /* 0 = AN_RSV_DEFAULT_CHECK_MS */
	an_rsv_fn report; /* may be NULL */
	void *arg;
};

struct an_rsv;

/*
 * Start on h (borrowed; must outlive *out): registers the stop service.
 * cfg copied (NULL = defaults).  *out new: an_rsv_free.  0, -ENOMEM,
 * an_host_handle's errors.
 */
int an_rsv_new(struct an_host *h, const struct an_rsv_config *cfg, struct an_rsv **out);

/*
 * Keep a reservation on the relay at maddr (copied;
 * /ip4|ip6/A/tcp/P/p2p/RELAY).  The first attempt starts from the loop.
 * 0, AN_EMALFORMED (no /p2p/ or not dialable), AN_ELIMIT past
 * AN_RSV_MAX_RELAYS.
 */
int an_rsv_add(struct an_rsv *r, const char *maddr);

/*
 * Stop trying: no more dials, reservations or refreshes, no reports (for
 * a graceful shutdown of the host; circuits are still accepted until
 * an_rsv_free).  NULL-safe.
 */
void an_rsv_stop(struct an_rsv *r);

/*
 * Stop accepting circuits (an_relay_stop_unserve), stop every timer, drop
 * our references to the relay connections, free r (a step still under
 * way finds it gone).  Circuits already upgraded stay the host's.
 * NULL-safe.
 */
void an_rsv_free(struct an_rsv *r);

/* How many relays were added, and how many hold a live reservation now. */
size_t an_rsv_count(const struct an_rsv *r);
size_t an_rsv_active(const struct an_rsv *r);

/* True once every relay has had its first attempt answered (either way). */
bool an_rsv_settled(const struct an_rsv *r);

/*
 * Our circuit addresses (RELAYADDR/p2p/RELAY/p2p-circuit, no /p2p/<us>)
 * through the relays holding a live reservation: up to max pointers into
 * r's storage (borrowed, valid until the loop runs again); the count.
 */
size_t an_rsv_addrs(const struct an_rsv *r, const char **out, size_t max);

#endif
