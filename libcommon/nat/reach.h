/*
 * reach.h - the reachability tracker, sans-I/O: per address of ours,
 * whether AutoNAT servers could dial it (public), could not (private), or
 * we do not know yet (unknown).
 *
 * Each address keeps its last AN_REACH_WINDOW outcomes (go-libp2p's
 * addrs_reachability_tracker.go): with s successes and f failures in the
 * window, the address is public once s - f >= min_confidence, private once
 * f - s >= min_confidence, else unknown.  Only real evidence counts: a
 * refused or rejected request is no outcome.  Addresses are plain TCP
 * multiaddr texts (/ip4|ip6/A/tcp/P, no /p2p); "observed" ones came from
 * identify's observedAddr.  At most AN_REACH_MAX_ADDRS are held: a new
 * observed address replaces the least recently seen observed one that is
 * not public; when none can go, AN_ELIMIT.
 *
 * The node's overall reachability: public when any address is public,
 * private when at least one address is private and none public, else
 * unknown.
 */
#ifndef AN_NAT_REACH_H
#define AN_NAT_REACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AN_REACH_MAX_ADDRS 16
#define AN_REACH_TEXT_MAX 128
#define AN_REACH_WINDOW 5
#define AN_REACH_DEFAULT_CONFIDENCE 2 /* go's minConfidence */

enum an_reach_state { AN_REACH_UNKNOWN = 0, AN_REACH_PUBLIC = 1, AN_REACH_PRIVATE = 2 };

struct an_reach_addr {
	char text[AN_REACH_TEXT_MAX];
	enum an_reach_state state;
	bool observed;       /* learned from identify, not one of our listen/announce addresses */
	uint8_t outcomes;    /* bit i: outcome i (1 = dialed), newest in bit 0 */
	uint8_t n;           /* outcomes held, <= AN_REACH_WINDOW */
	unsigned probes;     /* requests sent about it (for picking the next) */
	uint64_t seen_ms;    /* last added or reported */
	uint64_t probed_ms;  /* last request about it; 0 never */
};

struct an_reach {
	int min_confidence;
	size_t n;
	struct an_reach_addr a[AN_REACH_MAX_ADDRS];
};

/* Empty tracker; min_confidence 0 takes AN_REACH_DEFAULT_CONFIDENCE. */
void an_reach_init(struct an_reach *r, int min_confidence);

/*
 * Add text (copied) or refresh it.  0; -EINVAL for an empty text or one
 * of AN_REACH_TEXT_MAX bytes or more; AN_ELIMIT when full (see above).
 * An address we listen on that was first observed stops being "observed".
 */
int an_reach_add(struct an_reach *r, const char *text, bool observed, uint64_t now_ms);

/*
 * An outcome about text: dialed (reachable) or not.  1 when the address's
 * state changed, 0 when not, AN_ENOTFOUND for an address not held.
 */
int an_reach_result(struct an_reach *r, const char *text, bool dialed, uint64_t now_ms);

/* The entry of text (borrowed) or NULL. */
const struct an_reach_addr *an_reach_find(const struct an_reach *r, const char *text);

/* The overall state (see above). */
enum an_reach_state an_reach_overall(const struct an_reach *r);

/*
 * The address to ask about next (borrowed), marked probed at now_ms, or
 * NULL: first one whose outcomes do not yet reach min_confidence + 1 and
 * that was not asked about in the last gap_ms (fewest probes first), else
 * one last asked reprobe_ms ago or more.
 */
const struct an_reach_addr *an_reach_next(struct an_reach *r, uint64_t now_ms, uint64_t gap_ms,
					  uint64_t reprobe_ms);

/* Whether an_reach_next would give an address now (marks nothing). */
bool an_reach_due(const struct an_reach *r, uint64_t now_ms, uint64_t gap_ms, uint64_t reprobe_ms);

/* "public", "private", "unknown". */
const char *an_reach_name(enum an_reach_state s);

#endif
