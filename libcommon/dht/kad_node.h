/*
 * kad_node.h - the Kademlia DHT service on a libev host: the I/O around the
 * sans-I/O pieces (kad_msg, routing, lookup, kad_server, store, validate).
 *
 * Wire (libp2p kad-dht; digest section 10, K1-K8, K19, K20):
 * - server mode registers the protocol (default /an/kad/1.0.0; any ID, e.g.
 *   /ipfs/kad/1.0.0) so identify advertises it (K3); client mode registers
 *   nothing and only queries;
 * - inbound streams: LP-framed requests answered by kad_server, several per
 *   stream, AN_KAD_NODE_IDLE_MS of silence ends the stream (js: 10 s per
 *   message); a refused PUT_VALUE resets the stream (js and go do, K1);
 * - outbound: one stream per request, LP-framed, AN_KAD_MSG_SEND_MAX cap on
 *   what we send (rust's 16 KiB, K6), a deadline per request; ADD_PROVIDER
 *   is written and half-closed without waiting for an answer (js, rust);
 *   a PUT_VALUE counts as stored only when the echo carries our value (K8).
 *
 * Routing table: a peer enters when identify shows it advertises our kad
 * protocol (with its listen addresses) or when it answered one of our kad
 * requests, and leaves when an identify push shows it dropped the protocol
 * (switched to client mode; one that pushes the protocol joins); full buckets ask for a ping of their least recently seen entry
 * (routing.h events, answered with /ipfs/ping/1.0.0).  A peer whose dial
 * is refused leaves the table.  The table is saved to <state>/routing.snap
 * by an_kad_node_free and loaded by an_kad_node_new.
 *
 * Maintenance (server daemons; AN_KAD_NODE_MAINTAIN): a bootstrap that
 * leaves the table smaller than the bootstrap set (a seed down or at its
 * handshake limit) is retried after 1 s, doubling to 60 s, jittered
 * (AN_KAD_NODE_BOOT_RETRY_*), until the table has grown that large; a
 * refresh timer runs a self lookup and one lookup per stale bucket (and
 * bootstraps again when the table is empty); a maintenance timer re-replicates records whose
 * replicate interval passed (the store's REPLICATE_DUE: PUT to the k
 * closest, a subdomain's root first), republishes own and pinned records
 * (REPUBLISH_DUE: own records signed by this node's key are re-signed;
 * other own and pinned ones are re-put unchanged while valid; publishing
 * an `an` record also announces us as provider of its bare-name key, so
 * the provider record is renewed with every republish, well inside its
 * 48 h life), and sweeps expired records and providers.
 *
 * Time: the loop's clock in ms for the lookup machines and the routing
 * table; the store takes seconds of wall-clock time (time(NULL)), its
 * intervals are in seconds.  Keys: requests accept AN_KAD_KEY_MAX (512)
 * bytes, the store AN_VALIDATE_KEY_MAX (511): a 512-byte key is simply not
 * found, and refused by PUT.
 *
 * Everything runs in the host's loop; nothing is thread-safe.  Operations
 * (put, get, providers, bootstrap, republish) call their callback exactly
 * once, always from the loop, never from inside the starting call, unless
 * cancelled first with an_kad_op_cancel.
 */
#ifndef AN_DHT_KAD_NODE_H
#define AN_DHT_KAD_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "dht/kad_server.h"
#include "dht/routing.h"
#include "dht/store.h"
#include "transport/host.h"

#define AN_KAD_PROTOCOL_DEFAULT "/an/kad/1.0.0"
#define AN_KAD_NODE_IDLE_MS 10000        /* inbound stream: silence per message */
/*
 * Inbound request bytes a peer can make us hold.  Any inbound stream may
 * buffer AN_KAD_NODE_IN_SMALL bytes of a request (every request we know of
 * is far smaller); past that it is a large request: one at a time per
 * connection, and all large requests together stay under
 * AN_KAD_NODE_IN_BUDGET.  A stream that would break either is reset.  So a
 * peer that opens streams and sends most of a 4 MiB message on each holds
 * SMALL per stream (the host caps streams per address), not 4 MiB.
 */
