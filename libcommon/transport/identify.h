/*
 * identify.h - the libp2p identify protocol (/ipfs/id/1.0.0 and
 * /ipfs/id/push/1.0.0): the message codec, sans-I/O.
 *
 *   message Identify {
 *     optional bytes  publicKey = 1;        serialized PublicKey (crypto/key.h)
 *     repeated bytes  listenAddrs = 2;      binary multiaddrs, without /p2p/<self>
 *     repeated string protocols = 3;
 *     optional bytes  observedAddr = 4;     the remote as we see it
 *     optional string protocolVersion = 5;
 *     optional string agentVersion = 6;
 *     optional bytes  signedPeerRecord = 8; not in the spec file; go/js/rust send it
 *   }
 *
 * On the wire the message is length-prefixed (uvarint) and the responder
 * half-closes right after writing it (js waits for EOF, up to 5 s, without
 * the FIN).  A push carries the same message; absent fields mean
 * "unchanged".  Decoding skips unknown fields and keeps signedPeerRecord
 * only as opaque bytes: a bad record must never fail identify (rust sends
 * the legacy record format, rust-libp2p#6204).
 *
 * Caps: we emit at most AN_IDENTIFY_SEND_MAX (rust's 4 KiB limit) and accept
 * up to AN_IDENTIFY_RECV_MAX (js's 8 KiB).  Counts of repeated fields are
 * capped; extra entries are dropped, not an error (peers list many addrs).
 */
#ifndef AN_TRANSPORT_IDENTIFY_H
#define AN_TRANSPORT_IDENTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_IDENTIFY_PROTOCOL "/ipfs/id/1.0.0"
#define AN_IDENTIFY_PUSH_PROTOCOL "/ipfs/id/push/1.0.0"
#define AN_IDENTIFY_SEND_MAX 4096
#define AN_IDENTIFY_RECV_MAX 8192
#define AN_IDENTIFY_MAX_ADDRS 32
#define AN_IDENTIFY_MAX_PROTOCOLS 64
#define AN_IDENTIFY_ADDR_MAX 256   /* bytes of one binary multiaddr */
#define AN_IDENTIFY_STRING_MAX 256 /* bytes of one protocol or version string */
/* Default js waits this long for a whole identify exchange. */
#define AN_IDENTIFY_TIMEOUT_MS 5000

struct an_identify_bytes {
	size_t len;
	uint8_t *data; /* owned by the struct an_identify */
};

/* Presence bits, for pushes (absent = unchanged). */
enum {
	AN_IDENTIFY_HAS_PUBKEY = 1 << 0,
	AN_IDENTIFY_HAS_ADDRS = 1 << 1,
	AN_IDENTIFY_HAS_PROTOCOLS = 1 << 2,
	AN_IDENTIFY_HAS_OBSERVED = 1 << 3,
	AN_IDENTIFY_HAS_PROTOCOL_VERSION = 1 << 4,
	AN_IDENTIFY_HAS_AGENT_VERSION = 1 << 5,
	AN_IDENTIFY_HAS_SIGNED_RECORD = 1 << 6
};

struct an_identify {
	unsigned present; /* AN_IDENTIFY_HAS_* */
	struct an_identify_bytes public_key;
	size_t n_addrs;
	struct an_identify_bytes addrs[AN_IDENTIFY_MAX_ADDRS];
	size_t n_protocols;
	char *protocols[AN_IDENTIFY_MAX_PROTOCOLS]; /* owned, NUL-terminated */
	struct an_identify_bytes observed_addr;
	char *protocol_version; /* owned or NULL */
	char *agent_version;    /* owned or NULL */
	struct an_identify_bytes signed_record; /* opaque; never validated here */
	size_t dropped;         /* repeated entries over the caps, not kept */
};

/* Empty message (allocates nothing). */
void an_identify_init(struct an_identify *m);

/* Free everything m owns (NULL-safe); m is empty afterwards. */
void an_identify_free(struct an_identify *m);

/* Setters: copy their arguments (borrowed) into m.  0 or -ENOMEM / AN_ELIMIT (caps). */
int an_identify_set_public_key(struct an_identify *m, const uint8_t *pb, size_t len);
int an_identify_add_addr(struct an_identify *m, const uint8_t *ma, size_t len);
int an_identify_add_protocol(struct an_identify *m, const char *proto);
int an_identify_set_observed(struct an_identify *m, const uint8_t *ma, size_t len);
int an_identify_set_versions(struct an_identify *m, const char *protocol_version,
			     const char *agent_version);

/*
 * Append the protobuf of m (fields in tag order, only those present) to out.
 * AN_ETOOBIG if it would exceed AN_IDENTIFY_SEND_MAX or out's cap.
 */
int an_identify_encode(const struct an_identify *m, struct an_buf *out);

/*
 * Decode one Identify protobuf p[0..len) (borrowed) into m (initialised by
 * the caller; filled with new copies).  Unknown fields are skipped; entries
 * over the caps are counted in m->dropped.  AN_ETOOBIG over
 * AN_IDENTIFY_RECV_MAX, AN_EMALFORMED / AN_ETRUNCATED for bad protobuf or a
 * string with NUL bytes.  On error m holds what was decoded so far (free it).
 */
int an_identify_decode(const uint8_t *p, size_t len, struct an_identify *m);

/*
 * Merge a decoded push into the stored record dst: each field present in
 * push replaces dst's, moving the data (steals from push, which is left
 * empty but must still be freed).
 */
void an_identify_merge(struct an_identify *dst, struct an_identify *push);

/* ---- the service on a host (transport/host.h) ---- */

struct an_host;
struct an_host_conn;

/* js-libp2p and the identify spec's conventional value. */
#define AN_IDENTIFY_PROTOCOL_VERSION "ipfs/0.1.0"

/*
 * Serve /ipfs/id/1.0.0 (one message, then FIN) and /ipfs/id/push/1.0.0
 * (pushed listen addresses go to the host's peer store) on h, and push our
 * record to every connection when h's protocols or addresses change.
 */
int an_identify_service_register(struct an_host *h);

/* Build our identify message for connection c into m (initialised by the caller). */
int an_identify_build(struct an_host *h, struct an_host_conn *c, struct an_identify *m);

/*
 * Outcome of a request: err 0 and m (borrowed for the call; the publicKey
 * has been checked against the connection's peer ID), or -ETIMEDOUT,
 * AN_EMISMATCH, AN_EMALFORMED, AN_ETOOBIG, AN_ENOPROTO, AN_ERESET, ...
 */
typedef void (*an_identify_result_fn)(void *arg, int err, const struct an_identify *m);

/* Ask c's peer for its identify record; cb (arg borrowed) exactly once, later. */
int an_identify_request(struct an_host_conn *c, int timeout_ms, an_identify_result_fn cb, void *arg);

#endif
