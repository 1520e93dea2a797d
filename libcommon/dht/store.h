/*
 * store.h - the DHT record and provider store, in LMDB.
 *
 * One LMDB environment in a directory (the daemon uses <statedir>/store/),
 * with four named databases:
 *
 *   records    key -> header (flags, timeReceived, expiry, last replicated,
 *              last republished, sender) + the value bytes as received
 *   providers  (key multihash, provider peer ID) -> expiry + binary addrs
 *   pins       key -> time pinned
 *   meta       format version, total record bytes
 *
 * Every change is one LMDB write transaction, so a crash (kill -9 in the
 * middle of a write, or power loss with sync left on) leaves either the old
 * or the new state, never a mix; stale reader slots of killed processes are
 * cleared at open (mdb_reader_check).  One struct an_store per directory
 * per process (LMDB's rule); several processes may share a directory.
 *
 * Validity: a put is validated in full (dht/validate.h, with `now` and the
 * subdomain's root read from this store) before it is written; a get only
 * checks the expiry kept beside the value, since nothing else about a
 * signed record changes with time.  Expired records are never returned:
 * they are deleted when a get meets them and by an_store_sweep, except the
 * node's own (AN_STORE_OURS), which stay as the template its owner re-signs
 * but are returned only by the REPUBLISH_DUE iteration.
 *
 * Selection: a put for a key already held keeps the better of the two
 * (an_validate_compare: highest seq, then latest expires).  A worse value is
 * refused with AN_ESTALE; an equal one changes nothing (outcome UNCHANGED;
 * re-replication sends the same record over and over).
 *
 * Size policy (documented choice, like rust-libp2p's MemoryStore): the
 * store holds at most max_records records and max_bytes bytes of keys and
 * values.  When full, a put of a NEW key from another node is refused with
 * AN_ELIMIT; replacing a held key is allowed (the total may grow by the
 * difference); own (AN_STORE_OURS) and pinned puts are always accepted up
 * to the LMDB map size.  Nothing is ever evicted to make room: eviction
 * would let anyone with cheap keys flush other publishers' records, while
 * refusal only keeps new names off this one node until records expire (at
 * most AN_RECORD_VALID_MAX, 48 h by default).  A full map (map_size) is
 * AN_ELIMIT too.  Providers: at most max_providers_per_key live providers
 * per key (20, as rust) and max_providers in all; a newcomer to a full key
 * is refused (AN_ELIMIT) until one expires, except a refresh of a provider
 * already there, and a verified bare-name claim (dht/claim.h), which takes
 * the place of the youngest unverified provider.  Verified claims are
 * never displaced: a flood of fresh keys, even with proofs, cannot push
 * out a claimant that was there first.  Lists rank verified claims first,
 * then the oldest.
 *
 * Time is always passed in (`now`, seconds since the epoch): no clock here.
 * Intervals are configuration, so tests can shorten them.
 */
#ifndef AN_DHT_STORE_H
#define AN_DHT_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "dht/validate.h"
#include "encoding/multiaddr.h"
#include "encoding/multihash.h"
#include "record/record.h"
#include "util/buf.h"

#define AN_STORE_MAP_SIZE_DEFAULT ((size_t)256 << 20) /* LMDB map: a sparse file's ceiling */
#define AN_STORE_MAX_RECORDS_DEFAULT 4096
#define AN_STORE_MAX_BYTES_DEFAULT ((size_t)32 << 20)
#define AN_STORE_MAX_PROVIDERS_DEFAULT 65536          /* provider entries in all */
#define AN_STORE_PROVIDERS_PER_KEY_DEFAULT 20         /* rust MemoryStore max_providers_per_key */
#define AN_STORE_REPLICATE_DEFAULT 3600               /* s: re-replicate to the k closest */
#define AN_STORE_REPUBLISH_DEFAULT 86400              /* s: owners re-sign, pinners re-put */
#define AN_STORE_PROVIDER_TTL_DEFAULT (48 * 3600)     /* s: provider record validity (spec) */
#define AN_STORE_RECORD_TTL_DEFAULT (48 * 3600)       /* s: /pk/ values after timeReceived (js) */
#define AN_STORE_PROVIDER_ADDRS_MAX 4                 /* addrs kept per provider (K6) */
#define AN_STORE_PROVIDER_KEY_MAX AN_MULTIHASH_MAX     /* provider keys are multihashes (K20) */

