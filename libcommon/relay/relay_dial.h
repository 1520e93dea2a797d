/*
 * relay_dial.h - dialing a peer through a Circuit Relay v2 relay, in the
 * shape of an_host_dial (transport/host.h), so a caller holding a list of
 * a peer's addresses dials direct and circuit ones alike.
 *
 * A circuit address is RELAYADDR/p2p/RELAY/p2p-circuit/p2p/TARGET (the
 * form js-libp2p and rust-libp2p announce).  Dialing it: an_host_dial
 * RELAYADDR/p2p/RELAY (or reuse a connection to the relay), hop CONNECT
 * to TARGET (relay_client.h), then Noise + yamux over the circuit stream
 * as Noise initiator and yamux client (an_host_conn_over_stream) with
 * TARGET as the peer that must answer: a node that does not hold TARGET's
 * key fails the handshake with AN_EMISMATCH, as on a direct dial.
 *
 * The relayed connection is named RELAYADDR/p2p/RELAY/p2p-circuit
 * (an_host_conn_remote_addr; host.h's convention) and is
 * an_host_conn_relayed.
 */
#ifndef AN_RELAY_RELAY_DIAL_H
#define AN_RELAY_RELAY_DIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/peerid.h"
#include "transport/host.h"

/* True when the text multiaddr goes through a relay (has /p2p-circuit). */
bool an_relay_addr_is_circuit(const char *maddr);

/*
 * Split a circuit address into the relay's address with its /p2p/RELAY
 * (into relay, cap bytes) and the target (into *target).  0,
 * AN_EMALFORMED (not RELAYADDR/p2p/RELAY/p2p-circuit/p2p/TARGET),
 * AN_ETOOBIG (relay does not fit).
 */
int an_relay_addr_split(const char *maddr, char *relay, size_t cap, struct an_peerid *target);

/*
 * The name of a connection relayed by relay_conn (a connection to the
 * relay; borrowed): its remote address + /p2p/RELAY/p2p-circuit, into
 * out (cap bytes).  0 or AN_ETOOBIG.
 */
int an_relay_circuit_name(struct an_host_conn *relay_conn, char *out, size_t cap);

/*
 * Dial maddr like an_host_dial: a plain TCP address goes to an_host_dial
 * itself; a circuit address goes through its relay as above (an
 * established connection to TARGET, direct or relayed, is reused as
 * an_host_dial reuses one).  timeout_ms (0 = the host's handshake
 * timeout) bounds the whole of it: the relay dial, the CONNECT and the
 * upgrade over the circuit.  cb (borrowed, with arg) is always called
 * once, never from inside this function, with the connection (borrowed;
 * ref it to keep it) or: the codes of an_host_dial for the relay,
 * -ECONNREFUSED when the relay answers NO_RESERVATION,
 * CONNECTION_FAILED or PERMISSION_DENIED, AN_ELIMIT for
 * RESOURCE_LIMIT_EXCEEDED, AN_EPROTO for other refusals and malformed
 * answers, AN_ENOPROTO (the relay does not serve hop), AN_EMISMATCH (the
 * target's key), -ETIMEDOUT.  Returns 0, or an error (AN_EMALFORMED,
 * -ENOMEM, an_host_dial's) and then cb is not called.
 */
int an_relay_dial(struct an_host *h, const char *maddr, int timeout_ms, an_host_dial_fn cb,
		  void *arg);

#endif
