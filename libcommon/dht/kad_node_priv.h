/*
 * kad_node_priv.h - what the kad_node*.c files share (not an API: see
 * kad_node.h).  kad_node.c: node life, liveness checks, identify hooks;
 * kad_request.c: outbound requests; kad_service.c: inbound streams and the
 * kad_server store glue; kad_ops.c: put, get, providers, republish;
 * kad_upkeep.c: bootstrap, refresh, maintenance, snapshots.
 */
#ifndef AN_DHT_KAD_NODE_PRIV_H
#define AN_DHT_KAD_NODE_PRIV_H

#include "dht/kad_node.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "dht/validate.h"

#define SELF_ADDRS_MAX 8
#define SNAPSHOT_MAX ((size_t)4 << 20)
#define LINGER_MS 2000 /* a finished request's stream may wait this long for the peer's FIN */
#define CLAIM_CACHE 8          /* bare-name proofs remembered (fqdn, bits, nonce) */
#define CLAIM_CHECK_PEERS 3    /* closest peers asked whether they kept our claim */
#define CLAIM_CHECK_DELAY 0.2  /* s after the ADD_PROVIDERs are written */

struct claim_proof {
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	unsigned bits;
	uint64_t nonce;
};

struct kreq;
struct inbound;

struct an_kad_node {
	struct an_host *host;
	struct ev_loop *loop;
	struct an_kad_node_config cfg;
	char protocol[256];
	char state_dir[4096];
	struct an_store *store;
	struct an_rt rt;
	struct an_kad_server srv;
	struct an_multiaddr self_addrs[SELF_ADDRS_MAX];
	size_t nself;
	int refs;      /* the node itself, requests, inbound streams, checks */
	bool closed;
	struct an_kad_op *ops;
	struct kreq *reqs;
	struct inbound *ins;
	size_t in_large;  /* bytes charged to large inbound requests (AN_KAD_NODE_IN_BUDGET) */
	ev_timer refresh, maintain;
	bool maintaining;
	char **boot;
	size_t nboot;
	ev_timer boot_retry;       /* the next bootstrap while the table is small */
	uint64_t boot_backoff_ms;  /* 0: none under way */
	struct claim_proof claims[CLAIM_CACHE]; /* our proofs, round robin */
	size_t nclaims;
};

static inline uint64_t now_ms(const struct an_kad_node *n)
{
	return an_host_now_ms(n->host);
}

static inline int64_t now_s(void)
{
	return (int64_t)time(NULL);
}


typedef void (*kreq_fn)(void *arg, struct kreq *r, int err, const struct an_kad_msg *resp);

struct kreq {
	struct an_kad_node *node;
	struct kreq *next, *prev;
	struct an_peerid peer;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t naddrs, ai;
	struct an_buf out, in;
	bool want_resp;
	bool dialing;
	bool sending;  /* inside kreq_send: its callers free r, not on_close */
	bool finished;
	struct an_host_conn *conn;
	struct an_stream *s;
	ev_timer timer;
	kreq_fn cb;
	void *arg;
	size_t tag; /* the caller's index */
};

struct inbound {
	struct an_kad_node *node;
	struct inbound *next, *prev;
	struct an_stream *s;
	struct an_buf in;
	size_t large;   /* bytes charged to the node's large-request budget */
	ev_timer idle;
};

enum op_kind { OP_BOOT, OP_PUT, OP_GET, OP_PROV, OP_REPUB };

/* A peer a put (or a get's correction) sends to. */
struct target {
	struct an_peerid id;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	size_t naddrs;
	int stage; /* 0 root to send, 1 value to send, 2 read-back to ask (verified puts), 3 done */
	bool stored;
	struct an_rt_group group; /* of addrs[0]: holders are counted per subnet */
};