#define AN_KAD_NODE_IN_SMALL (64u << 10)
#define AN_KAD_NODE_IN_BUDGET (32u << 20)
#define AN_KAD_NODE_REFRESH_MS 600000    /* spec: 10 min */
#define AN_KAD_NODE_MAINTAIN_MS 60000    /* how often due records are looked for */
#define AN_KAD_NODE_SWEEP_MAX 256        /* expired entries deleted per sweep */
#define AN_KAD_NODE_BOOTSTRAP_MAX 32     /* bootstrap addresses taken */
#define AN_KAD_NODE_REFRESH_CPL_MAX 15   /* buckets refreshed (js refreshes up to 15) */
#define AN_KAD_NODE_BOOT_RETRY_MIN_MS 1000  /* first bootstrap retry (see Maintenance) */
#define AN_KAD_NODE_BOOT_RETRY_MAX_MS 60000 /* the backoff's ceiling */
#define AN_KAD_SNAPSHOT_NAME "routing.snap"
#define AN_KAD_STORE_NAME "store"

/*
 * Sybil defences (issue 16), each on unless turned off (defences_off):
 * DIVERSITY  routing-table admission per subnet (routing.h), at most
 *            AN_KAD_SUBNET_WINDOW peers of one subnet in a lookup path's
 *            window (lookup.h) and in a put's target set;
 * VERIFY     a put counts a peer as a holder only once it returns the
 *            record on a GET_VALUE (read-back), and keeps putting to the
 *            next-closest peers until `replication` holders on distinct
 *            subnets are verified;
 * CORRECT    a get's corrections go to the closest peers that lacked the
 *            record, past the k closest when those refused it;
 * PROGRESS   a lookup answer with no value and no new closer peer is no
 *            progress, and a get's quorum counts distinct subnets.
 */
#define AN_KAD_DEF_DIVERSITY 0x1
#define AN_KAD_DEF_VERIFY 0x2
#define AN_KAD_DEF_CORRECT 0x4
#define AN_KAD_DEF_PROGRESS 0x8
#define AN_KAD_DEF_ALL 0xf
#define AN_KAD_REPLICATION_DEFAULT 20 /* r = k, as js and go replicate to the k closest */
#define AN_KAD_SUBNET_WINDOW 3        /* peers of one subnet in a lookup window or put set */
#define AN_KAD_IDLE_MAX 8             /* no-progress answers let past a get path's window */

/* Zero fields take the defaults. */
struct an_kad_node_config {
	const char *protocol;          /* borrowed, copied; NULL: AN_KAD_PROTOCOL_DEFAULT */
	bool client;                   /* client mode: nothing served or advertised */
	bool maintain;                 /* run the refresh and maintenance timers */
	const char *state_dir;         /* borrowed: <dir>/store and <dir>/routing.snap; must exist */
	struct an_store_config store;  /* intervals in seconds */
	size_t k;                      /* bucket size and replication factor (20) */
	size_t alpha, paths;           /* lookup parallelism (lookup.h defaults) */
	size_t quorum;                 /* GET_VALUE early exit (lookup.h default 16) */
	uint64_t request_timeout_ms;   /* per request (10 s) */
	uint64_t refresh_ms;           /* AN_KAD_NODE_REFRESH_MS */
	uint64_t maintain_ms;          /* AN_KAD_NODE_MAINTAIN_MS */
	unsigned claim_bits;           /* work of a bare-name claim (dht/claim.h), asked of others'
					  and paid for ours; 0: $AN_CLAIM_BITS, else AN_CLAIM_BITS_DEFAULT */
	unsigned defences_off;         /* AN_KAD_DEF_* bits: Sybil defences turned off (all on by
					  default); $AN_KAD_DEFENCES_OFF adds names ("diversity,verify",
					  "all"), for measuring before and after */
	bool loopback_subnets;         /* each loopback address its own subnet (routing.h); also
					  $AN_KAD_LOOPBACK_SUBNETS=1.  Default: loopback exempt */
	size_t replication;            /* r: verified holders a put wants on distinct subnets
					  (AN_KAD_REPLICATION_DEFAULT) */
	an_host_log_fn log;            /* reasons for failures; NULL drops them */
	void *log_arg;
};

struct an_kad_node; /* opaque */
struct an_kad_op;   /* one operation under way */

/*
 * A DHT node on h (borrowed; must outlive the node): opens the store, loads
 * the routing snapshot, registers the protocol (server mode) and hooks
 * identify on every new connection and identify pushes
 * (an_host_on_connection, an_host_on_identify_push: the node takes both
 * hooks; pushes arrive only if the host runs the identify service).  cfg is
 * copied.  *out is new: an_kad_node_free.  0, -errno, -ENAMETOOLONG (a
 * protocol of 256 bytes or more, a state directory of 4096 or more: never
 * truncated into another one), AN_EMALFORMED (a store of another format),
 * AN_ELIMIT (protocol table).
 */
int an_kad_node_new(struct an_host *h, const struct an_kad_node_config *cfg,
		    struct an_kad_node **out);

