/*
 * lookup.h - the iterative Kademlia lookup (FIND_NODE, GET_VALUE,
 * GET_PROVIDERS) as a sans-I/O state machine.
 *
 * The machine never touches the network or a clock.  The host loop:
 *
 *   an_lookup_new(&l, &cfg, &self, key, keylen);
 *   for each of the k closest peers of the routing table: an_lookup_seed(l, ...);
 *   loop:
 *     switch (an_lookup_next_request(l, now_ms, &req)):
 *     AN_LOOKUP_REQUEST: open a kad stream to req.peer (req.addrs), send
 *                        LP(req.msg), read one LP response, decode it, then
 *                        an_lookup_response(l, now, &req.peer, &msg) or
 *                        an_lookup_failure(l, now, &req.peer); call again.
 *     AN_LOOKUP_TIMEOUT: req.peer's request timed out (already counted as a
 *                        failure): abandon its stream; call again.
 *     AN_LOOKUP_WAIT:    nothing to do until a response, a failure or
 *                        an_lookup_next_deadline(l).
 *     AN_LOOKUP_DONE:    read the results; requests still in flight may be
 *                        abandoned (answers to them are ignored).
 *
 * Algorithm (libp2p kad-dht spec; S/Kademlia disjoint paths as in rust
 * ClosestDisjointPeersIter and js query/manager.ts):
 * - the seeds, sorted by distance, are dealt round-robin to d paths;
 * - each path keeps its own candidates; a peer learned from a response on
 *   path i joins path i unless some path already knows it, so no peer is
 *   ever queried twice or by two paths (disjointness);
 * - each path has at most alpha requests in flight, always to the closest
 *   not yet contacted candidates among its k closest non-failed ones;
 * - a path is finished when its k closest non-failed candidates have all
 *   answered (or it has no candidates left); the lookup is done when every
 *   path is, or early: GET_VALUE once `quorum` peers returned the best
 *   valid record, GET_PROVIDERS once `max_providers` providers are known.
 * - a closer peer from a response is taken only if it could enter its
 *   path's k closest (js does the same) and the lookup holds fewer than
 *   max_candidates peers: a hostile responder cannot grow memory.
 *
 * Defaults (documented choices): alpha = 3 and d = 3, so up to 9 requests in
 * flight, close to js's 10 (js: alpha 10 per path; rust: alpha 3, d = alpha
 * when disjoint paths are enabled); k = 20; request timeout 10 s (js and
 * rust use 10 s per message); quorum 16 (js GET_MANY_RECORD_COUNT; set 1 for
 * "first valid record wins"); max_providers 20.
 *
 * Sybil defences (issue 16; each off when its field is 0, kad_node turns
 * them on):
 * - max_per_subnet: a path's window (its k closest non-failed peers) holds
 *   at most this many peers of one address group (routing.h: IPv4 /24,
 *   IPv6 /48, loopback per group_flags); the others wait outside it, so
 *   one subnet's IDs ground near a key cannot fill a window;
 * - max_idle: an answer with no record and no closer peer that was new to
 *   the lookup is no progress: such a peer leaves its place in the window
 *   to the next candidate, up to max_idle of them per path (Sybils that
 *   name only each other no longer end the lookup);
 * - quorum_subnets: the GET_VALUE quorum counts peers of distinct groups.
 *
 * Record verdicts come from the caller (the validators live in
 * dht/validate.h): cfg.validate says if a record value is valid for the
 * key, cfg.compare which of two valid values is better (highest seq, then
 * latest validity).  GET_VALUE needs both.
 */
#ifndef AN_DHT_LOOKUP_H
#define AN_DHT_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/routing.h"
#include "encoding/multiaddr.h"

#define AN_LOOKUP_K_DEFAULT 20
#define AN_LOOKUP_ALPHA_DEFAULT 3
#define AN_LOOKUP_PATHS_DEFAULT 3
#define AN_LOOKUP_PATHS_MAX 32
#define AN_LOOKUP_TIMEOUT_DEFAULT 10000 /* ms per request */
#define AN_LOOKUP_QUORUM_DEFAULT 16
#define AN_LOOKUP_PROVIDERS_DEFAULT 20
#define AN_LOOKUP_CANDIDATES_DEFAULT 1024
#define AN_LOOKUP_VALUE_MAX_DEFAULT (64u << 10) /* larger records are ignored */
#define AN_LOOKUP_ADDRS_MAX 4                   /* addresses kept per peer (K6) */

