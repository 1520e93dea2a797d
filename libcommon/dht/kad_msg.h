/*
 * kad_msg.h - the Kademlia RPC message (libp2p kad-dht, /an/kad/1.0.0 or
 * /ipfs/kad/1.0.0): protobuf codec of Message, Message.Peer and Record.
 *
 * Wire (libp2p/specs kad-dht/README.md; js message/dht.proto):
 *   Record  { bytes key = 1; bytes value = 2; string timeReceived = 5; }
 *   Peer    { bytes id = 1; repeated bytes addrs = 2; ConnectionType connection = 3; }
 *   Message { MessageType type = 1; bytes key = 2; Record record = 3;
 *             repeated Peer closerPeers = 8; repeated Peer providerPeers = 9;
 *             int32 clusterLevelRaw = 10; }
 * Each RPC travels uvarint-length-prefixed on its stream (an_lp_put/an_lp_get);
 * this module handles only the protobuf body.
 *
 * Encoder: ascending field numbers; `type` is always written, even for
 * PUT_VALUE = 0 (js omits a zero enum, proto3 style; both decode the same,
 * and writing it keeps us safe with strict proto2 readers, K13).  So our
 * bytes equal js's for every message except PUT_VALUE, which carries an
 * extra leading 08 00, and except clusterLevelRaw, which js writes before
 * `key` (out of order) and we write last.  clusterLevelRaw is optional and
 * written only when has_cluster_level.
 *
 * Decoder: bounded by a caller cap (js accepts 4 MiB; rust sends and accepts
 * only 16 KiB, K6).  Unknown fields are skipped, including rust's Record
 * extensions publisher = 666 and ttl = 777 (K17).  A peer whose id is not a
 * peer-ID multihash is dropped; a peer's addresses that do not parse as
 * multiaddrs (transports we do not know) are dropped and the parseable ones
 * kept.  At most AN_KAD_MSG_PEERS_MAX peers per list and
 * AN_KAD_PEER_ADDRS_MAX addresses per peer are kept; the rest are ignored.
 * A connection type outside 0..3 is read as NOT_CONNECTED (rust refuses the
 * whole message; tolerating it costs nothing).  An unknown message type is
 * AN_EMALFORMED: there is nothing sensible to answer.
 *
 * Memory: a decoded message BORROWS every byte string (keys, values,
 * addresses, timeReceived) from the input, which must outlive it; the peer
 * arrays are owned by the message and freed by an_kad_msg_free().
 */
#ifndef AN_DHT_KAD_MSG_H
#define AN_DHT_KAD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "encoding/multiaddr.h"
#include "util/buf.h"

#define AN_KAD_MSG_MAX_DEFAULT (4u << 20) /* accepted message size, as js (lp default) */
#define AN_KAD_MSG_SEND_MAX (16u << 10)   /* what rust accepts: keep what we send under it */
#define AN_KAD_MSG_PEERS_MAX 256          /* peers kept per list on decode */
#define AN_KAD_PEER_ADDRS_MAX 16          /* addresses kept per peer on decode */
#define AN_KAD_TIME_LEN 30                /* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" */

enum an_kad_type {
	AN_KAD_PUT_VALUE = 0,
	AN_KAD_GET_VALUE = 1,
	AN_KAD_ADD_PROVIDER = 2,
	AN_KAD_GET_PROVIDERS = 3,
	AN_KAD_FIND_NODE = 4,
	AN_KAD_PING = 5 /* deprecated: answer it, never send it */
};

enum an_kad_conn {
	AN_KAD_NOT_CONNECTED = 0,
	AN_KAD_CONNECTED = 1,
	AN_KAD_CAN_CONNECT = 2,
	AN_KAD_CANNOT_CONNECT = 3
};

/* A borrowed byte string (p may be NULL when len is 0). */
struct an_kad_bytes {
	const uint8_t *p;
	size_t len;
};

