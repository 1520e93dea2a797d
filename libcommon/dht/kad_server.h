/*
 * kad_server.h - the answering side of the kad RPC, sans-I/O: one decoded
 * request in, one encoded response (or none) out.
 *
 * The host reads LP-framed requests from an inbound kad stream (servers
 * must accept several requests per stream, js loops until the remote
 * closes), decodes each with an_kad_msg_decode, calls an_kad_server_handle,
 * and writes LP(resp) back; on a negative return it resets the stream,
 * which is what js and go do for a refused PUT_VALUE or an unknown
 * namespace (digest section 10, K1).  Routing-table updates for the
 * requester (only if it is in server mode) are the host's business.
 *
 * Per type (libp2p kad-dht spec, and what js/rust check):
 *   FIND_NODE     closerPeers = the k closest to SHA-256(key) from the
 *                 routing table, requester excluded; ourselves appended
 *                 when key is our own peer ID (as js does).
 *   GET_VALUE     record (record.key = key, value, timeReceived) if the
 *                 store holds a valid one, plus closerPeers.
 *   PUT_VALUE     record.key must equal key; the store validates and keeps
 *                 the better value; the response echoes the request (K8:
 *                 js compares the echoed value, rust needs the record).
 *   ADD_PROVIDER  only providerPeers whose id is the sender and that carry
 *                 addresses are stored (js and rust rule); no response.
 *                 A record field is a bare-name claim (dht/claim.h):
 *                 record.key "/an-name/<fqdn>" hashing to key, record.value
 *                 the nonce; a claim with claim_bits of work is stored
 *                 verified, one with a bad or short proof is refused.
 *                 Without the field the provider is stored unverified
 *                 (js, rust and IPFS providers of any key).
 *   GET_PROVIDERS providerPeers from the store plus closerPeers.
 *   PING          deprecated; answered with an empty PING.
 * Closer peers carry at most AN_RT_ADDRS_MAX addresses each, so a full
 * response stays under rust's 16 KiB (K6).
 */
#ifndef AN_DHT_KAD_SERVER_H
#define AN_DHT_KAD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "dht/kad_msg.h"
#include "dht/routing.h"
#include "encoding/multiaddr.h"
#include "util/buf.h"

#define AN_KAD_KEY_MAX 512        /* bytes of a request key */
#define AN_KAD_SERVER_NO_RESPONSE 1 /* an_kad_server_handle: send nothing (ADD_PROVIDER) */
#define AN_KAD_SERVER_PROVIDERS_MAX 20

/* One provider as the store returns it; addrs borrowed from the store's buffers. */
struct an_kad_provider {
	struct an_peerid id;
	size_t naddrs;
	struct an_multiaddr addrs[AN_RT_ADDRS_MAX];
	bool verified; /* add_provider: a claim whose proof was checked */
	unsigned work; /* its leading zero bits */
};

/*
 * The record and provider store, filled in by the daemon (dht/store.h and
 * dht/validate.h).  Any of them may be NULL: the request type is then
 * refused (AN_ENOPROTO), except get/get_providers, which then find nothing.
 */
struct an_kad_store_ops {
	/*
	 * The valid value held for key: append it to value (borrowed, capped)
	 * and write its timeReceived (RFC 3339, an_kad_time_format) or "" to
	 * time_received.  0, AN_ENOTFOUND, or another negative code.
	 */
	int (*get)(void *arg, const uint8_t *key, size_t key_len, struct an_buf *value,
		   char time_received[AN_KAD_TIME_LEN + 1], uint64_t now_ms);
	/*
	 * Validate and store value for key, keeping the better of it and what is
	 * held.  0 (stored, or an equal value already held); a negative code
	 * refuses (invalid, unknown namespace, stale, full): the stream is reset.
	 */
	int (*put)(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
		   size_t value_len, uint64_t now_ms);
	/* Add or refresh provider (borrowed) for key.  0 or a negative code (ignored). */
	int (*add_provider)(void *arg, const uint8_t *key, size_t key_len,
			    const struct an_kad_provider *provider, uint64_t now_ms);
	/* Up to cap live providers of key into out; returns how many (>= 0) or a negative code. */
	int (*get_providers)(void *arg, const uint8_t *key, size_t key_len,
			     struct an_kad_provider *out, size_t cap, uint64_t now_ms);
	void *arg;
};

struct an_kad_server {
	struct an_peerid self;
	const struct an_multiaddr *self_addrs; /* borrowed: our announced addresses */
	size_t nself_addrs;
	const struct an_rt *rt;                /* borrowed */
	struct an_kad_store_ops store;
	size_t k;                              /* closer peers per answer; 0 = rt->k */
	unsigned claim_bits;                   /* work a bare-name claim needs (dht/claim.h) */
};

/*
 * Answer req (borrowed) from peer `from` (borrowed) at now_ms, appending the
 * response body (protobuf, no length prefix) to resp (borrowed; cap it at
 * AN_KAD_MSG_SEND_MAX or more).  Returns 0 (send resp),
 * AN_KAD_SERVER_NO_RESPONSE, or a negative code: reset the stream.  Codes:
 * AN_EPROTO (a required field missing, record key mismatch, key over
 * AN_KAD_KEY_MAX; reason in err), AN_ENOPROTO (no store operation for it),
 * the store's own codes for a refused PUT, AN_ETOOBIG, -ENOMEM.  err
 * (may be NULL) gets a static reason string.
 */
int an_kad_server_handle(const struct an_kad_server *srv, const struct an_peerid *from,
			 const struct an_kad_msg *req, uint64_t now_ms, struct an_buf *resp,
			 const char **err);

#endif