/*
 * Save the routing snapshot, cancel every operation (no callbacks), stop
 * serving, close the store.  Streams under way are reset; memory they hold
 * goes when the host reports them closed.  NULL-safe.  Free the node
 * before the host.
 */
void an_kad_node_free(struct an_kad_node *n);

/* Borrowed views (valid while n lives). */
struct an_store *an_kad_node_store(struct an_kad_node *n);
const struct an_rt *an_kad_node_rt(const struct an_kad_node *n);
const char *an_kad_node_protocol(const struct an_kad_node *n);

/*
 * Why an operation failed: the err of the bootstrap, put, get and
 * providers callbacks, when nothing was found, stored or reached (callers
 * such as cmd/ turn these into exit codes 1 and 4):
 *   -ENOENT       peers were reached (at least one answered) and none had
 *                 the name, stored the record, listed a provider;
 *   -EHOSTUNREACH no peer could be reached: an empty routing table, every
 *                 bootstrap dial and every request failed at once (refused,
 *                 reset, not a kad server);
 *   -ETIMEDOUT    no peer answered and at least one request (or bootstrap
 *                 dial) ran into its deadline (request_timeout_ms).
 * An operation the caller gives up on first is the caller's -ETIMEDOUT
 * (an_kad_node_wait, then an_kad_op_cancel).
 */

/* Cancel op: its callback is never called; op is freed.  NULL-safe. */
void an_kad_op_cancel(struct an_kad_op *op);

/*
 * Bootstrap: dial addrs[0..naddrs) (borrowed text multiaddrs, with or
 * without /p2p/), then run a self lookup seeded with the peers reached and
 * the routing table's closest.  cb(arg, err, size): err 0 once the lookup
 * ended with at least one peer in the table; with none, -EHOSTUNREACH or
 * -ETIMEDOUT (see "Why an operation failed"; -ENOENT if peers answered but
 * none joined the table).
 * *op (may be NULL) for an_kad_op_cancel.
 */
typedef void (*an_kad_bootstrap_fn)(void *arg, int err, size_t rt_size);
int an_kad_node_bootstrap(struct an_kad_node *n, const char *const *addrs, size_t naddrs,
			  an_kad_bootstrap_fn cb, void *arg, struct an_kad_op **op);

/* Flags of an_kad_node_put. */
#define AN_KAD_PUT_OURS 0x1     /* our own record: AN_STORE_OURS, and announce the bare name */
#define AN_KAD_PUT_NO_STORE 0x2 /* already held: do not store it locally again */

/*
 * cb(arg, err, stored, peers, npeers): stored = verified holders on
 * distinct subnets (AN_KAD_DEF_VERIFY: each returned the record on a
 * GET_VALUE after its PUT_VALUE; a put goes on to the next-closest peers
 * until `replication` are verified or the lookup's peers run out; with the
 * defence off, peers whose PUT_VALUE echo carried the value); peers
 * (borrowed for the call) are they.  err is 0
 * when stored > 0; a put nobody stored is -ENOENT (peers answered the
 * lookup), -EHOSTUNREACH or -ETIMEDOUT (nobody did) with stored 0.  Local
 * refusals are an_kad_node_put's return value, never err.
 */
typedef void (*an_kad_put_fn)(void *arg, int err, size_t stored, const struct an_peerid *peers,
			      size_t npeers);

/*
 * Put value (borrowed, copied) under key (borrowed, copied): validate and
 * store it locally (unless AN_KAD_PUT_NO_STORE; root, borrowed, may be NULL:
 * a subdomain's root record for validation, else the store's copy is
 * used), find the k closest peers of key, send each PUT_VALUE (for a
 * subdomain its root record first, from the store), count echoes.  With
 * AN_KAD_PUT_OURS an /an/ record also gets ADD_PROVIDER of its bare-name
 * key to that key's k closest.  A record refused locally is an error
 * returned right away (negative code, e filled when not NULL): nothing is
 * sent.  *op (may be NULL) for cancelling.
 */
int an_kad_node_put(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *value, size_t value_len, unsigned flags, const json_t *root,
		    an_kad_put_fn cb, void *arg, struct an_kad_op **op, struct an_record_error *e);

/*
 * The bare-name claim of a put (AN_KAD_PUT_OURS of an /an/ record that we
 * publish).  The ADD_PROVIDER carries our proof of work for the name
 * (dht/claim.h; found once per name and bits, then remembered: about a
 * second of one core at the default bits); then up to 3 of the peers that
 * took it are asked GET_PROVIDERS for the key: STORED if one lists us,
 * REFUSED if none does (their list is full of established claimants, or
 * they want more work) or nobody could be sent the claim.  The record
 * itself may still have been stored.  Valid inside the put's callback, for
 * the op that an_kad_node_put returned; NONE for other puts.
 */
