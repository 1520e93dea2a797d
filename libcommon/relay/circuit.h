/*
 * circuit.h - Circuit Relay v2 messages (specs relay/circuit-v2.md): the hop
 * protocol (client <-> relay) and the stop protocol (relay -> target).
 *
 *   message HopMessage  { Type type = 1; Peer peer = 2; Reservation reservation = 3;
 *                         Limit limit = 4; Status status = 5; }   RESERVE 0 CONNECT 1 STATUS 2
 *   message StopMessage { Type type = 1; Peer peer = 2; Limit limit = 3; Status status = 4; }
 *                                                                  CONNECT 0 STATUS 1
 *   message Peer        { bytes id = 1; repeated bytes addrs = 2; }
 *   message Reservation { uint64 expire = 1; repeated bytes addrs = 2; bytes voucher = 3; }
 *   message Limit       { uint32 duration = 1; uint64 data = 2; }
 *
 * Both kinds share one struct (struct an_relay_msg); the kind decides the
 * field numbers and which types are valid.  Messages travel LP-framed
 * (uvarint length || protobuf) and are capped at AN_RELAY_MSG_MAX, the
 * rust-libp2p cap (js allows 4 MiB, but nothing legitimate comes near 4 KiB).
 *
 * Interop notes (digest section 11, K12/K13):
 * - type is always encoded, even when 0 (RESERVE, StopMessage CONNECT):
 *   js answers a message without type MALFORMED_MESSAGE and rust's proto2
 *   schema has it required.  A decoded message without type is AN_EFIELD.
 * - js sends the Limit duration of its own relay in milliseconds (120000
 *   for 2 min) in a field the spec defines in seconds; we send seconds.
 * - Peer.addrs in CONNECT are ignored by relays (active relay is gone), so
 *   they are kept as raw bytes and never parsed here.
 */
#ifndef AN_RELAY_CIRCUIT_H
#define AN_RELAY_CIRCUIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"
#include "util/buf.h"

#define AN_RELAY_HOP_PROTOCOL "/libp2p/circuit/relay/0.2.0/hop"
#define AN_RELAY_STOP_PROTOCOL "/libp2p/circuit/relay/0.2.0/stop"

/* Largest protobuf message (without its length prefix) sent or accepted. */
#define AN_RELAY_MSG_MAX 4096
/* Addresses kept per Peer or Reservation when decoding; later ones are dropped. */
#define AN_RELAY_MAX_ADDRS 16

enum an_relay_kind {
	AN_RELAY_HOP = 0,
	AN_RELAY_STOP = 1
};

/* HopMessage.Type */
enum an_relay_hop_type {
	AN_HOP_RESERVE = 0,
	AN_HOP_CONNECT = 1,
	AN_HOP_STATUS = 2
};

/* StopMessage.Type */
enum an_relay_stop_type {
	AN_STOP_CONNECT = 0,
	AN_STOP_STATUS = 1
};

enum an_relay_status {
	AN_RELAY_UNUSED = 0,
	AN_RELAY_OK = 100,
	AN_RELAY_RESERVATION_REFUSED = 200,
	AN_RELAY_RESOURCE_LIMIT_EXCEEDED = 201,
	AN_RELAY_PERMISSION_DENIED = 202,
	AN_RELAY_CONNECTION_FAILED = 203,
	AN_RELAY_NO_RESERVATION = 204,
	AN_RELAY_MALFORMED_MESSAGE = 400,
	AN_RELAY_UNEXPECTED_MESSAGE = 401
};

/* A byte string borrowed from a decoded message's input (or the encoder's caller). */
struct an_relay_bytes {
	const uint8_t *p;
	size_t len;
};

struct an_relay_peer {
	bool present;
	bool has_id;
	struct an_peerid id; /* checked: identity or sha2-256 multihash */
	size_t naddrs;
	struct an_relay_bytes addrs[AN_RELAY_MAX_ADDRS]; /* binary multiaddrs, unchecked */
};

struct an_relay_reservation {
	bool present;
	bool has_expire;
	uint64_t expire; /* unix seconds, UTC */
	size_t naddrs;
	struct an_relay_bytes addrs[AN_RELAY_MAX_ADDRS]; /* binary multiaddrs, unchecked */
	struct an_relay_bytes voucher; /* signed envelope (relay/envelope.h); len 0 = none */
};

struct an_relay_limit {
	bool present;
	bool has_duration;
	uint32_t duration; /* seconds (see the js note above); 0 = unlimited */
	bool has_data;
	uint64_t data;     /* bytes; 0 = unlimited */
};

struct an_relay_msg {
	enum an_relay_kind kind;
	int type;               /* an_relay_hop_type or an_relay_stop_type */
	struct an_relay_peer peer;
	struct an_relay_reservation rsv; /* hop only */
	struct an_relay_limit limit;
	bool has_status;
	uint32_t status;        /* an_relay_status; other values kept as they came */
};

/* An empty message of kind with type (no optional field present). */
void an_relay_msg_init(struct an_relay_msg *m, enum an_relay_kind kind, int type);

/*
 * Encode m as one LP frame appended to out (borrowed): uvarint(len) || the
 * protobuf, fields in tag order, type always present.  Peer.id is written
 * when has_id.  Byte strings in m are borrowed and copied.  0; -EINVAL for
 * a type that does not exist in m's kind, or a reservation in a stop
 * message; AN_ETOOBIG if the protobuf exceeds AN_RELAY_MSG_MAX or out's cap
 * (out unchanged on any error); -ENOMEM.
 */
int an_relay_msg_encode(const struct an_relay_msg *m, struct an_buf *out);

/*
 * Decode one protobuf message (no length prefix) of kind from p[0..len).
 * Byte strings in *m borrow from p, which must outlive them.  Unknown
 * fields are skipped; more than AN_RELAY_MAX_ADDRS addresses are dropped.
 * 0; AN_ETOOBIG over AN_RELAY_MSG_MAX; AN_EMALFORMED (protobuf errors, a
 * wrong wire type, a type value outside the kind's enum, a duration over
 * 32 bits, a Peer.id that is not a peer ID multihash); AN_ETRUNCATED;
 * AN_EFIELD when type is missing.
 */
int an_relay_msg_decode(enum an_relay_kind kind, const uint8_t *p, size_t len,
			struct an_relay_msg *m);

/*
 * Take one LP-framed message from the start of p[0..len): 0 with *m
 * decoded (borrowing from p) and *used the bytes consumed; AN_EAGAIN if the
 * frame is incomplete; AN_ETOOBIG if the prefix announces more than
 * AN_RELAY_MSG_MAX; otherwise the errors of an_relay_msg_decode.
 */
int an_relay_msg_read(enum an_relay_kind kind, const uint8_t *p, size_t len,
		      struct an_relay_msg *m, size_t *used);

/* Static name of a status ("OK", "NO_RESERVATION", ...; "UNKNOWN" otherwise). */
const char *an_relay_status_name(uint32_t status);

#endif
