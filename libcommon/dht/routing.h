/*
 * routing.h - the Kademlia routing table: 256 k-buckets, sans-I/O.
 *
 * Bucket i holds peers whose position (SHA-256 of the peer ID, distance.h)
 * shares exactly i leading bits with ours.  Each bucket keeps at most k
 * entries (default 20) ordered from least to most recently seen.
 *
 * Insertion policy (Kademlia, as js k-bucket "ping" and rust's pending
 * entries): a peer seen again moves to the most-recent end; a new peer
 * joins a bucket with room; when the bucket is full the least recently
 * seen entry must fail a liveness check before the newcomer replaces it.
 * The table cannot ping, so it queues an event "ping X, candidate Y
 * waiting" (an_rt_next_event) and the host answers with
 * an_rt_check_result().  One check per bucket at a time; newcomers for a
 * bucket with a check under way are dropped (AN_RT_FULL).  A check not
 * answered within check_timeout_ms counts as failed the next time the
 * table is given the time (an_rt_update, an_rt_expire_checks).
 *
 * Only peers in DHT server mode belong here (the spec: a peer is added iff
 * it advertises the kad protocol); admission is the caller's decision.
 *
 * Address diversity (issue 16; go-libp2p-kbucket's peer diversity filter
 * and go-libp2p-kad-dht's defaults are the anchor): each entry belongs to
 * the group of its address - an IPv4 /24, an IPv6 /48 (go uses /16 and the
 * ASN; a /24 is what an attacker rents cheaply, so we are stricter per
 * subnet and count no ASN table).  A peer without an IP address (none
 * given, dns names) is exempt: kad_node always groups by the address of
 * the connection it heard the peer on, which has one.  A new peer is refused (AN_RT_GROUP_FULL) once its group
 * has group_bucket_max entries in its bucket (default 2, go's per-CPL
 * limit) or group_table_max in the whole table (default 3, go's).
 * Loopback (127.0.0.0/8, ::1) is exempt by default, so tests can run many
 * nodes on 127.0.0.1; with AN_RT_LOOPBACK_SUBNETS each loopback address
 * is its own group (a /32 or /128: 127.0.0.2 is one group, whatever its
 * ports), which is what a test of the limits on one machine wants.  The
 * group is fixed when the peer is admitted, from the address it was seen
 * at (an_rt_update_from), else its first address.
 *
 * Addresses: at most AN_RT_ADDRS_MAX per peer (K6: responses with 20 peers
 * must stay under rust's 16 KiB), newest first.
 *
 * Snapshot: a compact binary form for the daemon's state directory:
 *   "ANRT" u8 version=1, u32 count, then per entry
 *   u8 id_len, id, u64 last_seen_ms, u8 naddrs, per address u16 len, bytes
 * (integers big-endian).  Loading checks every field and ignores entries
 * that are our own ID or would overflow a bucket.
 *
 * Nothing here is thread-safe; no clock is read (every time is now_ms in).
 */
#ifndef AN_DHT_ROUTING_H
#define AN_DHT_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "dht/distance.h"
#include "encoding/multiaddr.h"
#include "util/buf.h"

#define AN_RT_K_DEFAULT 20
#define AN_RT_K_MAX 64
#define AN_RT_BUCKETS 256
#define AN_RT_ADDRS_MAX 4
#define AN_RT_CHECK_TIMEOUT_DEFAULT 10000 /* ms: a ping's own timeout is shorter */
#define AN_RT_EVENTS_MAX 64               /* queued liveness requests */

/* An address group (see above); kind 0 is "exempt", never counted. */
struct an_rt_group {
	uint8_t kind; /* 0 exempt, 4 IPv4 /24, 6 IPv6 /48, 1 loopback address */
	uint8_t net[16];
};

#define AN_RT_GROUP_BUCKET_DEFAULT 2
#define AN_RT_GROUP_TABLE_DEFAULT 3
#define AN_RT_NO_DIVERSITY 0x1     /* no group limits (the defence off) */
#define AN_RT_LOOPBACK_SUBNETS 0x2 /* each loopback address its own group (not exempt) */

/* The group of ma (borrowed) into *g; flags as an_rt_config's.  ma may be NULL (no IP). */
void an_rt_group_of(const struct an_multiaddr *ma, unsigned flags, struct an_rt_group *g);

/* True if a and b are one counted group (exempt groups equal nothing). */
bool an_rt_group_equal(const struct an_rt_group *a, const struct an_rt_group *b);

struct an_rt_entry {
	struct an_peerid id;
	struct an_rt_group group;
	struct an_kad_id kad;
	size_t naddrs;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	uint64_t last_seen_ms;
};

struct an_rt_config {
	size_t k;                  /* bucket size; 0 = AN_RT_K_DEFAULT; at most AN_RT_K_MAX */
	uint64_t check_timeout_ms; /* 0 = AN_RT_CHECK_TIMEOUT_DEFAULT */
	unsigned flags;            /* AN_RT_NO_DIVERSITY, AN_RT_LOOPBACK_SUBNETS */
	size_t group_bucket_max;   /* 0 = AN_RT_GROUP_BUCKET_DEFAULT */
	size_t group_table_max;    /* 0 = AN_RT_GROUP_TABLE_DEFAULT */
};

/* The liveness check a full bucket asks for. */
struct an_rt_event {
	struct an_peerid ping;      /* the least recently seen entry: ping it */
	struct an_peerid candidate; /* waiting to replace it if the ping fails */
};

