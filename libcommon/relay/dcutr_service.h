/*
 * dcutr_service.h - DCUtR hole punching on a host (/libp2p/dcutr; specs
 * relay/DCUtR.md, digest section 12), on top of the codec in dcutr.h.
 *
 * Roles: A dialed through the relay, B received the relayed connection.
 * B drives (an_dcutr_upgrade): it opens /libp2p/dcutr on the relayed
 * connection, sends CONNECT with our addresses, measures the RTT until A's
 * CONNECT, sends SYNC, waits RTT/2 and dials A's TCP addresses.  A (the
 * handler registered by an_dcutr_service_new) answers CONNECT with its
 * addresses and dials B's as soon as SYNC arrives.  An attempt ends with a
 * direct (not relayed) connection to the same peer, or at its deadline; B
 * makes at most `attempts` of them (the spec's 3), each on a fresh stream
 * with a fresh CONNECT/SYNC.
 *
 * Authentication: the punch dials addresses without /p2p, then checks the
 * peer the Noise handshake authenticated and closes a connection to anyone
 * else.  Why: an_host_dial given /p2p/<peer> reuses any established
 * connection to that peer, the relayed one included, so it would "succeed"
 * at once without dialing.
 *
 * Limits of this slice (host hooks it would need, see the report):
 * - every dial runs the upgrade by socket direction (the dialer is Noise
 *   initiator).  The spec wants A as client and B as server whichever
 *   connect() won, so a true TCP simultaneous open (both sockets outbound,
 *   as behind two NATs) fails the handshake with both sides initiators.
 *   Sequential opens (one SYN reaches a listener first, as on loopback or
 *   when one side is reachable) work.
 * - the host has one on-connection hook (the kad node takes it), so a
 *   direct connection the peer dialed to us is found by polling the host's
 *   connections every AN_DCUTR_POLL_MS while an attempt is dialing.
 * - the relayed connection is left open (closing it is the caller's call).
 * - without prime_ttl both sides dial, so on a reachable network two
 *   direct connections may come up; each side reports the first it sees
 *   (not always the same one) and leaves the other to the idle timeout.
 *
 * Ownership: the service borrows the host, which must outlive it; it holds
 * references on the relayed connections it works on until each punch ends.
 */
#ifndef AN_RELAY_DCUTR_SERVICE_H
#define AN_RELAY_DCUTR_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/peerid.h"
#include "transport/host.h"

#define AN_DCUTR_DEFAULT_ATTEMPTS 3
#define AN_DCUTR_DEFAULT_ATTEMPT_MS 5000 /* js's per-attempt timeout */
#define AN_DCUTR_POLL_MS 25
#define AN_DCUTR_MAX_EXTRA_ADDRS 8

/*
 * The end of one punch: direct (borrowed; ref it to keep it) and err 0, or
 * direct NULL and err: -ETIMEDOUT (no direct connection by the last
 * deadline), AN_EPROTO (a malformed or unexpected message, or a CONNECT
 * without TCP addresses), AN_ENOPROTO (the peer does not serve dcutr),
 * AN_ECLOSED (the relayed connection went away), AN_ERESET.  peer is
 * borrowed for the call.  On A's side each attempt of B is its own punch,
 * so A may see several reports for one upgrade.
 */
typedef void (*an_dcutr_report_fn)(void *arg, const struct an_peerid *peer,
				   struct an_host_conn *direct, int err);

struct an_dcutr_config {
	int attempts;   /* B's attempts; 0 = AN_DCUTR_DEFAULT_ATTEMPTS */
	int attempt_ms; /* one attempt's deadline; 0 = AN_DCUTR_DEFAULT_ATTEMPT_MS */
	/*
	 * B only, 0 = off (the spec: B dials A's addresses after RTT/2).
	 * Otherwise B does not dial: right before SYNC it sends one SYN from
	 * our listen port to each of A's addresses with this IP TTL (hop
	 * limit), which opens our NAT's mapping but dies on the way, before
	 * A's NAT (whose RST, as an unsolicited SYN to a router, would close
	 * our mapping); A's dial on SYNC then passes our NAT and reaches our
	 * listener.  The connection is A's outbound, B's inbound, so the
	 * upgrade runs with the spec's roles (A client) without a true
	 * simultaneous open, which this host cannot upgrade (see above).  The
	 * TTL must cover the hops to our NAT's outside and not reach A's NAT.
	 */
	int prime_ttl;
	an_dcutr_report_fn report; /* may be NULL */
	void *arg;
};

struct an_dcutr_service;

/*
 * A new service on h (borrowed): registers the /libp2p/dcutr handler (A's
 * side).  cfg is copied (NULL = defaults, no reports).  *out is new; free
 * with an_dcutr_service_free before the host.  0, -ENOMEM, AN_ELIMIT (the
 * host's protocol table).
 */
int an_dcutr_service_new(struct an_host *h, const struct an_dcutr_config *cfg,
			 struct an_dcutr_service **out);

/*
 * Stop every punch without reporting, unregister the protocol, free.
 * NULL-safe.
 */
void an_dcutr_service_free(struct an_dcutr_service *s);

/*
 * Also announce maddr (text /ip4|ip6/A/tcp/P, copied; an observed or
 * predicted address) in our CONNECTs, after the host's own addresses
 * (an_host_addrs).  0, AN_EMALFORMED, AN_ELIMIT past
 * AN_DCUTR_MAX_EXTRA_ADDRS.
 */
int an_dcutr_service_add_addr(struct an_dcutr_service *s, const char *maddr);

/*
 * B's side: upgrade relayed (borrowed; an_host_conn_relayed and
 * established) to a direct connection to the same peer.  The report
 * follows once, never from inside this call.  0; -EINVAL for a connection
 * that is not relayed; AN_ECLOSED if it is dead; -ENOMEM; the errors of
 * an_host_stream_open.
 */
int an_dcutr_upgrade(struct an_dcutr_service *s, struct an_host_conn *relayed);

/* Punches under way (for tests and limits). */
size_t an_dcutr_active(const struct an_dcutr_service *s);

#endif