enum an_lookup_kind {
	AN_LOOKUP_FIND_NODE = AN_KAD_FIND_NODE,
	AN_LOOKUP_GET_VALUE = AN_KAD_GET_VALUE,
	AN_LOOKUP_GET_PROVIDERS = AN_KAD_GET_PROVIDERS
};

/* 0 if val is a valid record value for key, a negative code otherwise.  All borrowed. */
typedef int (*an_lookup_validate_fn)(void *arg, const uint8_t *key, size_t key_len,
				     const uint8_t *val, size_t val_len);
/* > 0 if a is better than b, < 0 if b is better, 0 if neither (both valid).  All borrowed. */
typedef int (*an_lookup_compare_fn)(void *arg, const uint8_t *key, size_t key_len,
				    const uint8_t *a, size_t a_len, const uint8_t *b,
				    size_t b_len);

/* Zero fields take the defaults above. */
struct an_lookup_config {
	enum an_lookup_kind kind;
	size_t k;
	size_t alpha;                /* requests in flight per path */
	size_t paths;                /* d, disjoint paths; at most AN_LOOKUP_PATHS_MAX */
	uint64_t request_timeout_ms;
	size_t quorum;               /* GET_VALUE early exit */
	size_t max_providers;        /* GET_PROVIDERS: collect at most this many, then stop */
	size_t max_candidates;       /* peers tracked in all */
	size_t max_value;            /* GET_VALUE: bigger values are ignored */
	an_lookup_validate_fn validate;
	an_lookup_compare_fn compare;
	void *arg;                   /* passed to validate and compare */
	size_t max_per_subnet;       /* peers of one group in a path's window; 0: no limit */
	unsigned group_flags;        /* routing.h AN_RT_LOOPBACK_SUBNETS for the groups */
	size_t max_idle;             /* answers without progress let past the window, per path */
	bool quorum_subnets;         /* GET_VALUE quorum from distinct groups */
};

enum an_lookup_state {
	AN_LOOKUP_PEER_NEW = 0,   /* not contacted yet */
	AN_LOOKUP_PEER_WAITING,   /* request in flight */
	AN_LOOKUP_PEER_SUCCEEDED, /* answered */
	AN_LOOKUP_PEER_FAILED     /* failed, timed out or answered nonsense */
};

/* What a GET_VALUE responder returned, for PUT corrections. */
enum an_lookup_record_state {
	AN_LOOKUP_REC_NONE = 0, /* no record (or not asked) */
	AN_LOOKUP_REC_BEST,     /* the best record */
	AN_LOOKUP_REC_OUTDATED, /* a valid but worse record */
	AN_LOOKUP_REC_INVALID   /* a record that failed validation or had the wrong key */
};

/* A peer as the lookup knows it; results hand out borrowed pointers to these. */
struct an_lookup_peer {
	struct an_peerid id;
	struct an_kad_id kad;
	struct an_kad_id dist; /* to the target */
	size_t naddrs;
	struct an_multiaddr addrs[AN_LOOKUP_ADDRS_MAX];
	enum an_lookup_state state;
	unsigned path;
	uint64_t deadline_ms; /* while WAITING */
	bool timed_out;
	bool idle;             /* answered without a record or a new closer peer (max_idle) */
	struct an_rt_group group; /* of addrs[0] */
	enum an_lookup_record_state record;
	uint8_t value_hash[32]; /* SHA-256 of the value it returned (REC_BEST/OUTDATED) */
};

enum an_lookup_event {
	AN_LOOKUP_WAIT = 0,
	AN_LOOKUP_REQUEST = 1,
	AN_LOOKUP_TIMEOUT = 2,
	AN_LOOKUP_DONE = 3
};

/* Filled by an_lookup_next_request; everything borrowed from the lookup. */
struct an_lookup_request {
	struct an_peerid peer;
	const struct an_multiaddr *addrs; /* valid until the next call into the lookup */
	size_t naddrs;
	const uint8_t *msg;               /* protobuf request body (no length prefix); valid for l's life */
	size_t msg_len;
	unsigned path;
};

struct an_lookup; /* opaque */