struct an_rt_bucket; /* private */

struct an_rt {
	struct an_peerid self;
	struct an_kad_id self_kad;
	size_t k;
	uint64_t check_timeout_ms;
	unsigned flags;
	size_t group_bucket_max, group_table_max;
	size_t size; /* entries in all buckets */
	struct an_rt_bucket *buckets[AN_RT_BUCKETS]; /* allocated on first use */
	struct an_rt_event events[AN_RT_EVENTS_MAX];
	size_t nevents;
};

enum an_rt_result {
	AN_RT_ADDED = 1,   /* new entry */
	AN_RT_UPDATED = 2, /* already present: now the most recently seen, addresses merged */
	AN_RT_PENDING = 3, /* bucket full: a liveness check was queued (an_rt_next_event) */
	AN_RT_FULL = 4,    /* bucket full and already checking: not added */
	AN_RT_SELF = 5,    /* our own ID: never added */
	AN_RT_GROUP_FULL = 6 /* its address group is at its limit (diversity): not added */
};

/* Empty table for self (copied); cfg may be NULL for the defaults.  -EINVAL for k > AN_RT_K_MAX. */
int an_rt_init(struct an_rt *rt, const struct an_peerid *self, const struct an_rt_config *cfg);

/* Free every bucket (NULL-safe). */
void an_rt_free(struct an_rt *rt);

/*
 * We heard from id (copied) at now_ms: a response, an inbound request from
 * a server-mode peer, or a successful dial.  addrs[0..naddrs) (borrowed,
 * copied) are merged in front of the known ones, up to AN_RT_ADDRS_MAX.
 * Returns an enum an_rt_result (> 0) or -ENOMEM.
 */
int an_rt_update(struct an_rt *rt, const struct an_peerid *id, const struct an_multiaddr *addrs,
		 size_t naddrs, uint64_t now_ms);

/*
 * an_rt_update with the address the peer was really seen at (borrowed; a
 * connection's remote address; may be NULL): a new entry's group comes
 * from it rather than from the addresses the peer advertises.
 */
int an_rt_update_from(struct an_rt *rt, const struct an_peerid *id, const struct an_multiaddr *addrs,
		      size_t naddrs, const struct an_multiaddr *seen_at, uint64_t now_ms);

/* Pop the oldest queued liveness request into *ev: 1, or 0 if none. */
int an_rt_next_event(struct an_rt *rt, struct an_rt_event *ev);

/*
 * The answer to a liveness check of peer (borrowed): alive moves it to the
 * most-recent end and drops the candidate; dead removes it and inserts the
 * candidate in its place.  0, or AN_ENOTFOUND if no check of peer is under
 * way (late or duplicate answers are harmless).
 */
int an_rt_check_result(struct an_rt *rt, const struct an_peerid *peer, bool alive,
			uint64_t now_ms);

/* Treat checks older than the timeout as failed (see above).  Returns how many. */
size_t an_rt_expire_checks(struct an_rt *rt, uint64_t now_ms);

/* Remove id (e.g. it failed several requests).  0 or AN_ENOTFOUND. */
int an_rt_remove(struct an_rt *rt, const struct an_peerid *id);

/* The entry for id, borrowed until the table next changes; NULL if absent. */
const struct an_rt_entry *an_rt_find(const struct an_rt *rt, const struct an_peerid *id);

/*
 * Up to n entries closest to target (borrowed), closest first, into
 * out[0..n) as borrowed pointers valid until the table next changes.
 * exclude (may be NULL) is left out (the requester of a FIND_NODE).
 * Returns how many were written.
 */
size_t an_rt_closest(const struct an_rt *rt, const struct an_kad_id *target,
		     const struct an_peerid *exclude, const struct an_rt_entry **out, size_t n);

/* Number of entries in bucket i (0..255); 0 for a bad index. */
size_t an_rt_bucket_size(const struct an_rt *rt, unsigned i);

/* Entry j of bucket i (least recently seen first), borrowed; NULL past the end. */
const struct an_rt_entry *an_rt_bucket_entry(const struct an_rt *rt, unsigned i, size_t j);

/*
 * Record that bucket i was refreshed (a lookup for a key in it ran) at now_ms.
 * Buckets also count as refreshed when an entry is added to them.
 */
void an_rt_bucket_touch(struct an_rt *rt, unsigned i, uint64_t now_ms);

/*
 * The buckets to refresh: every i in 0..min(max_cpl, deepest non-empty
 * bucket + 1) whose last refresh is older than interval_ms, ascending,
 * into out[0..cap).  Returns how many (never more than cap).  Generate a
 * key for bucket i with an_kad_key_with_cpl() and run a FIND_NODE lookup.
 */
size_t an_rt_stale_buckets(const struct an_rt *rt, uint64_t now_ms, uint64_t interval_ms,
			   unsigned max_cpl, unsigned *out, size_t cap);

/* Append the snapshot of rt to out (borrowed).  0, AN_ETOOBIG, -ENOMEM. */
int an_rt_save(const struct an_rt *rt, struct an_buf *out);

/*
 * Add the entries of snapshot p[0..len) (borrowed) to rt, directly, with no
 * liveness events.  0; AN_EMALFORMED / AN_ETRUNCATED for a bad snapshot
 * (rt may then hold the entries read before the error); -ENOMEM.
 */
int an_rt_load(struct an_rt *rt, const uint8_t *p, size_t len);

#endif