#define AN_KAD_CLAIM_NONE 0
#define AN_KAD_CLAIM_STORED 1
#define AN_KAD_CLAIM_REFUSED 2
int an_kad_op_claim(const struct an_kad_op *op);

/*
 * The holders a put wanted when it verified them (AN_KAD_DEF_VERIFY): its
 * replication r, or the number of peers its lookup found (after the subnet
 * filter) when that is smaller, as in a small network; else 0.  Valid inside
 * the put's callback, for the op an_kad_node_put returned: stored below it
 * means fewer than r peers on distinct subnets hold the record, which a
 * caller may report (issue 16: "the exit status says when fewer than r
 * were reached").
 */
size_t an_kad_op_wanted(const struct an_kad_op *op);

/*
 * cb(arg, err, value, len, from_peers): err 0 with the best valid value
 * (borrowed for the call) and how many peers returned it (0: only our
 * store had it); -ENOENT, -EHOSTUNREACH, -ETIMEDOUT (see "Why an
 * operation failed").
 */
typedef void (*an_kad_get_fn)(void *arg, int err, const uint8_t *value, size_t len,
			      size_t from_peers);

/*
 * Get key (copied): the local store and a GET_VALUE lookup (quorum), every
 * value validated (a subdomain against root_value, borrowed and copied,
 * may be NULL: else the store's root), the best selected, PUT_VALUE
 * corrections sent to peers that returned worse, invalid or no values.
 */
int an_kad_node_get(struct an_kad_node *n, const uint8_t *key, size_t key_len,
		    const uint8_t *root_value, size_t root_len, an_kad_get_fn cb, void *arg,
		    struct an_kad_op **op);

/*
 * cb(arg, err, providers, n): err 0 with n > 0 providers (borrowed for the
 * call); with none, -ENOENT, -EHOSTUNREACH or -ETIMEDOUT (see "Why an
 * operation failed").
 */
typedef void (*an_kad_providers_fn)(void *arg, int err, const struct an_kad_provider *p,
				    size_t np);

/* Providers of key (a multihash, K20; copied): the store's and a GET_PROVIDERS lookup's. */
int an_kad_node_providers(struct an_kad_node *n, const uint8_t *key, size_t key_len,
			  an_kad_providers_fn cb, void *arg, struct an_kad_op **op);

/*
 * One record handled by a republish: key (borrowed), status "resigned",
 * "republished", "expired" (an own record past validity that this node
 * cannot re-sign: nothing sent), "refused" (re-signing or storing failed),
 * and how many peers stored it.
 */
typedef void (*an_kad_republish_item_fn)(void *arg, const uint8_t *key, size_t key_len,
					 const char *status, size_t stored);
typedef void (*an_kad_done_fn)(void *arg, int err);

/*
 * Republish every record due (store's REPUBLISH_DUE at now; all own and
 * pinned records when force): roots before subdomains, so a re-signed
 * subdomain refers to its re-signed root.  item for each, then done(0).
 */
int an_kad_node_republish(struct an_kad_node *n, bool force, an_kad_republish_item_fn item,
			  an_kad_done_fn done, void *arg, struct an_kad_op **op);

/*
 * Run the loop of n's host until op_done is true or timeout_ms passes
 * (then -ETIMEDOUT); for tools that block on one operation.  *op_done is
 * set by the caller's callback.
 */
int an_kad_node_wait(struct an_kad_node *n, const bool *op_done, int timeout_ms);

/*
 * Run the loop until every request under way (also those of finished
 * operations: ADD_PROVIDER, corrections) has been written and answered or
 * failed, at most timeout_ms (then -ETIMEDOUT).  For tools before they exit.
 */
int an_kad_node_drain(struct an_kad_node *n, int timeout_ms);

/*
 * Bootstrap addresses from text: comma/space/newline separated multiaddrs
 * in s (borrowed) appended to list (array of new strings, *count
 * entries, at most AN_KAD_NODE_BOOTSTRAP_MAX; free with
 * an_kad_bootstrap_free).  An unparseable entry is AN_EMALFORMED.
 */
int an_kad_bootstrap_parse(const char *s, char ***list, size_t *count);

/*
 * The simple config file <dir>/config: lines "bootstrap MULTIADDR", '#'
 * comments and blank lines; other keys are ignored.  A missing file adds
 * nothing (0).
 */
int an_kad_bootstrap_config(const char *dir, char ***list, size_t *count);

void an_kad_bootstrap_free(char **list, size_t count);

#endif