/*
 * A new lookup for key[0..key_len) (copied) on behalf of self (copied:
 * never queried nor returned).  cfg (copied) may not be NULL.  *out is new:
 * an_lookup_free.  0; -EINVAL (bad kind, paths over the max, GET_VALUE
 * without validate/compare, empty key); -ENOMEM.
 */
int an_lookup_new(struct an_lookup **out, const struct an_lookup_config *cfg,
		  const struct an_peerid *self, const uint8_t *key, size_t key_len);

/* NULL-safe. */
void an_lookup_free(struct an_lookup *l);

/*
 * Add a starting peer (id and addrs copied, at most AN_LOOKUP_ADDRS_MAX)
 * before the first an_lookup_next_request.  Self and duplicates are
 * ignored.  0, AN_ELIMIT past max_candidates, -EALREADY once started.
 */
int an_lookup_seed(struct an_lookup *l, const struct an_peerid *id,
		   const struct an_multiaddr *addrs, size_t naddrs);

/*
 * Advance to now_ms and return the next thing to do (enum an_lookup_event);
 * *req is filled for REQUEST and TIMEOUT.
 */
int an_lookup_next_request(struct an_lookup *l, uint64_t now_ms, struct an_lookup_request *req);

/* The earliest request deadline (ms), UINT64_MAX if nothing is in flight. */
uint64_t an_lookup_next_deadline(const struct an_lookup *l);

/*
 * peer (borrowed) answered with msg (borrowed; only read during the call).
 * 0; AN_ENOTFOUND if no request to peer is in flight (a late or unasked
 * answer: ignored); AN_EPROTO if msg is not a response of the right type
 * (peer then counts as failed).  An invalid record is not an error: the peer
 * is marked AN_LOOKUP_REC_INVALID and its closer peers are still used.
 * -ENOMEM.
 */
int an_lookup_response(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer,
		       const struct an_kad_msg *msg);

/* The request to peer failed (dial, stream, decode).  0 or AN_ENOTFOUND. */
int an_lookup_failure(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer);

/* As an_lookup_failure, for a request the host's own deadline ended (dial or stream timeout). */
int an_lookup_failure_timeout(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer);

/* True once the lookup is done (the next request would be AN_LOOKUP_DONE). */
bool an_lookup_done(const struct an_lookup *l);

/* The target: SHA-256 of the key. */
const struct an_kad_id *an_lookup_target(const struct an_lookup *l);

/*
 * Up to n peers that answered, closest to the target first, over all
 * paths, into out (borrowed pointers valid until an_lookup_free).  Returns
 * how many.  For FIND_NODE: the k closest peers.
 */
size_t an_lookup_closest(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n);

/*
 * GET_VALUE: the best valid value (borrowed, valid until an_lookup_free)
 * and how many peers returned exactly it.  0 or AN_ENOTFOUND.
 */
int an_lookup_value(const struct an_lookup *l, const uint8_t **val, size_t *len, size_t *count);

/*
 * GET_VALUE: peers to send a PUT_VALUE correction to, closest first: those
 * that returned an outdated or invalid record, and those among the k
 * closest answering peers that returned none.  Empty if no best value.
 * Returns how many were written to out[0..n).
 */
size_t an_lookup_corrections(const struct an_lookup *l, const struct an_lookup_peer **out,
			     size_t n);

/*
 * GET_VALUE: every answering peer that lacked the best record (none,
 * outdated or invalid), closest first, not only among the k closest: the
 * wider correction set (kad_node sends to the first k that take it).
 */
size_t an_lookup_lacking(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n);

/* GET_PROVIDERS: the providers collected (deduplicated by ID), in arrival order. */
size_t an_lookup_providers(const struct an_lookup *l, const struct an_lookup_peer **out,
			   size_t n);

/*
 * Why a lookup found nothing, for the caller's error (kad_node.h): 0 if at
 * least one peer answered; -ETIMEDOUT if none did and a request timed out
 * (the peers were silent: the caller's deadline passes before any answer);
 * -EHOSTUNREACH if none did and every request failed at once (refused,
 * reset, unparseable) or there was nobody to ask.
 */
int an_lookup_reach(const struct an_lookup *l);

/* Every peer the lookup knows (for tests and diagnostics), closest first. */
size_t an_lookup_peers(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n);

#endif