/* Record flags. */
#define AN_STORE_OURS 0x1   /* published by this node's owner: re-signed every republish interval */
#define AN_STORE_PINNED 0x2 /* the key is on the pin list: re-put unchanged every republish interval */

/* Zero fields take the defaults above. */
struct an_store_config {
	size_t map_size;
	size_t max_records;
	size_t max_bytes;             /* keys + values of all records */
	size_t max_providers;
	size_t max_providers_per_key;
	int64_t replicate_interval;   /* s */
	int64_t republish_interval;   /* s */
	int64_t provider_ttl;         /* s */
	int64_t record_ttl;           /* s; values without their own validity (/pk/) */
	bool nosync;                  /* MDB_NOSYNC: survives a process crash, not a power cut */
};

struct an_store; /* opaque */

/*
 * Open (creating dir, mode 0700, and the databases if absent) the store in
 * dir (borrowed).  cfg (copied) may be NULL for every default.  *out is new:
 * an_store_close.  0, -errno, AN_EMALFORMED (not a store of this format).
 */
int an_store_open(struct an_store **out, const char *dir, const struct an_store_config *cfg);

/* NULL-safe. */
void an_store_close(struct an_store *s);

/* The configuration in force (defaults filled in); borrowed from s. */
const struct an_store_config *an_store_config(const struct an_store *s);

/* ---- records ---- */

/* A put; zero-initialise, then set key and value. */
struct an_store_put {
	const uint8_t *key;          /* borrowed */
	size_t key_len;
	const uint8_t *value;        /* borrowed */
	size_t value_len;
	unsigned flags;              /* AN_STORE_OURS to mark an own record; added to the held flags */
	const struct an_peerid *from; /* borrowed; the sender, NULL when local */
	const json_t *root;          /* borrowed; a subdomain's root passed along, or NULL */
};

enum an_store_outcome {
	AN_STORE_NEW = 1,      /* the key was not held */
	AN_STORE_REPLACED = 2, /* the value replaced a worse one */
	AN_STORE_UNCHANGED = 3 /* an equal value was held already */
};

/*
 * Validate p's value (see validate.h; a subdomain's root is p->root or the
 * one held here) at now and store it if it beats what is held.  0 with
 * *outcome (may be NULL) set; or e (may be NULL) names the reason of:
 * validation codes (validate.h), AN_ESTALE (worse than the value held),
 * AN_ELIMIT (full, see the size policy), -errno (-EIO for an LMDB error
 * without an errno), AN_EMALFORMED (the database is corrupt).
 */
int an_store_put(struct an_store *s, const struct an_store_put *p, int64_t now,
		 enum an_store_outcome *outcome, struct an_record_error *e);

/* One stored record, as gets and iterations return it. */
struct an_store_record {
	struct an_buf key;     /* owned (an_store_record_free) */
	struct an_buf value;   /* owned */
	unsigned flags;        /* AN_STORE_OURS, AN_STORE_PINNED */
	int64_t time_received; /* s; the last time a new or better value arrived */
	int64_t expires;       /* s; the effective end of validity */
	int64_t replicated;    /* s; last an_store_mark_replicated, else time_received */
	int64_t republished;   /* s; last an_store_mark_republished, else time_received */
	bool has_from;
	struct an_peerid from; /* the sender of the held value, if not local */
};

/* Empty record, buffers capped for the largest key and value. */
void an_store_record_init(struct an_store_record *r);

/* NULL-safe; frees the buffers, r is re-usable after init. */
void an_store_record_free(struct an_store_record *r);

/*
 * The live record under key (borrowed) at now into r (initialised by the
 * caller; its buffers are reset and refilled).  0, AN_ENOTFOUND (absent or
 * expired: an expired one is deleted, unless it is our own), -errno.
 */
int an_store_get(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now,
		 struct an_store_record *r);

/* Delete key's record (an owner unpublishing).  0 or AN_ENOTFOUND. */
int an_store_del(struct an_store *s, const uint8_t *key, size_t key_len);

enum an_store_filter {
	AN_STORE_ALL = 0,         /* every live record */
	AN_STORE_REPLICATE_DUE,   /* live, replicated + replicate_interval <= now */
	AN_STORE_REPUBLISH_DUE    /* ours (even expired) or pinned and live, with
	                             republished + republish_interval <= now */
};