struct an_kad_peer {
	struct an_peerid id;
	size_t naddrs;
	struct an_kad_bytes addrs[AN_KAD_PEER_ADDRS_MAX]; /* binary multiaddrs, borrowed */
	enum an_kad_conn connection;
};

struct an_kad_record {
	struct an_kad_bytes key;
	struct an_kad_bytes value;
	struct an_kad_bytes time_received; /* RFC 3339 text, not NUL-terminated; may be empty (rust) */
};

struct an_kad_msg {
	enum an_kad_type type;
	bool has_key;
	struct an_kad_bytes key;
	bool has_record;
	struct an_kad_record record;
	struct an_kad_peer *closer; /* owned (an_kad_msg_free) */
	size_t ncloser;
	size_t closer_alloc;
	struct an_kad_peer *providers; /* owned */
	size_t nproviders;
	size_t providers_alloc;
	bool has_cluster_level;
	int32_t cluster_level;
};

/* An empty message of type PUT_VALUE with no fields. */
void an_kad_msg_init(struct an_kad_msg *m);

/* Free the peer arrays (NULL-safe); m is empty and re-usable afterwards. */
void an_kad_msg_free(struct an_kad_msg *m);

/*
 * Append a peer to m's closer (providers false) or provider list: id and
 * addrs[0..naddrs) are copied by value (the addresses' bytes stay borrowed:
 * they must outlive m's use).  At most AN_KAD_PEER_ADDRS_MAX addresses are
 * taken.  0, AN_ELIMIT past AN_KAD_MSG_PEERS_MAX, -ENOMEM.
 */
int an_kad_msg_add_peer(struct an_kad_msg *m, bool providers, const struct an_peerid *id,
			const struct an_kad_bytes *addrs, size_t naddrs, enum an_kad_conn conn);

/* As an_kad_msg_add_peer with an_multiaddr addresses (borrowed; must outlive m's use). */
int an_kad_msg_add_peer_ma(struct an_kad_msg *m, bool providers, const struct an_peerid *id,
			   const struct an_multiaddr *addrs, size_t naddrs, enum an_kad_conn conn);

/*
 * Append the protobuf encoding of m (borrowed) to out (borrowed).  0,
 * AN_ETOOBIG at out's cap (out may then hold a partial message: reset it),
 * -ENOMEM, -EINVAL for a type outside 0..5.
 */
int an_kad_msg_encode(const struct an_kad_msg *m, struct an_buf *out);

/*
 * Decode p[0..len) (borrowed; must outlive *m) into *m, which is
 * initialised first (any previous content must have been freed).  0;
 * AN_ETOOBIG if len > max_len; AN_EMALFORMED, AN_ETRUNCATED for bad
 * protobuf or an unknown message type; -ENOMEM.  On error *m is freed
 * and empty.
 */
int an_kad_msg_decode(const uint8_t *p, size_t len, size_t max_len, struct an_kad_msg *m);

/* Static name of a message type ("FIND_NODE"), "UNKNOWN" otherwise. */
const char *an_kad_type_name(int type);

/*
 * Format sec.nsec (Unix time, UTC) as RFC 3339 with a 9-digit fraction and
 * 'Z', e.g. "2026-11-23T21:03:19.000000000Z", into out (AN_KAD_TIME_LEN + 1
 * bytes with the NUL).  @libp2p/record's parser requires the fraction (K19).
 * 0, -EINVAL for nsec >= 1e9 or a year outside 0..9999.
 */
int an_kad_time_format(int64_t sec, uint32_t nsec, char out[AN_KAD_TIME_LEN + 1]);

/*
 * Parse RFC 3339 text s[0..len) (borrowed, need not be NUL-terminated):
 * "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)", 't'/'z' accepted, at
 * most 9 fraction digits used (more are ignored).  Sets *sec and *nsec (UTC).
 * 0 or AN_EMALFORMED (an empty string, as rust sends, is malformed too).
 */
int an_kad_time_parse(const uint8_t *s, size_t len, int64_t *sec, uint32_t *nsec);

#endif
