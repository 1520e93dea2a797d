/*
 * autonat.h - AutoNAT v1 and v2 on a host: client, server and the
 * reachability of our addresses (specs autonat/autonat-v1.md and
 * autonat-v2.md; codecs in nat/autonat_msg.h, tracker in nat/reach.h).
 *
 * Client: every probe_ms it takes one established, direct connection to a
 * peer it has not asked in the last server_gap_ms, asks that peer for
 * identify (its observedAddr is a candidate address of ours), picks the
 * address to test next (nat/reach.h) and asks over
 * /libp2p/autonat/2/dial-request, or /libp2p/autonat/1.0.0 when the peer
 * does not speak v2.  One address per request, one request at a time.
 *   v2: a DialDataRequest for our address (numBytes <= 100000) is paid in
 *   4096-byte DialDataResponses; the answer counts only when its nonce came
 *   back on /libp2p/autonat/2/dial-back (OK), or is E_DIAL_ERROR
 *   (unreachable).  v1: OK and E_DIAL_ERROR count; refusals never do.
 * Candidates are our host's addresses and observed ones that are plain TCP
 * and "public" (below); js does the same.
 *
 * Server: answers both protocols.  It dials back only addresses it
 * considers public: global unicast IPs, or in the allow list
 * (cfg.allow, e.g. "198.18.0.0/15,127.0.0.0/8").  v1: only addresses with
 * the requester's observed IP, never over a relayed connection, and the
 * PeerInfo must name the requester.  v2: the first dialable address of the
 * request; one with an IP other than the observed one costs the client
 * 30000-100000 bytes of dial data first.  Dial-backs are fresh
 * connections (addresses without /p2p), closed after the answer.
 * Rate limits (E_REQUEST_REJECTED in v2, E_DIAL_REFUSED in v1): per minute
 * server_global_per_min requests, server_peer_per_min per peer, at most 2
 * at once per peer and AN_AUTONAT_MAX_SERVING overall; the per-peer table
 * holds AN_AUTONAT_PEER_SLOTS peers.  A peer that misbehaves (malformed or
 * oversized message, too much data, the deadline) loses the stream only.
 *
 * Ownership: the service borrows the host, which must outlive it.
 */
#ifndef AN_NAT_AUTONAT_H
#define AN_NAT_AUTONAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "nat/reach.h"
#include "transport/host.h"

#define AN_AUTONAT_MAX_ALLOW 16
#define AN_AUTONAT_MAX_SERVING 32
#define AN_AUTONAT_PEER_SLOTS 64
#define AN_AUTONAT_SERVER_SLOTS 32     /* servers the client remembers asking */
#define AN_AUTONAT_DEFAULT_PROBE_MS 2000
#define AN_AUTONAT_DEFAULT_SERVER_GAP_MS 10000
#define AN_AUTONAT_DEFAULT_REPROBE_MS (3600 * 1000)
#define AN_AUTONAT_DEFAULT_TIMEOUT_MS 15000 /* one request, dial-back included */
#define AN_AUTONAT_DEFAULT_GLOBAL_PER_MIN 60
#define AN_AUTONAT_DEFAULT_PEER_PER_MIN 12
#define AN_AUTONAT_DIAL_DATA_MIN 30000
#define AN_AUTONAT_DIAL_DATA_MAX 100000
#define AN_AUTONAT_DIAL_DATA_ACCEPT 100000 /* the most a client of ours pays */

struct an_autonat;

/* A change of one address's state (addr borrowed for the call); addr NULL for the overall state. */
typedef void (*an_autonat_change_fn)(void *arg, const char *addr, enum an_reach_state state);

struct an_autonat_config {
	const char *allow;      /* CIDR list (copied when parsed); NULL or "" = none */
	bool no_server;         /* do not answer requests */
	bool no_client;         /* do not ask */
	bool no_v2;             /* client: ask with v1 only (tests) */
	int probe_ms;           /* client tick; 0 = AN_AUTONAT_DEFAULT_PROBE_MS */
	int server_gap_ms;      /* same server asked again after; 0 = default */
	int reprobe_ms;         /* a decided address asked again after; 0 = default */
	int timeout_ms;         /* one request; 0 = AN_AUTONAT_DEFAULT_TIMEOUT_MS */
	int min_confidence;     /* 0 = AN_REACH_DEFAULT_CONFIDENCE */
	int server_global_per_min; /* 0 = default; < 0 = no limit (tests) */
	int server_peer_per_min;
	an_host_log_fn log;     /* reachability changes and refusals; NULL drops */
	void *log_arg;
	an_autonat_change_fn on_change; /* may be NULL */
	void *change_arg;
};

/*
 * A new service on h (borrowed): registers the server's protocols (unless
 * no_server) and the client's dial-back handler (unless no_client) and
 * starts the client's timer.  cfg copied.  0, AN_EMALFORMED (allow list),
 * AN_ELIMIT (protocol table), -ENOMEM.  *out new: an_autonat_free.
 */
int an_autonat_new(struct an_host *h, const struct an_autonat_config *cfg, struct an_autonat **out);

/* Stop every request, unregister, free.  NULL-safe. */
void an_autonat_free(struct an_autonat *a);

/* The overall reachability and the per-address table (borrowed, until the next loop iteration). */
enum an_reach_state an_autonat_reachability(const struct an_autonat *a);
const struct an_reach *an_autonat_table(const struct an_autonat *a);

/*
 * Parse a comma-separated list of CIDRs (a.b.c.d/n, x::/n; a bare address
 * is /32 or /128) into the service's allow list, replacing it.  0,
 * AN_EMALFORMED, AN_ELIMIT past AN_AUTONAT_MAX_ALLOW.
 */
int an_autonat_set_allow(struct an_autonat *a, const char *list);

/* Whether the server would dial sa: a global unicast IP or in the allow list. */
bool an_autonat_addr_allowed(const struct an_autonat *a, const struct sockaddr *sa);

/* Global unicast: not private, loopback, link-local, documentation, benchmark, multicast... */
bool an_autonat_ip_public(const struct sockaddr *sa);

/* Requests being served / the client's request under way (tests). */
size_t an_autonat_serving(const struct an_autonat *a);
bool an_autonat_probing(const struct an_autonat *a);

#endif