/*
 * Iterate in key order: the first record after r->key (an empty r->key
 * starts at the beginning) that passes filter at now, into r.  Each call
 * is its own read transaction, so the caller may put, mark and delete
 * between calls (e.g. send records from an event loop).  0, AN_ENOTFOUND
 * at the end, -errno.
 *
 *   struct an_store_record r; an_store_record_init(&r);
 *   while (an_store_next(s, AN_STORE_REPLICATE_DUE, now, &r) == 0) { send; mark; }
 *   an_store_record_free(&r);
 */
int an_store_next(struct an_store *s, enum an_store_filter filter, int64_t now,
		  struct an_store_record *r);

/* Record that key was sent to its k closest peers at now.  0 or AN_ENOTFOUND. */
int an_store_mark_replicated(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now);

/* Record that key was republished (re-signed or re-put) at now.  0 or AN_ENOTFOUND. */
int an_store_mark_republished(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now);

/*
 * Delete every expired record (but our own) and expired provider, at most
 * max of each per call (0: no limit), so a daemon can sweep in slices.
 * *removed (may be NULL) counts what went.  0 or an error.
 */
int an_store_sweep(struct an_store *s, int64_t now, size_t max, size_t *removed);

/*
 * Records held (expired ones not yet swept included) and the bytes of their
 * keys and values, as the size policy counts them.  Either may be NULL.
 */
int an_store_stat(struct an_store *s, size_t *records, size_t *bytes);

/* ---- pins: third-party records this node keeps republishing ---- */

/*
 * Put key (borrowed; at most AN_VALIDATE_KEY_MAX bytes, a served namespace)
 * on the pin list at now.  The record itself arrives by an_store_put (a
 * pinned key's put is exempt from the size policy); while it is held and
 * valid, AN_STORE_REPUBLISH_DUE returns it every republish interval.  A
 * pin of a key already pinned is 0.  AN_ETOOBIG, AN_ENOPROTO, or an error.
 */
int an_store_pin(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now);

/* Remove key from the pin list.  0 or AN_ENOTFOUND. */
int an_store_unpin(struct an_store *s, const uint8_t *key, size_t key_len);

/*
 * Iterate the pin list in key order: the first pinned key after the bytes
 * in key (borrowed and refilled; empty to start; cap AN_VALIDATE_KEY_MAX).
 * 0, AN_ENOTFOUND at the end.
 */
int an_store_pin_next(struct an_store *s, struct an_buf *key);

/* ---- providers ---- */

struct an_store_provider {
	struct an_peerid id;
	int64_t expires;  /* s */
	bool verified;    /* a bare-name claim whose proof of work was checked */
	unsigned work;    /* its proof's leading zero bits */
	int64_t first_seen; /* s: first stored (verified claims: first verified); 0 if unknown */
	size_t naddrs;
	struct an_multiaddr addrs[AN_STORE_PROVIDER_ADDRS_MAX];
};

/*
 * Add (or refresh) id (borrowed) as provider of key (borrowed: a multihash,
 * K20) with the first AN_STORE_PROVIDER_ADDRS_MAX of addrs (borrowed), valid
 * until now + provider_ttl.  0, AN_EMALFORMED (key not a multihash),
 * AN_ELIMIT (key or store full of live providers), or an error.
 */
int an_store_provider_add(struct an_store *s, const uint8_t *key, size_t key_len,
			  const struct an_peerid *id, const struct an_multiaddr *addrs, size_t naddrs,
			  int64_t now);

/*
 * As an_store_provider_add, for a provider whose claim (dht/claim.h) the
 * caller has verified (verified true, its work) or not.  A newcomer to a
 * full key gets in only if verified, evicting the youngest unverified
 * provider; else AN_ELIMIT.  A refresh keeps the first-seen time (a
 * verified claim's, also when refreshed without a proof); an unverified
 * entry that becomes verified is first seen now.
 */
int an_store_provider_claim(struct an_store *s, const uint8_t *key, size_t key_len,
			    const struct an_peerid *id, const struct an_multiaddr *addrs,
			    size_t naddrs, bool verified, unsigned work, int64_t now);

/*
 * Live providers of key at now: the first max by rank (verified claims
 * first, then the oldest) into out (borrowed array), count in *n.  Expired
 * ones are skipped (the sweep deletes them).  0 (also when none: *n = 0)
 * or an error.
 */
int an_store_providers_get(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now,
			   struct an_store_provider *out, size_t max, size_t *n);

#endif
