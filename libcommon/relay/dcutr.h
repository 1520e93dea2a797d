/*
 * dcutr.h - the DCUtR message codec (Direct Connection Upgrade through
 * Relay, /libp2p/dcutr; specs relay/DCUtR.md, digest section 12):
 *
 *   message HolePunch { enum Type { CONNECT = 100; SYNC = 300; }
 *                       required Type type = 1; repeated bytes ObsAddrs = 2; }
 *
 * Over a relayed connection B (the peer the relay connected to) sends
 * CONNECT with its observed addresses, A answers CONNECT with its own, B
 * sends SYNC (no addresses), then both dial at once; the TCP connection
 * that results runs the upgrade with A as client whichever side's
 * connect() won.  This module is only the message layer: no timers, no
 * dialing.
 *
 * Messages travel LP-framed and are capped at AN_DCUTR_MSG_MAX, the cap
 * of both js (@libp2p/dcutr MAX_DCUTR_MESSAGE_SIZE) and rust.
 *
 * Interop notes:
 * - type is required (rust's proto2 schema); js's schema adds UNUSED = 0,
 *   which no peer sends and we refuse like any value outside the enum.
 * - ObsAddrs are binary multiaddrs, kept here as raw bytes: a peer may send
 *   addresses we cannot parse or dial (QUIC, DNS, relayed ones), which is
 *   no reason to drop the message.  an_dcutr_addr_tcp picks the ones a TCP
 *   hole punch can use.  An empty list in CONNECT is a protocol failure
 *   (js and rust abort), decided by the caller, not the codec.
 * - js dials only addresses it deems public (not private, not circuit):
 *   with js, DCUtR never starts on loopback or RFC 1918 testbeds.
 */
#ifndef AN_RELAY_DCUTR_H
#define AN_RELAY_DCUTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_DCUTR_PROTOCOL "/libp2p/dcutr"

/* Largest protobuf message (without its length prefix) sent or accepted. */
#define AN_DCUTR_MSG_MAX 4096
/* Addresses kept when decoding (and accepted when encoding); later ones are dropped. */
#define AN_DCUTR_MAX_ADDRS 16

enum an_dcutr_type {
	AN_DCUTR_CONNECT = 100,
	AN_DCUTR_SYNC = 300
};

/* A byte string borrowed from a decoded message or from the caller. */
struct an_dcutr_addr {
	const uint8_t *p;
	size_t len;
};

struct an_dcutr_msg {
	enum an_dcutr_type type;
	size_t naddrs;
	struct an_dcutr_addr addrs[AN_DCUTR_MAX_ADDRS];
};

/* An empty message of type (no addresses). */
void an_dcutr_msg_init(struct an_dcutr_msg *m, enum an_dcutr_type type);

/*
 * Append a binary multiaddr p[0..len) (borrowed: it must outlive m's
 * encoding).  0; AN_ELIMIT past AN_DCUTR_MAX_ADDRS; -EINVAL for an empty
 * address.
 */
int an_dcutr_msg_add_addr(struct an_dcutr_msg *m, const uint8_t *p, size_t len);

/*
 * Encode m as one LP frame appended to out (borrowed): uvarint(len) || the
 * protobuf, type first, then the addresses in order.  0; -EINVAL for a
 * type outside the enum; AN_ETOOBIG if the protobuf exceeds
 * AN_DCUTR_MSG_MAX or out's cap (out unchanged on any error); -ENOMEM.
 */
int an_dcutr_msg_encode(const struct an_dcutr_msg *m, struct an_buf *out);

/*
 * Decode one protobuf message (no length prefix) from p[0..len).  The
 * addresses in *m borrow from p, which must outlive them.  Unknown fields
 * are skipped; addresses past AN_DCUTR_MAX_ADDRS are dropped.  0;
 * AN_ETOOBIG over AN_DCUTR_MSG_MAX; AN_EMALFORMED (protobuf errors, a wrong
 * wire type, a type outside the enum); AN_ETRUNCATED; AN_EFIELD when type
 * is missing.
 */
int an_dcutr_msg_decode(const uint8_t *p, size_t len, struct an_dcutr_msg *m);

/*
 * Take one LP-framed message from the start of p[0..len): 0 with *m
 * decoded (borrowing from p) and *used the bytes consumed; AN_EAGAIN if the
 * frame is incomplete; AN_ETOOBIG if the prefix announces more than
 * AN_DCUTR_MSG_MAX; otherwise the errors of an_dcutr_msg_decode.
 */
int an_dcutr_msg_read(const uint8_t *p, size_t len, struct an_dcutr_msg *m, size_t *used);

/*
 * True if a (borrowed) is an address a TCP hole punch can dial: a valid
 * binary multiaddr /ip4|ip6/A/tcp/P, optionally ending in /p2p/ID, port
 * not 0, no /p2p-circuit.  Whether it is public is the caller's choice
 * (an_multiaddr_scope).
 */
bool an_dcutr_addr_tcp(const struct an_dcutr_addr *a);

#endif