struct an_kad_op {
	struct an_kad_node *node;
	struct an_kad_op *next, *prev;
	enum op_kind kind;
	int phase;
	bool bootstrap; /* an_kad_node_bootstrap's: retried while the table is small */
	bool cancelled;
	bool called; /* the user's callback ran */
	size_t dials;
	struct an_lookup *lk;
	ev_timer timer;
	ev_timer defer;
	struct an_buf key, value, root_key, root_value;
	unsigned flags;
	/* put and corrections */
	struct target *targets;
	size_t ntargets, pending, stored;
	size_t next_target, inflight, goal; /* targets started, under way, holders wanted */
	bool verify;  /* read back each PUT (AN_KAD_DEF_VERIFY) */
	bool replace; /* a target that did not take it is replaced by the next one */
	uint8_t name_key[34];
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	bool announce;
	/* the claim: ADD_PROVIDER targets, then GET_PROVIDERS to some of them */
	struct target *ann;
	size_t nann, ann_pending, check_pending;
	bool listed;
	int claim; /* AN_KAD_CLAIM_* */
	/* get */
	json_t *root_json;
	struct an_validate_ctx vctx;
	size_t from_peers;
	/* bootstrap seeds */
	struct an_peerid seeds[AN_KAD_NODE_BOOTSTRAP_MAX];
	struct an_multiaddr seed_addrs[AN_KAD_NODE_BOOTSTRAP_MAX];
	size_t nseeds;
	/* republish */
	bool force;
	int pass;
	struct an_store_record rec;
	struct an_kad_op *child;
	const char *child_status;
	int err;
	/* why nothing was found (kad_node.h's error contract) */
	int reach;      /* an_lookup_reach of a put's FIND_NODE lookup */
	bool timed_out; /* a bootstrap dial timed out */
	/* callbacks */
	an_kad_bootstrap_fn boot_cb;
	an_kad_put_fn put_cb;
	an_kad_get_fn get_cb;
	an_kad_providers_fn prov_cb;
	an_kad_republish_item_fn item_cb;
	an_kad_done_fn done_cb;
	void *arg;
};

/* kad_node.c */
void kad_log(struct an_kad_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kad_node_unref(struct an_kad_node *n);
void kad_refresh_self_addrs(struct an_kad_node *n);
/* Dial text for a peer at addr: addr with /p2p/<peer> unless it has one. */
int kad_dial_text(const struct an_multiaddr *addr, const struct an_peerid *peer, char *out, size_t cap);
/* id is a server at addrs; conn (may be NULL) is where we heard it: its address group. */
void kad_rt_seen(struct an_kad_node *n, const struct an_peerid *id, const struct an_multiaddr *addrs,
		 size_t naddrs, const struct an_host_conn *conn);
/* Is defence d (AN_KAD_DEF_*) on for n? */
bool kad_defence(const struct an_kad_node *n, unsigned d);

/* kad_request.c */
/*
 * Send body (protobuf, copied) to peer: cb later, exactly once (unless
 * detached by clearing r->cb).  The start itself is deferred to the loop so
 * no callback ever runs inside the caller.  NULL on allocation failure.
 */
struct kreq *kad_kreq_start(struct an_kad_node *n, const struct an_peerid *peer,
			    const struct an_multiaddr *addrs, size_t naddrs, const uint8_t *body,
			    size_t len, bool want_resp, kreq_fn cb, void *arg, size_t tag);
/* Detach every request made for arg: their answers are dropped. */
void kad_kreq_detach(struct an_kad_node *n, void *arg);

/* kad_service.c */
extern const struct an_stream_handler kad_inbound_handler;
int kad_ops_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *value,
		char when[AN_KAD_TIME_LEN + 1], uint64_t ms);
int kad_ops_put(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len,
		uint64_t ms);
int kad_ops_add_provider(void *arg, const uint8_t *key, size_t key_len, const struct an_kad_provider *p,
			 uint64_t ms);
int kad_ops_get_providers(void *arg, const uint8_t *key, size_t key_len, struct an_kad_provider *out,
			  size_t cap, uint64_t ms);
/* cfg's claim bits, else $AN_CLAIM_BITS, else the default; capped. */
unsigned kad_claim_bits(const struct an_kad_node_config *cfg);
/* get_root of the validator: the store's live value. */
int kad_store_root_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out);

/* kad_ops.c */
void kad_op_free(struct an_kad_op *op);
struct an_kad_op *kad_op_new(struct an_kad_node *n, enum op_kind kind, void *arg);
int kad_lookup_begin(struct an_kad_op *op, enum an_lookup_kind kind, const uint8_t *key, size_t key_len);
void kad_lookup_pump(struct an_kad_op *op);
/* Run fn from the loop (so callbacks never run inside the starting call). */
void kad_op_defer(struct an_kad_op *op, void (*fn)(struct ev_loop *, ev_timer *, int));
void kad_lookup_start_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* kad_upkeep.c */
void kad_boot_finish(struct an_kad_op *op);
void kad_snapshot_load(struct an_kad_node *n);
void kad_snapshot_save(struct an_kad_node *n);
void kad_refresh_cb(struct ev_loop *loop, ev_timer *w, int revents);
void kad_boot_retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
void kad_maintain_cb(struct ev_loop *loop, ev_timer *w, int revents);

#endif
